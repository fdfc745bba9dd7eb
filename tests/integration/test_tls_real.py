"""TLS against real peers: Postfix smtpd (STARTTLS, implicit TLS), an MTA-STS HTTPS
server, and the DNSSEC lab's TLSA records.

Each handshake goes through :func:`pyfix_smtp.tls.build_context` with
``server_hostname=policy.sni`` and is judged by
:func:`pyfix_smtp.tls.check_handshake`, as the delivery drivers will do.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trustme

from pyfix_smtp import tls
from pyfix_smtp.dns.records import Answer, Query, Rcode, TlsaRecord
from pyfix_smtp.errors import TlsPolicyError
from pyfix_smtp.tls.certs import colon_hex, spki_der
from pyfix_smtp.tls.fetch import fetch_policy
from pyfix_smtp.tls.mtasts import FetchResult, StsFetch, StsMode
from pyfix_smtp.tls.stscache import MemoryStsCache

if TYPE_CHECKING:
    from tests.peers.certs import LabCerts
    from tests.peers.dns import DnsLab
    from tests.peers.mtasts import MtaStsServer
    from tests.peers.postfix import PostfixSmtpd

pytestmark = pytest.mark.peers

# Until tests/conftest.py lists tests.peers.postfix and tests.peers.mtasts as plugins.

MX = "mx.example.test"
DOMAIN = "example.test"


def read_reply(f: object) -> list[bytes]:
    lines = []
    while True:
        line = f.readline()  # type: ignore[attr-defined]
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return lines


def starttls(
    server: PostfixSmtpd, ctx: ssl.SSLContext, sni: str | None, *, host: str | None = None
) -> ssl.SSLSocket:
    """Connect, EHLO, STARTTLS, handshake; the TLS socket is returned open."""
    sock = socket.create_connection((host or server.host, server.starttls_port), timeout=10)
    f = sock.makefile("rb")
    assert read_reply(f)[0].startswith(b"220 ")
    sock.sendall(b"EHLO client.example\r\n")
    assert any(b"STARTTLS" in line for line in read_reply(f))
    sock.sendall(b"STARTTLS\r\n")
    assert read_reply(f)[0].startswith(b"220 2.0.0")
    return ctx.wrap_socket(sock, server_hostname=sni)


def ehlo_after_tls(tsock: ssl.SSLSocket) -> list[bytes]:
    f = tsock.makefile("rb")
    tsock.sendall(b"EHLO client.example\r\n")
    lines = read_reply(f)
    tsock.sendall(b"QUIT\r\n")
    read_reply(f)
    return lines


def policy(
    level: str,
    server: PostfixSmtpd | None = None,
    *,
    tlsa: tuple[TlsaRecord, ...] = (),
    nexthop: str = DOMAIN,
    host: str = MX,
    **options: object,
) -> tuple[tls.TlsPolicy, tls.TlsOptions]:
    opts = tls.TlsOptions(
        smtp_tls_security_level=level,
        smtp_dns_support_level="dnssec",
        **options,  # type: ignore[arg-type]
    )
    target = tls.TlsTarget(
        nexthop=nexthop,
        domain=nexthop,
        host=host,
        port=25,
        address_authentic=True,
        mx=tls.MxFacts(nexthop, authentic=True),
    )

    def resolve(query: Query) -> Answer:
        rcode = Rcode.NOERROR if tlsa else Rcode.NXDOMAIN
        return Answer(query, rcode, tlsa, authentic=True)

    return tls.evaluate(target, opts, resolve=resolve), opts


def handshake(
    server: PostfixSmtpd, pol: tls.TlsPolicy, opts: tls.TlsOptions
) -> tuple[tls.PeerCheck, ssl.SSLSocket]:
    ctx = tls.build_context(pol, opts)
    tsock = starttls(server, ctx, pol.sni)
    return tls.check_handshake(pol, tsock), tsock


# ---------------------------------------------------------------- Postfix smtpd


def test_chain_retrieval_returns_leaf_and_ca(postfix_smtpd: PostfixSmtpd) -> None:
    pol, opts = policy("encrypt")
    ctx = tls.build_context(pol, opts)
    with starttls(postfix_smtpd, ctx, None) as tsock:
        chain = tls.peer_chain(tsock)
        assert tsock.version() == "TLSv1.3"
        assert ehlo_after_tls(tsock)[0].startswith(b"250-")
    assert chain == (postfix_smtpd.certs.leaf_der, postfix_smtpd.certs.ca_der)


@pytest.mark.parametrize(
    "records",
    [
        "3 1 1",
        "2 0 1",  # needs the CA certificate from the server's chain
        "2 0 1 + wrong 3 1 1",
    ],
)
def test_dane_over_a_real_handshake(postfix_smtpd: PostfixSmtpd, records: str) -> None:
    certs = postfix_smtpd.certs
    ee = TlsaRecord(3, 1, 1, certs.leaf_spki_sha256)
    ta = TlsaRecord(2, 0, 1, certs.ca_sha256)
    wrong_ee = TlsaRecord(3, 1, 1, bytes(32))
    tlsa = {"3 1 1": (ee,), "2 0 1": (ta,), "2 0 1 + wrong 3 1 1": (ta, wrong_ee)}[records]
    pol, opts = policy("dane-only", tlsa=tlsa)
    assert pol.sni == MX
    check, tsock = handshake(postfix_smtpd, pol, opts)
    with tsock:
        assert check.failure is None, check.detail
        assert check.status is tls.PeerStatus.VERIFIED
        assert check.dane is not None
        assert check.dane.depth == (0 if records == "3 1 1" else 1)


def test_dane_mismatch_fails_after_the_handshake(postfix_smtpd: PostfixSmtpd) -> None:
    pol, opts = policy("dane", tlsa=(TlsaRecord(3, 1, 1, bytes(32)),))
    check, tsock = handshake(postfix_smtpd, pol, opts)
    with tsock:
        assert check.failure is not None
        assert str(check.failure) == "4.7.5 Server certificate not verified"
        assert ehlo_after_tls(tsock)[0].startswith(b"250-")  # the session itself is fine


def test_dane_ta_name_check_uses_mx_and_nexthop(postfix_smtpd: PostfixSmtpd) -> None:
    ta = (TlsaRecord(2, 0, 1, postfix_smtpd.certs.ca_sha256),)
    pol, opts = policy("dane", tlsa=ta, nexthop="example.org", host="mail.example.org")
    check, tsock = handshake(postfix_smtpd, pol, opts)
    with tsock:
        assert check.failure is not None
        assert check.trusted
        assert "name does not match" in check.detail


def test_sni_reaches_the_server(postfix_smtpd: PostfixSmtpd) -> None:
    if not postfix_smtpd.sni_leaf_der:
        pytest.skip("postmap is not installed: no SNI table")
    pol, opts = policy("may", smtp_tls_servername=postfix_smtpd.sni_name)
    assert pol.sni == postfix_smtpd.sni_name
    check, tsock = handshake(postfix_smtpd, pol, opts)
    with tsock:
        assert tls.peer_chain(tsock)[0] == postfix_smtpd.sni_leaf_der
    default, opts = policy("may")
    assert default.sni is None
    check, tsock = handshake(postfix_smtpd, default, opts)
    with tsock:
        assert tls.peer_chain(tsock)[0] == postfix_smtpd.certs.leaf_der
    assert check.failure is None


@pytest.mark.parametrize("public_key", [False, True])
@pytest.mark.parametrize("digest", ["sha256", "sha1", "md5"])
def test_fingerprint_pinning(postfix_smtpd: PostfixSmtpd, digest: str, public_key: bool) -> None:
    certs = postfix_smtpd.certs
    blob = spki_der(certs.leaf_der) if public_key else certs.leaf_der
    fpt = colon_hex(hashlib.new(digest, blob).digest())
    pol, opts = policy(
        "fingerprint", smtp_tls_fingerprint_cert_match=(fpt,), smtp_tls_fingerprint_digest=digest
    )
    check, tsock = handshake(postfix_smtpd, pol, opts)
    with tsock:
        assert check.status is tls.PeerStatus.VERIFIED, check.detail
    wrong, opts = policy(
        "fingerprint",
        smtp_tls_fingerprint_cert_match=(colon_hex(bytes(len(fpt) // 3 + 1)),),
        smtp_tls_fingerprint_digest=digest,
    )
    check, tsock = handshake(postfix_smtpd, wrong, opts)
    with tsock:
        assert check.failure is not None


def test_verify_and_secure_with_ca_file(postfix_smtpd: PostfixSmtpd, lab_certs: LabCerts) -> None:
    ca = str(lab_certs.ca_pem)
    for level, nexthop, ok in (
        ("verify", DOMAIN, True),  # hostname
        ("secure", DOMAIN, True),  # mx.example.test is below example.test (dot-nexthop)
        ("secure", "example.org", False),
    ):
        pol, opts = policy(level, nexthop=nexthop, smtp_tls_CAfile=ca)
        check, tsock = handshake(postfix_smtpd, pol, opts)
        with tsock:
            assert (check.failure is None) is ok, (level, nexthop, check.detail)
            assert check.trusted


def test_verify_with_an_unknown_ca_fails_in_the_handshake(
    postfix_smtpd: PostfixSmtpd, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    pol, opts = policy("verify", smtp_tls_CAfile=str(other))
    ctx = tls.build_context(pol, opts)
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        starttls(postfix_smtpd, ctx, pol.sni)
    failure, detail = tls.handshake_failure(pol, info.value)
    assert str(failure) == "4.7.5 Server certificate not verified"
    assert detail.startswith("certificate verification failed: ")


def test_tafile_replaces_the_ca_store(postfix_smtpd: PostfixSmtpd, lab_certs: LabCerts) -> None:
    table = {DOMAIN: f"secure tafile={lab_certs.ca_pem}"}
    pol, opts = policy("may", smtp_tls_policy_maps=table)
    assert pol.associations
    assert tls.build_context(pol, opts).verify_mode == ssl.CERT_NONE
    check, tsock = handshake(postfix_smtpd, pol, opts)
    with tsock:
        assert check.status is tls.PeerStatus.VERIFIED, check.detail


def test_may_labels_the_session(postfix_smtpd: PostfixSmtpd, lab_certs: LabCerts) -> None:
    pol, opts = policy("may")
    ctx = tls.build_context(pol, opts)
    with starttls(postfix_smtpd, ctx, None) as tsock:
        untrusted = tls.check_handshake(pol, tsock)
        trusted = tls.check_handshake(
            pol, tsock, anchors=tls.load_ca_certificates(cafile=str(lab_certs.ca_pem))
        )
    assert untrusted.status is tls.PeerStatus.UNTRUSTED
    assert trusted.status is tls.PeerStatus.TRUSTED
    assert untrusted.failure is None


@pytest.mark.parametrize(
    ("protocols", "version"),
    [("<=TLSv1.2", "TLSv1.2"), (">=TLSv1.3", "TLSv1.3"), ("!TLSv1.3", "TLSv1.2")],
)
def test_protocol_bounds(postfix_smtpd: PostfixSmtpd, protocols: str, version: str) -> None:
    pol, opts = policy("encrypt", smtp_tls_mandatory_protocols=protocols)
    _, tsock = handshake(postfix_smtpd, pol, opts)
    with tsock:
        assert tsock.version() == version


def test_cipher_grade_and_exclusions(postfix_smtpd: PostfixSmtpd) -> None:
    pol, opts = policy(
        "encrypt",
        smtp_tls_mandatory_protocols="<=TLSv1.2",
        smtp_tls_mandatory_ciphers="high",
        smtp_tls_mandatory_exclude_ciphers="AESGCM",
    )
    _, tsock = handshake(postfix_smtpd, pol, opts)
    with tsock:
        name = tsock.cipher()[0]  # type: ignore[index]
    assert "GCM" not in name


def test_implicit_tls_port(postfix_smtpd: PostfixSmtpd) -> None:
    pol, opts = policy("encrypt", smtp_tls_wrappermode=True)
    ctx = tls.build_context(pol, opts)
    raw = socket.create_connection((postfix_smtpd.host, postfix_smtpd.tls_port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=pol.sni) as tsock:
        f = tsock.makefile("rb")
        assert read_reply(f)[0].startswith(b"220 ")
        assert tls.peer_chain(tsock)[0] == postfix_smtpd.certs.leaf_der


def test_plain_port_offers_no_starttls(postfix_smtpd: PostfixSmtpd) -> None:
    with socket.create_connection((postfix_smtpd.host, postfix_smtpd.plain_port), timeout=10) as s:
        f = s.makefile("rb")
        read_reply(f)
        s.sendall(b"EHLO client.example\r\n")
        assert not any(b"STARTTLS" in line for line in read_reply(f))
    pol, _ = policy("encrypt")
    from pyfix_smtp.tls.requiretls import starttls_not_offered

    outcome = starttls_not_offered(None, pol.level, f"{MX}[127.0.0.1]:{postfix_smtpd.plain_port}")
    assert outcome is not None
    assert outcome.failure.status == "4.7.4"


# ---------------------------------------------------------------- client certificates


@pytest.fixture
def client_cert_server(lab_certs: LabCerts) -> Iterator[tuple[int, list[object]]]:
    """A Python TLS server that requires a client certificate from the lab CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(lab_certs.server_pem), str(lab_certs.server_key))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(str(lab_certs.ca_pem))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[object] = []

    def serve() -> None:
        for _ in range(2):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True) as tconn:
                    seen.append(tconn.getpeercert())
                    tconn.sendall(b"ok")
            except (ssl.SSLError, OSError) as exc:
                seen.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port, seen
    finally:
        listener.close()
        thread.join(5)


def test_client_certificate(
    client_cert_server: tuple[int, list[object]], lab_certs: LabCerts, tmp_path: Path
) -> None:
    port, seen = client_cert_server
    client = lab_certs.ca.issue_cert("client.example")
    chain_file = tmp_path / "client.pem"
    chain_file.write_bytes(
        client.private_key_pem.bytes() + b"".join(c.bytes() for c in client.cert_chain_pems)
    )
    pol, opts = policy("encrypt", smtp_tls_chain_files=(str(chain_file),))
    ctx = tls.build_context(pol, opts)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=None) as tsock,
    ):
        assert tsock.recv(2) == b"ok"
    pol, opts = policy("encrypt")
    ctx = tls.build_context(pol, opts)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        pytest.raises(OSError),  # ssl.SSLError or a reset: the server refused us
        ctx.wrap_socket(raw, server_hostname=None) as tsock,
    ):
        tsock.recv(2)
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert isinstance(seen[0], dict)
    assert seen[0]["subject"]  # the server saw and verified our certificate
    assert isinstance(seen[1], Exception)  # without one, the handshake failed


def test_bad_client_certificate_is_a_policy_error(tmp_path: Path) -> None:
    pol, opts = policy("encrypt", smtp_tls_cert_file=str(tmp_path / "missing.pem"))
    with pytest.raises(TlsPolicyError, match="cannot load client certificate"):
        tls.build_context(pol, opts)


# ---------------------------------------------------------------- MTA-STS over HTTPS


def lab_context(lab_certs: LabCerts) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(lab_certs.ca_pem))


def fetch(server: MtaStsServer, lab_certs: LabCerts, domain: str = DOMAIN) -> FetchResult:
    request = StsFetch(
        domain, f"https://mta-sts.{domain}/.well-known/mta-sts.txt", f"mta-sts.{domain}", timeout=10
    )
    return fetch_policy(
        request, context=lab_context(lab_certs), connect_host=server.host, connect_port=server.port
    )


def test_fetch_policy(mta_sts_server: MtaStsServer, lab_certs: LabCerts) -> None:
    mta_sts_server.serve("version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 600\n")
    result = fetch(mta_sts_server, lab_certs)
    assert result.status == 200
    assert result.error is None
    assert result.content_type == "text/plain"
    assert mta_sts_server.requests[-1] == (mta_sts_server.policy_host, "/.well-known/mta-sts.txt")
    policy = tls.parse_sts_policy(result.body.decode(), DOMAIN)
    assert policy.mode is StsMode.ENFORCE


def test_fetch_refuses_redirects_big_bodies_and_bad_certificates(
    mta_sts_server: MtaStsServer, lab_certs: LabCerts
) -> None:
    mta_sts_server.serve("", status=301, location="https://mta-sts.example.test/elsewhere")
    assert fetch(mta_sts_server, lab_certs).status == 301
    mta_sts_server.serve("x" * 70000)
    big = fetch(mta_sts_server, lab_certs)
    assert big.error is not None
    assert "larger than" in big.error
    mta_sts_server.serve()
    wrong_name = fetch(mta_sts_server, lab_certs, domain="example.org")
    assert wrong_name.error is not None
    assert "certificate verification failed" in wrong_name.error
    request = StsFetch(DOMAIN, "", mta_sts_server.policy_host, timeout=10)
    system_store = fetch_policy(
        request, connect_host=mta_sts_server.host, connect_port=mta_sts_server.port
    )
    assert system_store.error is not None
    assert "certificate verification failed" in system_store.error
    lax = ssl.create_default_context()
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    refused = fetch_policy(
        request, context=lax, connect_host=mta_sts_server.host, connect_port=mta_sts_server.port
    )
    assert refused.error is not None
    assert "without certificate verification" in refused.error


# ---------------------------------------------------------------- DNSSEC lab


def test_dane_with_lab_tlsa(dns_lab: DnsLab, postfix_smtpd: PostfixSmtpd) -> None:
    """TLSA _25._tcp.mx.example.test from the signed zone, through our DNS adapter."""
    resolver = dns_lab.resolver()
    opts = tls.TlsOptions(smtp_tls_security_level="dane-only", smtp_dns_support_level="dnssec")
    target = tls.TlsTarget(
        nexthop=DOMAIN,
        domain=DOMAIN,
        host=MX,
        port=25,
        address_authentic=True,
        mx=tls.MxFacts(DOMAIN, authentic=True),
    )
    pol = tls.evaluate(target, opts, resolve=resolver.lookup)
    assert pol.level is tls.TlsLevel.DANE_ONLY, pol.explain()
    assert {str(a)[:5] for a in pol.associations} == {"3 1 1", "2 0 1"}
    check, tsock = handshake(postfix_smtpd, pol, opts)
    with tsock:
        assert check.status is tls.PeerStatus.VERIFIED, check.detail


def test_lab_unsigned_and_bogus_zones(dns_lab: DnsLab) -> None:
    resolver = dns_lab.resolver()
    opts = tls.TlsOptions(smtp_tls_security_level="dane", smtp_dns_support_level="dnssec")
    unsigned = tls.TlsTarget(
        nexthop=dns_lab.unsigned_zone,
        domain=dns_lab.unsigned_zone,
        host=f"mx.{dns_lab.unsigned_zone}",
        address_authentic=True,
        mx=tls.MxFacts(dns_lab.unsigned_zone, authentic=True),
    )
    pol = tls.evaluate(unsigned, opts, resolve=resolver.lookup)
    assert pol.level is tls.TlsLevel.MAY, pol.explain()
    bogus = replace(
        unsigned,
        nexthop=dns_lab.bogus_zone,
        domain=dns_lab.bogus_zone,
        host=f"mx.{dns_lab.bogus_zone}",
        host_qname="",
        host_rname="",
    )
    bad = tls.evaluate(bogus, opts, resolve=resolver.lookup)
    assert bad.failure is not None, bad.explain()
    assert bad.failure.reason == f"TLSA lookup error for mx.{dns_lab.bogus_zone}:25"


def test_mta_sts_end_to_end(
    dns_lab: DnsLab, mta_sts_server: MtaStsServer, lab_certs: LabCerts
) -> None:
    """The lab's _mta-sts TXT, the policy over HTTPS, then the policy for mx.example.test."""
    mta_sts_server.serve("version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 600\n")
    resolver = dns_lab.resolver()
    cache = MemoryStsCache()
    outcome = tls.discover_sync(
        DOMAIN,
        resolve=resolver.lookup,
        fetch=lambda req: fetch_policy(
            req,
            context=lab_context(lab_certs),
            connect_host=mta_sts_server.host,
            connect_port=mta_sts_server.port,
        ),
        cache=cache,
        now=time.time(),
    )
    assert outcome.source == "fetched", outcome.notes
    assert outcome.policy is not None
    opts = tls.TlsOptions(smtp_tls_security_level="may")
    for host, ok in ((MX, True), ("mx2.example.test", False)):
        target = tls.TlsTarget(nexthop=DOMAIN, domain=DOMAIN, host=host)
        pol = tls.evaluate(target, opts, sts=outcome.policy)
        assert (pol.failure is None) is ok, pol.explain()
        if ok:
            assert pol.level is tls.TlsLevel.SECURE
            assert pol.sni == MX


def test_dns_plan_to_dane_policy_to_handshake(dns_lab: DnsLab, postfix_smtpd: PostfixSmtpd) -> None:
    """The DNS planner's candidates for example.test feed TlsTarget.from_candidate()."""
    import random

    from pyfix_smtp import destination
    from pyfix_smtp.dns.options import DnsSupport, PlanOptions
    from pyfix_smtp.dns.runner import plan_sync

    resolver = dns_lab.resolver()
    options = PlanOptions(smtp_dns_support_level=DnsSupport.DNSSEC, smtp_randomize_addresses=False)
    plan = plan_sync(destination.sites(DOMAIN), resolver, options, random.Random(0))
    site = plan.sites[0]
    first = site.candidates[0]
    assert first.hostname == MX
    opts = tls.TlsOptions(smtp_tls_security_level="dane", smtp_dns_support_level="dnssec")
    pol = tls.evaluate(tls.TlsTarget.from_candidate(site, first), opts, resolve=resolver.lookup)
    assert pol.level is tls.TlsLevel.DANE, pol.explain()
    assert pol.match_names == (tls.MatchName(MX), tls.MatchName(DOMAIN))
    check, tsock = handshake(postfix_smtpd, pol, opts)
    with tsock:
        assert check.status is tls.PeerStatus.VERIFIED, check.detail
    # mx2.example.test has no TLSA record: opportunistic TLS for that MX host.
    second = next(c for c in site.candidates if c.hostname == "mx2.example.test")
    pol2 = tls.evaluate(tls.TlsTarget.from_candidate(site, second), opts, resolve=resolver.lookup)
    assert pol2.level is tls.TlsLevel.MAY, pol2.explain()


# ------------------------------------- the same decisions as Postfix's own code

FINGER_NAMES = [
    [".example.test"],
    ["example.test"],
    ["mx.example.test"],
    ["*.example.test"],
    [".test"],
    ["nomatch.example"],
    ["nomatch.example", "mx.example.test"],
    ["127.0.0.1"],
    ["127.0.0.1", "mx.example.test"],
    ["127.0.0.1", "nomatch.example"],
    ["192.0.2.1", "mx.example.test"],
    ["::1"],
    ["127.0.0.1", "::1"],
    ["hostname"],
    ["nexthop"],
    ["dot-nexthop"],
    ["."],
    ["localhost"],
    ["LOCALHOST."],
]


def posttls_finger(server: PostfixSmtpd, *args: str) -> str:
    """Run Postfix's posttls-finger against *server*; return its connection label."""
    import os
    import subprocess

    from tests.peers import binary_or_skip

    finger = binary_or_skip("posttls-finger")
    env = dict(os.environ, MAIL_CONFIG=str(server.directory / "etc"))
    out = subprocess.run(
        [finger, "-c", *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    for line in (out.stdout + out.stderr).splitlines():
        if "TLS connection established" in line:
            return line.split("posttls-finger: ", 1)[1].split(" ", 1)[0]
    raise AssertionError(out.stdout + out.stderr)


@pytest.mark.parametrize("names", FINGER_NAMES, ids=[":".join(n) for n in FINGER_NAMES])
def test_secure_name_checks_agree_with_posttls_finger(
    postfix_smtpd: PostfixSmtpd, lab_certs: LabCerts, names: list[str]
) -> None:
    """Postfix's tls_client.c + OpenSSL decide; ours must decide the same."""
    dest = f"[127.0.0.1]:{postfix_smtpd.starttls_port}"
    label = posttls_finger(postfix_smtpd, "-l", "secure", "-F", str(lab_certs.ca_pem), dest, *names)
    # posttls-finger takes the names as arguments; a policy table could not
    # even spell "::1" (":" separates match names), so resolve them directly.
    from pyfix_smtp.tls.policy import resolve_match_names

    opts = tls.TlsOptions(smtp_tls_security_level="secure", smtp_tls_CAfile=str(lab_certs.ca_pem))
    target = tls.TlsTarget(nexthop=dest, domain="127.0.0.1", host="127.0.0.1")
    refs, _ = resolve_match_names(names, target)
    if not refs:  # Postfix: "could not configure peer name checks", verification fails
        assert label != "Verified"
        return
    pol = replace(tls.evaluate(target, opts), match_names=tuple(refs))
    check, tsock = handshake(postfix_smtpd, pol, opts)
    tsock.close()
    assert (label == "Verified") is check.matched, (label, check.detail)


@pytest.mark.parametrize("digest", ["sha256", "sha1", "md5"])
@pytest.mark.parametrize("pin", ["cert", "key", "other"])
def test_fingerprints_agree_with_posttls_finger(
    postfix_smtpd: PostfixSmtpd, digest: str, pin: str
) -> None:
    certs = postfix_smtpd.certs
    blob = {"cert": certs.leaf_der, "key": spki_der(certs.leaf_der), "other": b"other"}[pin]
    fpt = colon_hex(hashlib.new(digest, blob).digest())
    dest = f"[127.0.0.1]:{postfix_smtpd.starttls_port}"
    label = posttls_finger(postfix_smtpd, "-l", "fingerprint", "-d", digest, dest, fpt)
    pol, opts = policy(
        "fingerprint", smtp_tls_fingerprint_cert_match=(fpt,), smtp_tls_fingerprint_digest=digest
    )
    check, tsock = handshake(postfix_smtpd, pol, opts)
    tsock.close()
    assert (label == "Verified") is check.matched
    assert check.matched is (pin != "other")


@pytest.mark.parametrize(
    ("anchor", "names"),
    [
        ("ca", ["mx.example.test"]),
        ("ca", ["nomatch.example"]),
        ("leaf", ["mx.example.test"]),  # a trust anchor may be the leaf itself
        ("leaf", ["nomatch.example"]),  # ... but names are still checked
        ("ca-key", ["mx.example.test"]),
        ("leaf-key", ["localhost"]),
        ("other", ["mx.example.test"]),
    ],
)
def test_trust_anchor_files_agree_with_posttls_finger(
    postfix_smtpd: PostfixSmtpd, tmp_path: Path, anchor: str, names: list[str]
) -> None:
    """smtp_tls_trust_anchor_file (posttls-finger -A) through OpenSSL's DANE code."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    certs = postfix_smtpd.certs
    ders = {"ca": certs.ca_der, "leaf": certs.leaf_der}
    path = tmp_path / f"{anchor}.pem"
    if anchor in ders:
        path.write_bytes(x509.load_der_x509_certificate(ders[anchor]).public_bytes(Encoding.PEM))
    elif anchor.endswith("-key"):
        cert = x509.load_der_x509_certificate(ders[anchor[:-4]])
        path.write_bytes(
            cert.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        )
    else:
        trustme.CA().cert_pem.write_to_path(str(path))
    dest = f"[127.0.0.1]:{postfix_smtpd.starttls_port}"
    label = posttls_finger(postfix_smtpd, "-l", "secure", "-A", str(path), dest, *names)
    pol, opts = policy(
        "secure",
        nexthop="127.0.0.1",
        host="127.0.0.1",
        smtp_tls_trust_anchor_file=(str(path),),
        smtp_tls_secure_cert_match=tuple(names),
    )
    check, tsock = handshake(postfix_smtpd, pol, opts)
    tsock.close()
    assert (label == "Verified") is check.matched, (label, check.detail)


# ---------------------------------------------------------------- the peer itself


def test_postfix_peer_delivers_and_fails_per_recipient(postfix_smtpd: PostfixSmtpd) -> None:
    """The fixture the delivery tests reuse: maildir delivery and rcpt_access faults."""
    pol, opts = policy("encrypt")
    _, tsock = handshake(postfix_smtpd, pol, opts)
    with tsock:
        f = tsock.makefile("rb")

        def chat(line: bytes) -> bytes:
            tsock.sendall(line + b"\r\n")
            return read_reply(f)[-1]

        assert chat(b"EHLO client.example").startswith(b"250 ")
        assert chat(b"MAIL FROM:<sender@example.org>").startswith(b"250 ")
        assert chat(b"RCPT TO:<temp-fail@example.test>").startswith(b"450 4.2.0")
        assert chat(b"RCPT TO:<perm-fail@example.test>").startswith(b"550 5.1.1")
        assert chat(b"RCPT TO:<someone@example.test>").startswith(b"250 ")
        assert chat(b"DATA").startswith(b"354 ")
        assert chat(b"Subject: tls peer\r\n\r\nhello over TLS\r\n.").startswith(b"250 ")
        chat(b"QUIT")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = [m for m in postfix_smtpd.messages() if b"hello over TLS" in m]
        if found:
            assert b"Delivered-To: someone@example.test" in found[0]
            return
        time.sleep(0.1)
    pytest.fail(f"no message in {postfix_smtpd.maildir}; see {postfix_smtpd.maillog}")


def _dane_cases(certs: LabCerts) -> list[tuple[str, list[str], str, str | None]]:
    leaf311 = certs.leaf_spki_sha256.hex()
    leaf312 = hashlib.sha512(spki_der(certs.leaf_der)).hexdigest()
    ca201 = certs.ca_sha256.hex()
    ca202 = hashlib.sha512(certs.ca_der).hexdigest()
    bad32, bad64 = "00" * 32, "00" * 64
    leaf201 = hashlib.sha256(certs.leaf_der).hexdigest()
    ca_spki = spki_der(certs.ca_der).hex()
    ca211 = hashlib.sha256(spki_der(certs.ca_der)).hexdigest()
    mx, sni = MX, "sni.example.test"
    return [
        ("ee", [f"3 1 1 {leaf311}"], mx, None),
        ("ee-wrong", [f"3 1 1 {bad32}"], mx, None),
        ("agility-512-wrong", [f"3 1 1 {leaf311}", f"3 1 2 {bad64}"], mx, None),
        ("agility-512-right", [f"3 1 1 {bad32}", f"3 1 2 {leaf312}"], mx, None),
        (
            "agility-full-counts",
            [f"3 1 0 {spki_der(certs.leaf_der).hex()}", f"3 1 2 {bad64}"],
            mx,
            None,
        ),
        ("agility-other-selector", [f"3 0 2 {bad64}", f"3 1 1 {leaf311}"], mx, None),
        ("ta", [f"2 0 1 {ca201}"], mx, None),
        ("ta-512", [f"2 0 2 {ca202}"], mx, None),
        ("ta-agility", [f"2 0 1 {ca201}", f"2 0 2 {bad64}"], mx, None),
        ("ta-on-leaf", [f"2 0 1 {leaf201}"], mx, None),
        ("ta-name", [f"2 0 1 {ca201}"], "other.example", None),
        ("ta-not-sent-digest", [f"2 0 1 {ca201}"], sni, sni),
        ("ta-not-sent-full-cert", [f"2 0 0 {certs.ca_der.hex()}"], sni, sni),
        ("ta-not-sent-full-key", [f"2 1 0 {ca_spki}"], sni, sni),
        ("ta-not-sent-key-digest", [f"2 1 1 {ca211}"], sni, sni),
    ]


def openssl_dane(server: PostfixSmtpd, records: list[str], domain: str, sni: str | None) -> bool:
    import subprocess

    from tests.peers import binary_or_skip

    openssl = binary_or_skip("openssl")
    argv = [openssl, "s_client", "-starttls", "smtp", "-connect",
            f"{server.host}:{server.starttls_port}", "-dane_tlsa_domain", domain,
            "-dane_ee_no_namechecks"]  # fmt: skip
    for rr in records:
        argv += ["-dane_tlsa_rrdata", rr]
    if sni:
        argv += ["-servername", sni]
    out = subprocess.run(argv, input="", capture_output=True, text=True, timeout=30, check=False)
    return "Verification: OK" in out.stdout


def test_dane_matching_agrees_with_openssl(postfix_smtpd: PostfixSmtpd) -> None:
    """Our TLSA matching and OpenSSL's (s_client -dane_tlsa_rrdata) on the same chains."""
    from pyfix_smtp.tls.dane import Association, match_chain

    for name, records, domain, sni in _dane_cases(postfix_smtpd.certs):
        pol, opts = policy("encrypt", smtp_tls_servername=sni or "")
        _, tsock = handshake(postfix_smtpd, pol, opts)
        chain = tls.peer_chain(tsock)
        tsock.close()
        assocs = []
        for rr in records:
            u, s, m, data = rr.split()
            assocs.append(Association(int(u), int(s), int(m), bytes.fromhex(data)))
        ours = match_chain(assocs, chain, names=(tls.MatchName(domain),), now=_now())
        theirs = openssl_dane(postfix_smtpd, records, domain, sni)
        assert ours.matched is theirs, (name, ours.reason)


def _now() -> object:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


async def test_asyncio_starttls_chain_and_dane(postfix_smtpd: PostfixSmtpd) -> None:
    """The asyncio driver's path: StreamWriter.start_tls() and the SSLObject's chain."""
    import asyncio

    ta = (TlsaRecord(2, 0, 1, postfix_smtpd.certs.ca_sha256),)
    pol, opts = policy("dane-only", tlsa=ta)
    ctx = tls.build_context(pol, opts)
    reader, writer = await asyncio.open_connection(postfix_smtpd.host, postfix_smtpd.starttls_port)

    async def reply() -> bytes:
        while True:
            line = await reader.readline()
            if line[3:4] != b"-":
                return line

    assert (await reply()).startswith(b"220 ")
    writer.write(b"EHLO client.example\r\n")
    await reply()
    writer.write(b"STARTTLS\r\n")
    assert (await reply()).startswith(b"220 ")
    await writer.start_tls(ctx, server_hostname=pol.sni)
    sslobj = writer.get_extra_info("ssl_object")
    assert isinstance(sslobj, ssl.SSLObject)
    assert tls.peer_chain(sslobj) == (postfix_smtpd.certs.leaf_der, postfix_smtpd.certs.ca_der)
    check = tls.check_handshake(pol, sslobj)
    assert check.status is tls.PeerStatus.VERIFIED, check.detail
    writer.write(b"QUIT\r\n")
    await reply()
    writer.close()
    await writer.wait_closed()
