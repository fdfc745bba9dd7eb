"""Message content as users give it -> the core's re-readable ContentSource.

A delivery may send the message more than once (the first server fails
after DATA started, the next one gets it again), so the core reads content
through a :class:`~pyfix_smtp.delivery.request.ContentSource` that can start
over. :func:`prepare_content` makes one from:

* ``bytes`` (used as is), ``bytearray``/``memoryview`` (copied once);
* an ``email.message.Message``: serialised once with CRLF line ends
  (``email.policy.SMTP``, or ``SMTPUTF8`` when the envelope asks for
  SMTPUTF8: then UTF-8 headers go out as they are instead of RFC 2047
  encoded words), keeping the message's other policy settings;
* a seekable binary file: read from its current position on every attempt,
  never loaded whole;
* a non-seekable binary file (a pipe) or an iterable of bytes chunks: copied
  once into a ``tempfile.SpooledTemporaryFile`` (memory up to
  :data:`SPOOL_MEMORY` octets, then a temporary file), which the caller
  closes after the delivery (the second value of :func:`prepare_content`).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Iterator
from email.message import Message
from typing import IO

from pyfix_smtp.delivery.request import ContentSource
from pyfix_smtp.protocol.content import DEFAULT_READ_SIZE

__all__ = ["SPOOL_MEMORY", "prepare_content", "serialise_message", "spool"]

SPOOL_MEMORY = 1 << 20
"""Octets a spooled message keeps in memory before it moves to a temporary file."""


def serialise_message(message: Message, *, smtputf8: bool = False) -> bytes:
    """*message* as octets with CRLF line ends, for SMTP.

    An :class:`email.message.EmailMessage` (``EmailPolicy``) is written with
    its own policy cloned to ``linesep="\\r\\n"`` and ``utf8=smtputf8``
    (``email.policy.SMTP`` / ``SMTPUTF8`` for the default policy); a
    ``compat32`` message keeps compat32 with CRLF line ends.
    """
    from email.policy import EmailPolicy, compat32

    policy = message.policy
    if isinstance(policy, EmailPolicy):
        return message.as_bytes(policy=policy.clone(linesep="\r\n", utf8=smtputf8))
    return message.as_bytes(policy=compat32.clone(linesep="\r\n"))


def _chunks(content: object, read_size: int) -> Iterator[bytes | bytearray | memoryview]:
    read = getattr(content, "read", None)
    if callable(read):
        while True:
            chunk = read(read_size)
            if not chunk:
                return
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError(
                    f"content file must be opened in binary mode (read() gave "
                    f"{type(chunk).__name__})"
                )
            yield chunk
    if not isinstance(content, Iterable):
        raise TypeError(
            f"message content must be bytes, an email Message, a binary file or an "
            f"iterable of bytes chunks, not {type(content).__name__}"
        )
    for index, chunk in enumerate(content):
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(f"content chunk {index} must be bytes-like, not {type(chunk).__name__}")
        yield chunk


def spool(
    content: Iterable[bytes] | IO[bytes],
    *,
    max_memory: int = SPOOL_MEMORY,
    read_size: int = DEFAULT_READ_SIZE,
) -> tuple[ContentSource, IO[bytes]]:
    """Copy one-shot content into a spooled temporary file.

    Returns the re-readable source and the file; close the file when the
    delivery is over (until then the source reads from it).

    Raises:
        TypeError: a chunk is not bytes-like (str, say), naming its index.
    """
    file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=max_memory)  # noqa: SIM115
    try:
        size = 0
        for chunk in _chunks(content, read_size):
            size += file.write(chunk)
    except BaseException:
        file.close()
        raise

    def opener() -> Iterator[bytes]:
        file.seek(0)
        read = file.read
        while True:
            chunk = read(read_size)
            if not chunk:
                return
            yield chunk

    return ContentSource(opener, size=size), file


def _seekable(content: object) -> bool:
    seekable = getattr(content, "seekable", None)
    if not callable(seekable) or not callable(getattr(content, "read", None)):
        return False
    try:
        return bool(seekable())
    except (OSError, ValueError):  # closed or detached
        return False


def prepare_content(
    content: object, *, smtputf8: bool = False, max_memory: int = SPOOL_MEMORY
) -> tuple[ContentSource, IO[bytes] | None]:
    """A re-readable source for *content*, and a spool file to close afterwards (or None).

    Raises:
        TypeError: ``str`` content (encode it first), a text-mode file, or
            something that is not message content.
    """
    if isinstance(content, ContentSource):
        return content, None
    if isinstance(content, str):
        raise TypeError("message content must be bytes, not str (encode it first)")
    if isinstance(content, bytes | bytearray | memoryview):
        return ContentSource.from_bytes(content), None
    if isinstance(content, Message):
        return ContentSource.from_bytes(serialise_message(content, smtputf8=smtputf8)), None
    if isinstance(content, io.TextIOBase):
        raise TypeError("content file must be opened in binary mode ('rb')")
    if _seekable(content):
        return ContentSource.from_file(content), None  # type: ignore[arg-type]
    return spool(content, max_memory=max_memory)  # type: ignore[arg-type]
