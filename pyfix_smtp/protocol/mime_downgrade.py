"""MIME structure tracking and 8bit -> quoted-printable downgrade.

This is the part of Postfix's one-pass MIME processor (``global/mime_state.c``)
that the SMTP client uses when a server lacks 8BITMIME: it follows the header
blocks of the message, its multipart parts and attached ``message/rfc822``
messages, and converts each body that declares ``8bit`` or ``binary`` content
to quoted-printable. Everything else passes through byte for byte.

Input is message text with ``LF`` line ends and no ``CR`` (the content encoder
normalises before calling us); output is in the same form. Input may be split
anywhere: the machine holds at most one line head (enough octets to recognise
a header name or a boundary), one ``Content-Type``/``Content-Transfer-Encoding``
header (bounded by ``header_size_limit``) and one quoted-printable output line,
so memory stays flat however long the message or its lines are.

Postfix behaviour kept on purpose (see ``docs/content.md``):

* a header block that ends while the entity declares ``8bit``/``binary`` gets
  a new ``Content-Transfer-Encoding`` header at the end of the block (before
  the empty line): ``7bit`` for ``multipart/*`` and ``message/*`` (except
  ``message/global``), ``quoted-printable`` otherwise; the old header is
  dropped where it stood (``mime_state_update()``);
* quoted-printable lines are cut with a soft break once they hold 73 or more
  characters, so every line is at most 76 characters (``mime_state_downgrade()``);
* boundaries are matched as prefixes, only at the start of a line, against
  every enclosing multipart, and at most ``mime_boundary_length_limit``
  octets of each boundary are compared;
* more than ``mime_nesting_limit`` nested multiparts is an error (5.6.0).

An optional :class:`ContentHook` sees what Postfix's smtp(8) hands to its
header and body output routines (``mime_state.c`` ``head_out``/``body_out``,
used by ``smtp_header_rewrite()`` and ``smtp_body_rewrite()``): each logical
header of the classes it asks for, and each body line in pieces of at most
``body_piece_limit`` octets (after quoted-printable conversion); what it
returns goes out instead. Without a hook nothing changes and nothing costs.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Protocol

from pyfix_smtp.errors import ContentError

__all__ = ["ContentHook", "HeaderClass", "MimeProcessor"]

# RFC 2045 §5.1 tspecials, as Postfix's mime_state.c RFC2045_TSPECIALS.
_RFC2045_TSPECIALS = frozenset(b'()<>@,;:\\"/[]?=')
# RFC 822 specials, as Postfix's lex_822.h LEX_822_SPECIALS.
_RFC822_SPECIALS = frozenset(b'()<>@,;:\\".[]')
_LWSP = frozenset(b" \t\r\n")

# Postfix is_header.c is_header_buf(): a name of printable ASCII other than
# ":", optional spaces/tabs, then ":".
_HEADER_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")


class _Held(enum.Enum):
    """What kind of header is being held."""

    OTHER = "other"  # held only for the hook
    CT = "content-type"
    CTE = "content-transfer-encoding"


_HELD_OTHER = _Held.OTHER
_HELD_CT = _Held.CT
_HELD_CTE = _Held.CTE
_CONTENT_HEADERS = {b"content-type": _HELD_CT, b"content-transfer-encoding": _HELD_CTE}


# Postfix mime_state.c mime_state_downgrade(): encode octets below 32 other
# than TAB, "=" and octets above 126 as "=XX" (RFC 2045 §6.7 rules 1 and 2).
def _qp_literal(octet: int) -> bool:
    return (32 <= octet <= 126 and octet != 0x3D) or octet == 0x09


_HEX = b"0123456789ABCDEF"
_QP_CODES = tuple(b"=%02X" % i for i in range(256))
_QP_UNSAFE = bytes(i for i in range(256) if not _qp_literal(i))
# Three translation tables give the three output columns of each octet; NUL
# (never literal) fills the two unused columns of a literal octet.
_QP_COL1 = bytes(i if _qp_literal(i) else 0x3D for i in range(256))
_QP_COL2 = bytes(0 if _qp_literal(i) else _HEX[i >> 4] for i in range(256))
_QP_COL3 = bytes(0 if _qp_literal(i) else _HEX[i & 15] for i in range(256))
_QP_SOFT_AT = 73  # flush before adding a character once the line holds > 72
_QP_SLICE = 16 * 1024  # octets escaped at a time (bounds temporary memory)


def _qp_escape(data: bytes) -> bytes:
    """Quoted-printable escapes without line breaks, with C-speed bytes operations."""
    if len(data.translate(None, _QP_UNSAFE)) == len(data):
        return data
    columns = bytearray(3 * len(data))
    columns[0::3] = data.translate(_QP_COL1)
    columns[1::3] = data.translate(_QP_COL2)
    columns[2::3] = data.translate(_QP_COL3)
    return bytes(columns).translate(None, b"\x00")


class _Ctype(enum.Enum):
    OTHER = "other"
    TEXT = "text"
    MESSAGE = "message"
    MULTIPART = "multipart"


class _Stype(enum.Enum):
    OTHER = "other"
    PLAIN = "plain"
    RFC822 = "rfc822"
    PARTIAL = "partial"
    EXTERNAL_BODY = "external-body"
    GLOBAL = "global"


class _Domain(enum.Enum):
    """RFC 2045 §6.1 encoding domain (quoted-printable and base64 are 7bit)."""

    SEVEN = "7bit"
    EIGHT = "8bit"
    BINARY = "binary"


# RFC 2045 §6.1; Postfix mime_state.c mime_encoding_map[].
_DOMAINS = {
    b"7bit": _Domain.SEVEN,
    b"8bit": _Domain.EIGHT,
    b"binary": _Domain.BINARY,
    b"base64": _Domain.SEVEN,
    b"quoted-printable": _Domain.SEVEN,
}

_MESSAGE_SUBTYPES = {
    b"rfc822": _Stype.RFC822,
    b"partial": _Stype.PARTIAL,
    b"external-body": _Stype.EXTERNAL_BODY,
    b"global": _Stype.GLOBAL,
}


class _State(enum.Enum):
    PRIMARY = "primary header"
    MULTIPART = "multipart header"
    NESTED = "nested header"
    BODY = "body"


class HeaderClass(enum.Enum):
    """Where a header block is (Postfix mime_state.h ``MIME_HDR_*``)."""

    PRIMARY = "primary"
    """The message's own headers (``MIME_HDR_PRIMARY``)."""
    MULTIPART = "multipart"
    """The headers after a multipart boundary (``MIME_HDR_MULTIPART``)."""
    NESTED = "nested"
    """The headers of an attached ``message/rfc822`` message (``MIME_HDR_NESTED``)."""


_HEADER_CLASS = {
    _State.PRIMARY: HeaderClass.PRIMARY,
    _State.MULTIPART: HeaderClass.MULTIPART,
    _State.NESTED: HeaderClass.NESTED,
}


class ContentHook(Protocol):
    """A stage that may change headers and body lines as they go out.

    Text is in the processor's form: ``LF`` line ends, no ``CR``. What a
    method returns replaces its input in the output; it must not contain
    ``CR`` (the encoder after it turns each ``LF`` into ``CRLF``).
    """

    @property
    def header_classes(self) -> frozenset[HeaderClass]:
        """The header blocks whose headers :meth:`header` receives."""
        ...

    @property
    def body_piece_limit(self) -> int:
        """Body lines reach :meth:`body` in pieces of at most this many octets; 0: never."""
        ...

    def header(self, header_class: HeaderClass, text: bytes, *, synthetic: bool) -> bytes:
        """One complete logical header; return its replacement with a final ``LF``.

        *text* has no final line end; the lines of a folded header are
        joined with ``LF``. *synthetic* marks the Content-Transfer-Encoding
        header written by the 8bit conversion (Postfix passes no header
        information with it). Return ``b""`` to drop the header.
        """
        ...

    def header_start(self, header_class: HeaderClass, text: bytes) -> tuple[bytes, bool]:
        """The first ``header_size_limit`` octets of a longer header.

        Return what goes out now and whether the rest of the header follows
        it unchanged (``True``: the output must then end with *text*, the
        rest of the header is appended as it arrives) or is dropped
        (``False``: the output ends with a line end or is empty).
        """
        ...

    def body(self, piece: bytes, *, end: bool) -> bytes:
        """One piece of a body line; *end* when the line ends with it.

        Return the replacement, with a final ``LF`` when the output line
        should end there.
        """
        ...


class _Rest(enum.Enum):
    """What happens to the rest of a line whose start has been handled."""

    EMIT = "emit"  # copy to the output
    HOLD = "hold"  # append to the held header
    QP = "qp"  # quoted-printable encode
    CHECK = "check"  # hand to the hook's body() in pieces
    DROP = "drop"  # discard (the rest of a header the hook dropped)


_TOKEN = 0  # header_token.h HEADER_TOK_TOKEN
_QSTRING = 1  # header_token.h HEADER_TOK_QSTRING
_Token = tuple[int, bytes]  # (kind, value); kind is _TOKEN, _QSTRING or the special octet + 2


def _special(octet: int) -> int:
    return octet + 2


def _header_tokens(
    text: bytes, pos: int, limit: int, specials: frozenset[int], terminator: int | None
) -> tuple[int, list[_Token], int]:
    """Tokenise a header value like Postfix header_token.c header_token().

    Returns (count, tokens, new position); count is -1 when the input ran out
    before any token. With a terminator, parsing continues to it and tokens
    beyond ``limit`` are dropped; without one it stops after ``limit`` tokens.
    """
    tokens: list[_Token] = []
    n = len(text)
    exhausted = True
    while pos < n and (terminator is not None or len(tokens) < limit):
        ch = text[pos]
        pos += 1
        if ch in _LWSP:
            continue
        if ch == terminator:
            exhausted = False
            break
        if ch == 0x28:  # "(" comment; comments nest, "\" quotes (RFC 822 §3.4.3)
            level = 1
            while pos < n:
                c = text[pos]
                pos += 1
                if c == 0x28:
                    level += 1
                elif c == 0x29:
                    level -= 1
                    if level == 0:
                        break
                elif c == 0x5C:
                    pos += 1
            continue
        if ch == 0x22:  # quoted-string (RFC 822 §3.4.1), unfolded
            value = bytearray()
            while pos < n:
                c = text[pos]
                pos += 1
                if c == 0x22:
                    break
                if c == 0x0A:
                    while value and value[-1] in _LWSP:
                        value.pop()
                    continue
                if c == 0x5C:
                    if pos >= n:
                        break
                    c = text[pos]
                    pos += 1
                value.append(c)
            if len(tokens) < limit:
                tokens.append((_QSTRING, bytes(value)))
            continue
        if ch in specials or ch < 0x20 or ch == 0x7F:
            if len(tokens) < limit:
                tokens.append((_special(ch), bytes((ch,))))
            continue
        start = pos - 1
        while pos < n:
            c = text[pos]
            if c in _LWSP or c < 0x20 or c == 0x7F or c in specials:
                break
            pos += 1
        if len(tokens) < limit:
            tokens.append((_TOKEN, text[start:pos]))
    else:
        exhausted = pos >= n
    if not tokens and exhausted:
        return -1, tokens, pos
    return len(tokens), tokens, pos


def _is_token(token: _Token, word: bytes) -> bool:
    """Postfix mime_state.c TOKEN_MATCH(): an atom equal to word, ignoring case."""
    return token[0] == _TOKEN and token[1].lower() == word


@dataclass(slots=True)
class _Multipart:
    """One enclosing multipart: its boundary and the default type of its parts."""

    boundary: bytes
    def_ctype: _Ctype
    def_stype: _Stype


class MimeProcessor:
    """Incremental MIME parser with optional 8bit -> quoted-printable conversion.

    ``feed(text)`` takes normalised message text (``LF`` line ends, no ``CR``)
    split anywhere and returns the output produced so far; ``finish()`` ends
    the message. With ``downgrade=False`` the output equals the input and the
    object only observes (``saw_8bit``).

    Args:
        downgrade: convert 8bit/binary entities (Postfix MIME_OPT_DOWNGRADE).
        nesting_limit: Postfix ``mime_nesting_limit``.
        boundary_length_limit: Postfix ``mime_boundary_length_limit``.
        header_size_limit: Postfix ``header_size_limit``: the most octets of
            one header we hold (Content-Type, Content-Transfer-Encoding, and
            every header the hook receives).
        hook: an optional :class:`ContentHook` (header/body checks, address
            rewriting); with a hook, MIME structure is followed even without
            ``downgrade``.

    Raises:
        ContentError: from ``feed``/``finish`` when multiparts nest deeper than
            ``nesting_limit`` or a held header exceeds ``header_size_limit``
            while downgrading.
    """

    __slots__ = (
        "_body_limit",
        "_boundary_limit",
        "_ctype",
        "_domain",
        "_downgrade",
        "_dropping",
        "_head",
        "_head_min",
        "_header_open",
        "_header_size_limit",
        "_held",
        "_held_hooked",
        "_held_kind",
        "_held_line",
        "_hook",
        "_hook_classes",
        "_line",
        "_nesting_limit",
        "_out",
        "_piece",
        "_qp_tail",
        "_rest",
        "_stack",
        "_state",
        "_stype",
        "converted",
        "saw_8bit",
    )

    def __init__(
        self,
        *,
        downgrade: bool,
        nesting_limit: int = 100,
        boundary_length_limit: int = 2048,
        header_size_limit: int = 102400,
        hook: ContentHook | None = None,
    ) -> None:
        self._downgrade = downgrade
        self._hook = hook
        self._hook_classes = hook.header_classes if hook is not None else frozenset()
        self._body_limit = hook.body_piece_limit if hook is not None else 0
        self._piece = bytearray()
        self._dropping = False
        self._held_kind = _HELD_OTHER
        self._held_hooked = False
        self._nesting_limit = nesting_limit
        self._boundary_limit = boundary_length_limit
        self._header_size_limit = header_size_limit
        # Enough of a line to see "--" + boundary + "--", and at least as much
        # as Postfix's first queue record of a line (line_length_limit 2048).
        self._head_min = max(2048, boundary_length_limit + 4)
        # Postfix mime_state_alloc(): primary headers of text/plain, 7bit.
        self._state = _State.PRIMARY
        self._ctype = _Ctype.TEXT
        self._stype = _Stype.PLAIN
        self._domain = _Domain.SEVEN
        self._stack: list[_Multipart] = []
        self._header_open = False
        self._held: bytearray | None = None
        self._held_line = 0
        self._head = b""
        self._rest: _Rest | None = None
        self._qp_tail = b""
        self._line = 1
        self._out: list[bytes] = []
        self.saw_8bit = False
        """True once a Content-Transfer-Encoding header declared 8bit or binary."""
        self.converted = False
        """True once an entity was (being) converted to quoted-printable or 7bit."""

    # -- input ---------------------------------------------------------------

    def feed(self, text: bytes) -> bytes:
        """Process more normalised text; return the output it completes."""
        out = self._out = []
        n = len(text)
        pos = 0
        while pos < n:
            rest = self._rest
            if rest is not None:
                # Inside a line whose start was handled: stream to its end.
                nl = text.find(b"\n", pos)
                end = n if nl < 0 else nl
                if end > pos:
                    if rest is _Rest.EMIT:
                        out.append(text[pos:end])
                    elif rest is _Rest.HOLD:
                        self._hold(text[pos:end])
                    elif rest is _Rest.QP:
                        self._qp_add(text[pos:end])
                    elif rest is _Rest.CHECK:
                        self._check_add(text[pos:end])
                if nl < 0:
                    break
                self._end_line()
                pos = nl + 1
                continue
            if (
                self._state is _State.BODY
                and not self._head
                and (not self._downgrade or self._domain is _Domain.SEVEN)
                and not self._body_limit
            ):
                after = self._bulk(text, pos)
                if after >= 0:
                    pos = after
                    continue
            # At a line start: collect its head (whole line, or _head_min octets).
            head = self._head
            room = self._head_min - len(head)
            nl = text.find(b"\n", pos, pos + room)
            if nl >= 0:
                self._head = b""
                self._start_line(head + text[pos:nl] if head else text[pos:nl])
                self._end_line()
                pos = nl + 1
            elif n - pos >= room:
                self._head = b""
                self._start_line(head + text[pos : pos + room] if head else text[pos : pos + room])
                pos += room
            else:
                self._head = head + text[pos:] if head else text[pos:]
                pos = n
        self._out = []
        return b"".join(out)

    def finish(self) -> bytes:
        """End of message: flush held state; a last line gets its line end."""
        out = self._out = []
        if self._head or self._rest is not None:
            # Postfix mime_state.c: input not ending in a line break gets one.
            if self._rest is None:
                head, self._head = self._head, b""
                self._start_line(head)
            self._end_line()
        if self._state is not _State.BODY:
            # Headers up to the end of input: Postfix still ends the block.
            self._close_header()
            self._emit_cte()
        self._out = []
        return b"".join(out)

    # -- lines ---------------------------------------------------------------

    def _bulk(self, text: bytes, pos: int) -> int:
        """Copy body lines that cannot change state (7bit, or no downgrade).

        Returns the position after what was copied, or -1 when the line at
        ``pos`` may be a boundary and needs the line-by-line path.
        """
        out = self._out
        n = len(text)
        if not self._stack:
            # No boundary can follow: the rest of the message is copied.
            out.append(text[pos:] if pos else text)
            self._line += text.count(b"\n", pos)
            if text[-1] != 0x0A:
                self._rest = _Rest.EMIT
            return n
        if text[pos] == 0x2D and (pos + 1 == n or text[pos + 1] == 0x2D):
            return -1
        nxt = text.find(b"\n--", pos)
        if nxt >= 0:
            out.append(text[pos : nxt + 1])
            self._line += text.count(b"\n", pos, nxt + 1)
            return nxt + 1
        last = text.rfind(b"\n", pos)
        if last < 0:
            out.append(text[pos:])
            self._rest = _Rest.EMIT
            return n
        out.append(text[pos : last + 1])
        self._line += text.count(b"\n", pos, last + 1)
        return last + 1

    def _start_line(self, head: bytes) -> None:
        """Handle the start of a line (the whole line, or its first octets)."""
        if self._state is not _State.BODY:
            if self._header_open and head[:1] in (b" ", b"\t"):
                # RFC 5322 §2.2.3 folded header continuation.
                if self._held is not None:
                    self._rest = _Rest.HOLD
                    self._held += b"\n"
                    self._hold(head)
                elif self._dropping:
                    self._rest = _Rest.DROP
                else:
                    self._rest = _Rest.EMIT
                    self._out.append(head)
                return
            self._close_header()
            match = _HEADER_NAME.match(head)
            if match is not None:
                self._header_open = True
                kind = _CONTENT_HEADERS.get(match.group(1).lower(), _HELD_OTHER)
                hooked = bool(self._hook_classes) and _HEADER_CLASS[self._state] in (
                    self._hook_classes
                )
                if kind is not _HELD_OTHER or hooked:
                    self._held_kind = kind
                    self._held_hooked = hooked
                    self._held = bytearray()
                    self._held_line = self._line
                    self._rest = _Rest.HOLD
                    self._hold(head)
                else:
                    self._out.append(head)
                    self._rest = _Rest.EMIT
                return
            self._end_headers(empty=not head)
        self._body_line(head)

    def _body_line(self, head: bytes) -> None:
        # Postfix mime_state.c MIME_STATE_BODY: boundary lines first.
        if self._stack and len(head) > 2 and head.startswith(b"--"):
            self._match_boundary(head)
        if self._downgrade and self._domain is not _Domain.SEVEN:
            self._rest = _Rest.QP
            self._qp_add(head)
        elif self._body_limit:
            self._rest = _Rest.CHECK
            self._check_add(head)
        else:
            self._rest = _Rest.EMIT
            self._out.append(head)

    def _end_line(self) -> None:
        rest = self._rest
        if rest is _Rest.EMIT:
            self._out.append(b"\n")
        elif rest is _Rest.HOLD:
            # Separators between held lines are added when the next one starts.
            pass
        elif rest is _Rest.QP:
            self._qp_end()
        elif rest is _Rest.CHECK:
            assert self._hook is not None
            piece = bytes(self._piece)
            self._piece.clear()
            self._out.append(self._hook.body(piece, end=True))
        self._rest = None
        self._line += 1

    def _check_add(self, text: bytes) -> None:
        """More of a body line for the hook; full pieces go at once.

        Postfix queue records hold at most ``line_length_limit`` octets, so
        smtp_body_rewrite() sees a long line in pieces of that size (the
        last one may be empty) and each is checked on its own.
        """
        hook = self._hook
        assert hook is not None
        limit = self._body_limit
        piece = self._piece
        piece += text
        if len(piece) >= limit:
            start = 0
            while len(piece) - start >= limit:
                self._out.append(hook.body(bytes(piece[start : start + limit]), end=False))
                start += limit
            del piece[:start]

    # -- headers -------------------------------------------------------------

    def _hold(self, piece: bytes) -> None:
        held = self._held
        assert held is not None
        held += piece
        if len(held) > self._header_size_limit:
            self._overflow(held)

    def _overflow(self, held: bytearray) -> None:
        """A held header outgrew header_size_limit."""
        if self._held_kind is _HELD_CTE and self._downgrade:
            # It may have to be dropped, and part of it would be gone already.
            raise ContentError(
                "message header length exceeds safety limit"
                f" ({self._header_size_limit} octets, header_size_limit):"
                " Content-Transfer-Encoding",
                line=self._held_line,
            )
        # Parse what we have (Postfix parses its truncated copy), then stream
        # the rest of the header unchanged.
        self._held = None
        text = bytes(held)
        if self._held_kind is _HELD_CTE:
            self._content_encoding(text, text.index(b":") + 1)
        elif self._held_kind is _HELD_CT:
            self._content_type(text, text.index(b":") + 1)
        if self._held_hooked:
            assert self._hook is not None
            # The hook sees exactly header_size_limit octets, however the
            # input was split.
            limit = self._header_size_limit
            out, keep = self._hook.header_start(_HEADER_CLASS[self._state], text[:limit])
            self._out.append(out)
            if not keep:
                self._dropping = True
                self._rest = _Rest.DROP
                return
            self._out.append(text[limit:])
        else:
            self._out.append(text)
        self._rest = _Rest.EMIT

    def _close_header(self) -> None:
        """The open header is complete: parse a held Content-* header, output held text."""
        self._header_open = False
        self._dropping = False
        held = self._held
        if held is None:
            return
        self._held = None
        text = bytes(held)
        kind = self._held_kind
        if kind is _HELD_CTE:
            self._content_encoding(text, text.index(b":") + 1)
            if self._downgrade and self._domain is not _Domain.SEVEN:
                # Postfix mime_state_update(): drop it, a new one follows the block.
                return
        elif kind is _HELD_CT:
            self._content_type(text, text.index(b":") + 1)
        if self._held_hooked:
            assert self._hook is not None
            # Postfix mime_state.c HEAD_OUT -> smtp_header_rewrite()
            self._out.append(self._hook.header(_HEADER_CLASS[self._state], text, synthetic=False))
            return
        self._out.append(text)
        self._out.append(b"\n")

    def _content_type(self, text: bytes, pos: int) -> None:
        """Postfix mime_state.c mime_state_content_type()."""
        count, tokens, pos = _header_tokens(text, pos, 3, _RFC2045_TSPECIALS, 0x3B)
        if count <= 0:
            return
        slash = count >= 3 and tokens[1][0] == _special(0x2F)
        if _is_token(tokens[0], b"text"):
            self._ctype = _Ctype.TEXT
            plain = slash and _is_token(tokens[2], b"plain")
            self._stype = _Stype.PLAIN if plain else _Stype.OTHER
        elif _is_token(tokens[0], b"message"):
            self._ctype = _Ctype.MESSAGE
            self._stype = _Stype.OTHER
            if slash and tokens[2][0] == _TOKEN:
                self._stype = _MESSAGE_SUBTYPES.get(tokens[2][1].lower(), _Stype.OTHER)
        elif _is_token(tokens[0], b"multipart"):
            self._ctype = _Ctype.MULTIPART
            if slash and _is_token(tokens[2], b"digest"):
                # RFC 2046 §5.1.5: parts of a digest default to message/rfc822.
                def_ctype, def_stype = _Ctype.MESSAGE, _Stype.RFC822
            else:
                def_ctype, def_stype = _Ctype.TEXT, _Stype.PLAIN
            while True:
                count, tokens, pos = _header_tokens(text, pos, 3, _RFC2045_TSPECIALS, 0x3B)
                if count < 0:
                    break
                if (
                    count >= 3
                    and _is_token(tokens[0], b"boundary")
                    and tokens[1][0] == _special(0x3D)
                ):
                    # Postfix counts nesting from -1 (mime_state_alloc "BC Fix").
                    if len(self._stack) - 1 > self._nesting_limit:
                        if self._downgrade:  # smtp_proto.c: MIME_OPT_REPORT_NESTING
                            raise ContentError(
                                "MIME nesting exceeds safety limit"
                                f" ({self._nesting_limit}, mime_nesting_limit)",
                                line=self._held_line,
                            )
                        continue  # not reported: the boundary is just not tracked
                    boundary = tokens[2][1][: self._boundary_limit]
                    self._stack.append(_Multipart(boundary, def_ctype, def_stype))
        else:
            self._ctype = _Ctype.OTHER

    def _content_encoding(self, text: bytes, pos: int) -> None:
        """Postfix mime_state.c mime_state_content_encoding()."""
        count, tokens, _ = _header_tokens(text, pos, 1, _RFC822_SPECIALS, None)
        if count > 0 and tokens[0][0] == _TOKEN:
            domain = _DOMAINS.get(tokens[0][1].lower())
            if domain is not None:
                self._domain = domain
                if domain is not _Domain.SEVEN:
                    self.saw_8bit = True

    def _emit_cte(self) -> None:
        """At the end of a header block of an 8bit entity: its new encoding."""
        if self._downgrade and self._domain is not _Domain.SEVEN:
            self.converted = True
            composite = (
                self._ctype is _Ctype.MESSAGE and self._stype is not _Stype.GLOBAL
            ) or self._ctype is _Ctype.MULTIPART
            # RFC 2045 §6.4: composite types only take an identity encoding.
            encoding = b"7bit" if composite else b"quoted-printable"
            header = b"Content-Transfer-Encoding: " + encoding
            hook_class = _HEADER_CLASS.get(self._state)
            if hook_class is not None and hook_class in self._hook_classes:
                assert self._hook is not None
                self._out.append(self._hook.header(hook_class, header, synthetic=True))
            else:
                self._out.append(header + b"\n")

    def _end_headers(self, *, empty: bool) -> None:
        """A line that is no header ends the block (Postfix mime_state_update())."""
        self._emit_cte()
        if not empty:
            # Not an empty line: the body starts here, no separator is added.
            self._state = _State.BODY
            return
        if self._ctype is _Ctype.MESSAGE:
            nested = self._stype is _Stype.RFC822 or (
                self._stype is _Stype.GLOBAL
                and (not self._downgrade or self._domain is _Domain.SEVEN)
            )
            if nested:
                self._reset(_State.NESTED, _Ctype.TEXT, _Stype.PLAIN)
            else:
                self._state = _State.BODY
        elif self._ctype is _Ctype.MULTIPART:
            # The preamble: plain 7bit text until the first boundary.
            self._reset(_State.BODY, _Ctype.OTHER, _Stype.OTHER)
        else:
            self._state = _State.BODY

    def _reset(self, state: _State, ctype: _Ctype, stype: _Stype) -> None:
        self._state = state
        self._ctype = ctype
        self._stype = stype
        self._domain = _Domain.SEVEN

    def _match_boundary(self, head: bytes) -> None:
        """Postfix mime_state.c: "--boundary" prefix match, innermost first."""
        stack = self._stack
        for depth in range(len(stack) - 1, -1, -1):
            part = stack[depth]
            size = len(part.boundary)
            if len(head) >= 2 + size and head[2 : 2 + size] == part.boundary:
                del stack[depth + 1 :]
                if head[2 + size : 4 + size] == b"--":
                    # Closing boundary: the epilogue is plain text.
                    stack.pop()
                    self._reset(_State.BODY, _Ctype.OTHER, _Stype.OTHER)
                else:
                    self._reset(_State.MULTIPART, part.def_ctype, part.def_stype)
                return

    # -- quoted-printable ----------------------------------------------------

    def _qp_add(self, piece: bytes) -> None:
        """Encode more of the current line (Postfix mime_state_downgrade())."""
        for offset in range(0, len(piece), _QP_SLICE):
            self._qp_lines(piece[offset : offset + _QP_SLICE] if len(piece) > _QP_SLICE else piece)

    def _qp_lines(self, piece: bytes) -> None:
        enc = self._qp_tail + _qp_escape(piece) if self._qp_tail else _qp_escape(piece)
        size = len(enc)
        out = self._out
        start = 0
        while size - start > _QP_SOFT_AT:
            cut = start + _QP_SOFT_AT
            # Never split "=XX": end at the encoded unit holding the 73rd character.
            if enc[cut - 1] == 0x3D:
                cut += 2
            elif enc[cut - 2] == 0x3D:
                cut += 1
            if cut >= size:
                break
            if self._body_limit:
                assert self._hook is not None
                out.append(self._hook.body(enc[start:cut] + b"=", end=True))
            else:
                out.append(enc[start:cut])
                out.append(b"=\n")  # RFC 2045 §6.7 rule 5 soft line break
            start = cut
        self._qp_tail = enc[start:] if start else enc

    def _qp_end(self) -> None:
        """Hard line end: encode trailing white space (RFC 2045 §6.7 rule 3)."""
        tail = self._qp_tail
        self._qp_tail = b""
        if tail and tail[-1] in (0x20, 0x09):
            tail = tail[:-1] + _QP_CODES[tail[-1]]
        if self._body_limit:
            assert self._hook is not None
            self._out.append(self._hook.body(tail, end=True))
        else:
            self._out.append(tail + b"\n")
