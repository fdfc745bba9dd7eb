"""User content -> re-readable ContentSource, and the same bytes arriving at smtp-sink.

The unit part checks each input form (bytes, bytearray, memoryview, email
messages under both policies, seekable files, pipes, iterators) reads the
same from the start every time. The end-to-end part sends each form twice
over one connection (a second server attempt re-reads the content) through
both drivers into ``smtp-sink -d`` and compares the dumped message.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import time
from collections.abc import Callable, Generator, Iterator
from email.message import EmailMessage, Message
from email.policy import compat32
from pathlib import Path

import pytest

from pyfix_smtp.delivery.effects import (
    Close,
    Connect,
    Connected,
    Effect,
    EffectResult,
    Endpoint,
    Receive,
    Send,
)
from pyfix_smtp.delivery.request import ContentSource
from pyfix_smtp.protocol.content import encode_data
from pyfix_smtp.transport.aio import AsyncDriver, Connection, close_connection
from pyfix_smtp.transport.cache import ConnectionCache
from pyfix_smtp.transport.content import prepare_content, serialise_message, spool
from pyfix_smtp.transport.sync import SyncDriver, close_socket
from tests.peers.sink import Sink, SinkFactory

CRLF_MESSAGE = b"Subject: test\r\nFrom: a@example.org\r\n\r\nfirst\r\n.dot line\r\nlast\r\n"


def read_all(source: ContentSource) -> bytes:
    return b"".join(source.open())


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


# -- input forms ---------------------------------------------------------------------


def test_bytes_used_as_is() -> None:
    source, spooled = prepare_content(CRLF_MESSAGE)
    assert spooled is None
    assert source.data is CRLF_MESSAGE
    assert source.size == len(CRLF_MESSAGE)
    assert read_all(source) == read_all(source) == CRLF_MESSAGE


@pytest.mark.parametrize("wrap", [bytearray, memoryview])
def test_mutable_buffers_are_copied(wrap: Callable[[bytes], bytearray | memoryview]) -> None:
    buffer = bytearray(CRLF_MESSAGE)
    source, _ = prepare_content(wrap(buffer) if wrap is memoryview else buffer)
    buffer[:7] = b"XXXXXXX"  # the caller reuses its buffer
    assert read_all(source) == CRLF_MESSAGE


def email_message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["To"] = "b@example.net"
    msg["Subject"] = "Grüße"
    msg.set_content("line one\n.starts with a dot\n")
    return msg


def test_email_message_ascii_headers_without_smtputf8() -> None:
    data = serialise_message(email_message(), smtputf8=False)
    assert b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF everywhere (email.policy.SMTP)
    assert data.isascii()


def test_email_message_utf8_headers_with_smtputf8() -> None:
    data = serialise_message(email_message(), smtputf8=True)
    assert "Subject: Grüße\r\n".encode() in data  # email.policy.SMTPUTF8


def test_compat32_message_gets_crlf() -> None:
    msg = Message(policy=compat32)
    msg["Subject"] = "old style"
    msg.set_payload("body\n")
    data = serialise_message(msg)
    assert data == b"Subject: old style\r\n\r\nbody\r\n"


def test_prepare_content_serialises_messages_for_the_envelope() -> None:
    plain, _ = prepare_content(email_message(), smtputf8=False)
    utf8, _ = prepare_content(email_message(), smtputf8=True)
    assert read_all(plain).isascii()
    assert not read_all(utf8).isascii()


def test_seekable_file_is_read_from_its_position(tmp_path: Path) -> None:
    path = tmp_path / "msg"
    path.write_bytes(b"GARBAGE" + CRLF_MESSAGE)
    with path.open("rb") as file:
        file.seek(7)
        source, spooled = prepare_content(file)
        assert spooled is None
        assert source.size == len(CRLF_MESSAGE)
        assert source.data is None  # never loaded whole
        assert read_all(source) == read_all(source) == CRLF_MESSAGE


def test_pipe_is_spooled() -> None:
    r, w = os.pipe()
    os.write(w, CRLF_MESSAGE)
    os.close(w)
    with open(r, "rb", buffering=0) as pipe:
        assert not pipe.seekable()
        source, spooled = prepare_content(pipe)
    assert spooled is not None
    with spooled:
        assert source.size == len(CRLF_MESSAGE)
        assert read_all(source) == read_all(source) == CRLF_MESSAGE
    assert spooled.closed


def test_iterator_is_spooled_and_rolls_to_disk() -> None:
    big = b"x" * 1000 + b"\r\n"
    chunks = (big for _ in range(3000))  # about 3 MB, one-shot
    source, spooled = prepare_content(chunks, max_memory=1 << 20)
    assert spooled is not None
    with spooled:
        assert source.size == len(big) * 3000
        assert spooled._rolled  # type: ignore[attr-defined]  # moved to a temporary file
        first = read_all(source)
        assert first == big * 3000
        assert read_all(source) == first


def test_iterator_of_mixed_buffers() -> None:
    parts = [b"Subject: t\r\n", bytearray(b"\r\n"), memoryview(b"body\r\n")]
    source, spooled = prepare_content(iter(parts))
    assert spooled is not None
    with spooled:
        assert read_all(source) == b"Subject: t\r\n\r\nbody\r\n"


def test_spool_accepts_a_list_too() -> None:
    source, file = spool([b"a", b"b"])
    with file:
        assert read_all(source) == b"ab"


def test_content_source_passes_through() -> None:
    source = ContentSource.from_bytes(b"x")
    assert prepare_content(source) == (source, None)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Subject: text\r\n", "not str"),
        (io.StringIO("Subject: x\n"), "binary mode"),
        (12345, "not int"),
        (iter([b"ok", b"ok", "text"]), "chunk 2 must be bytes-like, not str"),
    ],
)
def test_bad_content_is_a_type_error(content: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        prepare_content(content)


def test_text_mode_pipe_is_refused() -> None:
    r, w = os.pipe()
    os.write(w, b"x")
    os.close(w)
    with open(r) as pipe, pytest.raises(TypeError, match="binary mode"):
        prepare_content(pipe)


# -- end to end into smtp-sink -d --------------------------------------------------------

Steps = Generator[Effect, EffectResult, object]


def reply(count: int = 1) -> Generator[Effect, EffectResult, bytes]:
    buf = b""
    while buf.count(b"\r\n") < count:
        got = yield Receive(5.0)
        assert isinstance(got, bytes), got
        assert got
        buf += got
    return buf


def send_twice(port: int, source: ContentSource) -> Steps:
    """One connection, two transactions that both read *source* from the start."""
    connected = yield Connect(Endpoint("sink", "127.0.0.1", port), 5.0)
    assert isinstance(connected, Connected), connected
    yield from reply()
    yield Send(b"HELO client.example.org\r\n", 5.0)
    yield from reply()
    codes = []
    for _ in range(2):
        yield Send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n", 5.0)
        yield from reply(3)
        for chunk in encode_data(source.open()):
            assert (yield Send(chunk, 5.0)) is None
        codes.append((yield from reply())[:3])
    yield Send(b"QUIT\r\n", 5.0)
    yield from reply()
    yield Close()
    return codes


def run(kind: str, script: Steps) -> object:
    if kind == "sync":
        cache: ConnectionCache[socket.socket] = ConnectionCache(close_socket)
        return SyncDriver(object(), cache).run(script)  # type: ignore[arg-type]
    acache: ConnectionCache[Connection] = ConnectionCache(close_connection)
    return asyncio.run(AsyncDriver(object(), acache).run(script))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def dump_sink(sink_factory: SinkFactory) -> Sink:
    """smtp-sink -d: every message is written to a file we can compare."""
    return sink_factory.start(dump=True)


def dumped(sink: Sink, count: int) -> list[bytes]:
    """Message bodies dumped so far (smtp-sink headers removed), waiting for *count*."""
    assert sink.dump_dir is not None
    deadline = time.monotonic() + 5
    while True:
        files = sorted((p for p in sink.dump_dir.rglob("*") if p.is_file()), key=os.path.getmtime)
        if len(files) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    bodies = []
    for path in files:
        _, _, rest = path.read_bytes().partition(b"\nReceived: ")
        bodies.append(rest.split(b"\n", 3)[3])
        path.unlink()
    return bodies


def pipe_with(data: bytes) -> io.BufferedReader:
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return open(r, "rb")


FORMS: dict[str, Callable[[Path], object]] = {
    "bytes": lambda tmp: CRLF_MESSAGE,
    "bytearray": lambda tmp: bytearray(CRLF_MESSAGE),
    "file": lambda tmp: (tmp / "m").open("rb"),
    "pipe": lambda tmp: pipe_with(CRLF_MESSAGE),
    "iterator": lambda tmp: chunked(CRLF_MESSAGE, 7),
    "message": lambda tmp: email_message(),
}


@pytest.mark.peers
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_form_arrives_intact_twice(
    dump_sink: Sink, tmp_path: Path, kind: str, form: str
) -> None:
    (tmp_path / "m").write_bytes(CRLF_MESSAGE)
    dumped(dump_sink, 0)  # start from an empty dump directory
    content = FORMS[form](tmp_path)
    source, spooled = prepare_content(content)
    try:
        assert run(kind, send_twice(dump_sink.port, source)) == [b"250", b"250"]
    finally:
        if spooled is not None:
            spooled.close()
        close = getattr(content, "close", None)
        if callable(close):
            close()
    if form == "message":
        expected = serialise_message(email_message()).replace(b"\r\n", b"\n")
    else:
        expected = CRLF_MESSAGE.replace(b"\r\n", b"\n")
    # smtp-sink writes LF line ends and one empty line after the message
    assert dumped(dump_sink, 2) == [expected + b"\n"] * 2
