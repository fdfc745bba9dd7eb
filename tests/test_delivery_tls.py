"""STARTTLS, certificate checks, plaintext fallback, REQUIRETLS and SMTPUTF8 in the core."""

from __future__ import annotations

import functools

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pyfix_smtp.delivery import Action
from pyfix_smtp.delivery.effects import (
    Close,
    Connect,
    IoFailure,
    IoFailureKind,
    StartTls,
    TlsEstablished,
    TlsFailed,
)
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

MX1 = "mx1.example.net[192.0.2.1]"
MX2 = "mx2.example.net[192.0.2.2]"
READY = b"220 2.0.0 Ready to start TLS\r\n"
OLD = 1_000_000.0 - 3600  # arrived an hour before the world's clock


@functools.cache
def chain(name: str) -> tuple[bytes, ...]:
    """A certificate chain (leaf first, DER) for *name*, from a throwaway CA."""
    ca = trustme.CA()
    cert = ca.issue_cert(name)
    return tuple(
        x509.load_pem_x509_certificate(blob.bytes()).public_bytes(Encoding.DER)
        for blob in cert.cert_chain_pems
    )


def established(name: str = "mx1.example.net", verified: bool | None = None) -> TlsEstablished:
    return TlsEstablished(chain(name), "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, verified)


def two_mx() -> World:
    return (
        World()
        .mx("example.net", (10, "mx1.example.net"), (20, "mx2.example.net"))
        .a("mx1.example.net", "192.0.2.1")
        .a("mx2.example.net", "192.0.2.2")
    )


def one_mx() -> World:
    return World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")


def tls_happy(
    name: str = "mx1.example.net", verified: bool | None = None
) -> list[tuple[object, ...]]:
    return [
        ("S", GREETING),
        ("S", EHLO_TLS),
        ("S", READY),
        ("TLS", established(name, verified)),
        ("S", EHLO),
        *transaction(),
    ]


def test_starttls_at_may_then_ehlo_again() -> None:
    world = one_mx()
    srv = world.server("192.0.2.1", 25, tls_happy())
    cfg = config(smtp_tls_security_level="may", smtp_tls_loglevel="1")
    report = deliver(request(cfg=cfg), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert srv.text.startswith(
        "EHLO client.example.org\r\nSTARTTLS\r\nEHLO client.example.org\r\nMAIL FROM:"
    )
    assert (
        f"Untrusted TLS connection established to {MX1}:25: TLSv1.3 with cipher"
        " TLS_AES_256_GCM_SHA384 (256/256 bits)" in report.events
    )
    (start,) = world.of(StartTls)
    assert start.policy.level.text == "may"  # type: ignore[attr-defined]


@pytest.mark.parametrize("loglevel", ["0", "1", "2"])
def test_smtp_tls_loglevel_decides_the_tls_lines(loglevel: str) -> None:
    # Postfix tls_client_start()/tls_log_summary(): 0 logs no TLS line of its
    # own, 1 the summary, 2 also the set-up lines before the handshake.
    world = one_mx()
    world.server("192.0.2.1", 25, tls_happy())
    cfg = config(smtp_tls_security_level="may", smtp_tls_loglevel=loglevel)
    report = deliver(request(cfg=cfg), world)
    assert report.outcomes[0].action is Action.RELAYED
    summary = [e for e in report.events if "TLS connection established" in e]
    setup = [e for e in report.events if e == f"setting up TLS connection to {MX1}:25"]
    assert (len(setup), len(summary)) == {"0": (0, 0), "1": (0, 1), "2": (1, 1)}[loglevel]


def test_loglevel_0_still_logs_why_a_must_match_certificate_failed() -> None:
    world = one_mx()
    world.server("192.0.2.1", 25, tls_happy(verified=False))
    cfg = config(smtp_tls_security_level="verify")  # smtp_tls_loglevel = 0
    report = deliver(request(cfg=cfg), world)
    assert report.outcomes[0].status == "4.7.5"
    assert report.events == (f"certificate check for {MX1}:25: not verified by OpenSSL",)


def test_may_without_starttls_goes_on_in_plaintext() -> None:
    world = one_mx()
    world.server("192.0.2.1", 25, happy())
    report = deliver(request(cfg=config(smtp_tls_security_level="may")), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert world.of(StartTls) == []


def test_may_with_starttls_refused_goes_on_in_plaintext() -> None:
    world = one_mx()
    srv = world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO_TLS),
            ("S", b"454 4.7.0 TLS not available\r\n"),
            *transaction(),
        ],
    )
    report = deliver(request(cfg=config(smtp_tls_security_level="may")), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert "STARTTLS\r\nMAIL FROM:" in srv.text


def test_encrypt_without_starttls_is_4_7_4_and_next_mx() -> None:
    world = two_mx()
    mx1 = world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO)])
    world.server("192.0.2.2", 25, tls_happy("mx2.example.net"))
    report = deliver(request(cfg=config(smtp_tls_security_level="encrypt")), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert f"TLS is required, but was not offered by host {MX1}" in report.events
    assert mx1.text.endswith("QUIT\r\n")
    # at the final server it defers
    world = one_mx()
    world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO)])
    (outcome,) = deliver(request(cfg=config(smtp_tls_security_level="encrypt")), world).outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.7.4")


def test_encrypt_with_starttls_refused_uses_the_servers_status() -> None:
    world = one_mx()
    world.server(
        "192.0.2.1",
        25,
        [("S", GREETING), ("S", EHLO_TLS), ("S", b"454 4.7.0 TLS not available\r\n")],
    )
    (outcome,) = deliver(request(cfg=config(smtp_tls_security_level="encrypt")), world).outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.7.0")
    assert outcome.reason == (
        f"TLS is required, but host {MX1} refused to start TLS: 454 4.7.0 TLS not available"
    )


def test_handshake_failure_is_4_7_5_and_next_mx_without_quit() -> None:
    world = two_mx()
    failed = TlsFailed(Failure("4.7.5", "Cannot start TLS: handshake failure"), "SSLError: x")
    mx1 = world.server(
        "192.0.2.1", 25, [("S", GREETING), ("S", EHLO_TLS), ("S", READY), ("TLS", failed)]
    )
    world.server("192.0.2.2", 25, tls_happy("mx2.example.net"))
    report = deliver(request(cfg=config(smtp_tls_security_level="encrypt")), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert "Cannot start TLS: handshake failure" in report.events
    assert mx1.text == "EHLO client.example.org\r\nSTARTTLS\r\n"
    assert mx1.closes == [True]


@pytest.mark.parametrize(
    "result",
    [
        pytest.param(established("wrong.example.com", verified=True), id="name-mismatch"),
        pytest.param(established("mx1.example.net", verified=False), id="untrusted"),
        pytest.param(
            TlsFailed(Failure("4.7.5", "Server certificate not verified"), "verify failed"),
            id="openssl-refused",
        ),
    ],
)
def test_certificate_not_verified_is_4_7_5(result: object) -> None:
    world = one_mx()
    world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO_TLS), ("S", READY), ("TLS", result)])
    (outcome,) = deliver(request(cfg=config(smtp_tls_security_level="verify")), world).outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.7.5")
    assert outcome.reason == "Server certificate not verified"


@pytest.mark.parametrize("skip_quit_response", [True, False])
def test_certificate_refused_quit_goes_over_tls_from_the_machine(skip_quit_response: bool) -> None:
    # smtp_connect.c: smtp_helo() failed in smtp_start_tls(), smtp_quit();
    # smtp_session_free() then ends the TLS session normally (not an abort).
    world = one_mx()
    steps: list[tuple[object, ...]] = [
        ("S", GREETING),
        ("S", EHLO_TLS),
        ("S", READY),
        ("TLS", established("wrong.example.com", verified=True)),
    ]
    if not skip_quit_response:
        steps.append(("S", b"221 2.0.0 Bye\r\n"))  # awaited
    mx1 = world.server("192.0.2.1", 25, steps)
    cfg = config(smtp_tls_security_level="verify", smtp_skip_quit_response=skip_quit_response)
    (outcome,) = deliver(request(cfg=cfg), world).outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.7.5")
    assert mx1.text == "EHLO client.example.org\r\nSTARTTLS\r\nQUIT\r\n"
    assert mx1.closes == [False]
    assert mx1.done


def test_verified_certificate_delivers() -> None:
    world = one_mx()
    world.server("192.0.2.1", 25, tls_happy(verified=True))
    cfg = config(smtp_tls_security_level="verify", smtp_tls_loglevel="1")
    report = deliver(request(cfg=cfg), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert any(e.startswith("Verified TLS connection established") for e in report.events)


def test_policy_table_skip_counts_toward_the_address_limit() -> None:
    world = (
        World()
        .mx(
            "example.net",
            (10, "mx1.example.net"),
            (20, "mx2.example.net"),
            (30, "mx3.example.net"),
        )
        .a("mx1.example.net", "192.0.2.1")
        .a("mx2.example.net", "192.0.2.2")
        .a("mx3.example.net", "192.0.2.3")
    )
    world.refuse("192.0.2.2", 25)
    mx3 = world.server("192.0.2.3", 25, tls_happy("mx3.example.net", verified=True))
    cfg = config(
        smtp_mx_address_limit=2,
        smtp_tls_policy_maps="inline:{{example.net=secure policy_type=sts"
        " mx_host_pattern=mx2.example.net mx_host_pattern=mx3.example.net}}",
    )
    report = deliver(request(cfg=cfg), world)
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.4.1")
    assert mx3.connections == 0
    assert [e.endpoint.address for e in world.of(Connect)] == ["192.0.2.2"]  # type: ignore[attr-defined]
    assert any("does not match the MTA-STS policy" in e for e in report.events)


# -- plaintext fallback -------------------------------------------------------------------


def failing_tls_then_plain() -> list[tuple[object, ...]]:
    failed = TlsFailed(Failure("4.7.5", "Cannot start TLS: handshake failure"), "SSLError")
    return [("S", GREETING), ("S", EHLO_TLS), ("S", READY), ("TLS", failed)]


def test_plaintext_fallback_after_handshake_failure_retries_the_same_address() -> None:
    world = one_mx()
    srv = world.server(
        "192.0.2.1",
        25,
        [*failing_tls_then_plain(), ("S", GREETING), ("S", EHLO_TLS), *transaction()],
    )
    cfg = config(smtp_tls_security_level="may", smtp_mx_address_limit=1)
    report = deliver(request(cfg=cfg, arrival=OLD), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert [e.endpoint.address for e in world.of(Connect)] == ["192.0.2.1", "192.0.2.1"]  # type: ignore[attr-defined]
    assert srv.text.count("STARTTLS") == 1  # TLS is off for the retry


def test_no_plaintext_fallback_for_a_new_message() -> None:
    world = one_mx()
    world.server("192.0.2.1", 25, failing_tls_then_plain())
    report = deliver(request(cfg=config(smtp_tls_security_level="may")), world)
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.7.5")
    assert len(world.of(Connect)) == 1


def test_plaintext_fallback_for_an_address_probe_even_when_new() -> None:
    world = one_mx()
    world.server(
        "192.0.2.1",
        25,
        [
            *failing_tls_then_plain(),
            ("S", GREETING),
            ("S", EHLO),
            ("S", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n"),
        ],
    )
    report = deliver(request(cfg=config(smtp_tls_security_level="may"), verify_probe=True), world)
    (outcome,) = report.outcomes
    assert outcome.action is Action.RELAYED
    assert outcome.reason == "250 2.1.5 Ok"  # address verification stops at RCPT


def test_no_plaintext_fallback_at_encrypt() -> None:
    world = one_mx()
    world.server("192.0.2.1", 25, failing_tls_then_plain())
    cfg = config(smtp_tls_security_level="encrypt")
    (outcome,) = deliver(request(cfg=cfg, arrival=OLD), world).outcomes
    assert outcome.status == "4.7.5"
    assert len(world.of(Connect)) == 1


def test_no_plaintext_fallback_with_sasl_credentials() -> None:
    world = one_mx()
    world.server("192.0.2.1", 25, failing_tls_then_plain())
    cfg = config(
        smtp_tls_security_level="may",
        smtp_sasl_auth_enable=True,
        smtp_sasl_password_maps="inline:{{example.net=user:secret}}",
    )
    (outcome,) = deliver(request(cfg=cfg, arrival=OLD), world).outcomes
    assert outcome.status == "4.7.5"
    assert len(world.of(Connect)) == 1


def test_plaintext_fallback_after_a_failure_inside_the_tls_session() -> None:
    world = one_mx()
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO_TLS),
            ("S", READY),
            ("TLS", established()),
            ("S", EHLO),
            ("RESET",),
            ("S", GREETING),
            ("S", EHLO_TLS),
            *transaction(),
        ],
    )
    report = deliver(request(cfg=config(smtp_tls_security_level="may"), arrival=OLD), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert len(world.of(StartTls)) == 1
    assert len(world.of(Connect)) == 2


# -- REQUIRETLS ---------------------------------------------------------------------------------


def requiretls_envelope() -> Envelope:
    return Envelope("sender@example.org", ["rcpt@example.net"], requiretls=True)


def test_requiretls_enforce_needs_a_certificate_matching_level() -> None:
    world = two_mx()
    world.server("192.0.2.1", 25, happy())
    report = deliver(
        request(envelope=requiretls_envelope(), cfg=config(smtp_tls_security_level="may")), world
    )
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status) == (Action.BOUNCED, "5.7.10")
    assert "disables certificate matching" in outcome.reason
    assert world.of(Connect) == []


def test_requiretls_starttls_not_offered_is_soft_at_a_non_final_mx() -> None:
    cfg = config(smtp_tls_security_level="verify")
    world = two_mx()
    world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO)])
    world.server("192.0.2.2", 25, [("S", GREETING), ("S", EHLO)])
    report = deliver(request(envelope=requiretls_envelope(), cfg=cfg), world)
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status) == (Action.BOUNCED, "5.7.30")
    assert outcome.reason == (
        f"Sender requested REQUIRETLS, but TLS service was not offered by host {MX2}"
    )
    assert (
        f"Sender requested REQUIRETLS, but TLS service was not offered by host {MX1}"
        in report.events
    )


def test_requiretls_server_without_requiretls_after_starttls() -> None:
    cfg = config(smtp_tls_security_level="verify")
    world = one_mx()
    world.server("192.0.2.1", 25, tls_happy(verified=True)[:5])
    (outcome,) = deliver(request(envelope=requiretls_envelope(), cfg=cfg), world).outcomes
    assert (outcome.action, outcome.status) == (Action.BOUNCED, "5.7.30")
    assert "no server was found that supports REQUIRETLS" in outcome.reason


def test_requiretls_sent_when_offered() -> None:
    cfg = config(smtp_tls_security_level="verify")
    world = one_mx()
    srv = world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO_TLS),
            ("S", READY),
            ("TLS", established(verified=True)),
            ("S", b"250-mx1.example.net\r\n250-PIPELINING\r\n250-DSN\r\n250 REQUIRETLS\r\n"),
            *transaction(),
        ],
    )
    report = deliver(request(envelope=requiretls_envelope(), cfg=cfg), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert "MAIL FROM:<sender@example.org> REQUIRETLS\r\n" in srv.text


def test_requiretls_certificate_mismatch_is_soft_at_a_non_final_mx() -> None:
    cfg = config(smtp_tls_security_level="verify")
    world = two_mx()
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO_TLS),
            ("S", READY),
            ("TLS", established("wrong.example", verified=True)),
        ],
    )
    world.server(
        "192.0.2.2",
        25,
        [
            ("S", GREETING),
            ("S", EHLO_TLS),
            ("S", READY),
            ("TLS", established("wrong.example", verified=True)),
        ],
    )
    report = deliver(request(envelope=requiretls_envelope(), cfg=cfg), world)
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status) == (Action.BOUNCED, "5.7.10")
    assert outcome.reason.startswith("Sender requested REQUIRETLS, but no matching server")
    assert len(world.of(Connect)) == 2


def test_tls_required_no_caps_the_level() -> None:
    world = one_mx()
    world.server("192.0.2.1", 25, happy())
    cfg = config(smtp_tls_security_level="encrypt")
    report = deliver(request(cfg=cfg, tls_required_no=True), world)
    assert report.outcomes[0].action is Action.RELAYED


# -- SMTPUTF8 ----------------------------------------------------------------------------------


def utf8_envelope() -> Envelope:
    return Envelope("sender@example.org", ["jösé@example.net"], smtputf8=True)


def test_smtputf8_required_but_not_offered_is_soft_at_non_final_servers() -> None:
    world = two_mx()
    mx1 = world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO)])
    world.server("192.0.2.2", 25, [("S", GREETING), ("S", EHLO)])
    report = deliver(request(envelope=utf8_envelope()), world)
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status) == (Action.BOUNCED, "5.6.7")
    assert outcome.reason == (
        "message requires SMTPUTF8, but no server was found that supports SMTPUTF8."
        f" The last attempted server was {MX2}"
    )
    assert mx1.text == "EHLO client.example.org\r\nQUIT\r\n"


def test_smtputf8_offered_delivers() -> None:
    world = one_mx()
    srv = world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", b"250-mx1.example.net\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n"),
            *transaction(),
        ],
    )
    report = deliver(request(envelope=utf8_envelope()), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert "RCPT TO:<jösé@example.net>" in srv.text
    assert "SMTPUTF8" in srv.text.splitlines()[1]


def test_wrapper_mode_starts_tls_before_the_greeting() -> None:
    world = World()
    srv = world.server(
        "192.0.2.9",
        465,
        [("TLS", established("192.0.2.9")), ("S", GREETING), ("S", EHLO), *transaction()],
    )
    cfg = config(smtp_tls_security_level="encrypt", smtp_tls_wrappermode=True)
    report = deliver(request(cfg=cfg, nexthop="[192.0.2.9]:465"), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert srv.text.startswith("EHLO client.example.org\r\nMAIL FROM:")
    assert isinstance(world.effects[world.effects.index(world.of(StartTls)[0]) - 1], Connect)


def test_handshake_io_failure_counts_as_handshake_failure() -> None:
    world = one_mx()
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO_TLS),
            ("S", READY),
            ("TLS", IoFailure(IoFailureKind.TIMEOUT, "timed out")),
        ],
    )
    (outcome,) = deliver(request(cfg=config(smtp_tls_security_level="encrypt")), world).outcomes
    assert outcome.reason == "Cannot start TLS: handshake failure"
    assert world.of(Close) == [Close(abort=True)]


# -- MTA-STS (beyond Postfix) ----------------------------------------------------------------


def test_mta_sts_enforce_skips_unlisted_mx_hosts_and_requires_a_valid_certificate() -> None:
    from pyfix_smtp.delivery.effects import FetchedPolicy, FetchStsPolicy
    from pyfix_smtp.dns.records import TxtRecord
    from pyfix_smtp.tls.stscache import MemoryStsCache

    world = two_mx()
    world.answer("_mta-sts.example.net", "TXT", (TxtRecord((b"v=STSv1; id=20240101",)),))
    world.sts["example.net"] = FetchedPolicy(
        b"version: STSv1\nmode: enforce\nmx: mx2.example.net\nmax_age: 86400\n"
    )
    mx1 = world.server("192.0.2.1", 25, tls_happy())
    world.server("192.0.2.2", 25, tls_happy("mx2.example.net", verified=True))
    cache = MemoryStsCache()
    cfg = config(smtp_tls_security_level="may")
    report = deliver(request(cfg=cfg, mta_sts=True, sts_cache=cache), world)
    assert report.outcomes[0].relay == f"{MX2}:25"
    assert mx1.connections == 0
    (fetch,) = world.of(FetchStsPolicy)
    assert fetch.domain == "example.net"  # type: ignore[attr-defined]
    (start,) = world.of(StartTls)
    assert start.policy.level.text == "secure"  # type: ignore[attr-defined]
    assert len(cache) == 1


def test_mta_sts_is_off_unless_asked_for() -> None:
    from pyfix_smtp.delivery.effects import FetchStsPolicy
    from pyfix_smtp.tls.stscache import MemoryStsCache

    world = one_mx()
    world.server("192.0.2.1", 25, happy())
    report = deliver(request(sts_cache=MemoryStsCache()), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert world.of(FetchStsPolicy) == []


@pytest.mark.parametrize(
    ("tls_required_no", "requiretls", "overrides", "fetched"),
    [
        (False, False, {}, True),
        (True, False, {}, False),  # TLS-Required: no switches MTA-STS off
        (True, True, {}, True),  # ... unless the sender requested REQUIRETLS
        (True, True, {"requiretls_enable": False}, False),  # REQUIRETLS not honoured
        (True, False, {"tls_required_enable": False}, True),  # header ignored
    ],
)
def test_mta_sts_lookup_follows_postfix_state_tls_not_required(
    tls_required_no: bool, requiretls: bool, overrides: dict[str, object], fetched: bool
) -> None:
    # Postfix smtp.h STATE_TLS_NOT_REQUIRED(): the header counts only with
    # tls_required_enable, and not when REQUIRETLS was requested and enabled.
    from pyfix_smtp.delivery.effects import FetchStsPolicy
    from pyfix_smtp.dns.records import TxtRecord
    from pyfix_smtp.tls.stscache import MemoryStsCache

    world = two_mx()
    world.answer("_mta-sts.example.net", "TXT", (TxtRecord((b"v=STSv1; id=20240101",)),))
    envelope = Envelope("sender@example.org", ["rcpt@example.net"], requiretls=requiretls)
    cfg = config(smtp_tls_security_level="may", **overrides)
    deliver(
        request(
            cfg=cfg,
            envelope=envelope,
            tls_required_no=tls_required_no,
            mta_sts=True,
            sts_cache=MemoryStsCache(),
        ),
        world,
    )
    assert bool(world.of(FetchStsPolicy)) is fetched


def test_policies_remembered_for_a_literal_nexthop_follow_tls_required_no() -> None:
    # Policies of a literal nexthop's servers are kept across deliveries with
    # the same Config; TLS-Required: no must still change the outcome.
    cfg = config(smtp_tls_security_level="encrypt")
    outcomes = []
    for tls_required_no in (False, True, False, True):
        world = World()
        world.server("192.0.2.1", 25, happy())
        report = deliver(
            request(cfg=cfg, nexthop="[192.0.2.1]", tls_required_no=tls_required_no), world
        )
        outcomes.append((report.outcomes[0].action, report.outcomes[0].status))
    deferred = (Action.DEFERRED, "4.7.4")
    relayed = (Action.RELAYED, "2.0.0")
    assert outcomes == [deferred, relayed, deferred, relayed]
