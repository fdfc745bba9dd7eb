"""The peer fixtures really start servers that speak SMTP."""

from __future__ import annotations

import socket

import pytest

from tests.peers.sink import SINK_HOSTNAME, Sink, SinkFactory

pytestmark = pytest.mark.peers


def _chat(sink: Sink, lines: list[bytes]) -> list[bytes]:
    replies = []
    with socket.create_connection(sink.address, timeout=5) as sock:
        f = sock.makefile("rb")
        replies.append(f.readline())
        for line in lines:
            sock.sendall(line)
            while True:
                reply = f.readline()
                replies.append(reply)
                if reply[3:4] != b"-":
                    break
    return replies


def test_smtp_sink_greets_and_accepts_a_message(smtp_sink: Sink) -> None:
    replies = _chat(
        smtp_sink,
        [
            b"EHLO client.example\r\n",
            b"MAIL FROM:<a@example.org>\r\n",
            b"RCPT TO:<b@example.net>\r\n",
            b"DATA\r\n",
            b"Subject: x\r\n\r\nhi\r\n.\r\n",
            b"QUIT\r\n",
        ],
    )
    assert replies[0].startswith(b"220 " + SINK_HOSTNAME.encode())
    ehlo = [r for r in replies if r.startswith((b"250-", b"250 "))]
    assert any(b"PIPELINING" in r for r in ehlo)
    codes = [r[:3] for r in replies]
    assert b"354" in codes
    assert codes[-1] == b"221"


def test_sink_factory_applies_fault_flags(sink_factory: SinkFactory) -> None:
    sink = sink_factory.start(["-f", "RCPT"])
    replies = _chat(
        sink,
        [
            b"HELO client.example\r\n",
            b"MAIL FROM:<a@example.org>\r\n",
            b"RCPT TO:<b@example.net>\r\n",
            b"QUIT\r\n",
        ],
    )
    assert replies[3].startswith(b"500 5.3.0")


def test_sink_dump_directory_receives_the_message(sink_factory: SinkFactory) -> None:
    sink = sink_factory.start(dump=True)
    _chat(
        sink,
        [
            b"HELO client.example\r\n",
            b"MAIL FROM:<a@example.org>\r\n",
            b"RCPT TO:<b@example.net>\r\n",
            b"DATA\r\n",
            b"Subject: dumped\r\n\r\nbody\r\n.\r\n",
            b"QUIT\r\n",
        ],
    )
    assert sink.dump_dir is not None
    dumps = [p.read_bytes() for p in sink.dump_dir.rglob("*") if p.is_file()]
    assert len(dumps) == 1
    assert b"Subject: dumped" in dumps[0]
