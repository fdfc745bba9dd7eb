"""Delivery against servers that misbehave in ways no real server can be scripted to.

The faulty servers (tests/peers/faulty.py) hang at a chosen stage, drop the
connection in mid-DATA, answer 421 or 554, send garbage, or greet with our
own host name. Each test delivers through the public API, sync and async,
and checks Postfix's outcome and text (smtp_proto.c, smtp_trouble.c): the
recipient is deferred with 4.4.2 and the stage named, and nothing is
reported delivered that the server did not accept.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from pyfix_smtp import Action, Config, Envelope
from pyfix_smtp.testing import SinkServer
from tests.peers.delivery import (
    MYHOSTNAME,
    Deliverer,
    check_outcomes,
)
from tests.peers.faulty import FaultyServers

pytestmark = pytest.mark.peers

RECIPIENTS = ["bob@example.net", "carol@example.net"]
ENVELOPE = Envelope("alice@example.org", RECIPIENTS)
MESSAGE = (
    b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: faults\r\n"
    b"Message-ID: <faults@example.org>\r\n\r\nHello.\r\n"
)
# The shortest time limits Postfix accepts (1s), so a hang costs one second.
FAST = Config(
    myhostname=MYHOSTNAME,
    smtp_connect_timeout=1,
    smtp_helo_timeout=1,
    smtp_mail_timeout=1,
    smtp_rcpt_timeout=1,
    smtp_data_init_timeout=1,
    smtp_data_xfer_timeout=1,
    smtp_data_done_timeout=1,
    smtp_quit_timeout=1,
    smtp_tls_security_level="none",
)


def accepted(server: SinkServer) -> list[str]:
    return [r for m in server.messages for r in m.recipients]


HANG_STAGES = {
    "CONNECT": "receiving the initial server greeting",
    "EHLO": "performing the EHLO handshake",
    "MAIL": "sending MAIL FROM",
    "RCPT": "sending RCPT TO",
    "DATA": "sending DATA command",
    ".": "sending end of data -- message may be sent more than once",
    # The server stops reading after 354: a large message fills the socket
    # buffers and the client's write times out (smtp_data_xfer_timeout).
    "BODY": "sending message body",
}
BIG = MESSAGE + (b"y" * 998 + b"\r\n") * 20_000  # 20 MB: more than any socket buffer


def test_hang_times_out_with_the_stage_named(deliverer: Deliverer, faulty: FaultyServers) -> None:
    # One server per stage, all delivered to at once: each hang costs the
    # shortest time limit Postfix allows (1s), so they run concurrently.
    servers = {stage: faulty.hang(stage) for stage in HANG_STAGES}
    with ThreadPoolExecutor(len(servers)) as pool:
        reports = dict(
            zip(
                servers,
                pool.map(
                    lambda item: deliverer(
                        ENVELOPE, BIG if item[0] == "BODY" else MESSAGE, item[1].nexthop, FAST
                    ),
                    servers.items(),
                ),
                strict=True,
            )
        )
    for stage, server in servers.items():
        outcomes = check_outcomes(reports[stage], RECIPIENTS, accepted(server))
        assert server.sessions, f"{stage}: the client never connected"
        for outcome in outcomes.values():
            assert (outcome.action, outcome.status, outcome.reason) == (
                Action.DEFERRED,
                "4.4.2",
                f"conversation with 127.0.0.1[127.0.0.1] timed out while {HANG_STAGES[stage]}",
            ), stage


def test_connection_dropped_in_mid_data(deliverer: Deliverer, faulty: FaultyServers) -> None:
    server = faulty.drop_mid_data(after_bytes=100_000)
    big = MESSAGE + (b"z" * 998 + b"\r\n") * 5_000  # 5 MB: still sending when the server goes
    report = deliverer(ENVELOPE, big, server.nexthop, FAST)
    outcomes = check_outcomes(report, RECIPIENTS, accepted(server))
    assert server.messages == []
    assert server.sessions[0].content_bytes >= 100_000
    for outcome in outcomes.values():
        assert outcome.action is Action.DEFERRED
        assert outcome.status == "4.4.2"
        assert outcome.reason == (
            "lost connection with 127.0.0.1[127.0.0.1] while sending message body"
        )


SAID_421 = "host 127.0.0.1[127.0.0.1] said: 421 4.3.2 Service shutting down (in reply to {})"


@pytest.mark.parametrize(
    ("stage", "bob", "carol"),
    [
        ("MAIL", SAID_421.format("MAIL FROM command"), None),
        # The server closes after the first RCPT reply: the second recipient's
        # reply never comes (Postfix smtp_loop(): stream error while reading it).
        (
            "RCPT",
            SAID_421.format("RCPT TO command"),
            ("4.4.2", "lost connection with 127.0.0.1[127.0.0.1] while sending RCPT TO"),
        ),
        ("DATA", SAID_421.format("DATA command"), None),
        (".", SAID_421.format("end of DATA command"), None),
    ],
)
def test_421_at_a_stage_defers(
    deliverer: Deliverer,
    faulty: FaultyServers,
    stage: str,
    bob: str,
    carol: tuple[str, str] | None,
) -> None:
    server = faulty.reply_421(stage)
    report = deliverer(ENVELOPE, MESSAGE, server.nexthop, FAST)
    outcomes = check_outcomes(report, RECIPIENTS, accepted(server))
    expected = {"bob@example.net": ("4.3.2", bob), "carol@example.net": carol or ("4.3.2", bob)}
    for rcpt, (status, reason) in expected.items():
        assert outcomes[rcpt].action is Action.DEFERRED
        assert (outcomes[rcpt].status, outcomes[rcpt].reason) == (status, reason)


def test_421_greeting_defers(deliverer: Deliverer, faulty: FaultyServers) -> None:
    server = faulty.reply_421("CONNECT")
    report = deliverer(ENVELOPE, MESSAGE, server.nexthop, FAST)
    outcomes = check_outcomes(report, RECIPIENTS, accepted(server))
    for outcome in outcomes.values():
        assert outcome.action is Action.DEFERRED
        assert outcome.status == "4.3.2"
        assert outcome.reason == (
            "host 127.0.0.1[127.0.0.1] refused to talk to me: 421 4.3.2 Service shutting down"
        )
    assert server.sessions[0].commands == []  # not even QUIT after a 421


def test_554_greeting_is_a_soft_error(deliverer: Deliverer, faulty: FaultyServers) -> None:
    # smtp_skip_5xx_greeting = yes: a 5xx greeting skips the host as if 4xx.
    server = faulty.greet_554()
    report = deliverer(ENVELOPE, MESSAGE, server.nexthop, FAST)
    outcomes = check_outcomes(report, RECIPIENTS, accepted(server))
    for outcome in outcomes.values():
        assert outcome.action is Action.DEFERRED
        assert outcome.status == "4.3.2"
        assert outcome.reason == (
            "host 127.0.0.1[127.0.0.1] refused to talk to me: 554 5.3.2 No SMTP service here"
        )


def test_554_greeting_bounces_without_skip(deliverer: Deliverer, faulty: FaultyServers) -> None:
    server = faulty.greet_554()
    config = FAST.replace(smtp_skip_5xx_greeting=False)
    report = deliverer(ENVELOPE, MESSAGE, server.nexthop, config)
    outcomes = check_outcomes(report, RECIPIENTS, accepted(server))
    for outcome in outcomes.values():
        assert outcome.action is Action.BOUNCED
        assert outcome.status == "5.3.2"


def test_garbage_greeting_times_out(deliverer: Deliverer, faulty: FaultyServers) -> None:
    # Postfix smtp_chat_resp(): a malformed line is kept as part of the reply
    # and reading goes on; no well-formed line ever comes, so the wait times out.
    server = faulty.garbage("CONNECT", b"HTTP/1.0 400 Bad Request\r\n")
    report = deliverer(ENVELOPE, MESSAGE, server.nexthop, FAST)
    outcomes = check_outcomes(report, RECIPIENTS, accepted(server))
    for outcome in outcomes.values():
        assert (outcome.action, outcome.status, outcome.reason) == (
            Action.DEFERRED,
            "4.4.2",
            "conversation with 127.0.0.1[127.0.0.1] timed out"
            " while receiving the initial server greeting",
        )
    assert server.sessions[0].commands == []


def test_garbage_before_a_good_greeting_is_tolerated(
    deliverer: Deliverer, faulty: FaultyServers
) -> None:
    server = faulty.garbage("CONNECT", b"HTTP/1.0 400 Bad Request\r\n220 late but fine\r\n")
    report = deliverer(ENVELOPE, MESSAGE, server.nexthop, FAST)
    outcomes = check_outcomes(report, RECIPIENTS, accepted(server))
    assert {o.action for o in outcomes.values()} == {Action.RELAYED}
    assert server.messages[0].content == MESSAGE


@pytest.mark.parametrize("greeting", ["199 too early", "600 too late"])
def test_greeting_code_outside_2xx_5xx_bounces(
    deliverer: Deliverer, faulty: FaultyServers, greeting: str
) -> None:
    server = faulty.start({"CONNECT": greeting})
    report = deliverer(ENVELOPE, MESSAGE, server.nexthop, FAST)
    outcomes = check_outcomes(report, RECIPIENTS, accepted(server))
    for outcome in outcomes.values():
        assert (outcome.action, outcome.status, outcome.reason) == (
            Action.BOUNCED,
            "5.5.0",
            f"host 127.0.0.1[127.0.0.1] refused to talk to me: {greeting}",
        )


def test_own_hostname_on_port_25_is_a_mail_loop(
    deliverer: Deliverer, faulty: FaultyServers
) -> None:
    # Postfix smtp_helo(): an EHLO reply naming our myhostname, on port 25
    # only, fails the site; the nexthop's only host is its best MX: 5.4.6.
    server = faulty.own_hostname(MYHOSTNAME, host="127.0.0.25", port=25)
    report = deliverer(ENVELOPE, MESSAGE, "[127.0.0.25]", FAST)
    outcomes = check_outcomes(report, RECIPIENTS, accepted(server))
    for outcome in outcomes.values():
        assert outcome.action is Action.BOUNCED
        assert outcome.status == "5.4.6"
        assert outcome.reason == "mail for [127.0.0.25] loops back to myself"
    assert server.sessions[0].commands[0].startswith("EHLO ")
    assert "MAIL" not in " ".join(server.sessions[0].commands)


def test_own_hostname_elsewhere_than_port_25_is_no_loop(
    deliverer: Deliverer, faulty: FaultyServers
) -> None:
    server = faulty.own_hostname(MYHOSTNAME)
    report = deliverer(ENVELOPE, MESSAGE, server.nexthop, FAST)
    outcomes = check_outcomes(report, RECIPIENTS, accepted(server))
    assert {o.action for o in outcomes.values()} == {Action.RELAYED}
    assert server.messages[0].content == MESSAGE
