"""ClientConnection writes exactly what real Postfix smtp(8)/lmtp(8) writes.

The transcripts in tests/transcripts/postfix/ were recorded from Postfix
3.7's delivery agents by tests/transcripts/capture_postfix.py (see its
docstring). Each is replayed with the server side fed whole, byte by byte
and in random chunks; the client side must match write group by write group:
commands, parameters, xtext/uxtext encodings, PIPELINING grouping (including
the 4096-octet rule), RSET course correction and QUIT placement.
"""

from __future__ import annotations

import re

import pytest

from pyfix_smtp.protocol.connection import ClientConnection, ClientOptions
from pyfix_smtp.protocol.content import EncoderOptions, encode_data
from pyfix_smtp.protocol.envelope import BodyType, Envelope, Notify, Recipient, Ret, Xforward
from pyfix_smtp.protocol.events import (
    Closed,
    DataReady,
    Event,
    Extensions,
    Greeting,
    HelloRejected,
    LmtpRecipientResult,
    MailResult,
    MessageResult,
    RecipientResult,
    TransactionResult,
)
from tests.transcripts.replay import (
    HANGUP,
    POSTFIX_DIR,
    Hangup,
    load_postfix,
    postfix_steps,
    replay,
)

NAMES = sorted(p.stem for p in POSTFIX_DIR.glob("*.json"))
WITH_CONTENT = [n for n in NAMES if "Received:" in (POSTFIX_DIR / f"{n}.json").read_text()]


def _unstuff(wire: bytes) -> bytes:
    """Undo DATA framing: drop the final ".", un-stuff dots, CRLF -> LF."""
    assert wire.endswith(b"\r\n.\r\n")
    body = wire[:-3]
    lines = body.split(b"\r\n")
    return b"\n".join(line[1:] if line.startswith(b".") else line for line in lines)


def _envelope(record: dict[str, object], steps: list[tuple[str, bytes]]) -> Envelope:
    args = record["sendmail_args"]
    assert isinstance(args, list)
    opts = dict(zip(args[::2], args[1::2], strict=True))
    notify = Notify.parse(opts["-N"]) if "-N" in opts else None
    recipients = record["recipients"]
    assert isinstance(recipients, list)
    sender = record["sender"]
    assert isinstance(sender, str)
    # Postfix knows the original recipient of every recipient: ORCPT=rfc822;...
    rcpts = [Recipient(r, orcpt=r, notify=notify) for r in recipients]
    mail = next((t for d, t in steps if d == "C" and t.startswith((b"MAIL", b"XFORWARD"))), b"")
    size_match = re.search(rb"SIZE=(\d+)", mail)
    # The message size is Postfix's queue-file figure; take it from the wire
    # where it appears (any value works where SIZE is not sent).
    size = int(size_match.group(1)) if size_match else 271
    content = next((t for d, t in steps if d == "C" and t.startswith(b"Received:")), b"")
    body = BodyType.EIGHT_BIT if b"Content-Transfer-Encoding: " in content else BodyType.UNDECLARED
    utf8 = not all(r.isascii() for r in recipients)
    return Envelope(
        sender,
        rcpts,
        envid=opts.get("-V"),
        ret=Ret(opts["-R"].upper()) if "-R" in opts else None,
        size=size,
        body=body,
        smtputf8=utf8,  # smtputf8_autodetect_classes = sendmail, verify
        xforward=Xforward(source="LOCAL"),  # a local submission (pickup)
    )


def _options(record: dict[str, object]) -> ClientOptions:
    return ClientOptions(
        lmtp=bool(record["lmtp"]),
        helo_name=str(record["myhostname"]),
        peer_name="capture.example.test[127.0.0.1]",
        send_xforward_command=True,
    )


def _driver(envelope: Envelope, steps: list[tuple[str, bytes]]):  # type: ignore[no-untyped-def]
    content_step = next((t for d, t in steps if d == "C" and t.startswith(b"Received:")), b"")
    end = content_step.find(b"\r\n.\r\n")
    wire_content = content_step[: end + 5] if end >= 0 else b""

    def drive(conn: ClientConnection, event: Event) -> bytes | Hangup | None:
        if isinstance(event, Extensions):
            return conn.start_transaction(envelope)
        if isinstance(event, DataReady):
            return conn.send_data(wire_content, final=True)
        if isinstance(event, TransactionResult) and conn.state.name == "READY":
            return HANGUP  # local failure: Postfix closes without QUIT
        return None

    return drive


@pytest.mark.parametrize("split", ["whole", "bytes", "random"])
@pytest.mark.parametrize("name", NAMES)
def test_postfix_transcript(name: str, split: str) -> None:
    record = load_postfix(name)
    steps = postfix_steps(record)
    envelope = _envelope(record, steps)
    conn = ClientConnection(_options(record))
    result = replay(steps, conn, _driver(envelope, steps), split=split, seed=hash(name) & 0xFFFF)
    assert result.leftover == b""
    if _refused(result.events):  # greeting_421, ehlo_421: QUIT, no transaction
        assert not result.of(TransactionResult)
        assert result.of(Closed)
        return
    [outcome] = result.of(TransactionResult)
    assert isinstance(outcome, TransactionResult)
    assert len(outcome.outcomes) == len(envelope.recipients)


def _refused(events: list[Event]) -> bool:
    """The server refused the session in the handshake."""
    return any(
        (isinstance(e, Greeting) and not e.accepted)
        or (isinstance(e, HelloRejected) and not e.fallback)
        for e in events
    )


@pytest.mark.parametrize("name", WITH_CONTENT)
def test_postfix_content_reencodes_identically(name: str) -> None:
    """Our DATA encoder turns the un-stuffed message back into Postfix's bytes."""
    record = load_postfix(name)
    steps = postfix_steps(record)
    content = next(t for d, t in steps if d == "C" and t.startswith(b"Received:"))
    wire = content[: content.find(b"\r\n.\r\n") + 5]
    assert b"".join(encode_data(_unstuff(wire), EncoderOptions())) == wire


def test_outcomes_match_what_postfix_was_told() -> None:
    record = load_postfix("some_rcpt_rejected")
    steps = postfix_steps(record)
    envelope = _envelope(record, steps)
    conn = ClientConnection(_options(record))
    result = replay(steps, conn, _driver(envelope, steps))
    [summary] = result.of(TransactionResult)
    assert isinstance(summary, TransactionResult)
    assert [o.delivered for o in summary.outcomes] == [True, False, True]
    failure = summary.outcomes[1].failure
    assert failure is not None
    assert failure.status == "5.1.1"
    assert failure.reason == (
        "host capture.example.test[127.0.0.1] said: 550 5.1.1 "
        "<b@some-rcpt-rejected.example>: Recipient address rejected (in reply to RCPT TO command)"
    )
    assert [type(e).__name__ for e in result.of(MailResult)] == ["MailResult"]
    [message] = result.of(MessageResult)
    assert isinstance(message, MessageResult)
    assert message.accepted


def test_transcripts_were_captured() -> None:
    # The capture covers the common cases the issue lists.
    assert {
        "pipelined_plain",
        "pipelined_dsn",
        "no_pipelining",
        "many_recipients",
        "helo_fallback",
        "eightbit",
        "smtputf8",
        "lmtp_partial",
    } <= set(NAMES)


_PROGRESS = (MailResult, RecipientResult, MessageResult, LmtpRecipientResult)


@pytest.mark.parametrize("name", NAMES)
def test_without_progress_events_the_wire_and_outcomes_are_the_same(name: str) -> None:
    """``progress_events=False`` (what the delivery core uses) only drops events."""
    record = load_postfix(name)
    steps = postfix_steps(record)
    envelope = _envelope(record, steps)
    full = replay(steps, ClientConnection(_options(record)), _driver(envelope, steps))
    quiet = replay(
        steps,
        ClientConnection(_options(record), progress_events=False),
        _driver(envelope, steps),
    )
    assert quiet.leftover == full.leftover == b""
    assert not any(isinstance(e, _PROGRESS) for e in quiet.events)
    assert quiet.events == [e for e in full.events if not isinstance(e, _PROGRESS)]
