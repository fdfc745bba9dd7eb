"""What the delivery log line says, compared with Postfix's own smtp(8).

A private Postfix client (:mod:`tests.peers.postfix_client`) delivers each
case once to a scripted loopback server; pyfix_smtp then delivers the same
case to the same server, sync and async, and its ``to=<...>`` line must
carry the same relay, DSN, status word and reason:

* address-verification probes (``sendmail -bv`` there, ``verify_probe=True``
  here) are logged ``status=deliverable`` or ``status=undeliverable``
  (global/sent.c, defer.c, bounce.c), also when ``soft_bounce = yes`` would
  have turned a message's bounce into ``status=SOFTBOUNCE`` (bounce.c
  ``bounce_append_intern()`` looks at the probe flag first).

The Postfix here is Debian's 3.7; the code paths involved are the same in
3.11 (checked against its source).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from pyfix_smtp import Config, Envelope, RecipientOutcome
from pyfix_smtp.testing import Script, SinkServer
from tests.peers.delivery import MYHOSTNAME, Deliverer
from tests.peers.postfix_client import PostfixClient, PostfixResult, start_postfix_client

pytestmark = pytest.mark.peers

SENDER = "sender@example.org"

#: server name -> its script
SERVERS: dict[str, dict[str, Script]] = {
    "accepts": {},
    "rejects": {"RCPT": "550 5.1.1 no such user here"},
    "defers": {"RCPT": "450 4.2.0 mailbox busy, try later"},
    "greets 421": {"CONNECT": "421 4.3.2 closing for maintenance"},
}
#: master.cf service -> settings (the same for Postfix and for our Config)
SERVICES: dict[str, dict[str, str]] = {
    "plain": {"smtp_tls_security_level": "none"},
    "softbounce": {"smtp_tls_security_level": "none", "soft_bounce": "yes"},
}


@dataclass(frozen=True)
class Case:
    """One delivery: the server, the smtp(8) service, and how it is submitted."""

    server: str
    service: str = "plain"
    probe: bool = False
    local_part: str = "bob"
    config: dict[str, object] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "probe accepted": Case("accepts", probe=True),
    "probe rejected": Case("rejects", probe=True),
    "probe deferred": Case("defers", probe=True),
    "probe refused at greeting": Case("greets 421", probe=True),
    "probe under soft_bounce": Case("rejects", "softbounce", probe=True),
    "message under soft_bounce": Case("rejects", "softbounce"),
}

OUR_LINE = re.compile(
    r"^to=<(?P<rcpt>.+?)>, (?:orig_to=<.+?>, )?relay=(?P<relay>\S+), (?:conn_use=\d+, )?"
    r"delay=[\d.]+, delays=[\d./]+, dsn=(?P<dsn>[\d.]+), status=(?P<status>\w+)"
    r" \((?P<reason>.*)\)$"
)


@dataclass
class Reference:
    """Postfix's result per case, and the servers both clients use."""

    postfix: PostfixClient
    servers: dict[str, SinkServer]
    recipients: dict[str, str]  # case -> Postfix's recipient

    def result(self, case: str) -> PostfixResult:
        return self.postfix.results()[self.recipients[case]][-1]

    def domain(self, case: str) -> str:
        return self.recipients[case].rpartition("@")[2]


def message(tag: str) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: bob@example.net\r\nSubject: log line {tag}\r\n"
        "Date: Wed, 25 Nov 2026 12:00:00 +0000\r\n"
        f"Message-ID: <{tag}@example.org>\r\n\r\nHello.\r\n"
    ).encode()


@pytest.fixture(scope="module")
def reference() -> Iterator[Reference]:
    """Postfix smtp(8) delivers every case once."""
    servers = {name: SinkServer(script=script).start() for name, script in SERVERS.items()}
    routes: dict[str, str] = {}
    recipients: dict[str, str] = {}
    for i, (name, case) in enumerate(CASES.items()):
        domain = f"log{i}.test"
        routes[domain] = f"{case.service}:{servers[case.server].nexthop}"
        recipients[name] = f"{case.local_part}@{domain}"
    try:
        postfix = start_postfix_client(services=SERVICES, routes=routes)
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    try:
        for name, case in CASES.items():
            if case.probe:
                postfix.submit(SENDER, [recipients[name]], verify=True)
            else:
                postfix.submit(SENDER, [recipients[name]], message(name))
        postfix.wait(recipients.values())
        yield Reference(postfix, servers, recipients)
    finally:
        postfix.stop()
        for server in servers.values():
            server.stop()


def ours(deliverer: Deliverer, reference: Reference, name: str) -> RecipientOutcome:
    """Our outcome for *name*, delivered to the same server as Postfix's."""
    case = CASES[name]
    settings: dict[str, object] = dict(SERVICES[case.service])
    settings["soft_bounce"] = settings.get("soft_bounce") == "yes"
    cfg = Config(myhostname=MYHOSTNAME, **settings, **case.config)  # type: ignore[arg-type]
    report = deliverer(
        Envelope(SENDER, [reference.recipients[name]]),
        message(uuid.uuid4().hex),
        reference.servers[case.server].nexthop,
        cfg,
        verify_probe=case.probe,
    )
    (outcome,) = report.outcomes
    return outcome


def normalise(reason: str) -> str:
    return re.sub(r"queued as \w+", "queued as X", reason)


@pytest.mark.parametrize("name", list(CASES))
def test_log_line_matches_postfix(deliverer: Deliverer, reference: Reference, name: str) -> None:
    outcome = ours(deliverer, reference, name)
    theirs = reference.result(name)
    line = OUR_LINE.match(outcome.log_line())
    assert line is not None, outcome.log_line()
    assert (line["rcpt"], line["relay"], line["dsn"], line["status"]) == (
        reference.recipients[name],
        theirs.relay,
        theirs.dsn,
        theirs.status,
    )
    assert normalise(line["reason"]) == normalise(theirs.reason)


def test_probe_words_are_postfix_words(reference: Reference) -> None:
    # The reference itself: what Postfix 3.7 logs for each case.
    words = {name: reference.result(name).status for name in CASES}
    assert words == {
        "probe accepted": "deliverable",
        "probe rejected": "undeliverable",
        "probe deferred": "undeliverable",
        "probe refused at greeting": "undeliverable",
        "probe under soft_bounce": "undeliverable",
        "message under soft_bounce": "SOFTBOUNCE",
    }
