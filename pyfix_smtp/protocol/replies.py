"""Incremental SMTP/LMTP reply parser with Postfix's tolerance rules.

:class:`ReplyParser` takes bytes as they arrive (split anywhere, even inside
CRLF) and hands out complete :class:`pyfix_smtp.status.Reply` values. It
accepts exactly what Postfix's ``smtp_chat_resp()`` (smtp_chat.c) accepts:

* Lines end in CRLF or a bare LF; every trailing CR is stripped
  (smtp_stream.c ``smtp_get_noexcept()``).
* A line keeps at most ``line_length_limit`` bytes (Postfix
  ``line_length_limit``, 2048); the rest of the line is skipped. If a line
  runs on for another ``line_length_limit`` bytes, input is disabled, as
  Postfix does (``"disabling input"``): the truncated line is used and then
  the server is treated as having closed the connection.
* Non-printable characters become ``?``; valid UTF-8 is kept
  (``printable()`` with ``smtputf8_enable = yes``). A NUL ends the line, as
  it ends a C string.
* ``ddd-`` continues a reply, ``ddd``/``ddd SP`` ends it. Any other line
  (no code, four digits, ``250x``) is garbage: it is kept in the text, marks
  the reply :attr:`~pyfix_smtp.status.Reply.malformed` (Postfix: protocol
  error, do not cache the session) and reading goes on.
* The last line decides the code. Its enhanced status code counts only when
  RFC 3463 valid and of the same class as the reply; otherwise the status
  is ``<class>.0.0``; a code not starting with 2, 4 or 5 gets ``5.5.0``.
* Text is appended while the kept text is shorter than
  ``line_length_limit``, so a reply keeps about 4 KB however long it is;
  the parser still reads to its end.

Memory stays bounded: besides input handed over but not yet parsed, the
parser holds at most one line prefix and the kept text of one reply.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator

from pyfix_smtp.status import Reply

__all__ = ["DEFAULT_LINE_LENGTH_LIMIT", "ReplyParser", "enhanced_status_length", "printable"]

#: Postfix ``line_length_limit`` default: the longest reply line kept.
DEFAULT_LINE_LENGTH_LIMIT = 2048

_NON_PRINTABLE = re.compile(rb"[^\x20-\x7e]")
# RFC 3463 status at the start of a reply text, as enhanced_status_length() checks it.
_ENHANCED_START = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}(?=\s|$)")
#: Replies already parsed, by raw octets (CR included) and UTF-8 flag:
#: servers repeat the same few replies ("250 2.1.0 Ok", their greeting and
#: EHLO reply), and a Reply is immutable, so one instance serves every
#: connection. Only replies that parsed cleanly (no warning, not malformed,
#: nothing truncated) are kept. Bounded.
_MEMO: dict[tuple[bytes, bool], Reply] = {}
_MEMO_SIZE = 256
# A complete multi-line reply at the start of the buffer: "ddd-" lines, then "ddd" / "ddd ...".
_MULTILINE = re.compile(rb"(?:[0-9]{3}-[^\n]*\n)+[0-9]{3}(?:[ \r][^\n]*)?\n")
# ASCII control characters and DEL -> "?" (printable.c: ISPRINT()).
_CONTROL_TO_QMARK = dict.fromkeys((*range(0x20), 0x7F), "?")
_DIGITS = frozenset("0123456789")


def _qmark_errors(exc: UnicodeError) -> tuple[str, int]:
    # printable.c: replace the first byte of a bad sequence, resynchronise
    # at the next byte.
    if not isinstance(exc, UnicodeDecodeError):  # pragma: no cover - decode only
        raise exc
    return "?", exc.start + 1


_QMARK = "pyfix-smtp-qmark"
codecs.register_error(_QMARK, _qmark_errors)


def printable(raw: bytes, *, utf8: bool = True) -> str:
    """Return *raw* as text with every non-printable character replaced by ``?``.

    Postfix ``printable()`` (util/printable.c): printable ASCII is kept; with
    *utf8* (``smtputf8_enable = yes``) well-formed UTF-8 is kept too, and
    each byte of a malformed sequence becomes ``?``.
    """
    if _NON_PRINTABLE.search(raw) is None:
        return raw.decode("ascii")
    if utf8:
        text = raw.decode("utf-8", _QMARK)
    else:
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in raw)
    return text.translate(_CONTROL_TO_QMARK)


def enhanced_status_length(text: str) -> int:
    """Length of the RFC 3463 status code at the start of *text*, or 0.

    Postfix ``dsn_valid()`` (global/dsn_util.c): class 2, 4 or 5, a dot,
    1-3 digits, a dot, 1-3 digits, then the end of the text or white space.
    """
    found = _ENHANCED_START.match(text)
    return found.end() if found is not None else 0


def _reply_status(last: str) -> str:
    # Postfix smtp_chat.c smtp_chat_resp(): "SAFETY! protocol error" default,
    # then the last line's RFC 3463 code when it matches the reply class.
    first = last[0]
    if first not in "245":
        return "5.5.0"
    text = last[4:].lstrip(" ")
    size = enhanced_status_length(text)
    if size and text[0] == first:
        return text[:size]
    return first + ".0.0"


class ReplyParser:
    """Turn a byte stream from an SMTP/LMTP server into :class:`Reply` values.

    Feed bytes with :meth:`feed` (and :meth:`feed_eof` when the server
    closes); call :meth:`next_reply` until it returns ``None``. Warnings
    (over-long lines, garbage lines, disabled input) are collected in
    :attr:`warnings` for the caller to drain.

    Args:
        line_length_limit: Postfix ``line_length_limit``; longest line kept
            and threshold for the kept text of a multi-line reply.
        utf8: keep well-formed UTF-8 in reply text (``smtputf8_enable``).
        reply_filter: ``smtp_reply_filter``: called with each reply line
            (after clean-up); a string result replaces the line before it is
            parsed (Postfix smtp_chat_resp(), for working around broken
            servers).
    """

    __slots__ = (
        "_buf",
        "_closed",
        "_input_disabled",
        "_kept",
        "_lines",
        "_malformed",
        "_partial",
        "_skipped",
        "_text_skipped",
        "limit",
        "reply_filter",
        "utf8",
        "warnings",
    )

    def __init__(
        self,
        *,
        line_length_limit: int = DEFAULT_LINE_LENGTH_LIMIT,
        utf8: bool = True,
        reply_filter: Callable[[str], str | None] | None = None,
    ) -> None:
        if line_length_limit < 1:
            raise ValueError(f"line_length_limit must be positive: {line_length_limit}")
        self.limit = line_length_limit
        self.utf8 = utf8
        self.reply_filter = reply_filter
        #: Human-readable warnings, in Postfix's words, not yet drained.
        self.warnings: list[str] = []
        self._buf = bytearray()
        self._closed = False  # the server closed (or input was disabled)
        self._input_disabled = False
        self._partial: bytes | None = None  # kept prefix of an over-long line
        self._skipped = 0  # bytes skipped of the over-long line so far
        self._lines: list[str] = []  # kept wire lines of the current reply
        self._kept = 0  # Postfix LEN(rdata.str_buf)
        self._text_skipped = False
        self._malformed = False

    # -- input ---------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Append bytes received from the server (ignored after EOF)."""
        if data and not self._closed:
            self._buf += data

    def feed_eof(self) -> None:
        """Record that the server closed the connection."""
        self._closed = True

    @property
    def closed(self) -> bool:
        """True once the server closed the connection (or input was disabled)."""
        return self._closed

    @property
    def at_eof(self) -> bool:
        """True when no further reply can ever complete (closed, drained)."""
        return self._closed and not self._has_complete_line()

    @property
    def buffered(self) -> int:
        """Bytes received but not yet parsed (plus a kept line prefix)."""
        return len(self._buf) + (len(self._partial) if self._partial is not None else 0)

    @property
    def in_reply(self) -> bool:
        """True when part of a reply (a line or a ``ddd-`` line) has been read."""
        return bool(self._lines) or self._partial is not None or bool(self._buf)

    @property
    def input_disabled(self) -> bool:
        """True after a line longer than twice the limit disabled input."""
        return self._input_disabled

    def discard_buffered(self) -> int:
        """Drop every byte not yet parsed; return how many were dropped.

        Used after a ``220`` reply to STARTTLS: plaintext that arrived
        after it must never be interpreted (CVE-2011-0411).
        """
        count = self.buffered
        self._buf.clear()
        self._partial = None
        self._skipped = 0
        return count

    def _has_complete_line(self) -> bool:
        return b"\n" in self._buf

    # -- parsing ---------------------------------------------------------

    def next_reply(self) -> Reply | None:
        """Return the next complete reply, or ``None`` if more input is needed.

        After :meth:`feed_eof`, ``None`` with :attr:`at_eof` true means the
        connection ended before a complete reply (Postfix: "lost
        connection"); a partial line at EOF is never used.
        """
        buf = self._buf
        if self._partial is None and not self._lines:
            # Fast path: the first line of a reply, complete and short
            # (what _next_line() does for it), often a reply seen before.
            end = buf.find(b"\n")
            if end < 0 and len(buf) <= self.limit:
                return None  # no complete line yet (what _next_line() says)
            if 0 <= end <= self.limit:
                if end >= 4 and buf[3] == 0x2D:  # "ddd-": a multi-line reply
                    found = _MULTILINE.match(buf)
                    if found is not None and found.end() <= self.limit:
                        return self._whole(bytes(buf[: found.end()]))
                    return self._slow()
                raw = bytes(buf[:end])
                key = (raw, self.utf8)
                reply = _MEMO.get(key)
                del buf[: end + 1]
                if reply is not None and self.reply_filter is None:
                    return reply
                warnings = len(self.warnings)
                reply = self._add_line(raw.rstrip(b"\r") if raw.endswith(b"\r") else raw)
                if reply is not None:
                    if (
                        len(self.warnings) == warnings
                        and self.reply_filter is None
                        and not reply.malformed
                    ):
                        if len(_MEMO) >= _MEMO_SIZE:
                            _MEMO.clear()
                        _MEMO[key] = reply
                    return reply
        return self._slow()

    def _whole(self, raw: bytes) -> Reply | None:
        """A complete reply of at most ``limit`` octets at the start of the buffer."""
        key = (raw, self.utf8)
        reply = _MEMO.get(key)
        if reply is not None and self.reply_filter is None:
            del self._buf[: len(raw)]
            return reply
        warnings = len(self.warnings)
        reply = self._slow()
        if (
            reply is not None
            and len(self.warnings) == warnings
            and self.reply_filter is None
            and not reply.malformed
        ):
            if len(_MEMO) >= _MEMO_SIZE:
                _MEMO.clear()
            _MEMO[key] = reply
        return reply

    def _slow(self) -> Reply | None:
        while True:
            line = self._next_line()
            if line is None:
                return None
            reply = self._add_line(line)
            if reply is not None:
                return reply

    def __iter__(self) -> Iterator[Reply]:
        """Iterate over the complete replies available now."""
        while (reply := self.next_reply()) is not None:
            yield reply

    def _next_line(self) -> bytes | None:
        buf = self._buf
        limit = self.limit
        if self._partial is not None:
            # Skipping the rest of an over-long line (SMTP_GET_FLAG_SKIP).
            end = buf.find(b"\n")
            run = len(buf) if end < 0 else end
            if self._skipped + run >= limit:
                return self._disable_input()
            if end < 0:
                self._skipped += run
                buf.clear()
                return None
            del buf[: end + 1]
            line = self._partial
            self._partial = None
            self._skipped = 0
            return line
        end = buf.find(b"\n")
        if end < 0:
            if len(buf) > limit:
                # The line will not fit: keep its first `limit` bytes.
                self._partial = bytes(buf[:limit])
                self._skipped = 0
                rest = len(buf) - limit
                buf.clear()
                self._warn_long(self._partial)
                if rest >= limit:
                    return self._disable_input()
                self._skipped = rest
            return None
        if end > limit:
            line = bytes(buf[:limit])
            self._warn_long(line)
            if end - limit >= limit:
                self._partial = line
                return self._disable_input()
            del buf[: end + 1]
            return line
        line = bytes(buf[:end])
        del buf[: end + 1]
        # smtp_stream.c: strip the CR of CRLF, and any further trailing CRs.
        return line.rstrip(b"\r") if line.endswith(b"\r") else line

    def _warn_long(self, line: bytes) -> None:
        self.warnings.append(
            f"response longer than {self.limit}: {printable(line[:30], utf8=self.utf8)}..."
        )

    def _disable_input(self) -> bytes:
        # smtp_stream.c: after another `limit` bytes without LF Postfix
        # purges its buffer and shuts down reading; the truncated line is
        # still processed, then the next read sees end-of-file.
        assert self._partial is not None
        line = self._partial
        self._partial = None
        self._skipped = 0
        self._buf.clear()
        self._closed = True
        self._input_disabled = True
        self.warnings.append("disabling input: reply line far longer than the limit")
        return line

    def _add_line(self, raw: bytes) -> Reply | None:
        nul = raw.find(b"\0")
        if nul >= 0:
            raw = raw[:nul]  # C string semantics: text after NUL is lost
        text = printable(raw, utf8=self.utf8)
        size = len(raw)
        # Postfix: append while the kept text is shorter than the limit.
        append = self._kept < self.limit
        if self.reply_filter is not None:
            replacement = self.reply_filter(text)
            if replacement is not None:
                self.warnings.append(f'replacing server reply "{text}" with "{replacement}"')
                text = printable(replacement.encode("utf-8", "replace"), utf8=self.utf8)
                size = len(text.encode())
        if append:
            if self._lines:
                self._kept += 1
            self._lines.append(text)
            self._kept += size
        elif not self._text_skipped:
            self._text_skipped = True
            self.warnings.append(
                f"multi-line response longer than {self.limit}: {self._lines[0][:30]}..."
            )
        # Exactly three leading digits, then "-", " " or the end of line.
        if len(text) >= 3 and text[0] in _DIGITS and text[1] in _DIGITS and text[2] in _DIGITS:
            sep = text[3:4]
            if sep == "-":
                return None
            if sep in ("", " "):
                return self._finish(text)
        self._malformed = True
        self.warnings.append(f"non-SMTP response: {text[:100]}")
        return None

    def _finish(self, last: str) -> Reply:
        wire = tuple(self._lines)
        if len(wire) == 1 and wire[0] is last:
            lines: tuple[str, ...] = (last[4:],)  # "ddd" or "ddd text"
        else:
            lines = tuple([_strip_code(line) for line in wire])
        reply = Reply(int(last[:3]), _reply_status(last), lines, wire, self._malformed)
        self._lines = []
        self._kept = 0
        self._text_skipped = False
        self._malformed = False
        return reply


def _strip_code(line: str) -> str:
    # The text after "ddd-" / "ddd " (garbage lines are kept whole).
    if (
        len(line) >= 3
        and line[0] in _DIGITS
        and line[1] in _DIGITS
        and line[2] in _DIGITS
        and line[3:4] in ("", " ", "-")
    ):
        return line[4:]
    return line
