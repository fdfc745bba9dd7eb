"""Fingerprint pinning, plaintext fallback and ``TLS-Required: no``, end to end.

* ``fingerprint``: the Postfix smtpd peer (lab certificate) is pinned by
  ``smtp_tls_fingerprint_cert_match`` (certificate or public-key digest,
  ``smtp_tls_fingerprint_digest``); a match is "Verified", no match is 4.7.5
  "Server certificate not verified" (smtp_proto.c smtp_start_tls()).
* Plaintext fallback at ``may`` (Postfix smtp.h ``PLAINTEXT_FALLBACK_OK_*``):
  after a failed handshake, or after a connection lost once TLS was up, the
  same server is tried again without TLS -- but only for a message that
  waited at least ``minimal_backoff_time`` before this attempt (never on the
  first attempt), or for an address verification probe, and never at
  ``encrypt``.
* ``TLS-Required: no`` (RFC 8689 §5; Postfix 3.11 smtp_tls_policy.c
  ``policy_create()``): no policy lookup, the level capped at ``may``
  (``encrypt`` with ``smtp_tls_wrappermode``), DANE not used -- unless the
  sender requested REQUIRETLS (smtp.h ``STATE_TLS_NOT_REQUIRED``).

The fingerprint and fallback cases are compared with a private Postfix
smtp(8) (:mod:`tests.peers.postfix_client`) delivering to the same servers:
same relay, DSN, status and reason, and the same TLS summary. For the
fallback, Postfix's message sits in the hold queue for a second first (with
``minimal_backoff_time = 1s`` on that service); ours gets an ``arrival``
301 s in the past. Probes are ``sendmail -bv`` there, ``verify_probe=True``
here. ``TLS-Required`` needs Postfix 3.10+, so those cases assert 3.11's
documented outcome.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pyfix_smtp import Action, Config, DeliveryReport, Envelope
from pyfix_smtp.testing import Command, Disconnect, Response, Script, SinkServer
from tests.peers.certs import LabCerts
from tests.peers.delivery import MYHOSTNAME, Deliverer, check_outcomes, wait_for
from tests.peers.postfix import PostfixSmtpd
from tests.peers.postfix_client import PostfixClient, PostfixResult, start_postfix_client
from tests.peers.tls_lab import BAD_TLSA, LabDeliverer, TlsLab, stored_copies

pytestmark = pytest.mark.peers

SENDER = "sender@example.org"
BASE = Config(
    myhostname=MYHOSTNAME, smtp_helo_timeout=10, smtp_starttls_timeout=10, smtp_tls_loglevel="1"
)
WRONG = "AB" * 32  # a SHA-256 fingerprint of nothing


def colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02X}" for b in digest)


def fingerprints(certs: LabCerts) -> dict[str, dict[str, str]]:
    """Fingerprint case -> smtp(8) settings (the same for Postfix and for us)."""
    leaf = x509.load_der_x509_certificate(certs.leaf_der)
    spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    cert256 = colon_hex(hashlib.sha256(certs.leaf_der).digest())
    match = "smtp_tls_fingerprint_cert_match"
    return {
        "certificate SHA-256": {match: cert256},
        "public key SHA-256": {match: hashlib.sha256(spki).hexdigest()},  # plain hex works too
        "certificate SHA-1": {
            "smtp_tls_fingerprint_digest": "sha1",
            match: colon_hex(hashlib.sha1(certs.leaf_der).digest()),
        },
        "second of two": {match: f"{WRONG},{cert256}"},
        "no match": {match: WRONG},
    }


def lost_under_tls(command: Command) -> Response:
    """Drop the connection at MAIL FROM, but only inside TLS."""
    return Disconnect() if command.session.tls else None


#: fallback case -> the server's script
FALLBACK_SERVERS: dict[str, dict[str, Script]] = {
    # 220 to STARTTLS, then close: the handshake fails (smtp_start_tls())
    "handshake fails": {"STARTTLS": Disconnect("220 2.0.0 Ready to start TLS")},
    # TLS is up, then the connection is lost (smtp_trouble.c smtp_stream_except())
    "connection lost under TLS": {"MAIL": lost_under_tls},
}
#: attempt -> (Postfix service, our level, how the message is submitted)
ATTEMPTS = {
    "first attempt": ("may", "may", "fresh"),
    "old message": ("mayold", "may", "held"),
    "old message, encrypt": ("encold", "encrypt", "held"),
    "address probe": ("may", "may", "probe"),
}
SERVICES = {
    "may": {"smtp_tls_security_level": "may"},
    "mayold": {"smtp_tls_security_level": "may", "minimal_backoff_time": "1s"},
    "encold": {"smtp_tls_security_level": "encrypt", "minimal_backoff_time": "1s"},
}


@dataclass
class Reference:
    """The Postfix client's results and the servers it delivered to."""

    postfix: PostfixClient
    fallback_servers: dict[str, SinkServer]
    routes: dict[tuple[str, str], str]  # (case, variant) -> recipient

    def result(self, case: str, variant: str) -> PostfixResult:
        return self.postfix.results()[self.routes[case, variant]][-1]


@pytest.fixture(scope="module")
def reference(postfix_smtpd: PostfixSmtpd, lab_certs: LabCerts) -> Iterator[Reference]:
    """Postfix smtp(8) delivers every fingerprint and fallback case once."""
    servers = {
        name: SinkServer(starttls=True, script=script).start()
        for name, script in FALLBACK_SERVERS.items()
    }
    services = dict(SERVICES)
    transport: dict[str, str] = {}
    recipients: dict[tuple[str, str], str] = {}
    for i, (case, settings) in enumerate(fingerprints(lab_certs).items()):
        services[f"fp{i}"] = {"smtp_tls_security_level": "fingerprint", **settings}
        transport[f"fp{i}.test"] = f"fp{i}:[127.0.0.1]:{postfix_smtpd.starttls_port}"
        recipients[case, "fingerprint"] = f"bob@fp{i}.test"
    for i, (case, server) in enumerate(servers.items()):
        for j, (attempt, (service, _, _)) in enumerate(ATTEMPTS.items()):
            domain = f"fb{i}a{j}.test"
            transport[domain] = f"{service}:{server.nexthop}"
            recipients[case, attempt] = f"bob@{domain}"
    try:
        postfix = start_postfix_client(services=services, routes=transport)
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    try:
        by_kind: dict[str, list[str]] = {"fresh": [], "held": [], "probe": []}
        for (_, variant), rcpt in recipients.items():
            kind = "fresh" if variant == "fingerprint" else ATTEMPTS[variant][2]
            by_kind[kind].append(rcpt)
        held_at = time.monotonic()
        postfix.submit(SENDER, by_kind["held"], message("held"), hold=True)
        postfix.submit(SENDER, by_kind["fresh"], message("fresh"))
        for rcpt in by_kind["probe"]:
            postfix.submit(SENDER, [rcpt], verify=True)
        postfix.wait(by_kind["fresh"] + by_kind["probe"])
        time.sleep(max(0.0, held_at + 1.2 - time.monotonic()))  # > minimal_backoff_time
        postfix.release()
        postfix.wait(by_kind["held"])
        yield Reference(postfix, servers, recipients)
    finally:
        postfix.stop()
        for server in servers.values():
            server.stop()


def message(tag: str) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: bob@example.test\r\nSubject: TLS levels {tag}\r\n"
        "Date: Wed, 25 Nov 2026 12:00:00 +0000\r\n"
        f"Message-ID: <{tag}@example.org>\r\n\r\nHello.\r\n"
    ).encode()


def normalise(reason: str) -> str:
    return re.sub(r"queued as \w+", "queued as X", reason)


def tls_summaries(report: DeliveryReport) -> tuple[str, ...]:
    found = (
        re.match(r"(\w+) TLS connection established to \S+: (\S+) with cipher", e)
        for e in report.events
    )
    return tuple(f"{m[1]} {m[2]}" for m in found if m)


def same_as_postfix(report: DeliveryReport, theirs: PostfixResult) -> None:
    (outcome,) = report.outcomes
    assert (outcome.relay, outcome.status, normalise(outcome.reason)) == (
        theirs.relay,
        theirs.dsn,
        normalise(theirs.reason),
    )


# -- fingerprint -------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        "certificate SHA-256",
        "public key SHA-256",
        "certificate SHA-1",
        "second of two",
        "no match",
    ],
)
def test_fingerprint(
    deliverer: Deliverer,
    postfix_smtpd: PostfixSmtpd,
    lab_certs: LabCerts,
    reference: Reference,
    case: str,
) -> None:
    tag = uuid.uuid4().hex
    rcpt = f"fp-{tag}@example.test"
    settings = fingerprints(lab_certs)[case]
    cfg = BASE.replace(smtp_tls_security_level="fingerprint", **settings)
    report = deliverer(
        Envelope(SENDER, [rcpt]), message(tag), f"[127.0.0.1]:{postfix_smtpd.starttls_port}", cfg
    )
    matched = case != "no match"
    if matched:
        wait_for(lambda: rcpt in stored_copies(postfix_smtpd, tag), what=f"mail {tag}")
    (outcome,) = check_outcomes(report, [rcpt], stored_copies(postfix_smtpd, tag)).values()
    if matched:
        assert (outcome.action, outcome.status) == (Action.RELAYED, "2.0.0")
        assert tls_summaries(report)[0].startswith("Verified ")
    else:
        assert (outcome.action, outcome.status, outcome.reason) == (
            Action.DEFERRED,
            "4.7.5",
            "Server certificate not verified",
        )
        assert tls_summaries(report)[0].startswith("Untrusted ")
    theirs = reference.result(case, "fingerprint")
    same_as_postfix(report, theirs)
    assert tls_summaries(report) == theirs.tls


# -- plaintext fallback ------------------------------------------------------

#: (case, attempt) -> (status, TLS used for the delivered message, reason)
FALLBACK_EXPECTED = {
    ("handshake fails", "first attempt"): ("4.7.5", None, "Cannot start TLS: handshake failure"),
    ("handshake fails", "old message"): ("2.0.0", False, None),
    ("handshake fails", "old message, encrypt"): (
        "4.7.5",
        None,
        "Cannot start TLS: handshake failure",
    ),
    ("handshake fails", "address probe"): ("2.1.5", None, None),
    ("connection lost under TLS", "first attempt"): (
        "4.4.2",
        None,
        "lost connection with 127.0.0.1[127.0.0.1] while sending MAIL FROM",
    ),
    ("connection lost under TLS", "old message"): ("2.0.0", False, None),
    ("connection lost under TLS", "old message, encrypt"): (
        "4.4.2",
        None,
        "lost connection with 127.0.0.1[127.0.0.1] while sending MAIL FROM",
    ),
    ("connection lost under TLS", "address probe"): ("2.1.5", None, None),
}


@pytest.mark.parametrize("attempt", list(ATTEMPTS))
@pytest.mark.parametrize("case", list(FALLBACK_SERVERS))
def test_plaintext_fallback(
    deliverer: Deliverer, reference: Reference, case: str, attempt: str
) -> None:
    server = reference.fallback_servers[case]
    _, level, kind = ATTEMPTS[attempt]
    before = len(server.messages)
    rcpt = "bob@example.net"
    report = deliverer(
        Envelope(SENDER, [rcpt]),
        message(uuid.uuid4().hex),
        server.nexthop,
        BASE.replace(smtp_tls_security_level=level),
        arrival=time.time() - 301 if kind == "held" else None,  # minimal_backoff_time 300s
        verify_probe=kind == "probe",
    )
    new = server.messages[before:]
    status, tls, reason = FALLBACK_EXPECTED[case, attempt]
    accepted = [r for m in new for r in m.recipients]
    if kind == "probe":  # RCPT only: what the server accepted is in its sessions
        accepted = [rcpt] if any(f"RCPT TO:<{rcpt}>" in s.commands for s in server.sessions) else []
    (outcome,) = check_outcomes(report, [rcpt], accepted).values()
    assert outcome.status == status
    assert outcome.relay == f"127.0.0.1[127.0.0.1]:{server.port}"
    if reason is not None:
        assert (outcome.action, outcome.reason) == (Action.DEFERRED, reason)
    if tls is not None:
        (received,) = new
        assert received.tls is tls  # the retry went without STARTTLS
    if kind == "probe":
        assert new == []  # RCPT only
    same_as_postfix(report, reference.result(case, attempt))


def test_probe_is_logged_deliverable(deliverer: Deliverer, reference: Reference) -> None:
    server = reference.fallback_servers["handshake fails"]
    report = deliverer(
        Envelope(SENDER, ["bob@example.net"]),
        message(uuid.uuid4().hex),
        server.nexthop,
        BASE,
        verify_probe=True,
    )
    theirs = reference.result("handshake fails", "address probe")
    assert theirs.status == "deliverable"
    (outcome,) = report.outcomes
    assert f", status={theirs.status} (" in outcome.log_line()


# -- TLS-Required: no --------------------------------------------------------


@pytest.mark.parametrize("header", [False, True])
def test_tls_required_no_caps_the_level_at_may(deliverer: Deliverer, header: bool) -> None:
    rcpt = "bob@example.net"
    with SinkServer() as server:  # no STARTTLS
        report = deliverer(
            Envelope(SENDER, [rcpt]),
            message(uuid.uuid4().hex),
            server.nexthop,
            BASE.replace(smtp_tls_security_level="verify"),
            tls_required_no=header,
        )
        (outcome,) = check_outcomes(
            report, [rcpt], [r for m in server.messages for r in m.recipients]
        ).values()
    if header:
        assert outcome.action is Action.RELAYED
        assert server.messages[0].tls is False
    else:  # smtp_proto.c smtp_helo(): required TLS not offered
        assert (outcome.action, outcome.status, outcome.reason) == (
            Action.DEFERRED,
            "4.7.4",
            "TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]",
        )


def test_tls_required_no_ignores_dane(lab_deliverer: LabDeliverer, tls_lab: TlsLab) -> None:
    # The TLSA record of mx.badtlsa does not match (4.7.5 at dane, see
    # test_deliver_dane.py); with the header DANE is not used at all.
    tag = uuid.uuid4().hex
    rcpt = f"trn-{tag}@example.test"
    report = lab_deliverer(
        Envelope(SENDER, [rcpt]),
        message(tag),
        tls_lab.nexthop(BAD_TLSA),
        BASE.replace(
            smtp_tls_security_level="dane",
            smtp_dns_support_level="dnssec",
            smtp_tls_CAfile=str(tls_lab.certs.ca_pem),
            inet_protocols="ipv4",
        ),
        dns=tls_lab.dns,
        tls_required_no=True,
    )
    copies = tls_lab.arrived(tag, [rcpt])
    (outcome,) = check_outcomes(report, [rcpt], copies).values()
    assert outcome.relay == f"mx.{BAD_TLSA}[127.0.0.1]:{tls_lab.port}"
    assert tls_summaries(report)[0].startswith("Trusted ")  # may: labelled, not enforced


def test_tls_required_no_with_wrappermode_caps_at_encrypt(deliverer: Deliverer) -> None:
    # policy_create(): with smtp_tls_wrappermode the cap is encrypt, not may.
    # The server's CA is unknown to us: "verify" fails, "encrypt" delivers.
    rcpt = "bob@example.net"
    cfg = BASE.replace(smtp_tls_security_level="verify", smtp_tls_wrappermode=True)
    with SinkServer(implicit_tls=True) as server:
        refused = deliverer(Envelope(SENDER, [rcpt]), message("v"), server.nexthop, cfg)
        (outcome,) = check_outcomes(refused, [rcpt], []).values()
        assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.7.5")
        report = deliverer(
            Envelope(SENDER, [rcpt]), message("e"), server.nexthop, cfg, tls_required_no=True
        )
        (outcome,) = check_outcomes(report, [rcpt], [rcpt]).values()
        assert outcome.action is Action.RELAYED
        assert server.messages[0].tls
        assert tls_summaries(report)[0].startswith("Untrusted ")


def test_requiretls_overrides_tls_required_no(deliverer: Deliverer) -> None:
    # smtp.h STATE_TLS_NOT_REQUIRED(): the header counts only without
    # REQUIRETLS. The policy for an IP literal is opportunistic, so only the
    # configured level (verify) requires TLS here: 4.7.4, as without header.
    rcpt = "bob@example.net"
    with SinkServer() as server:
        report = deliverer(
            Envelope(SENDER, [rcpt], requiretls=True),
            message(uuid.uuid4().hex),
            server.nexthop,
            BASE.replace(smtp_tls_security_level="verify"),
            tls_required_no=True,
        )
        (outcome,) = check_outcomes(report, [rcpt], []).values()
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.7.4")
    assert server.messages == []
