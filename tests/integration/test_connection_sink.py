"""ClientConnection over a plain socket against real Postfix smtp-sink (PEERS.md §1b).

A tiny blocking driver moves the bytes; the sink plays the server: plain
and pipelined sessions, refusals (``-f``/``-r``), EHLO refused (``-e``),
421 (``-Q``), and LMTP (``-L``, one reply per recipient after the data).
"""

from __future__ import annotations

import socket

import pytest

from pyfix_smtp.protocol.connection import ClientConnection, ClientOptions, State
from pyfix_smtp.protocol.content import encode_data
from pyfix_smtp.protocol.envelope import Envelope, Recipient
from pyfix_smtp.protocol.events import (
    NEED_DATA,
    Closed,
    DataReady,
    Event,
    Extensions,
    HelloRejected,
    LmtpRecipientResult,
    MailResult,
    MessageResult,
    RecipientResult,
    TransactionResult,
)
from tests.peers.sink import SINK_HOSTNAME, Sink, SinkFactory

pytestmark = pytest.mark.peers

MESSAGE = b"Subject: sink test\nFrom: a@example.org\n\nline one\n.dotted line\nlast\n"
ENVELOPE = Envelope(
    "a@example.org",
    [Recipient("b@example.net", orcpt="b@example.net", notify="FAILURE"), "c@example.net"],
    envid="sink-test",
    size=len(MESSAGE),
)


class Wire:
    """Everything written, per write, for checks on PIPELINING grouping."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.writes: list[bytes] = []

    def send(self, data: bytes) -> None:
        if data:
            self.writes.append(data)
            self.sock.sendall(data)


def run_session(
    sink: Sink, options: ClientOptions, envelope: Envelope = ENVELOPE
) -> tuple[list[Event], ClientConnection, Wire]:
    """One SMTP/LMTP session with a blocking socket: the whole driver."""
    conn = ClientConnection(options)
    events: list[Event] = []
    with socket.create_connection(sink.address, timeout=10) as sock:
        wire = Wire(sock)
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                wire.send(conn.data_to_send())
                conn.receive_data(sock.recv(65536))
                continue
            events.append(event)
            if isinstance(event, Closed):
                wire.send(conn.data_to_send())
                break
            if isinstance(event, Extensions):
                wire.send(conn.start_transaction(envelope))
            elif isinstance(event, DataReady):
                chunks = list(encode_data(MESSAGE))
                for i, chunk in enumerate(chunks):
                    wire.send(conn.send_data(chunk, final=i == len(chunks) - 1))
            elif isinstance(event, TransactionResult) and conn.state is State.READY:
                wire.send(conn.quit())
    return events, conn, wire


def summary(events: list[Event]) -> TransactionResult:
    [result] = [e for e in events if isinstance(e, TransactionResult)]
    return result


def opts(**kw: object) -> ClientOptions:
    return ClientOptions(helo_name="client.example", peer_name="sink[127.0.0.1]", **kw)  # type: ignore[arg-type]


def test_pipelined_delivery(smtp_sink: Sink) -> None:
    events, conn, wire = run_session(smtp_sink, opts())
    [ext] = [e for e in events if isinstance(e, Extensions)]
    assert ext.server_name == SINK_HOSTNAME
    assert ext.pipelining
    assert ext.dsn
    result = summary(events)
    assert [o.delivered for o in result.outcomes] == [True, True]
    # MAIL, both RCPTs and DATA in one write; content, "." and QUIT in one write
    assert wire.writes[1].startswith(b"MAIL FROM:<a@example.org>")
    assert (b" SIZE=" in wire.writes[1]) == ext.size  # smtp-sink announces no SIZE
    assert b"ENVID=sink-test" in wire.writes[1]
    assert wire.writes[1].count(b"RCPT TO:") == 2
    assert wire.writes[1].endswith(b"DATA\r\n")
    assert b"ORCPT=rfc822;b@example.net NOTIFY=FAILURE" in wire.writes[1]
    # the encoder's last chunk is the "." line; QUIT rides with it
    assert wire.writes[-1] == b".\r\nQUIT\r\n"
    assert b"\r\n..dotted line\r\n" in wire.writes[-2]
    assert conn.state is State.CLOSED


def test_without_pipelining_one_command_per_write(sink_factory: SinkFactory) -> None:
    events, _, wire = run_session(sink_factory.start(["-p"]), opts())
    assert [o.delivered for o in summary(events).outcomes] == [True, True]
    commands = [w for w in wire.writes if not w.startswith(b"Subject")]
    assert all(w.count(b"\r\n") == 1 for w in commands)
    assert wire.writes[-1] == b"QUIT\r\n"


def test_all_recipients_refused(sink_factory: SinkFactory) -> None:
    events, _, wire = run_session(sink_factory.start(["-f", "RCPT"]), opts())
    result = summary(events)
    assert [o.failure.status if o.failure else None for o in result.outcomes] == ["5.3.0", "5.3.0"]
    assert all(
        "(in reply to RCPT TO command)" in (o.failure.reason if o.failure else "")
        for o in result.outcomes
    )
    # -f implies no PIPELINING: RSET instead of DATA, then QUIT
    assert b"RSET\r\n" in wire.writes
    assert not any(w.startswith(b"DATA") for w in wire.writes)


def test_mail_refused(sink_factory: SinkFactory) -> None:
    events, _, _ = run_session(sink_factory.start(["-r", "MAIL"]), opts())
    [mail] = [e for e in events if isinstance(e, MailResult)]
    assert not mail.accepted
    assert {o.failure.status for o in summary(events).outcomes if o.failure} == {"4.3.0"}
    assert not [e for e in events if isinstance(e, RecipientResult)]


def test_end_of_data_refused(sink_factory: SinkFactory) -> None:
    events, _, _ = run_session(sink_factory.start(["-f", "."]), opts())
    [message] = [e for e in events if isinstance(e, MessageResult)]
    assert not message.accepted
    assert all(not o.delivered for o in summary(events).outcomes)


def test_ehlo_refused_falls_back_to_helo(sink_factory: SinkFactory) -> None:
    events, _, wire = run_session(sink_factory.start(["-e"]), opts())
    assert any(isinstance(e, HelloRejected) and e.fallback for e in events)
    assert b"HELO client.example\r\n" in wire.writes
    assert [o.delivered for o in summary(events).outcomes] == [True, True]
    # no ESMTP: no SIZE, ENVID, ORCPT or NOTIFY
    assert not any(b"SIZE=" in w or b"ORCPT=" in w for w in wire.writes)


def test_421_at_rcpt_settles_everyone(sink_factory: SinkFactory) -> None:
    events, conn, _ = run_session(sink_factory.start(["-Q", "RCPT"]), opts())
    result = summary(events)
    assert all(not o.delivered for o in result.outcomes)
    assert result.outcomes[0].failure is not None
    assert result.outcomes[0].failure.status.startswith("4")
    assert conn.state is State.CLOSED


def test_lmtp_one_reply_per_recipient(sink_factory: SinkFactory) -> None:
    events, _, wire = run_session(sink_factory.start(["-L"]), opts(lmtp=True))
    assert wire.writes[0] == b"LHLO client.example\r\n"
    lmtp = [e for e in events if isinstance(e, LmtpRecipientResult)]
    assert [e.index for e in lmtp] == [0, 1]
    assert all(e.accepted for e in lmtp)
    assert [o.delivered for o in summary(events).outcomes] == [True, True]
