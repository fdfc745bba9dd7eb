"""``smtp_log_tls_feature_status``: the ``tls=`` field of Postfix 3.10+ delivery log lines.

The expected values follow Postfix 3.11's source (no 3.11 is installed to
compare with): smtp_connect.c smtp_get_effective_tls_level() activates the
features for every server tried, smtp_proto.c smtp_helo() and
smtp_start_tls() decide them, global/pol_stats.c pol_stats_format() renders
them (``name``, ``name:final``, ``!`` for a violation, ``?`` when
undecided) and global/log_adhoc.c prints ``tls=...`` between ``delays=``
and ``dsn=``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pyfix_smtp.delivery import Action
from pyfix_smtp.delivery.effects import TlsEstablished, TlsFailed
from pyfix_smtp.delivery.state import TlsStats
from pyfix_smtp.dns.records import TlsaRecord
from pyfix_smtp.protocol.envelope import Envelope
from pyfix_smtp.status import Failure
from tests.test_delivery_support import (
    EHLO,
    EHLO_TLS,
    GREETING,
    World,
    config,
    deliver,
    happy,
    request,
    transaction,
)

READY = ("S", b"220 2.0.0 Ready to start TLS\r\n")
OLD = 1_000_000.0 - 3600
REQUIRETLS_EHLO = b"250-mx1.example.net\r\n250-PIPELINING\r\n250-DSN\r\n250 REQUIRETLS\r\n"
HANDSHAKE_FAILED = TlsFailed(Failure("4.7.5", "Cannot start TLS: handshake failure"), "SSLError")


def chain(name: str) -> tuple[bytes, ...]:
    cert = trustme.CA().issue_cert(name)
    return tuple(
        x509.load_pem_x509_certificate(blob.bytes()).public_bytes(Encoding.DER)
        for blob in cert.cert_chain_pems
    )


def established(name: str = "mx1.example.net", verified: bool | None = None) -> TlsEstablished:
    return TlsEstablished(chain(name), "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, verified)


def one_mx() -> World:
    return World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")


def starttls(result: object, after: bytes | None = EHLO) -> list[tuple[object, ...]]:
    steps: list[tuple[object, ...]] = [("S", GREETING), ("S", EHLO_TLS), READY, ("TLS", result)]
    if after is not None:
        steps += [("S", after), *transaction()]
    return steps


def requiretls() -> Envelope:
    return Envelope("sender@example.org", ["rcpt@example.net"], requiretls=True)


@dataclass(frozen=True)
class Case:
    """A server script (None: the connection is refused), settings and the expected result."""

    script: list[tuple[object, ...]] | None
    action: Action
    tls: str | None
    level: str = "none"
    settings: dict[str, object] = field(default_factory=dict)
    options: dict[str, object] = field(default_factory=dict)


NOT_AVAILABLE = ("S", b"454 4.7.0 TLS not available\r\n")
NOT_VERIFIED = TlsFailed(Failure("4.7.5", "Server certificate not verified"), "verify failed")
STS = "inline:{{example.net=secure policy_type=sts mx_host_pattern=mx9.example.net}}"
REQ: dict[str, object] = {"envelope": requiretls()}
RELAYED, DEFERRED, BOUNCED = Action.RELAYED, Action.DEFERRED, Action.BOUNCED

CASES: dict[str, Case] = {
    "none, plaintext": Case(happy(), RELAYED, "none"),
    "may, no STARTTLS offered": Case(happy(), RELAYED, "may:none", "may"),
    "may, TLS": Case(starttls(established()), RELAYED, "may", "may"),
    "may, STARTTLS refused": Case(
        [("S", GREETING), ("S", EHLO_TLS), NOT_AVAILABLE, *transaction()],
        RELAYED,
        "may:none",
        "may",
    ),
    "may, handshake failure": Case(starttls(HANDSHAKE_FAILED, None), DEFERRED, "may?", "may"),
    "may, handshake failure, plaintext retry": Case(
        [*starttls(HANDSHAKE_FAILED, None), ("S", GREETING), ("S", EHLO_TLS), *transaction()],
        RELAYED,
        "may:none",
        "may",
        options={"arrival": OLD},
    ),
    "encrypt, STARTTLS not offered": Case(
        [("S", GREETING), ("S", EHLO)], DEFERRED, "!encrypt", "encrypt"
    ),
    "encrypt, STARTTLS refused": Case(
        [("S", GREETING), ("S", EHLO_TLS), NOT_AVAILABLE], DEFERRED, "!encrypt", "encrypt"
    ),
    "verify, verified": Case(starttls(established(verified=True)), RELAYED, "verify", "verify"),
    "verify, wrong name": Case(
        starttls(established("wrong.example", verified=True), None), DEFERRED, "!verify", "verify"
    ),
    "verify, OpenSSL refused the chain": Case(
        starttls(NOT_VERIFIED, None), DEFERRED, "!verify", "verify"
    ),
    "connection refused": Case(None, DEFERRED, "none?"),
    "421 greeting": Case([("S", b"421 4.3.2 go away\r\n")], DEFERRED, "may?", "may"),
    "policy lookup error": Case(
        happy(),
        DEFERRED,
        "unknown?",
        settings={"smtp_tls_policy_maps": "inline:{{example.net=bogus}}"},
    ),
    "MTA-STS MX name mismatch": Case(
        happy(), DEFERRED, "secure?", settings={"smtp_tls_policy_maps": STS}
    ),
    "TLS-Required: no": Case(
        happy(), RELAYED, "may:none", "encrypt", options={"tls_required_no": True}
    ),
    "not logged": Case(
        starttls(established()),
        RELAYED,
        None,
        "may",
        settings={"smtp_log_tls_feature_status": False},
    ),
    # REQUIRETLS (smtp_requiretls_policy: enforce by default)
    "REQUIRETLS, level may": Case(
        happy(), BOUNCED, "may?/!requiretls:nocertmatch", "may", options=REQ
    ),
    "REQUIRETLS, level none, opportunistic": Case(
        happy(),
        BOUNCED,
        "none?/!requiretls:noencryption",
        settings={"smtp_requiretls_policy": "opportunistic+starttls"},
        options=REQ,
    ),
    "REQUIRETLS offered": Case(
        starttls(established(verified=True), REQUIRETLS_EHLO),
        RELAYED,
        "verify/requiretls",
        "verify",
        options=REQ,
    ),
    "REQUIRETLS not offered": Case(
        [*starttls(established(verified=True), None), ("S", EHLO)],
        BOUNCED,
        "verify/!requiretls:none",
        "verify",
        options=REQ,
    ),
    "REQUIRETLS, STARTTLS not offered": Case(
        [("S", GREETING), ("S", EHLO)],
        BOUNCED,
        "!verify/!requiretls:nostarttls",
        "verify",
        options=REQ,
    ),
    "REQUIRETLS, certificate mismatch": Case(
        starttls(established("wrong.example", verified=True), None),
        BOUNCED,
        "!verify/!requiretls:nocertmatch",
        "verify",
        options=REQ,
    ),
    "REQUIRETLS opportunistic, plaintext": Case(
        happy(),
        RELAYED,
        "may:none/requiretls:none",
        "may",
        settings={"smtp_requiretls_policy": "opportunistic"},
        options=REQ,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tls_feature_status(case: str) -> None:
    c = CASES[case]
    world = one_mx()
    if c.script is None:
        world.refuse("192.0.2.1", 25)
    else:
        world.server("192.0.2.1", 25, c.script)
    cfg = config(smtp_tls_security_level=c.level, **c.settings)
    report = deliver(request(cfg=cfg, **c.options), world)  # type: ignore[arg-type]
    (outcome,) = report.outcomes
    line = outcome.log_line()
    assert (outcome.action, outcome.tls) == (c.action, c.tls), line
    if c.tls is None:
        assert ", tls=" not in line
    else:
        # log_adhoc(): after delays=, before dsn=
        assert re.search(rf", delays=[\d./]+, tls={re.escape(c.tls)}, dsn={outcome.status}, ", line)


def test_cached_sessions_keep_the_activated_status_undecided() -> None:
    # smtp_reuse_session(): a session found by its nexthop label comes before
    # any smtp_get_effective_tls_level() call: nothing active, no tls= field;
    # one found by its endpoint comes after it: activated, never decided.
    rset = ("S", b"250 2.0.0 Ok\r\n")
    for level, second in (("none", None), ("may", "may?")):
        world = one_mx()
        world.server("192.0.2.1", 25, [*happy(), rset, *transaction()])
        cfg = config(smtp_tls_security_level=level)
        first = deliver(request(cfg=cfg, connection_cache=True), world).outcomes[0]
        again = deliver(request(cfg=cfg, connection_cache=True), world).outcomes[0]
        assert (first.tls, again.tls, again.conn_use) == (
            f"{level}:none" if level == "may" else "none",
            second,
            2,
        )


@pytest.mark.parametrize(
    ("steps", "text"),
    [
        ([], None),
        ([("activate", 0, "may")], "may?"),
        ([("activate", 0, "may"), ("decide", 0, "may", True)], "may"),
        ([("activate", 0, "dane"), ("decide", 0, "encrypt", True)], "dane:encrypt"),
        ([("activate", 0, "verify"), ("decide", 0, "verify", False)], "!verify"),
        ([("activate", 1, "requiretls"), ("activate", 0, "secure")], "secure?/requiretls?"),
        ([("activate", 0, "may"), ("revert",), ("activate", 0, "none")], "none?"),
    ],
)
def test_pol_stats_format(steps: list[tuple[object, ...]], text: str | None) -> None:
    stats = TlsStats()
    for step in steps:
        if step[0] == "activate":
            stats.activate(step[1], step[2])  # type: ignore[arg-type]
        elif step[0] == "decide":
            stats.decide(step[1], step[2], compliant=step[3])  # type: ignore[arg-type]
        else:
            stats.revert()
    assert stats.text == text


@pytest.mark.parametrize(("authentic_mx", "initial"), [(True, "dane"), (False, "halfdane")])
def test_unusable_tlsa_records_are_a_dane_downgrade(authentic_mx: bool, initial: str) -> None:
    # tls_client.c tls_client_start(): "all TLSA records unusable, fallback to
    # unauthenticated TLS" lowers the context's level to encrypt after
    # smtp_get_effective_tls_level() activated dane (halfdane: insecure MX).
    world = World().mx("example.net", (10, "mx1.example.net"), authentic=authentic_mx)
    world.a("mx1.example.net", "192.0.2.1", authentic=True)
    short = TlsaRecord(3, 1, 1, b"\x01" * 20)  # a SHA-256 digest of the wrong length
    world.answer("_25._tcp.mx1.example.net", "TLSA", (short,), authentic=True)
    world.server("192.0.2.1", 25, starttls(established()))
    cfg = config(smtp_tls_security_level="dane", smtp_dns_support_level="dnssec")
    (outcome,) = deliver(request(cfg=cfg), world).outcomes
    assert (outcome.action, outcome.tls) == (Action.RELAYED, f"{initial}:encrypt")
