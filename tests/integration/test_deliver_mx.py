"""Two MX hosts found in real DNS (NSD + unbound), on distinct loopback addresses.

``twomx.example.test`` has ``MX 10 mx1`` (127.0.0.2) and ``MX 20 mx2``
(127.0.0.3). The first MX fails in a different way in each test; Postfix's
rules (smtp_connect.c, smtp_trouble.c) decide whether the recipients move
on to the second one: connection failures, 4xx/5xx greetings, timeouts and
soft recipient errors at a non-final server do; a hard recipient error
bounces at once. The second MX is a working sink, so what it recorded is
what was delivered.
"""

from __future__ import annotations

import pytest

from pyfix_smtp import Action, Config, Envelope
from pyfix_smtp.testing import Disconnect, Hang, SinkServer
from tests.peers.delivery import (
    MYHOSTNAME,
    Deliverer,
    check_outcomes,
)
from tests.peers.faulty import FaultyServers
from tests.peers.mx_lab import MxLab

pytestmark = pytest.mark.peers

RECIPIENTS = ["bob@example.net", "carol@example.net"]
ENVELOPE = Envelope("alice@example.org", RECIPIENTS)
MESSAGE = (
    b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: two MX\r\n"
    b"Message-ID: <mx@example.org>\r\n\r\nHello.\r\n"
)
CONFIG = Config(
    myhostname=MYHOSTNAME,
    smtp_tls_security_level="none",
    smtp_connect_timeout=1,
    smtp_helo_timeout=1,
)


def accepted(*servers: SinkServer) -> list[str]:
    return [r for server in servers for m in server.messages for r in m.recipients]


def second_mx(lab: MxLab, faulty: FaultyServers, port: int) -> SinkServer:
    return faulty.start({}, host=lab.mx2_address, port=port, hostname=lab.mx2)


@pytest.mark.parametrize(
    "first",
    [
        "refused",  # nothing listens
        "421 greeting",
        "554 greeting",  # smtp_skip_5xx_greeting = yes
        "silent",  # accepts, never greets: smtp_helo_timeout
        "421 to MAIL",
        "450 to RCPT",  # soft error at a non-final server: next MX
    ],
)
def test_second_mx_takes_over(
    deliverer: Deliverer, faulty: FaultyServers, mx_lab: MxLab, first: str
) -> None:
    port = mx_lab.common_port()
    scripts = {
        "421 greeting": {"CONNECT": Disconnect("421 4.3.2 Try later")},
        "554 greeting": {"CONNECT": "554 5.3.2 Not here"},
        "silent": {"CONNECT": Hang()},
        "421 to MAIL": {"MAIL": Disconnect("421 4.3.2 Try later")},
        "450 to RCPT": {"RCPT": "450 4.2.1 Try later"},
    }
    mx1 = None
    if first != "refused":
        mx1 = faulty.start(scripts[first], host=mx_lab.mx1_address, port=port, hostname=mx_lab.mx1)
    mx2 = second_mx(mx_lab, faulty, port)
    report = deliverer(ENVELOPE, MESSAGE, f"{mx_lab.domain}:{port}", CONFIG, dns=mx_lab.dns)
    servers = (mx2,) if mx1 is None else (mx1, mx2)
    outcomes = check_outcomes(report, RECIPIENTS, accepted(*servers))
    for outcome in outcomes.values():
        assert outcome.action is Action.RELAYED
        assert outcome.relay == f"{mx_lab.mx2}[{mx_lab.mx2_address}]:{port}"
    assert mx2.messages[0].recipients == tuple(RECIPIENTS)
    assert mx2.messages[0].content == MESSAGE
    if mx1 is not None:
        assert mx1.sessions, "the first MX was never tried"
        assert mx1.messages == []


def test_hard_recipient_error_at_the_first_mx_bounces_at_once(
    deliverer: Deliverer, faulty: FaultyServers, mx_lab: MxLab
) -> None:
    port = mx_lab.common_port()
    mx1 = faulty.start(
        {"RCPT": ["550 5.1.1 No such user", "250 2.1.5 Ok"]},
        host=mx_lab.mx1_address,
        port=port,
        hostname=mx_lab.mx1,
    )
    mx2 = second_mx(mx_lab, faulty, port)
    report = deliverer(ENVELOPE, MESSAGE, f"{mx_lab.domain}:{port}", CONFIG, dns=mx_lab.dns)
    outcomes = check_outcomes(report, RECIPIENTS, accepted(mx1, mx2))
    bob, carol = outcomes["bob@example.net"], outcomes["carol@example.net"]
    assert (bob.action, bob.status, bob.reason) == (
        Action.BOUNCED,
        "5.1.1",
        f"host {mx_lab.mx1}[{mx_lab.mx1_address}] said: 550 5.1.1 No such user"
        " (in reply to RCPT TO command)",
    )
    assert carol.action is Action.RELAYED
    assert carol.relay == f"{mx_lab.mx1}[{mx_lab.mx1_address}]:{port}"
    assert mx2.sessions == []  # nothing left for the second MX


def test_every_mx_fails_keeps_the_last_status(
    deliverer: Deliverer, faulty: FaultyServers, mx_lab: MxLab
) -> None:
    port = mx_lab.common_port()
    mx1 = faulty.start(
        {"CONNECT": Disconnect("421 4.3.2 First busy")},
        host=mx_lab.mx1_address,
        port=port,
        hostname=mx_lab.mx1,
    )
    mx2 = faulty.start(
        {"RCPT": "451 4.3.0 Second busy"}, host=mx_lab.mx2_address, port=port, hostname=mx_lab.mx2
    )
    report = deliverer(ENVELOPE, MESSAGE, f"{mx_lab.domain}:{port}", CONFIG, dns=mx_lab.dns)
    outcomes = check_outcomes(report, RECIPIENTS, accepted(mx1, mx2))
    for outcome in outcomes.values():
        assert (outcome.action, outcome.status, outcome.reason) == (
            Action.DEFERRED,
            "4.3.0",
            f"host {mx_lab.mx2}[{mx_lab.mx2_address}] said: 451 4.3.0 Second busy"
            " (in reply to RCPT TO command)",
        )


def test_loop_at_a_backup_mx_is_soft(
    deliverer: Deliverer, faulty: FaultyServers, mx_lab: MxLab
) -> None:
    # Port 25, where Postfix looks for loops. The best MX is down; the backup
    # answers EHLO with our own name: not the best MX, so 4.4.6, not 5.4.6.
    mx2 = faulty.own_hostname(MYHOSTNAME, host=mx_lab.mx2_address, port=25)
    report = deliverer(ENVELOPE, MESSAGE, mx_lab.domain, CONFIG, dns=mx_lab.dns)
    outcomes = check_outcomes(report, RECIPIENTS, accepted(mx2))
    for outcome in outcomes.values():
        assert (outcome.action, outcome.status, outcome.reason) == (
            Action.DEFERRED,
            "4.4.6",
            f"mail for {mx_lab.domain} loops back to myself",
        )
    assert mx2.messages == []
