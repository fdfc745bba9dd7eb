"""Streaming message content encoder for SMTP ``DATA`` and ``BDAT``.

Turns message content (bytes, an iterable of chunks, a binary file, an
``email.message.Message``) into what goes on the wire, chunk by chunk, never
holding the whole message. It does what Postfix's smtp(8) does while sending
the message (``smtp_proto.c`` ``smtp_loop()`` at ``SMTP_STATE_DOT``,
``smtp_text_out()``, and ``global/mime_state.c`` for 8bit->7bit conversion),
plus the line-end clean-up that Postfix's cleanup(8) did before the message
was queued, which a library has to do itself:

* line ends: a line ends at ``LF`` and goes out with ``CRLF``; ``CR`` octets
  right before the ``LF`` belong to the line end (sendmail(1)
  ``sendmail_fix_line_endings = always``) and every other ``CR`` becomes a
  space (cleanup(8) ``cleanup_replace_stray_cr_lf = yes``);
* lines longer than ``smtp_line_length_limit`` (998) are cut at the limit and
  continue on a new line that starts with one space (``smtp_text_out()``);
* RFC 5321 §4.5.2 dot-stuffing, a line end for a last line without one, and
  the final ``.`` line (``DATA`` framing only);
* 8bit -> quoted-printable MIME conversion when the server lacks 8BITMIME
  (:mod:`pyfix_smtp.protocol.mime_downgrade`);
* optionally, a :class:`~pyfix_smtp.protocol.mime_downgrade.ContentHook`
  that sees each header and body line on its way out, as Postfix's
  ``smtp_header_rewrite()``/``smtp_body_rewrite()`` do (header and body
  checks, generic address rewriting: :mod:`pyfix_smtp.protocol.header_checks`).

Whatever the input, the ``DATA`` output has exactly one end-of-data sequence
``CRLF . CRLF``, at its very end: every ``CR`` and ``LF`` on the wire is part
of a ``CRLF``, and every line that starts with ``.`` is stuffed (SMTP
smuggling, CVE-2023-51766 class). ``docs/content.md`` has the details.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Literal, Protocol, TypeAlias

from pyfix_smtp.errors import ConfigError, LocalProtocolError
from pyfix_smtp.protocol.mime_downgrade import ContentHook, MimeProcessor

__all__ = [
    "DEFAULT_BDAT_CHUNK_SIZE",
    "DEFAULT_READ_SIZE",
    "END_OF_DATA",
    "MAX_LINE_END_CRS",
    "BdatChunk",
    "Content",
    "ContentConfig",
    "ContentEncoder",
    "EncoderOptions",
    "Framing",
    "SupportsRead",
    "declares_8bit",
    "downgrade_needed",
    "encode_bdat",
    "encode_data",
    "iter_chunks",
]

DEFAULT_READ_SIZE = 64 * 1024
"""Octets read from a file (or sliced from a bytes object) at a time."""

DEFAULT_BDAT_CHUNK_SIZE = 1024 * 1024
"""Target size of one ``BDAT`` chunk."""

END_OF_DATA = b".\r\n"
"""The last line of ``DATA`` content (RFC 5321 §4.1.1.4); it follows a CRLF."""

# A CR followed by something other than LF (CRs at the end of a piece of
# input are held back until the next octet is known).
_BARE_CR = re.compile(rb"\r[^\n]")
# CRs that end a line.
_CR_LF = re.compile(rb"\r+\n")

MAX_LINE_END_CRS = 1024
"""The most CRs before an LF that count as part of the line end."""
_LONG_CR_RUN = b"\r" * (MAX_LINE_END_CRS + 1)
# RFC 5321 §4.5.2: a line that starts with "." gets one more "." in front.
_DOT_LINE = re.compile(rb"\n\.")


class SupportsRead(Protocol):
    """A binary file: ``read(size)`` returns up to ``size`` octets, ``b""`` at EOF."""

    def read(self, size: int, /) -> bytes:
        """Read up to ``size`` octets."""
        ...


Content: TypeAlias = bytes | bytearray | memoryview | Message | SupportsRead | Iterable[bytes]
"""What the encoder accepts as a message: the whole message as bytes, an
``email.message.Message`` (serialised with ``as_bytes()``), a binary file
(read in chunks), or an iterable of bytes chunks split anywhere."""


class ContentConfig(Protocol):
    """The configuration parameters the encoder reads (``pyfix_smtp.config.Config`` has them)."""

    @property
    def smtp_line_length_limit(self) -> int:
        """Postfix ``smtp_line_length_limit`` (``lmtp_line_length_limit`` for LMTP)."""
        ...

    @property
    def disable_mime_output_conversion(self) -> bool:
        """Postfix ``disable_mime_output_conversion``."""
        ...

    @property
    def mime_nesting_limit(self) -> int:
        """Postfix ``mime_nesting_limit``."""
        ...

    @property
    def mime_boundary_length_limit(self) -> int:
        """Postfix ``mime_boundary_length_limit``."""
        ...


def downgrade_needed(
    *,
    server_8bitmime: bool,
    encoding: Literal["7bit", "8bit"] | None,
    disable_mime_output_conversion: bool = False,
) -> bool:
    """Whether the content must go through 8bit->7bit MIME conversion.

    Postfix ``smtp_proto.c`` ``SMTP_MIME_DOWNGRADE()``: conversion is on
    unless disabled, when the server did not announce 8BITMIME and the
    message is not declared 7bit. ``encoding`` is the message's declared body
    type: ``"7bit"``, ``"8bit"`` (``BODY=8BITMIME``, or a
    ``Content-Transfer-Encoding: 8bit/binary`` anywhere, see
    :func:`declares_8bit`), or ``None`` when nothing was declared. Only
    entities whose headers declare 8bit/binary are converted, so an
    undeclared message passes unchanged. The same condition makes Postfix
    leave ``SIZE=`` off the MAIL command.
    """
    return not disable_mime_output_conversion and not server_8bitmime and encoding != "7bit"


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, value, "must be an integer")
    if value < minimum:
        raise ConfigError(name, value, f"must be at least {minimum}")


@dataclass(frozen=True, slots=True)
class EncoderOptions:
    """How :class:`ContentEncoder` transforms the message.

    Attributes:
        line_length_limit: Postfix ``smtp_line_length_limit``: the most octets
            of message text per line on the wire, not counting the CRLF or a
            dot added by dot-stuffing (RFC 5321 §4.5.3.1.6); longer lines are
            cut and continue after CRLF and one space. 0 means no limit. 1 is
            refused: Postfix loops forever with it.
        downgrade_8bit: convert 8bit/binary MIME entities to quoted-printable
            (see :func:`downgrade_needed`).
        mime_nesting_limit: Postfix ``mime_nesting_limit``.
        mime_boundary_length_limit: Postfix ``mime_boundary_length_limit``.
        header_size_limit: Postfix ``header_size_limit``: the most octets of
            one Content-Type or Content-Transfer-Encoding header held while
            converting.
    """

    line_length_limit: int = 998
    downgrade_8bit: bool = False
    mime_nesting_limit: int = 100
    mime_boundary_length_limit: int = 2048
    header_size_limit: int = 102400

    def __post_init__(self) -> None:
        _check_int("smtp_line_length_limit", self.line_length_limit, 0)
        if self.line_length_limit == 1:
            # Postfix smtp_text_out() never advances with a limit of 1.
            raise ConfigError("smtp_line_length_limit", 1, "must be 0 (no limit) or at least 2")
        if not isinstance(self.downgrade_8bit, bool):
            raise ConfigError("downgrade_8bit", self.downgrade_8bit, "must be a bool")
        _check_int("mime_nesting_limit", self.mime_nesting_limit, 1)
        _check_int("mime_boundary_length_limit", self.mime_boundary_length_limit, 1)
        _check_int("header_size_limit", self.header_size_limit, 1)

    @classmethod
    def from_config(
        cls,
        cfg: ContentConfig,
        *,
        server_8bitmime: bool = True,
        encoding: Literal["7bit", "8bit"] | None = None,
    ) -> EncoderOptions:
        """Options from the configuration and what this session needs.

        ``server_8bitmime`` is whether the server announced 8BITMIME and
        ``encoding`` the message's declared body type (see
        :func:`downgrade_needed`).
        """
        return cls(
            line_length_limit=cfg.smtp_line_length_limit,
            downgrade_8bit=downgrade_needed(
                server_8bitmime=server_8bitmime,
                encoding=encoding,
                disable_mime_output_conversion=cfg.disable_mime_output_conversion,
            ),
            mime_nesting_limit=cfg.mime_nesting_limit,
            mime_boundary_length_limit=cfg.mime_boundary_length_limit,
        )


class Framing(enum.Enum):
    """How the content is delimited on the wire."""

    DATA = "DATA"
    """RFC 5321 §4.5.2: dot-stuffing and a final ``.`` line."""
    BDAT = "BDAT"
    """RFC 3030 CHUNKING: octet counts, so neither dot-stuffing nor ``.``."""


class _LineEnds:
    """Stage 1: line ends become LF, and no other CR is left.

    A line ends at LF; CRs right before it belong to the line end and go
    (Postfix sendmail(1) ``sendmail_fix_line_endings = always``, and smtpd for
    clients in ``smtpd_forbid_bare_newline_exclusions``); every other CR
    becomes one space (cleanup(8) ``cleanup_replace_stray_cr_lf = yes``). CRs
    at the end of the input end the last line. Of a run of CRs, at most
    ``MAX_LINE_END_CRS`` can be part of a line end (earlier ones are stray),
    so a run split across pieces is held back in bounded memory.
    """

    __slots__ = ("_crs",)

    def __init__(self) -> None:
        self._crs = 0  # CRs held back from the end of the previous piece

    def feed(self, data: bytes) -> bytes:
        prefix = b""
        if self._crs:
            rest = data.lstrip(b"\r")
            held = self._crs + len(data) - len(rest)
            self._crs = 0
            if not rest:
                # Still inside the run: keep the last ones, the rest are stray.
                self._crs = min(held, MAX_LINE_END_CRS)
                return b" " * (held - self._crs)
            data = rest
            prefix = b" " * (max(0, held - MAX_LINE_END_CRS) if rest[0] == 0x0A else held)
        if b"\r" in data:
            if data[-1] == 0x0D:
                stripped = data.rstrip(b"\r")
                run = len(data) - len(stripped)
                self._crs = min(run, MAX_LINE_END_CRS)
                data = stripped + b" " * (run - self._crs) if run > self._crs else stripped
            if _BARE_CR.search(data) is None:
                data = data.translate(None, b"\r")  # every CR was part of a CRLF
            else:
                # Postfix cleanup_message.c cleanup_message_headerbody(): each
                # stray CR becomes one space.
                if _LONG_CR_RUN in data:
                    data = _CR_LF.sub(_line_end_of_long_run, data)
                else:
                    data = _CR_LF.sub(b"\n", data)
                data = data.replace(b"\r", b" ")
        return prefix + data if prefix else data

    def finish(self) -> bytes:
        if self._crs:
            self._crs = 0
            return b"\n"
        return b""


def _line_end_of_long_run(match: re.Match[bytes]) -> bytes:
    stray = len(match.group()) - 1 - MAX_LINE_END_CRS
    return b" " * stray + b"\n" if stray > 0 else b"\n"


class ContentEncoder:
    """Incremental content encoder: ``feed(chunk) -> bytes``, ``finish() -> bytes``.

    Feed the message in pieces split anywhere (inside a CRLF, inside a
    ``CRLF.CRLF``); each call returns the wire octets that are ready.
    ``finish()`` returns the rest, including the line end of an unterminated
    last line and, with ``Framing.DATA``, the final ``.`` line. The
    concatenated output does not depend on where the input was split.

    With a *hook* (a :class:`~pyfix_smtp.protocol.mime_downgrade.ContentHook`,
    such as :meth:`pyfix_smtp.protocol.header_checks.ContentChecks.start`),
    the MIME structure is followed and the hook may change headers and body
    lines before they are cut, dot-stuffed and given CRLF line ends; without
    one the encoder's work and speed are unchanged.

    Raises:
        ContentError: from ``feed``/``finish`` when the MIME conversion has to
            give up, or the hook does (then the transaction must be aborted
            without ending the DATA phase, as Postfix does); the encoder is
            unusable afterwards.
        LocalProtocolError: on use after ``finish()`` or after an error.
    """

    __slots__ = (
        "_dot",
        "_failed",
        "_finished",
        "_limit",
        "_line_ends",
        "_mime",
        "_used",
        "folded",
        "octets_in",
        "octets_out",
    )

    def __init__(
        self,
        options: EncoderOptions | None = None,
        *,
        framing: Framing = Framing.DATA,
        hook: ContentHook | None = None,
    ) -> None:
        if options is None:
            options = EncoderOptions()
        self._limit = options.line_length_limit
        self._dot = framing is Framing.DATA
        self._line_ends = _LineEnds()
        self._mime = (
            MimeProcessor(
                downgrade=options.downgrade_8bit,
                nesting_limit=options.mime_nesting_limit,
                boundary_length_limit=options.mime_boundary_length_limit,
                header_size_limit=options.header_size_limit,
                hook=hook,
            )
            if options.downgrade_8bit or hook is not None
            else None
        )
        # Octets of text on the current output line, not counting a stuffed
        # dot (Postfix smtp_text_out() space_left = limit - used); 0 = line start.
        self._used = 0
        self._finished = False
        self._failed = False
        self.folded = False
        """True once a line was cut at ``line_length_limit`` (Postfix logs this once)."""
        self.octets_in = 0
        """Octets of content fed so far."""
        self.octets_out = 0
        """Octets returned so far."""

    @property
    def downgraded(self) -> bool:
        """True once an 8bit MIME entity was converted."""
        return self._mime is not None and self._mime.converted

    def feed(self, data: bytes | bytearray | memoryview) -> bytes:
        """Take the next piece of content; return the wire octets now ready."""
        self._check_usable()
        if type(data) is not bytes:
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"content chunks must be bytes-like, not {type(data).__name__}")
            data = bytes(data)
        if not data:
            return b""
        self.octets_in += len(data)
        try:
            text = self._line_ends.feed(data)
            if self._mime is not None:
                text = self._mime.feed(text)
            out = self._wire(text) if text else b""
        except BaseException:
            self._failed = True
            raise
        self.octets_out += len(out)
        return out

    def finish(self, *, end_of_data: bool = True) -> bytes:
        """End of content: the remaining octets, and (``DATA``) the final ``.`` line.

        With ``end_of_data=False`` the ``.`` line is left out, so a driver can
        send :data:`END_OF_DATA` on its own (Postfix ``smtp_pix_workarounds``
        ``delay_dotcrlf``).
        """
        self._check_usable()
        self._finished = True
        try:
            text = self._line_ends.finish()
            if self._mime is not None:
                text = self._mime.feed(text) + self._mime.finish() if text else self._mime.finish()
            out = self._wire(text) if text else b""
        except BaseException:
            self._failed = True
            raise
        if self._used:
            out += b"\r\n"  # RFC 5321 §4.1.1.4: the last line ends with CRLF too
            self._used = 0
        if self._dot and end_of_data:
            out += END_OF_DATA
        self.octets_out += len(out)
        return out

    def _check_usable(self) -> None:
        if self._failed:
            raise LocalProtocolError("ContentEncoder used after an error")
        if self._finished:
            raise LocalProtocolError("ContentEncoder used after finish()")

    def _wire(self, text: bytes) -> bytes:
        """Stage 3: cut long lines, dot-stuff, LF -> CRLF. ``text`` is not empty."""
        used = self._used
        if self._limit:
            text = self._fold(text, used)
        last = text.rfind(b"\n")
        self._used = used + len(text) if last < 0 else len(text) - last - 1
        if self._dot:
            if used == 0 and text[0] == 0x2E:
                text = b"." + text  # a line starting with "." begins this piece
            text = _DOT_LINE.sub(b"\n..", text)
        return text.replace(b"\n", b"\r\n")

    def _fold(self, text: bytes, used: int) -> bytes:
        """Cut lines longer than the limit (Postfix smtp_proto.c smtp_text_out()).

        A line is cut after exactly ``limit`` octets and continues on a new
        line that starts with one space, which counts towards that line's
        limit; a line of exactly ``limit`` octets stays whole. Cuts are made
        only when more octets of the line follow, so they do not depend on
        where the input was split. Lines that fit are skipped ``limit``
        octets at a time with ``rfind``.
        """
        limit = self._limit
        n = len(text)
        parts: list[bytes] = []
        copied = 0  # text[:copied] is in parts already
        start = 0  # start of the current line within text
        room = limit - used  # octets the current line may still take
        while True:
            end = text.find(b"\n", start, start + room + 1)
            if end < 0:
                if n - start <= room:
                    break  # the rest fits
                end = text.find(b"\n", start + room)
                if end < 0:
                    end = n
                parts.append(text[copied:start])
                self._cut(parts, text, start, end, room)
                self.folded = True
                copied = end
                if end == n:
                    break
            # Skip whole lines that fit: each window of limit+1 octets after
            # a line start must hold an LF.
            start = end + 1
            room = limit
            while n - start > limit:
                last = text.rfind(b"\n", start, start + limit + 1)
                if last < 0:
                    break
                start = last + 1
            else:
                break
        if not parts:
            return text
        parts.append(text[copied:])
        return b"".join(parts)

    def _cut(self, parts: list[bytes], text: bytes, start: int, end: int, room: int) -> None:
        """Append text[start:end] (a line too long by ``room``) cut into pieces."""
        step = self._limit - 1  # a continuation line starts with its space
        parts.append(text[start : start + room])
        pos = start + room
        while end - pos > step:
            parts.append(b"\n ")
            parts.append(text[pos : pos + step])
            pos += step
        parts.append(b"\n ")
        parts.append(text[pos:end])


def iter_chunks(content: Content, read_size: int = DEFAULT_READ_SIZE) -> Iterator[bytes]:
    """The message as a stream of bytes chunks, whatever form it came in.

    Bytes-like content is sliced into ``read_size`` pieces, a file is read
    ``read_size`` octets at a time, an iterable is passed through (empty
    chunks skipped) and a ``Message`` is serialised with ``as_bytes()``.

    Raises:
        TypeError: for text (``str``) content or chunks that are not bytes-like.
    """
    if read_size < 1:
        raise ValueError(f"read_size must be positive, got {read_size}")
    if isinstance(content, str):
        raise TypeError("message content must be bytes, not str (encode it first)")
    if isinstance(content, Message):
        content = content.as_bytes()
    if isinstance(content, bytes | bytearray | memoryview):
        view = memoryview(content).cast("B") if not isinstance(content, bytes) else content
        for offset in range(0, len(view), read_size):
            yield bytes(view[offset : offset + read_size])
        return
    read = getattr(content, "read", None)
    if callable(read):
        while True:
            chunk = read(read_size)
            if not chunk:
                return
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError(
                    f"file content must be opened in binary mode (read() gave "
                    f"{type(chunk).__name__})"
                )
            yield bytes(chunk)
    if not isinstance(content, Iterable):
        raise TypeError(f"unsupported message content type {type(content).__name__}")
    for index, chunk in enumerate(content):
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(f"content chunk {index} must be bytes-like, not {type(chunk).__name__}")
        if chunk:
            yield bytes(chunk)


def encode_data(
    content: Content,
    options: EncoderOptions | None = None,
    *,
    read_size: int = DEFAULT_READ_SIZE,
    hook: ContentHook | None = None,
) -> Iterator[bytes]:
    """Wire chunks for the ``DATA`` phase, ending with ``.`` CRLF.

    Send them after the server's 354 reply. Memory use is one input chunk
    and its output, however large the message. *hook* is passed to
    :class:`ContentEncoder`.

    Raises:
        ContentError: when the MIME conversion or the hook gives up part-way;
            drop the connection then, do not send more (Postfix
            ``smtp_mime_fail()``).
    """
    encoder = ContentEncoder(options, framing=Framing.DATA, hook=hook)
    for chunk in iter_chunks(content, read_size):
        out = encoder.feed(chunk)
        if out:
            yield out
    yield encoder.finish()


@dataclass(frozen=True, slots=True)
class BdatChunk:
    """One RFC 3030 ``BDAT`` chunk: its octets and whether it is the last one."""

    data: bytes
    last: bool

    @property
    def command(self) -> bytes:
        """The ``BDAT <size> [LAST]`` command line that precedes ``data`` (RFC 3030 §2)."""
        return b"BDAT %d%s\r\n" % (len(self.data), b" LAST" if self.last else b"")


def encode_bdat(
    content: Content,
    options: EncoderOptions | None = None,
    *,
    chunk_size: int = DEFAULT_BDAT_CHUNK_SIZE,
    read_size: int = DEFAULT_READ_SIZE,
    hook: ContentHook | None = None,
) -> Iterator[BdatChunk]:
    """Content for ``BDAT``: the same clean-up as ``DATA`` without dot-stuffing or ``.``.

    Yields chunks of at least ``chunk_size`` octets (the last may be
    shorter, and is empty for an empty message: ``BDAT 0 LAST``); exactly
    one has ``last=True``. Line ends, stray CRs, long lines and MIME
    conversion (and the *hook*) are handled as for DATA, so the server sees
    the same message.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    encoder = ContentEncoder(options, framing=Framing.BDAT, hook=hook)
    pending: bytes | None = None
    buffered: list[bytes] = []
    size = 0
    for chunk in iter_chunks(content, read_size):
        out = encoder.feed(chunk)
        if out:
            buffered.append(out)
            size += len(out)
        if size >= chunk_size:
            if pending is not None:
                yield BdatChunk(pending, last=False)
            pending = b"".join(buffered)
            buffered = []
            size = 0
    buffered.append(encoder.finish())
    tail = b"".join(buffered)
    if pending is None:
        yield BdatChunk(tail, last=True)
    elif tail:
        yield BdatChunk(pending, last=False)
        yield BdatChunk(tail, last=True)
    else:
        yield BdatChunk(pending, last=True)


def declares_8bit(content: Content, *, read_size: int = DEFAULT_READ_SIZE) -> bool:
    """Whether any header block declares ``Content-Transfer-Encoding: 8bit`` or ``binary``.

    Looks at the primary headers, the headers of every multipart part and of
    attached messages, as Postfix cleanup(8) does when it decides a message
    is 8bit (``detect_8bit_encoding_header``); use it to choose
    ``BODY=8BITMIME`` and the ``encoding`` of :func:`downgrade_needed`. It
    reads the content (stopping at the first such header), so pass a file
    you can rewind or bytes. 8bit octets without such a header do not count.
    """
    line_ends = _LineEnds()
    scanner = MimeProcessor(downgrade=False)
    for chunk in iter_chunks(content, read_size):
        text = line_ends.feed(chunk)
        if text:
            scanner.feed(text)
        if scanner.saw_8bit:
            return True
    text = line_ends.finish()
    if text:
        scanner.feed(text)
    scanner.finish()
    return scanner.saw_8bit
