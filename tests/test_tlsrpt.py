"""TLSRPT (RFC 8460): libtlsrpt's datagrams, result types, and when the core reports."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from pyfix_smtp.delivery import Action
from pyfix_smtp.delivery.effects import Connect, IoFailure, IoFailureKind, Resolve, TlsFailed
from pyfix_smtp.dns.records import Answer, Query, Rcode, TlsaRecord, TxtRecord
from pyfix_smtp.status import Failure
from pyfix_smtp.tls.tlsrpt import (
    PolicyType,
    ResultType,
    TlsrptFailure,
    TlsrptPolicy,
    TlsrptResult,
    failure_for_verify_error,
    find_policy_record,
    policy_query,
)
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
from tests.test_delivery_tls import READY, chain, established, one_mx, tls_happy

RECORD = "v=TLSRPTv1; rua=mailto:tlsrpt@example.net"

# -- datagrams: what libtlsrpt (sys4/libtlsrpt c7901a2, 0.5.1rc2) sent ---------------------
#
# Captured from libtlsrpt.c compiled here, driven through its public API with the
# inputs below, and received on a UNIX datagram socket.

LIBTLSRPT_DANE_FAILURE = (
    b'{"dpv": "1","d": "example.net","pr": "v=TLSRPTv1; rua=mailto:tlsrpt@example.net",'
    b'"policies":[{"policy-type":1,"policy-domain": "mx1.example.net",'
    b'"policy-string":["3 1 1 0A1B","2 0 1 FF"],"failure-details":[{"c":203,'
    b'"s": "192.0.2.200","n": "mx1.example.net",'
    b'"h": "250-mx1.example.net \\"q\\" \\\\ \\t\\u0001\\u007f\xc3\xa9\\r\\n250 STARTTLS",'
    b'"r": "192.0.2.1","f": "self-signed_certificate"}],"t":1,"f":1}]}'
)
LIBTLSRPT_STS_SUCCESS = (
    b'{"dpv": "1","d": "example.net","pr": "v=TLSRPTv1;rua=mailto:a@example.net",'
    b'"policies":[{"policy-type":2,"policy-domain": "example.net",'
    b'"policy-string":["version: STSv1","mode: enforce"],'
    b'"mx-host":["*.example.net","mx.example.org"],"t":0,"f":0}]}'
)
LIBTLSRPT_NO_POLICY_FAILURE = (
    b'{"dpv": "1","d": "example.net","pr": "v=TLSRPTv1; rua=mailto:a@example.net",'
    b'"policies":[{"policy-type":9,"policy-domain": "example.net",'
    b'"failure-details":[{"c":201,"n": "mx1.example.net","r": "192.0.2.1"}],"t":1,"f":1}]}'
)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            TlsrptResult(
                "example.net",
                RECORD,
                TlsrptPolicy(PolicyType.TLSA, "mx1.example.net", ("3 1 1 0A1B", "2 0 1 FF")),
                "mx1.example.net",
                "192.0.2.1",
                TlsrptFailure(
                    ResultType.CERTIFICATE_NOT_TRUSTED,
                    sending_mta_ip="192.0.2.200",
                    receiving_mx_hostname="mx1.example.net",
                    receiving_mx_helo='250-mx1.example.net "q" \\ \t\x01\x7f\u00e9\r\n250 STARTTLS',
                    receiving_ip="192.0.2.1",
                    failure_reason_code="self-signed_certificate",
                ),
            ),
            LIBTLSRPT_DANE_FAILURE,
        ),
        (
            TlsrptResult(
                "example.net",
                "v=TLSRPTv1;rua=mailto:a@example.net",
                TlsrptPolicy(
                    PolicyType.STS,
                    "example.net",
                    ("version: STSv1", "mode: enforce"),
                    ("*.example.net", "mx.example.org"),
                ),
            ),
            LIBTLSRPT_STS_SUCCESS,
        ),
        (
            TlsrptResult(
                "example.net",
                "v=TLSRPTv1; rua=mailto:a@example.net",
                TlsrptPolicy(PolicyType.NO_POLICY_FOUND, "example.net"),
                failure=TlsrptFailure(
                    ResultType.STARTTLS_NOT_SUPPORTED,
                    receiving_mx_hostname="mx1.example.net",
                    receiving_ip="192.0.2.1",
                ),
            ),
            LIBTLSRPT_NO_POLICY_FAILURE,
        ),
    ],
    ids=["dane-failure", "sts-success", "no-policy-failure"],
)
def test_datagram_is_byte_for_byte_libtlsrpt(result: TlsrptResult, expected: bytes) -> None:
    assert result.datagram() == expected


def test_datagram_is_what_tlsrpt_collectd_reads() -> None:
    # tlsrpt-collectd: json.loads(), then d, pr, policies[*] with f, t, failure-details
    data = json.loads(LIBTLSRPT_DANE_FAILURE)
    (policy,) = data["policies"]
    assert (data["dpv"], data["d"], data["pr"]) == ("1", "example.net", RECORD)
    assert (policy["f"], policy["t"], len(policy["failure-details"])) == (1, 1, 1)
    assert policy["failure-details"][0]["h"].endswith("\u00e9\r\n250 STARTTLS")


@settings(max_examples=200)
@given(
    domain=st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z]{2,5}){1,2}", fullmatch=True),
    text=st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    strings=st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=10), max_size=3),
    fail=st.booleans(),
)
def test_datagram_is_valid_json_with_every_value(
    domain: str, text: str, strings: list[str], fail: bool
) -> None:
    failure = TlsrptFailure(ResultType.VALIDATION_FAILURE, receiving_mx_helo=text) if fail else None
    result = TlsrptResult(
        domain,
        text or RECORD,
        TlsrptPolicy(PolicyType.STS, domain, tuple(strings)),
        failure=failure,
    )
    data = json.loads(result.datagram())
    (policy,) = data["policies"]
    assert data["pr"] == (text or RECORD)
    assert policy.get("policy-string", []) == strings
    assert (policy["t"], policy["f"]) == ((1, 1) if fail else (0, 0))
    if fail:
        assert policy["failure-details"] == [{"c": 205, "h": text}]


def test_types_carry_rfc_8460_names_and_libtlsrpt_numbers() -> None:
    assert [(p.value, p.code) for p in PolicyType] == [
        ("tlsa", 1),
        ("sts", 2),
        ("no-policy-found", 9),
    ]
    codes = {r.value: r.code for r in ResultType}
    assert codes == {
        "starttls-not-supported": 201,
        "certificate-host-mismatch": 202,
        "certificate-not-trusted": 203,
        "certificate-expired": 204,
        "validation-failure": 205,
        "sts-policy-fetch-error": 301,
        "sts-policy-invalid": 302,
        "sts-webpki-invalid": 303,
        "tlsa-invalid": 304,
        "dnssec-invalid": 305,
        "dane-required": 306,
    }
    assert ResultType.STARTTLS_NOT_SUPPORTED.log_name == "starttls_not_supported"


def test_no_policy_found_carries_no_strings() -> None:
    with pytest.raises(ValueError, match="no-policy-found"):
        TlsrptPolicy(PolicyType.NO_POLICY_FOUND, "example.net", ("x",))


def test_log_lines_are_postfix_trw_report_lines() -> None:
    policy = TlsrptPolicy(PolicyType.NO_POLICY_FOUND, "example.net")
    ok = TlsrptResult("example.net", RECORD, policy, "mx1.example.net", "192.0.2.1")
    assert ok.log_line() == (
        "TLSRPT: status=success, domain=example.net, receiving_mx=mx1.example.net[192.0.2.1]"
    )
    bad = TlsrptResult(
        "example.net",
        RECORD,
        policy,
        "mx1.example.net",
        "192.0.2.1",
        TlsrptFailure(ResultType.VALIDATION_FAILURE, failure_reason_code="tls-handshake-failure"),
    )
    assert bad.log_line() == (
        "TLSRPT: status=failure, domain=example.net, receiving_mx=mx1.example.net[192.0.2.1],"
        " failure_type=validation_failure, failure_reason=tls-handshake-failure"
    )


# -- the policy record (Postfix smtp_tlsrpt_find_policy()) ----------------------------------


def _txt(*texts: bytes, rcode: Rcode = Rcode.NOERROR) -> Answer:
    records = tuple(TxtRecord((t,)) for t in texts)
    return Answer(Query("_smtp._tls.example.net", "TXT"), rcode, records, detail="boom")


@pytest.mark.parametrize(
    ("answer", "record", "warning"),
    [
        (
            _txt(b"v=TLSRPTv1; rua=mailto:r@example.net"),
            "v=TLSRPTv1; rua=mailto:r@example.net",
            None,
        ),
        (_txt(b"v=TLSRPTv1 \t;rua=x", b"v=spf1 -all"), "v=TLSRPTv1 \t;rua=x", None),
        (_txt(b"v=spf1 -all"), None, None),
        (_txt(rcode=Rcode.NXDOMAIN), None, None),
        (_txt(rcode=Rcode.NODATA), None, None),
        (
            _txt(rcode=Rcode.SERVFAIL),
            None,
            "TLSRPT support: policy lookup failed for example.net: boom",
        ),
        (
            _txt(b"v=TLSRPTv1; rua=a", b"v=TLSRPTv1; rua=b"),
            None,
            "TLSRPT support: Too many TLSRPT policies for example.net",
        ),
        (
            _txt(b"v=TLSRPTv1 rua=a"),
            None,
            'TLSRPT support: ignoring malformed policy for example.net:, "v=TLSRPTv1 rua=a"',
        ),
    ],
)
def test_find_policy_record(answer: Answer, record: str | None, warning: str | None) -> None:
    assert find_policy_record(answer, "example.net") == (record, warning)


def test_policy_query_is_smtp_tls() -> None:
    assert policy_query("example.net") == Query("_smtp._tls.example.net", "TXT", dnssec=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("certificate has expired at depth 0", (ResultType.CERTIFICATE_EXPIRED, None)),
        (
            "certificate is not yet valid",
            (ResultType.VALIDATION_FAILURE, "certificate_is_not_yet_valid"),
        ),
        ("self-signed certificate", (ResultType.VALIDATION_FAILURE, "self-signed_certificate")),
        (
            "self-signed certificate in certificate chain",
            (ResultType.VALIDATION_FAILURE, "self-signed_certificate_in_certificate_chain"),
        ),
        (
            "unable to get local issuer certificate",
            (ResultType.VALIDATION_FAILURE, "unable_to_get_local_issuer_certificate"),
        ),
        (
            "unsupported certificate purpose",
            (ResultType.VALIDATION_FAILURE, "unsupported_certificate_purpose"),
        ),
        (
            "certificate chain too long",
            (ResultType.VALIDATION_FAILURE, "certificate_chain_too_long"),
        ),
        ("certificate not trusted", (ResultType.CERTIFICATE_NOT_TRUSTED, None)),
        ("hostname mismatch", None),  # the SMTP engine decides: host mismatch
        ("no TLSA record matched", None),  # ... or not trusted
    ],
)
def test_verify_errors_map_as_tls_log_verify_error(
    text: str, expected: tuple[ResultType, str | None] | None
) -> None:
    assert failure_for_verify_error(text) == expected


# -- when the core reports (scripted deliveries) --------------------------------------------


def tlsrpt_config(**overrides: object) -> object:
    values: dict[str, object] = {
        "smtp_tls_security_level": "may",
        "smtp_tlsrpt_enable": True,
        "smtp_tlsrpt_socket_name": "run/tlsrpt.sock",
    }
    values.update(overrides)
    return config(**values)


def with_policy(world: World, domain: str = "example.net") -> World:
    world.answer(f"_smtp._tls.{domain}", "TXT", (TxtRecord((RECORD.encode(),)),))
    return world


def lookups(world: World) -> list[str]:
    """The names the core looked up, in order."""
    return [e.query.name for e in world.of(Resolve) if isinstance(e, Resolve)]


def run(world: World, **overrides: object) -> tuple[object, tuple[TlsrptResult, ...]]:
    report = deliver(request(cfg=tlsrpt_config(**overrides)), world)  # type: ignore[arg-type]
    return report, report.tlsrpt


EHLO_TEXT = (
    "250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN"
)


def test_no_policy_success_at_may() -> None:
    world = with_policy(one_mx())
    world.server("192.0.2.1", 25, tls_happy())
    report, (result,) = run(world)
    assert result.success
    assert result.policy == TlsrptPolicy(PolicyType.NO_POLICY_FOUND, "example.net")
    assert (result.domain, result.policy_record) == ("example.net", RECORD)
    assert (result.receiving_mx_hostname, result.receiving_ip) == ("mx1.example.net", "192.0.2.1")
    assert (
        "TLSRPT: status=success, domain=example.net, receiving_mx=mx1.example.net[192.0.2.1]"
        in report.events  # type: ignore[attr-defined]
    )


def test_nothing_without_a_published_policy_and_nothing_when_disabled() -> None:
    world = one_mx()  # no _smtp._tls record: NXDOMAIN
    world.server("192.0.2.1", 25, tls_happy())
    report, results = run(world)
    assert results == ()
    # smtp_connect_inet(): the policy lookup comes before the MX lookup
    assert lookups(world)[0] == "_smtp._tls.example.net"
    world = with_policy(one_mx())
    world.server("192.0.2.1", 25, tls_happy())
    report, results = run(world, smtp_tlsrpt_enable=False)
    assert results == ()
    assert not [n for n in lookups(world) if n.startswith("_smtp._tls.")]
    assert not [e for e in report.events if "TLSRPT" in e]  # type: ignore[attr-defined]


def test_starttls_refused_is_starttls_not_supported_with_the_ehlo_reply() -> None:
    world = with_policy(one_mx())
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO_TLS),
            ("S", b"454 4.7.0 TLS not available\r\n"),
            *transaction(),
        ],
    )
    report, (result,) = run(world)
    assert report.outcomes[0].action is Action.RELAYED  # type: ignore[attr-defined]
    assert result.failure == TlsrptFailure(
        ResultType.STARTTLS_NOT_SUPPORTED,
        sending_mta_ip="192.0.2.200",
        receiving_mx_hostname="mx1.example.net",
        receiving_mx_helo=EHLO_TEXT,
        receiving_ip="192.0.2.1",
    )


def test_starttls_not_offered_reports_only_when_tls_is_required() -> None:
    # smtp_helo(): the report sits in the "TLS required" branch
    world = with_policy(one_mx())
    world.server("192.0.2.1", 25, happy())
    _, results = run(world)
    assert results == ()
    world = with_policy(one_mx())
    world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO)])
    report, (result,) = run(world, smtp_tls_security_level="encrypt")
    assert report.outcomes[0].status == "4.7.4"  # type: ignore[attr-defined]
    assert result.failure is not None
    assert result.failure.result_type is ResultType.STARTTLS_NOT_SUPPORTED


def test_handshake_failure_is_validation_failure_once_then_plaintext_is_silent() -> None:
    world = with_policy(one_mx())
    failed = TlsFailed(Failure("4.7.5", "Cannot start TLS: handshake failure"), "SSLError: boom")
    world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO_TLS), ("S", READY), ("TLS", failed)])
    report, (result,) = run(world)
    assert report.outcomes[0].action is Action.DEFERRED  # type: ignore[attr-defined]
    assert result.failure is not None
    assert (result.failure.result_type, result.failure.failure_reason_code) == (
        ResultType.VALIDATION_FAILURE,
        "tls-handshake-failure",
    )


def test_io_failure_during_the_handshake_is_a_handshake_failure() -> None:
    world = with_policy(one_mx())
    lost = IoFailure(IoFailureKind.EOF, "lost connection")
    world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO_TLS), ("S", READY), ("TLS", lost)])
    _, (result,) = run(world, smtp_tls_security_level="encrypt")
    assert result.failure is not None
    assert result.failure.failure_reason_code == "tls-handshake-failure"


@pytest.mark.parametrize(
    ("name", "verified", "expected"),
    [
        ("other.example.com", True, ResultType.CERTIFICATE_HOST_MISMATCH),
        ("mx1.example.net", False, ResultType.CERTIFICATE_NOT_TRUSTED),
    ],
)
def test_verify_level_certificate_failures(name: str, verified: bool, expected: ResultType) -> None:
    world = with_policy(one_mx())
    world.server("192.0.2.1", 25, tls_happy(name, verified=verified))
    report, (result,) = run(world, smtp_tls_security_level="verify")
    assert report.outcomes[0].status == "4.7.5"  # type: ignore[attr-defined]
    assert result.failure is not None
    assert result.failure.result_type is expected


def test_openssl_refusing_the_chain_maps_its_verify_error() -> None:
    world = with_policy(one_mx())
    refused = TlsFailed(
        Failure("4.7.5", "Server certificate not verified"),
        "certificate verification failed: unable to get local issuer certificate",
    )
    world.server(
        "192.0.2.1", 25, [("S", GREETING), ("S", EHLO_TLS), ("S", READY), ("TLS", refused)]
    )
    _, (result,) = run(world, smtp_tls_security_level="secure")
    assert result.failure is not None
    assert (result.failure.result_type, result.failure.failure_reason_code) == (
        ResultType.VALIDATION_FAILURE,
        "unable_to_get_local_issuer_certificate",
    )


def _spki_digest(name: str) -> bytes:
    leaf = x509.load_der_x509_certificate(chain(name)[0])
    spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def dane_world(records: tuple[TlsaRecord, ...]) -> World:
    world = World().mx("example.net", (10, "mx1.example.net"), authentic=True)
    world.a("mx1.example.net", "192.0.2.1", authentic=True)
    world.answer("_25._tcp.mx1.example.net", "TLSA", records, authentic=True)
    return with_policy(world)


DANE = {"smtp_tls_security_level": "dane", "smtp_dns_support_level": "dnssec"}


def test_dane_success_reports_the_tlsa_policy() -> None:
    digest = _spki_digest("mx1.example.net")
    world = dane_world((TlsaRecord(3, 1, 1, digest),))
    world.server("192.0.2.1", 25, tls_happy())
    report, (result,) = run(world, **DANE)
    assert report.outcomes[0].action is Action.RELAYED  # type: ignore[attr-defined]
    assert result.success
    assert result.policy == TlsrptPolicy(
        PolicyType.TLSA, "mx1.example.net", (f"3 1 1 {digest.hex().upper()}",)
    )


def test_dane_tlsa_mismatch_is_certificate_not_trusted() -> None:
    # Postfix: X509_V_ERR_DANE_NO_MATCH has no case in tls_log_verify_error(),
    # so smtp_start_tls() reports certificate-not-trusted (not validation-failure).
    world = dane_world((TlsaRecord(3, 1, 1, b"\x01" * 32),))
    world.server("192.0.2.1", 25, tls_happy())
    report, (result,) = run(world, **DANE)
    assert report.outcomes[0].status == "4.7.5"  # type: ignore[attr-defined]
    assert result.failure is not None
    assert result.failure.result_type is ResultType.CERTIFICATE_NOT_TRUSTED
    assert result.policy.policy_type is PolicyType.TLSA


def test_unusable_tlsa_records_are_tlsa_invalid_and_nothing_more() -> None:
    world = dane_world((TlsaRecord(3, 1, 1, b"\x01" * 20),))  # wrong digest length
    world.server("192.0.2.1", 25, tls_happy())
    report, results = run(world, **DANE)
    assert report.outcomes[0].action is Action.RELAYED  # type: ignore[attr-defined]
    (result,) = results
    assert result.failure is not None
    assert (result.failure.result_type, result.failure.failure_reason_code) == (
        ResultType.TLSA_INVALID,
        "all-TLSA-records-unusable",
    )


@pytest.mark.parametrize(
    ("settings", "result_type", "reason"),
    [
        # tls_client_start(): at dane-only the server must fail ...
        (
            {**DANE, "smtp_tls_security_level": "dane-only"},
            ResultType.TLSA_INVALID,
            "all-TLSA-records-unusable",
        ),
        # ... and at fingerprint with no usable digest
        (
            {"smtp_tls_security_level": "fingerprint", "smtp_tls_fingerprint_cert_match": "AB:CD"},
            ResultType.VALIDATION_FAILURE,
            "all-fingerprints-unusable",
        ),
    ],
)
def test_unusable_trust_inputs_skip_the_server_with_their_tlsrpt_failure(
    settings: dict[str, str], result_type: ResultType, reason: str
) -> None:
    # Postfix reports these from the handshake; we skip the server before
    # connecting, so the failure carries no sending address or EHLO reply.
    world = dane_world((TlsaRecord(3, 1, 1, b"\x01" * 20),))  # wrong digest length
    report, results = run(world, **settings)
    assert report.outcomes[0].status == "4.7.5"  # type: ignore[attr-defined]
    assert world.of(Connect) == []  # never connected
    (result,) = results
    assert result.failure is not None
    assert (result.failure.result_type, result.failure.failure_reason_code) == (
        result_type,
        reason,
    )
    assert (result.failure.receiving_mx_hostname, result.failure.receiving_ip) == (
        "mx1.example.net",
        "192.0.2.1",
    )
    assert result.failure.sending_mta_ip is None


def _sts_world(mx_pattern: str) -> World:
    from pyfix_smtp.delivery.effects import FetchedPolicy

    world = with_policy(one_mx())
    world.answer("_mta-sts.example.net", "TXT", (TxtRecord((b"v=STSv1; id=1",)),))
    world.sts["example.net"] = FetchedPolicy(
        f"version: STSv1\nmode: enforce\nmx: {mx_pattern}\nmax_age: 86400\n".encode()
    )
    return world


STS_LINES = ("version: STSv1", "mode: enforce", "mx: *.example.net", "max_age: 86400")


def test_mta_sts_success_and_failure() -> None:
    from pyfix_smtp.tls.stscache import MemoryStsCache

    for verified, success in ((True, True), (False, False)):
        world = _sts_world("*.example.net")
        world.server("192.0.2.1", 25, tls_happy(verified=verified))
        cfg = tlsrpt_config()
        report = deliver(request(cfg=cfg, mta_sts=True, sts_cache=MemoryStsCache()), world)  # type: ignore[arg-type]
        (result,) = report.tlsrpt
        assert result.policy == TlsrptPolicy(
            PolicyType.STS, "example.net", STS_LINES, ("*.example.net",)
        )
        assert result.success is success
        if not success:
            assert result.failure is not None
            assert result.failure.result_type is ResultType.CERTIFICATE_NOT_TRUSTED


@pytest.mark.parametrize("skip", [False, True])
def test_resumed_tls_sessions_and_skip_reused_handshakes(skip: bool) -> None:
    # tls_client.c: rpt_reported = session_reused && trw_is_skip_reused_hs()
    base = established()
    resumed = replace(base, session_reused=True)
    world = with_policy(one_mx())
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO_TLS),
            ("S", READY),
            ("TLS", resumed),
            ("S", EHLO),
            *transaction(),
        ],
    )
    report, results = run(world, smtp_tlsrpt_skip_reused_handshakes=skip)
    assert report.outcomes[0].action is Action.RELAYED  # type: ignore[attr-defined]
    assert [r.success for r in results] == ([] if skip else [True])


def test_reused_smtp_connection_reports_nothing() -> None:
    # TLSRPT_README: "There is no TLS handshake, and thus no TLSRPT status
    # logging, when an SMTP connection is reused."
    world = with_policy(one_mx())
    world.server("192.0.2.1", 25, [*tls_happy(), ("S", b"250 2.0.0 Ok\r\n"), *transaction()])
    cfg = tlsrpt_config(
        smtp_connection_cache_destinations=("example.net",), smtp_tls_connection_reuse=True
    )
    first = deliver(request(cfg=cfg, connection_cache=True), world)  # type: ignore[arg-type]
    second = deliver(request(cfg=cfg, connection_cache=True), world)  # type: ignore[arg-type]
    assert [len(first.tlsrpt), len(second.tlsrpt)] == [1, 0]
    assert second.outcomes[0].action is Action.RELAYED


def test_lmtp_reports_nothing_with_postfix_warning() -> None:
    from pyfix_smtp.delivery.options import delivery_options

    world = with_policy(one_mx())
    world.servers.clear()
    world.server("192.0.2.1", 24, tls_happy())
    cfg = tlsrpt_config(protocol="lmtp")
    report = deliver(request(cfg=cfg, nexthop="inet:mx1.example.net:24"), world)  # type: ignore[arg-type]
    assert report.tlsrpt == ()
    assert not [n for n in lookups(world) if n.startswith("_smtp._tls.")]
    opts = delivery_options(cfg)  # type: ignore[arg-type]
    assert opts.tlsrpt_warning == "TLSRPT support is not implemented for LMTP"  # smtp.c pre_init()


def test_disabled_dns_switches_tlsrpt_off_with_postfix_warning() -> None:
    from pyfix_smtp.delivery.options import delivery_options

    opts = delivery_options(tlsrpt_config(smtp_dns_support_level="disabled"))  # type: ignore[arg-type]
    assert (opts.tlsrpt_enable, opts.tlsrpt_warning) == (
        False,
        "Cannot enable TLSRPT support: DNS is disabled",
    )


@pytest.mark.parametrize(
    ("overrides", "kwargs", "looked_up"),
    [
        ({}, {}, True),
        ({"smtp_tls_security_level": "none"}, {}, False),  # main.cf level none
        ({}, {"tls_required_no": True}, False),  # TLS-Required: no
        ({}, {"nexthop": "[192.0.2.1]"}, False),  # an address, not a domain
    ],
)
def test_when_the_policy_is_looked_up(
    overrides: dict[str, object], kwargs: dict[str, object], looked_up: bool
) -> None:
    # smtp_connect_inet(): STATE_TLS_NOT_REQUIRED, var_smtp_tls_level > none, !valid_hostaddr()
    world = with_policy(one_mx())
    world.server("192.0.2.1", 25, happy())
    cfg = tlsrpt_config(**overrides)
    deliver(request(cfg=cfg, **kwargs), world)  # type: ignore[arg-type]
    asked = [n for n in lookups(world) if n.startswith("_smtp._tls.")]
    assert bool(asked) is looked_up


# -- sending (transport/tlsrpt.py) ----------------------------------------------------------


def test_send_results_one_datagram_each_and_warn_on_errors(
    tmp_path: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    import socket as socket_module
    from pathlib import Path

    from pyfix_smtp.transport.tlsrpt import send_results

    policy = TlsrptPolicy(PolicyType.NO_POLICY_FOUND, "example.net")
    results = [
        TlsrptResult("example.net", RECORD, policy),
        TlsrptResult("example.org", RECORD, policy),
    ]
    path = Path(str(tmp_path)) / "c.sock"
    with socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        receiver.settimeout(2)
        assert send_results(str(path), results) == 2
        assert [receiver.recv(65536) for _ in results] == [r.datagram() for r in results]
    assert send_results("", results) == 0  # no socket named: nothing sent, nothing logged
    with caplog.at_level("WARNING", logger="pyfix_smtp.delivery"):
        assert send_results(str(path), results[:1]) == 0  # the collector is gone
    refused = f"{os.strerror(errno.ECONNREFUSED)} (errno {errno.ECONNREFUSED})"
    assert caplog.messages == [
        f"Could not report TLS handshake result to tlsrpt library: {refused}"
    ]


def test_send_results_never_raises_for_text_a_datagram_cannot_carry(
    tmp_path: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # A lone surrogate (from a caller's string or a policy map) cannot be
    # encoded: the result is not sent, with a warning, and the others still go.
    import socket as socket_module
    from pathlib import Path

    from pyfix_smtp.transport.tlsrpt import send_results

    policy = TlsrptPolicy(PolicyType.NO_POLICY_FOUND, "example.net")
    odd = TlsrptFailure(ResultType.STARTTLS_NOT_SUPPORTED, receiving_mx_helo="250 a\ud800b")
    results = [
        TlsrptResult("example.net", RECORD, policy, failure=odd),
        TlsrptResult("example.org", RECORD, policy),
    ]
    path = Path(str(tmp_path)) / "c.sock"
    with socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        receiver.settimeout(2)
        with caplog.at_level("WARNING", logger="pyfix_smtp.delivery"):
            assert send_results(str(path), results) == 1
            assert send_results("/nonexistent/\ud800", results[1:]) == 0  # nor a socket name
        assert receiver.recv(65536) == results[1].datagram()
    assert len(caplog.messages) == 2
    assert all("Could not report TLS handshake result" in m for m in caplog.messages)


def test_send_results_warns_when_a_datagram_is_too_large(
    tmp_path: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # sendto() of a datagram larger than the socket's buffer fails with
    # EMSGSIZE, as it would for libtlsrpt: a warning, never an exception.
    import socket as socket_module
    from pathlib import Path

    from pyfix_smtp.transport.tlsrpt import send_results

    policy = TlsrptPolicy(PolicyType.NO_POLICY_FOUND, "example.net")
    huge = TlsrptFailure(ResultType.STARTTLS_NOT_SUPPORTED, receiving_mx_helo="250-x\r\n" * 200_000)
    path = Path(str(tmp_path)) / "c.sock"
    with socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        with caplog.at_level("WARNING", logger="pyfix_smtp.delivery"):
            sent = send_results(
                str(path), [TlsrptResult("example.net", RECORD, policy, failure=huge)]
            )
    assert sent == 0
    too_long = f"{os.strerror(errno.EMSGSIZE)} (errno {errno.EMSGSIZE})"
    assert caplog.messages == [
        f"Could not report TLS handshake result to tlsrpt library: {too_long}"
    ]
