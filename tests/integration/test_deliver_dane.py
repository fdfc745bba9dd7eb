"""DANE end to end: signed DNS → MX/address plan → TLSA → STARTTLS to Postfix smtpd → delivery.

Every case delivers through the public API (sync and asyncio) to a nexthop
``DOMAIN:P`` of the ``tls_lab`` (NSD + validating unbound): the MX, A and
``_P._tcp`` TLSA records come from the lab zones, and every MX host is the
Postfix smtpd peer (STARTTLS with the lab certificate) on port ``P``. The
client must find the records, decide the policy (smtp_tls_policy.c
``dane_init()``), check the certificate after the handshake (tls_dane.c,
OpenSSL DANE) and then deliver or skip the host, with Postfix's status and
text for each recipient.

The reference is Postfix itself: a private smtp(8) client (Debian's 3.7,
chrooted so the libc resolver asks the same lab resolver, see
:mod:`tests.peers.postfix_client`) delivers the same cases, and pyfix_smtp
must log the same relay, DSN, status and reason and the same TLS summary
("Verified TLS connection established ..."). Where 3.11 differs from 3.7 the
expected value is 3.11's, with the source cited (:data:`POSTFIX_311`).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pyfix_smtp import Action, Config, DeliveryReport, Envelope
from tests.peers import require_peer
from tests.peers.delivery import MYHOSTNAME, check_outcomes
from tests.peers.dns import BOGUS, SIGNED, UNSIGNED
from tests.peers.postfix_client import PostfixClient, start_postfix_client
from tests.peers.tls_lab import (
    BAD_TLSA,
    DANE,
    DANE_TA,
    DANE_TA_NAME,
    HALF_DANE,
    TLSA_FAIL,
    UNUSABLE,
    LabDeliverer,
    TlsLab,
)

pytestmark = pytest.mark.peers

LEVELS = ("dane", "dane-only")
SENDER = "sender@example.org"
# Both clients send IPv4 only, so the relay (the address tried) is the same.
BASE = Config(
    myhostname=MYHOSTNAME,
    smtp_dns_support_level="dnssec",  # DANE needs it (smtp_tls_policy.c dane_init())
    inet_protocols="ipv4",
    smtp_helo_timeout=10,
    smtp_tls_loglevel="1",  # the summary line the tests read (the reference clients use 1 too)
)


@dataclass(frozen=True)
class Expect:
    """Postfix 3.11's outcome: status word, DSN, relay host (None: none) and reason."""

    status: str  # sent, deferred, bounced
    dsn: str
    host: str | None  # the MX host that answered, or None for relay=none
    reason: str  # a regular expression; PORT stands for the lab port
    tls: str | None = None  # the TLS summary's first word, when a handshake was made


SENT = r"250 2\.0\.0 Ok: queued as \w+"
NOT_VERIFIED = "Server certificate not verified"  # smtp_proto.c smtp_start_tls()


def sent(host: str, tls: str) -> Expect:
    return Expect("sent", "2.0.0", host, SENT, tls)


def skipped(reason: str) -> Expect:
    """The host is skipped before connecting (smtp_connect.c smtp_connect_remote())."""
    return Expect("deferred", "4.7.5", None, re.escape(reason))


def unverified(host: str, tls: str) -> Expect:
    return Expect("deferred", "4.7.5", host, NOT_VERIFIED, tls)


#: case -> (nexthop domain, {level: expected})
CASES: dict[str, tuple[str, dict[str, Expect]]] = {
    # usable TLSA, matched: "Verified" (tls_client.c verify_x509(): SECURED)
    "DANE-EE 3 1 1 matches": (DANE, dict.fromkeys(LEVELS, sent(f"mx.{DANE}", "Verified"))),
    "DANE-TA 2 0 1 matches through the CA": (
        DANE_TA,
        dict.fromkeys(LEVELS, sent(f"mta-sts.{SIGNED}", "Verified")),
    ),
    "first MX has TLSA, second is dead": (
        SIGNED,
        dict.fromkeys(LEVELS, sent(f"mx.{SIGNED}", "Verified")),
    ),
    # usable TLSA, not matched: 4.7.5 and no plaintext (never a downgrade)
    "wrong 3 1 1 digest": (
        BAD_TLSA,
        dict.fromkeys(LEVELS, unverified(f"mx.{BAD_TLSA}", "Untrusted")),
    ),
    "DANE-TA, MX name not in the certificate": (
        DANE_TA_NAME,
        # Postfix 3.11 tls_client.c verify_x509(): a chain whose only error is
        # the name is "Trusted" (3.7 logs "Untrusted").
        dict.fromkeys(LEVELS, unverified(f"mx.{DANE_TA_NAME}", "Trusted")),
    ),
    # dane_init(): what the TLSA lookup found decides the level
    "only PKIX-TA (usage 0) records: unusable": (
        UNUSABLE,
        {
            "dane": sent(f"mx.{UNUSABLE}", "Trusted"),  # -> encrypt; our CAfile trusts it
            "dane-only": skipped("TLSA records unusable"),
        },
    ),
    "signed zone without TLSA": (
        f"nomx.{SIGNED}",
        {
            "dane": sent(f"nomx.{SIGNED}", "Trusted"),  # -> may
            "dane-only": skipped("no TLSA records found"),
        },
    ),
    "TLSA lookup fails (SERVFAIL)": (
        TLSA_FAIL,
        dict.fromkeys(LEVELS, skipped(f"TLSA lookup error for mx.{TLSA_FAIL}:PORT")),
    ),
    "unsigned zone": (
        UNSIGNED,
        {"dane": sent(f"mx.{UNSIGNED}", "Trusted"), "dane-only": skipped("non DNSSEC destination")},
    ),
    "insecure MX, signed host with TLSA (halfdane)": (
        HALF_DANE,
        {
            # smtp_tls_dane_insecure_mx_policy = dane: "halfdane", enforced
            # but never logged "Verified" (TLS_NEVER_SECURED)
            "dane": sent(f"mx.{DANE}", "Trusted"),
            "dane-only": skipped("non DNSSEC destination"),
        },
    ),
    "bogus zone: the MX lookup fails": (
        BOGUS,
        dict.fromkeys(
            LEVELS,
            Expect(
                "deferred",
                "4.4.3",
                None,
                re.escape(
                    "Host or domain name not found. Name service error for"
                    f" name={BOGUS} type=MX: Host not found, try again"
                ),
            ),
        ),
    ),
}
SERVICES = {"dane": "dane", "dane-only": "daneonly"}  # Postfix master.cf service names


def route_domain(case: str, level: str) -> str:
    """The recipient domain that routes *case* at *level* in the Postfix client."""
    return f"c{list(CASES).index(case)}-{SERVICES[level]}.test"


def message(tag: str) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: dane@example.test\r\nSubject: DANE {tag}\r\n"
        f"Message-ID: <{tag}@example.org>\r\n\r\nOver DANE.\r\n"
    ).encode()


def config(lab: TlsLab, level: str) -> Config:
    return BASE.replace(smtp_tls_security_level=level, smtp_tls_CAfile=str(lab.certs.ca_pem))


def tls_summary(report: DeliveryReport) -> str | None:
    """``"<trust> <version>"`` of the first TLS connection, as Postfix logs it."""
    for event in report.events:
        match = re.match(r"(\w+) TLS connection established to \S+: (\S+) with cipher", event)
        if match:
            return f"{match[1]} {match[2]}"
    return None


Outcome = tuple[str, str, str, str]  # relay, dsn, status, reason


@dataclass
class Ours:
    """One delivery by pyfix_smtp: the outcome and the TLS summary."""

    outcome: Outcome
    tls: str | None


def normalise(reason: str) -> str:
    return re.sub(r"queued as \w+", "queued as X", reason)


#: (mode, case, level) -> our result, so the Postfix comparison reuses the delivery
RESULTS: dict[tuple[str, str, str], Ours] = {}


def deliver(deliverer: LabDeliverer, lab: TlsLab, case: str, level: str) -> Ours:
    """Deliver *case* at *level* (once per mode) and check what the server stored."""
    key = (deliverer.mode, case, level)
    if key in RESULTS:
        return RESULTS[key]
    domain, expected = CASES[case]
    tag = uuid.uuid4().hex
    rcpt = f"dane-{tag}@example.test"
    report = deliverer(
        Envelope(SENDER, [rcpt]),
        message(tag),
        lab.nexthop(domain),
        config(lab, level),
        dns=lab.dns,
    )
    done = expected[level].status == "sent"
    copies = lab.arrived(tag, [rcpt]) if done else lab.stored(tag)
    (outcome,) = check_outcomes(report, [rcpt], copies).values()
    result = Ours(
        (outcome.relay, outcome.status, outcome.action.log_status, outcome.reason),
        tls_summary(report),
    )
    if done:
        assert outcome.action is Action.RELAYED
        assert b"with ESMTPS id" in copies[rcpt]  # it arrived over TLS
    RESULTS[key] = result
    return result


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("case", list(CASES))
def test_dane_outcome(lab_deliverer: LabDeliverer, tls_lab: TlsLab, case: str, level: str) -> None:
    ours = deliver(lab_deliverer, tls_lab, case, level)
    expect = CASES[case][1][level]
    relay, dsn, status, reason = ours.outcome
    assert (status, dsn) == (expect.status, expect.dsn), ours
    host = "none" if expect.host is None else f"{expect.host}[127.0.0.1]:{tls_lab.port}"
    assert relay == host
    assert re.fullmatch(expect.reason.replace("PORT", str(tls_lab.port)), reason), reason
    if expect.tls is None:
        assert ours.tls is None  # skipped before any connection
    else:
        assert ours.tls is not None
        assert ours.tls.split()[0] == expect.tls


@pytest.fixture(scope="module")
def postfix_dane(tls_lab: TlsLab) -> Iterator[PostfixClient]:
    """Postfix smtp(8) delivers every case once, through the lab resolver."""
    if tls_lab.resolver_address is None:
        require_peer("no loopback address with port 53 free for the Postfix client's resolver")
    routes = {
        route_domain(case, level): f"{SERVICES[level]}:{tls_lab.nexthop(domain)}"
        for case, (domain, _) in CASES.items()
        for level in LEVELS
    }
    client = start_postfix_client(
        services={name: {"smtp_tls_security_level": level} for level, name in SERVICES.items()},
        routes=routes,
        main_cf={
            "smtp_dns_support_level": "dnssec",
            "smtp_tls_CAfile": str(tls_lab.certs.ca_pem),
            "dnssec_probe": "",
        },
        resolver=tls_lab.resolver_address,
    )
    try:
        recipients = [f"dane@{domain}" for domain in routes]
        client.submit(SENDER, recipients, message("postfix"))
        client.wait(recipients)
        yield client
    finally:
        client.stop()


#: Where Postfix 3.11 logs otherwise than the 3.7 reference: case -> TLS summary.
POSTFIX_311 = {
    # tls_client.c verify_x509() (3.11): only a hostname mismatch -> "Trusted".
    "DANE-TA, MX name not in the certificate": "Trusted TLSv1.3",
}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("case", list(CASES))
def test_dane_same_as_postfix(
    lab_deliverer: LabDeliverer,
    tls_lab: TlsLab,
    postfix_dane: PostfixClient,
    case: str,
    level: str,
) -> None:
    ours = deliver(lab_deliverer, tls_lab, case, level)
    (theirs,) = postfix_dane.results()[f"dane@{route_domain(case, level)}"]
    relay, dsn, status, reason = ours.outcome
    assert (relay, dsn, status, normalise(reason)) == (
        theirs.relay,
        theirs.dsn,
        theirs.status,
        normalise(theirs.reason),
    )
    expected = POSTFIX_311.get(case) or (theirs.tls[0] if theirs.tls else None)
    assert ours.tls == expected


@pytest.mark.parametrize("level", LEVELS)
def test_no_plaintext_fallback_after_a_dane_failure(
    lab_deliverer: LabDeliverer, tls_lab: TlsLab, level: str
) -> None:
    # smtp.h PLAINTEXT_FALLBACK_OK_*: only at level "may". A TLSA mismatch
    # stays 4.7.5 even for a message much older than minimal_backoff_time,
    # for which a "may" failure would be retried in plaintext.
    tag = uuid.uuid4().hex
    rcpt = f"dane-{tag}@example.test"
    report = lab_deliverer(
        Envelope(SENDER, [rcpt]),
        message(tag),
        tls_lab.nexthop(BAD_TLSA),
        config(tls_lab, level),
        dns=tls_lab.dns,
        arrival=time.time() - 3600,
    )
    (outcome,) = check_outcomes(report, [rcpt], tls_lab.stored(tag)).values()
    assert (outcome.action, outcome.status, outcome.reason) == (
        Action.DEFERRED,
        "4.7.5",
        NOT_VERIFIED,
    )
    handshakes = [e for e in report.events if " TLS connection established to " in e]
    assert len(handshakes) == 1  # one attempt, no retry
