"""What the delivery log line says, compared with Postfix's own smtp(8).

A private Postfix client (:mod:`tests.peers.postfix_client`) delivers each
case once to a scripted loopback server; pyfix_smtp then delivers the same
case to the same server, sync and async, and its ``to=<...>`` line must
carry the same relay, DSN, status word and reason:

* address-verification probes (``sendmail -bv`` there, ``verify_probe=True``
  here) are logged ``status=deliverable`` or ``status=undeliverable``
  (global/sent.c, defer.c, bounce.c), also when ``soft_bounce = yes`` would
  have turned a message's bounce into ``status=SOFTBOUNCE`` (bounce.c
  ``bounce_append_intern()`` looks at the probe flag first);
* ``to=<...>`` and ``orig_to=<...>`` show addresses in the form
  ``info_log_address_format`` asks for: ``"john doe"@example`` (external,
  the default; global/info_log_addr_form.c) or ``john doe@example``
  (internal). Postfix's ``orig_to`` comes from a virtual alias there, ours
  from the ORCPT the caller passes;
* ``smtp_delivery_status_filter`` (global/dsn_filter.c) rewrites the status
  and text before they are recorded: a bounce may become a deferral and
  back, a success gets new text, a result of the wrong kind is a warning.

The Postfix here is Debian's 3.7; the code paths involved are the same in
3.11 (checked against its source).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from pyfix_smtp import Config, DeliveryReport, Envelope, Recipient
from pyfix_smtp.address import Mailbox
from pyfix_smtp.testing import Script, SinkServer
from tests.peers.delivery import MYHOSTNAME, Deliverer
from tests.peers.postfix_client import PostfixClient, start_postfix_client

pytestmark = pytest.mark.peers

SENDER = "sender@example.org"

#: server name -> its script
SERVERS: dict[str, dict[str, Script]] = {
    "accepts": {},
    "rejects": {"RCPT": "550 5.1.1 no such user here"},
    "defers": {"RCPT": "450 4.2.0 mailbox busy, try later"},
    "greets 421": {"CONNECT": "421 4.3.2 closing for maintenance"},
    "denies": {"RCPT": "550 5.7.1 relaying denied"},
}
#: master.cf service -> settings (the same for Postfix and for our Config)
SERVICES: dict[str, dict[str, str]] = {
    "plain": {"smtp_tls_security_level": "none"},
    "softbounce": {"smtp_tls_security_level": "none", "soft_bounce": "yes"},
    "internal": {"smtp_tls_security_level": "none", "info_log_address_format": "internal"},
    "filtered": {
        "smtp_tls_security_level": "none",
        "smtp_delivery_status_filter": "regexp:{tables}/dsn_filter",
    },
}
#: the delivery status filter of the "filtered" service
DSN_FILTER = r"""
/^5\.1\.1 (.*no such user.*)$/  4.7.1 filtered: $1
/^4\.2\.0 (.*)$/                5.2.0 filtered: $1
/^2\.0\.0 (250 .*)$/            2.0.0 filtered: $1
/^5\.7\.1 /                     2.0.0 a success for a bounce
"""
#: Postfix's virtual alias for the orig_to cases: this local part becomes "bob"
ALIASED = "mary smith"


@dataclass(frozen=True)
class Case:
    """One delivery: the server, the smtp(8) service, and how it is submitted."""

    server: str
    service: str = "plain"
    probe: bool = False
    local_part: str = "bob"
    #: the recipient reached Postfix as ``"mary smith"@...`` and was aliased
    #: to bob: Postfix logs orig_to=, we pass the original as ORCPT
    aliased: bool = False
    config: dict[str, object] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "probe accepted": Case("accepts", probe=True),
    "probe rejected": Case("rejects", probe=True),
    "probe deferred": Case("defers", probe=True),
    "probe refused at greeting": Case("greets 421", probe=True),
    "probe under soft_bounce": Case("rejects", "softbounce", probe=True),
    "message under soft_bounce": Case("rejects", "softbounce"),
    "quoted recipient": Case("accepts", local_part='"john doe"'),
    "quoted recipient, internal form": Case("accepts", "internal", local_part='"john doe"'),
    "quoted original recipient": Case("accepts", aliased=True),
    "quoted original recipient, internal form": Case("accepts", "internal", aliased=True),
    "quoted probe": Case("rejects", probe=True, local_part='"john doe"'),
    "filter: bounce to deferral": Case("rejects", "filtered"),
    "filter: deferral to bounce": Case("defers", "filtered"),
    "filter: new success text": Case("accepts", "filtered"),
    "filter: wrong kind of status": Case("denies", "filtered"),
    "filter: probe": Case("rejects", "filtered", probe=True),
}

LINE = (
    r"to=<(?P<rcpt>.+?)>, (?:orig_to=<(?P<orig>.+?)>, )?relay=(?P<relay>\S+),"
    r" (?:conn_use=\d+, )?delay=[\d.]+, delays=[\d./]+, (?:tls=(?P<tls>\S+), )?dsn=(?P<dsn>[\d.]+),"
    r" status=(?P<status>\w+) \((?P<reason>.*)\)$"
)
OUR_LINE = re.compile("^" + LINE)
POSTFIX_LINE = re.compile(r"postfix/\w+\[\d+\]: \w+: " + LINE)


@dataclass(frozen=True)
class Logged:
    """The fields of one ``to=<...>`` line."""

    rcpt: str
    orig: str | None
    relay: str
    dsn: str
    status: str
    reason: str

    @classmethod
    def of(cls, match: re.Match[str]) -> Logged:
        return cls(*match.group("rcpt", "orig", "relay", "dsn", "status", "reason"))


@dataclass
class Reference:
    """Postfix's result per case, and the servers both clients use."""

    postfix: PostfixClient
    servers: dict[str, SinkServer]
    recipients: dict[str, str]  # case -> the recipient submitted to Postfix
    lines: dict[str, Logged]  # case -> Postfix's line
    tables: Path  # the lookup tables both clients use

    def result(self, case: str) -> Logged:
        return self.lines[case]


def postfix_lines(postfix: PostfixClient, recipients: dict[str, str]) -> dict[str, Logged]:
    """Postfix's last ``to=`` line per case (by the case's own domain), once all are there."""
    domains = {rcpt.rpartition("@")[2]: case for case, rcpt in recipients.items()}
    deadline = time.monotonic() + 30
    while True:
        found: dict[str, Logged] = {}
        for line in postfix.log().splitlines():
            match = POSTFIX_LINE.search(line)
            if match:
                case = domains.get(match["rcpt"].rpartition("@")[2])
                if case is not None:
                    found[case] = Logged.of(match)
        if len(found) == len(recipients):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"Postfix logged no line for {set(recipients) - set(found)}")
        time.sleep(0.05)


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
        local = f'"{ALIASED}"' if case.aliased else case.local_part
        recipients[name] = f"{local}@{domain}"
    tables = Path(tempfile.mkdtemp(prefix="pyfix-logline-"))
    tables.chmod(0o755)
    aliases = tables / "virtual"
    # cleanup(8) looks virtual aliases up in external form (Postfix 3.5+)
    aliases.write_text(f'/^"{ALIASED}"@(log[0-9]+\\.test)$/ bob@$1\n')
    (tables / "dsn_filter").write_text(DSN_FILTER)
    for table in tables.iterdir():
        table.chmod(0o644)
    try:
        postfix = start_postfix_client(
            services={name: settings(name, tables) for name in SERVICES},
            routes=routes,
            main_cf={"virtual_alias_maps": f"regexp:{aliases}"},
        )
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
        lines = postfix_lines(postfix, recipients)
        yield Reference(postfix, servers, recipients, lines, tables)
    finally:
        postfix.stop()
        for server in servers.values():
            server.stop()
        shutil.rmtree(tables, ignore_errors=True)


def settings(service: str, tables: Path) -> dict[str, str]:
    """A service's settings with the tables directory filled in."""
    return {k: v.format(tables=tables) for k, v in SERVICES[service].items()}


def ours(deliverer: Deliverer, reference: Reference, name: str) -> DeliveryReport:
    """Our report for *name*, delivered to the same server as Postfix's."""
    case = CASES[name]
    values: dict[str, object] = dict(settings(case.service, reference.tables))
    values["soft_bounce"] = values.get("soft_bounce") == "yes"
    cfg = Config(myhostname=MYHOSTNAME, **values, **case.config)  # type: ignore[arg-type]
    given = reference.recipients[name]
    if case.aliased:  # what Postfix's virtual alias did, as an ORCPT
        rcpt = Recipient("bob@" + given.rpartition("@")[2], orcpt=Mailbox.parse(given))
    else:
        rcpt = Recipient(given)
    return deliverer(
        Envelope(SENDER, [rcpt]),
        message(uuid.uuid4().hex),
        reference.servers[case.server].nexthop,
        cfg,
        verify_probe=case.probe,
    )


def normalise(reason: str) -> str:
    return re.sub(r"queued as \w+", "queued as X", reason)


@pytest.mark.parametrize("name", list(CASES))
def test_log_line_matches_postfix(
    deliverer: Deliverer, reference: Reference, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pyfix_smtp.delivery")
    (outcome,) = ours(deliverer, reference, name).outcomes
    theirs = reference.result(name)
    assert outcome.recipient == theirs.rcpt.replace('"', "")  # the report keeps the internal form
    logged = [r.getMessage() for r in caplog.records if "to=<" in r.getMessage()]
    assert len(logged) == 1, logged
    line = OUR_LINE.match(logged[0])
    assert line is not None, logged[0]
    mine = Logged.of(line)
    assert replace(mine, reason=normalise(mine.reason)) == replace(
        theirs, reason=normalise(theirs.reason)
    )
    # Postfix 3.10+ adds tls= (smtp_log_tls_feature_status; 3.7 has none):
    # every service here is at level none, decided in smtp_helo() unless the
    # greeting already failed.
    assert line["tls"] == ("none?" if name == "probe refused at greeting" else "none")


def test_the_reference_itself(reference: Reference) -> None:
    # What Postfix 3.7 logs for each case: the status words ...
    words = {name: reference.result(name).status for name in CASES}
    assert words == {
        "probe accepted": "deliverable",
        "probe rejected": "undeliverable",
        "probe deferred": "undeliverable",
        "probe refused at greeting": "undeliverable",
        "probe under soft_bounce": "undeliverable",
        "message under soft_bounce": "SOFTBOUNCE",
        "quoted recipient": "sent",
        "quoted recipient, internal form": "sent",
        "quoted original recipient": "sent",
        "quoted original recipient, internal form": "sent",
        "quoted probe": "undeliverable",
        "filter: bounce to deferral": "deferred",
        "filter: deferral to bounce": "bounced",
        "filter: new success text": "sent",
        "filter: wrong kind of status": "bounced",
        "filter: probe": "undeliverable",
    }
    # ... the address forms (info_log_address_format) ...
    forms = {name: (reference.result(name).rcpt, reference.result(name).orig) for name in CASES}
    assert forms["quoted recipient"] == ('"john doe"@log6.test', None)
    assert forms["quoted recipient, internal form"] == ("john doe@log7.test", None)
    assert forms["quoted original recipient"] == ("bob@log8.test", '"mary smith"@log8.test')
    assert forms["quoted original recipient, internal form"] == (
        "bob@log9.test",
        "mary smith@log9.test",
    )
    # ... and what the delivery status filter made of the replies
    assert [reference.result(f"filter: {c}").dsn for c in ("bounce to deferral", "probe")] == [
        "4.7.1",
        "4.7.1",
    ]
    assert reference.result("filter: new success text").reason.startswith("filtered: 250 ")


def test_filter_result_of_the_wrong_kind_is_a_warning(
    deliverer: Deliverer, reference: Reference
) -> None:
    # dsn_filter.c dsn_filter_lookup(): msg_warn("%s: bad status code: %s", title, result)
    report = ours(deliverer, reference, "filter: wrong kind of status")
    warning = "smtp_delivery_status_filter: bad status code: 2.0.0 a success for a bounce"
    assert f"warning: {warning}" in reference.postfix.log()
    assert f"warning: {warning}" in report.events
