"""Delivery against Postfix smtp-sink with per-stage faults (PEERS.md §1b).

smtp-sink rejects or drops whole commands: ``-r CMD`` answers 450 4.3.0,
``-f CMD`` 500 5.3.0, ``-Q CMD`` 421 and closes, ``-q CMD`` closes without a
reply, ``-e`` refuses EHLO. Every case delivers two recipients through the
public API, sync and async, and checks each recipient's one outcome with
Postfix's status and text (smtp_proto.c smtp_loop(), smtp_trouble.c). The
sink counts what it accepted (``-d`` dumps), so a message reported sent
must have arrived.
"""

from __future__ import annotations

import email
from pathlib import Path

import pytest

from pyfix_smtp import Action, Config, Envelope
from tests.peers.delivery import Deliverer, check_outcomes
from tests.peers.sink import Sink, SinkFactory

pytestmark = pytest.mark.peers

RECIPIENTS = ["bob@example.net", "carol@example.net"]
ENVELOPE = Envelope("alice@example.org", RECIPIENTS)
MESSAGE = (
    b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: sink\r\n"
    b"Message-ID: <sink@example.org>\r\n\r\nHello.\r\n.leading dot\r\n"
)
CONFIG = Config(smtp_tls_security_level="none", smtp_helo_timeout=5, smtp_rcpt_timeout=5)
HOST = "127.0.0.1[127.0.0.1]"
SOFT = "450 4.3.0 Error: command failed"
HARD = "500 5.3.0 Error: command failed"
CLOSING = "421 4.0.0 Server closing connection"
SENT = (Action.RELAYED, "2.0.0", "250 2.0.0 Ok")

# flags -> (action, status, reason) for bob, then for carol (None: as bob)
Expected = tuple[Action, str, str]
CASES: dict[str, tuple[tuple[str, ...], Expected, Expected | None]] = {
    "plain": ((), SENT, None),
    "no pipelining": (("-p",), SENT, None),
    "EHLO refused, HELO works": (("-e",), SENT, None),
    "MAIL 450": (
        ("-r", "MAIL"),
        (Action.DEFERRED, "4.3.0", f"host {HOST} said: {SOFT} (in reply to MAIL FROM command)"),
        None,
    ),
    "MAIL 500": (
        ("-f", "MAIL"),
        (Action.BOUNCED, "5.3.0", f"host {HOST} said: {HARD} (in reply to MAIL FROM command)"),
        None,
    ),
    "RCPT 450": (
        ("-r", "RCPT"),
        (Action.DEFERRED, "4.3.0", f"host {HOST} said: {SOFT} (in reply to RCPT TO command)"),
        None,
    ),
    "RCPT 500": (
        ("-f", "RCPT"),
        (Action.BOUNCED, "5.3.0", f"host {HOST} said: {HARD} (in reply to RCPT TO command)"),
        None,
    ),
    "DATA 450": (
        ("-r", "DATA"),
        (Action.DEFERRED, "4.3.0", f"host {HOST} said: {SOFT} (in reply to DATA command)"),
        None,
    ),
    "DATA 500": (
        ("-f", "DATA"),
        (Action.BOUNCED, "5.3.0", f"host {HOST} said: {HARD} (in reply to DATA command)"),
        None,
    ),
    "end of data 450": (
        ("-r", "."),
        (Action.DEFERRED, "4.3.0", f"host {HOST} said: {SOFT} (in reply to end of DATA command)"),
        None,
    ),
    "end of data 500": (
        ("-f", "."),
        (Action.BOUNCED, "5.3.0", f"host {HOST} said: {HARD} (in reply to end of DATA command)"),
        None,
    ),
    "HELO and EHLO 450": (
        ("-r", "HELO,EHLO"),
        (Action.DEFERRED, "4.3.0", f"host {HOST} refused to talk to me: {SOFT}"),
        None,
    ),
    "greeting 421": (
        ("-Q", "CONNECT"),
        (Action.DEFERRED, "4.0.0", f"host {HOST} refused to talk to me: {CLOSING}"),
        None,
    ),
    "MAIL 421": (
        ("-Q", "MAIL"),
        (Action.DEFERRED, "4.0.0", f"host {HOST} said: {CLOSING} (in reply to MAIL FROM command)"),
        None,
    ),
    # PIPELINING: both RCPTs are out; the sink closes after the first reply.
    "RCPT 421": (
        ("-Q", "RCPT"),
        (Action.DEFERRED, "4.0.0", f"host {HOST} said: {CLOSING} (in reply to RCPT TO command)"),
        (Action.DEFERRED, "4.4.2", f"lost connection with {HOST} while sending RCPT TO"),
    ),
    "end of data 421": (
        ("-Q", "."),
        (
            Action.DEFERRED,
            "4.0.0",
            f"host {HOST} said: {CLOSING} (in reply to end of DATA command)",
        ),
        None,
    ),
    "greeting dropped": (
        ("-q", "CONNECT"),
        (
            Action.DEFERRED,
            "4.4.2",
            f"lost connection with {HOST} while receiving the initial server greeting",
        ),
        None,
    ),
    "RCPT dropped": (
        ("-q", "RCPT"),
        (Action.DEFERRED, "4.4.2", f"lost connection with {HOST} while sending RCPT TO"),
        None,
    ),
    "DATA dropped": (
        ("-q", "DATA"),
        (Action.DEFERRED, "4.4.2", f"lost connection with {HOST} while sending DATA command"),
        None,
    ),
    "end of data dropped": (
        ("-q", "."),
        (
            Action.DEFERRED,
            "4.4.2",
            f"lost connection with {HOST} while sending end of data"
            " -- message may be sent more than once",
        ),
        None,
    ),
}


def dumped(sink: Sink) -> list[tuple[list[str], bytes]]:
    """The messages smtp-sink dumped: (recipients, content) each."""
    assert sink.dump_dir is not None
    found = []
    for path in sorted(p for p in Path(sink.dump_dir).rglob("*") if p.is_file()):
        parsed = email.message_from_bytes(path.read_bytes())
        # smtp-sink -d writes X-Client-Addr ... X-Rcpt-Args headers, then the message
        recipients = [v.split()[0].strip("<>") for k, v in parsed.items() if k == "X-Rcpt-Args"]
        found.append((recipients, path.read_bytes()))
    return found


@pytest.mark.parametrize("case", list(CASES))
def test_stage_faults(deliverer: Deliverer, sink_factory: SinkFactory, case: str) -> None:
    flags, bob, carol = CASES[case]
    sink = sink_factory.start(flags, dump=True)
    report = deliverer(ENVELOPE, MESSAGE, f"[{sink.host}]:{sink.port}", CONFIG)
    accepted = [r for recipients, _ in dumped(sink) for r in recipients]
    if "." in flags:  # smtp-sink dumps the message before it refuses the end of data
        accepted = []
    outcomes = check_outcomes(report, RECIPIENTS, accepted)
    expected = {"bob@example.net": bob, "carol@example.net": carol or bob}
    for rcpt, (action, status, reason) in expected.items():
        got = outcomes[rcpt]
        assert (got.action, got.status, got.reason) == (action, status, reason), rcpt
        assert got.relay == f"{HOST}:{sink.port}"


def test_sink_gets_the_message_as_sent(deliverer: Deliverer, sink_factory: SinkFactory) -> None:
    sink = sink_factory.start(dump=True)
    report = deliverer(ENVELOPE, MESSAGE, f"[{sink.host}]:{sink.port}", CONFIG)
    check_outcomes(report, RECIPIENTS, RECIPIENTS)
    [(recipients, dump)] = dumped(sink)
    assert recipients == RECIPIENTS
    # LF line ends, plus the empty line smtp-sink writes after each message
    assert dump.endswith(MESSAGE.replace(b"\r\n", b"\n") + b"\n"), dump[-300:]


def test_lmtp_sink_one_reply_per_recipient(deliverer: Deliverer, sink_factory: SinkFactory) -> None:
    sink = sink_factory.start(["-L"], dump=True)
    report = deliverer(ENVELOPE, MESSAGE, f"inet:{sink.host}:{sink.port}", Config(protocol="lmtp"))
    outcomes = check_outcomes(report, RECIPIENTS, RECIPIENTS)
    for outcome in outcomes.values():
        # no DSN offered, lmtp_assume_final = no: "relayed", as Postfix logs it
        assert (outcome.action, outcome.status, outcome.reason) == (
            Action.RELAYED,
            "2.2.0",
            "250 2.2.0 Ok",
        )
