"""Certificate checks: name matching (RFC 6125 as OpenSSL), fingerprints, PKIX, check_peer()."""

from __future__ import annotations

import hashlib
import subprocess

import idna
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pyfix_smtp.dns.records import Answer, Query, Rcode, TlsaRecord
from pyfix_smtp.tls.certs import MatchName, colon_hex, fingerprint, match_host, spki_der
from pyfix_smtp.tls.levels import TlsLevel
from pyfix_smtp.tls.options import TlsOptions
from pyfix_smtp.tls.policy import MxFacts, TlsPolicy, TlsTarget, evaluate
from pyfix_smtp.tls.verify import PeerStatus, check_peer, pkix_validate
from tests.peers import find_binary
from tests.test_tls_pki import DAY, NOW, Pki, make_cert, make_pki


@pytest.mark.parametrize(
    ("pattern", "reference", "ok"),
    [
        ("mx.example.com", "mx.example.com", True),
        ("MX.example.COM", "mx.example.com", True),
        ("mx.example.com", "mx.example.co", False),
        ("*.example.com", "mx.example.com", True),
        ("*.example.com", "MX.EXAMPLE.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.mx.example.com", False),
        ("*.example.com", "xn--bcher-kva.example.com", True),
        ("m*.example.com", "mx.example.com", False),  # no partial wildcards
        ("*x.example.com", "mx.example.com", False),
        ("mx.*.com", "mx.example.com", False),  # only the leftmost label
        ("*.com", "example.com", False),  # at least two labels after the star
        ("*.*.example.com", "a.b.example.com", False),
        ("xn--*.example.com", "xn--a.example.com", False),
        ("*.example.com", "*.example.com", True),
        ("mx.example.com.", "mx.example.com", False),
    ],
)
def test_name_matching(pattern: str, reference: str, ok: bool) -> None:
    assert match_host(pattern, MatchName(reference)) is ok


@pytest.mark.parametrize(
    ("pattern", "ok"),
    [
        ("mx.example.com", True),
        ("a.b.example.com", True),
        ("*.example.com", True),
        ("example.com", False),
        ("notexample.com", False),
        ("mx.example.com.evil", False),
    ],
)
def test_dot_subdomain_reference(pattern: str, ok: bool) -> None:
    assert match_host(pattern, MatchName("example.com", subdomain=True)) is ok


def test_spki_and_fingerprints_match_openssl() -> None:
    pki = make_pki()
    spki = pki.leaf.cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert spki_der(pki.leaf.der) == spki
    assert fingerprint(pki.leaf.der, "sha256") == hashlib.sha256(pki.leaf.der).digest()
    assert fingerprint(pki.leaf.der, "md5", public_key=True) == hashlib.md5(spki).digest()
    openssl = find_binary("openssl")
    if openssl is None:
        return
    out = subprocess.run(
        [openssl, "x509", "-inform", "DER", "-noout", "-fingerprint", "-sha256"],
        input=pki.leaf.der,
        capture_output=True,
        check=True,
    )
    assert out.stdout.decode().strip().split("=", 1)[1] == colon_hex(
        fingerprint(pki.leaf.der, "sha256")
    )


def test_pkix_validate() -> None:
    pki = make_pki()
    anchors = [pki.root.cert]
    assert pkix_validate(pki.chain, anchors, now=NOW)[0]
    assert pkix_validate(pki.full_chain, anchors, now=NOW)[0]
    assert pkix_validate(pki.chain, [pki.inter.cert], now=NOW)[0]  # intermediate as anchor
    assert not pkix_validate((pki.leaf.der,), anchors, now=NOW)[0]  # missing intermediate
    ok, why = pkix_validate(pki.chain, [make_cert("Other Root", ca=True).cert], now=NOW)
    assert not ok
    assert why == "unable to get local issuer certificate"
    selfsigned = make_cert("mx.example.com", sans=("mx.example.com",))
    assert pkix_validate((selfsigned.der,), anchors, now=NOW) == (False, "self-signed certificate")
    ok, why = pkix_validate(pki.chain, anchors, now=NOW + 400 * DAY)
    assert not ok
    assert "expired" in why
    names = (MatchName("other.example"),)
    assert not pkix_validate(pki.chain, anchors, now=NOW, names=names)[0]


# ---------------------------------------------------------------- check_peer


def policy_for(level: str, *, tlsa: tuple[TlsaRecord, ...] = (), **options: object) -> TlsPolicy:
    """The policy for mx.example.com; "halfdane" means dane with an insecure MX RRset."""
    opts = TlsOptions(
        smtp_tls_security_level="dane" if level == "halfdane" else level,
        smtp_dns_support_level="dnssec",
        **options,  # type: ignore[arg-type]
    )
    target = TlsTarget(
        nexthop="example.com",
        domain="example.com",
        host="mx.example.com",
        address_authentic=True,
        mx=MxFacts("example.com", authentic=level != "halfdane"),
    )

    def resolve(query: Query) -> Answer:
        return Answer(query, Rcode.NOERROR if tlsa else Rcode.NXDOMAIN, tlsa, authentic=True)

    return evaluate(target, opts, resolve=resolve)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def test_may_labels_trust_only(pki: Pki) -> None:
    policy = policy_for("may")
    assert check_peer(policy, pki.chain, now=NOW).status is PeerStatus.UNTRUSTED
    trusted = check_peer(policy, pki.chain, now=NOW, anchors=[pki.root.cert])
    assert trusted.status is PeerStatus.TRUSTED
    assert trusted.failure is None
    assert not trusted.matched
    assert check_peer(policy, pki.chain, now=NOW, pkix_verified=True).status is PeerStatus.TRUSTED
    anon = check_peer(policy, (), now=NOW)
    assert anon.status is PeerStatus.ANONYMOUS
    assert anon.failure is None


def test_encrypt_never_fails_on_the_certificate(pki: Pki) -> None:
    check = check_peer(policy_for("encrypt"), (b"junk",), now=NOW)
    assert check.failure is None
    assert check.status is PeerStatus.UNTRUSTED


def test_fingerprint_level(pki: Pki) -> None:
    fpt = colon_hex(hashlib.sha256(pki.leaf.der).digest())
    policy = policy_for("fingerprint", smtp_tls_fingerprint_cert_match=(fpt,))
    check = check_peer(policy, (pki.leaf.der,), now=NOW + 1000 * DAY)  # dates irrelevant
    assert check.status is PeerStatus.VERIFIED
    assert check.fingerprint == fpt
    other = check_peer(policy, (make_pki().leaf.der,), now=NOW)
    assert other.failure is not None
    assert str(other.failure) == "4.7.5 Server certificate not verified"
    pkey = colon_hex(hashlib.sha256(pki.leaf.spki).digest())
    by_key = policy_for("fingerprint", smtp_tls_fingerprint_cert_match=(pkey,))
    assert check_peer(by_key, pki.chain, now=NOW).matched


def test_dane_levels(pki: Pki) -> None:
    ee = (TlsaRecord(3, 1, 1, pki.leaf.digest(1, 1)),)
    dane = policy_for("dane", tlsa=ee)
    assert dane.level is TlsLevel.DANE
    assert check_peer(dane, pki.chain, now=NOW).status is PeerStatus.VERIFIED
    half = policy_for("halfdane", tlsa=ee)
    assert half.level is TlsLevel.HALFDANE
    check = check_peer(half, pki.chain, now=NOW)
    assert check.matched
    assert check.status is PeerStatus.TRUSTED  # halfdane is never "Verified"
    wrong = check_peer(dane, make_pki().chain, now=NOW)
    assert wrong.failure is not None
    assert not wrong.trusted
    ta = policy_for("dane", tlsa=(TlsaRecord(2, 0, 1, pki.inter.digest(0, 1)),))
    mismatch = make_pki(sans=("other.example",))
    chain = (mismatch.leaf.der, mismatch.inter.der)
    same_ca = policy_for("dane", tlsa=(TlsaRecord(2, 0, 1, mismatch.inter.digest(0, 1)),))
    result = check_peer(same_ca, chain, now=NOW)
    assert result.failure is not None
    assert result.trusted
    assert check_peer(ta, pki.chain, now=NOW).name == MatchName("mx.example.com")


def test_verify_and_secure_names(pki: Pki) -> None:
    verify = policy_for("verify")
    ok = check_peer(verify, pki.chain, now=NOW, pkix_verified=True)
    assert ok.status is PeerStatus.VERIFIED
    assert ok.name == MatchName("mx.example.com")
    assert check_peer(verify, pki.chain, now=NOW, pkix_verified=False).failure is not None
    secure = policy_for("secure")  # nexthop, dot-nexthop: mx.example.com is below example.com
    assert check_peer(secure, pki.chain, now=NOW, pkix_verified=True).matched
    elsewhere = make_pki(sans=("mx.example.net",))
    bad = check_peer(secure, elsewhere.chain, now=NOW, pkix_verified=True)
    assert bad.failure is not None
    assert bad.trusted
    assert "does not match" in bad.detail
    python_pkix = check_peer(secure, pki.chain, now=NOW, anchors=[pki.root.cert])
    assert python_pkix.status is PeerStatus.VERIFIED
    unknown = check_peer(secure, pki.chain, now=NOW)
    assert unknown.failure is not None
    assert "not verified against a CA store" in unknown.detail


def test_trust_anchor_file_records_need_names(pki: Pki) -> None:
    from pyfix_smtp.tls.dane import Association

    policy = policy_for("secure")
    anchored = TlsPolicy(
        **{
            **{f: getattr(policy, f) for f in TlsPolicy.__dataclass_fields__},
            "associations": (
                Association(3, 0, 0, pki.leaf.der, "tafile"),
                Association(2, 0, 0, pki.root.der, "tafile"),
            ),
            "ee_namechecks": True,
        }
    )
    assert check_peer(anchored, pki.chain, now=NOW).status is PeerStatus.VERIFIED
    other = make_pki(sans=("other.example",))
    leaf_only = TlsPolicy(
        **{
            **{f: getattr(policy, f) for f in TlsPolicy.__dataclass_fields__},
            "associations": (Association(3, 0, 0, other.leaf.der, "tafile"),),
            "ee_namechecks": True,
        }
    )
    result = check_peer(leaf_only, other.chain, now=NOW)
    assert result.failure is not None
    assert result.trusted


def test_idna_match_names_become_a_labels() -> None:
    entry = "secure match=bücher.example:.ÄÖ.example"
    opts = TlsOptions(smtp_tls_policy_maps={"example.com": entry})
    policy = evaluate(TlsTarget(nexthop="example.com", domain="example.com", host="mx"), opts)
    expected = idna.encode("äö.example", uts46=True).decode()
    assert policy.match_names == (
        MatchName("xn--bcher-kva.example"),
        MatchName(expected, subdomain=True),
    )
