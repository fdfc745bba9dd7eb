"""DANE TLSA matching against generated certificates (OpenSSL's rules as Postfix uses them)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from pyfix_smtp.dns.records import TlsaRecord
from pyfix_smtp.tls.certs import MatchName
from pyfix_smtp.tls.dane import Association, match_chain, screen_dns, screen_openssl
from tests.test_tls_pki import DAY, NOW, Pki, make_cert, make_pki

NAMES = (MatchName("mx.example.com"), MatchName("example.com"))


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def rec(usage: int, selector: int, mtype: int, data: bytes) -> Association:
    return Association(usage, selector, mtype, data)


def wrong(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:]


def match(records: list[Association], chain: tuple[bytes, ...], **kw: object) -> bool:
    kw.setdefault("names", NAMES)
    kw.setdefault("now", NOW)
    return match_chain(records, chain, **kw).matched  # type: ignore[arg-type]


# ---------------------------------------------------------------- DANE-EE(3)


@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize("mtype", [0, 1, 2])
def test_ee_each_selector_and_matching_type(pki: Pki, selector: int, mtype: int) -> None:
    good = rec(3, selector, mtype, pki.leaf.digest(selector, mtype))
    result = match_chain([good], pki.chain, names=NAMES, now=NOW)
    assert result.matched
    assert result.depth == 0
    assert result.association == good
    bad = rec(3, selector, mtype, wrong(pki.leaf.digest(selector, mtype)))
    assert not match([bad], pki.chain)


def test_ee_ignores_dates_names_and_chain() -> None:
    expired = make_pki(
        sans=("other.example",),
        leaf_not_before=NOW - 400 * DAY,
        leaf_not_after=NOW - 10 * DAY,
        leaf_eku=(ExtendedKeyUsageOID.CLIENT_AUTH,),
    )
    record = rec(3, 1, 1, expired.leaf.digest(1, 1))
    assert match([record], (expired.leaf.der,))  # no intermediate, wrong name, expired
    assert match([record], (expired.leaf.der, b"garbage in the chain"))


def test_ee_name_checks_for_trust_anchor_files(pki: Pki) -> None:
    record = rec(3, 0, 0, pki.leaf.der)
    other = (MatchName("elsewhere.example"),)
    result = match_chain([record], pki.chain, names=other, now=NOW, ee_namechecks=True)
    assert not result.matched
    assert result.trusted
    assert "name does not match" in result.reason
    assert match([record], pki.chain, ee_namechecks=True)


def test_ee_only_looks_at_the_leaf(pki: Pki) -> None:
    assert not match([rec(3, 0, 1, pki.inter.digest(0, 1))], pki.chain)


# ---------------------------------------------------------------- DANE-TA(2)


@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize("mtype", [0, 1, 2])
def test_ta_on_the_intermediate(pki: Pki, selector: int, mtype: int) -> None:
    result = match_chain(
        [rec(2, selector, mtype, pki.inter.digest(selector, mtype))],
        pki.chain,
        names=NAMES,
        now=NOW,
    )
    assert result.matched
    assert result.depth == 1
    assert result.via_trust_anchor
    assert result.name == MatchName("mx.example.com")


def test_ta_on_a_root_the_server_sends(pki: Pki) -> None:
    result = match_chain(
        [rec(2, 0, 1, pki.root.digest(0, 1))], pki.full_chain, names=NAMES, now=NOW
    )
    assert result.matched
    assert result.depth == 2


def test_ta_digest_of_a_root_not_sent_cannot_match(pki: Pki) -> None:
    assert not match([rec(2, 0, 1, pki.root.digest(0, 1))], pki.chain)
    assert not match([rec(2, 1, 1, pki.root.digest(1, 1))], pki.chain)


def test_ta_full_certificate_not_sent_completes_the_chain(pki: Pki) -> None:
    result = match_chain([rec(2, 0, 0, pki.root.der)], pki.chain, names=NAMES, now=NOW)
    assert result.matched
    assert result.depth == 2


def test_ta_full_public_key_not_sent_verifies_the_top(pki: Pki) -> None:
    result = match_chain([rec(2, 1, 0, pki.root.spki)], pki.chain, names=NAMES, now=NOW)
    assert result.matched
    assert result.depth == 1
    assert "TA public key verified certificate" in result.reason
    other_key = make_cert("x", ca=True).spki
    assert not match([rec(2, 1, 0, other_key)], pki.chain)


def test_ta_matching_the_leaf_does_not_count(pki: Pki) -> None:
    for selector in (0, 1):
        assert not match([rec(2, selector, 1, pki.leaf.digest(selector, 1))], pki.chain)
    assert not match([rec(2, 0, 0, pki.leaf.der)], pki.chain)


def test_certificates_above_the_anchor_are_ignored(pki: Pki) -> None:
    junk = make_cert("Test Root", ca=True, not_after=NOW - DAY)  # same name, other key, expired
    chain = (pki.leaf.der, pki.inter.der, junk.der)
    assert match([rec(2, 0, 1, pki.inter.digest(0, 1))], chain)


def test_non_self_issued_anchor_dates_are_not_checked() -> None:
    pki = make_pki(inter_not_after=NOW - DAY)
    assert match([rec(2, 0, 1, pki.inter.digest(0, 1))], pki.chain)
    result = match_chain(
        [rec(2, 0, 1, pki.root.digest(0, 1))], pki.full_chain, names=NAMES, now=NOW
    )
    assert not result.matched
    assert "expired at depth 1" in result.reason


def test_self_issued_anchor_dates_are_checked(pki: Pki) -> None:
    later = NOW + 20 * 365 * DAY  # root expired, leaf too
    result = match_chain(
        [rec(2, 0, 1, pki.root.digest(0, 1))], pki.full_chain, names=NAMES, now=later
    )
    assert not result.matched
    assert "expired" in result.reason


def test_ta_rejects_an_expired_leaf() -> None:
    pki = make_pki(leaf_not_after=NOW - DAY)
    result = match_chain([rec(2, 0, 1, pki.inter.digest(0, 1))], pki.chain, names=NAMES, now=NOW)
    assert not result.matched
    assert result.reason == "certificate has expired at depth 0"
    future = make_pki(leaf_not_before=NOW + DAY)
    assert not match([rec(2, 0, 1, future.inter.digest(0, 1))], future.chain)


@pytest.mark.parametrize(
    ("sans", "names", "ok"),
    [
        (("mx.example.com",), ("mx.example.com",), True),
        (("MX.Example.COM",), ("mx.example.com",), True),
        (("*.example.com",), ("mx.example.com",), True),
        (("*.example.com",), ("a.mx.example.com",), False),
        (("m*.example.com",), ("mx.example.com",), False),
        (("*.com",), ("example.com",), False),
        (("example.com",), ("mx.example.com", "example.com"), True),
        (("other.example",), ("mx.example.com", "example.com"), False),
        ((), ("mx.example.com",), True),  # no DNS SAN: the CN counts
    ],
)
def test_ta_name_checks(sans: tuple[str, ...], names: tuple[str, ...], ok: bool) -> None:
    pki = make_pki(sans=sans)
    refs = tuple(MatchName(n) for n in names)
    result = match_chain([rec(2, 0, 1, pki.inter.digest(0, 1))], pki.chain, names=refs, now=NOW)
    assert result.matched is ok
    if not ok:
        assert result.trusted, "a name mismatch alone still counts as trusted"


def test_cn_ignored_when_a_dns_san_exists() -> None:
    pki = make_pki(sans=("other.example",), leaf_cn="mx.example.com")
    assert not match([rec(2, 0, 1, pki.inter.digest(0, 1))], pki.chain)


def test_name_mismatch_is_only_reported_when_nothing_else_fails() -> None:
    pki = make_pki(sans=("other.example",), leaf_not_after=NOW - DAY)
    result = match_chain([rec(2, 0, 1, pki.inter.digest(0, 1))], pki.chain, names=NAMES, now=NOW)
    assert not result.matched
    assert not result.trusted
    assert "expired" in result.reason


def test_ta_path_needs_ca_flags_signatures_and_purpose(pki: Pki) -> None:
    root = make_cert("R", ca=True)
    not_ca = make_cert("I", issuer=root, ca=False, key_usage="ca")
    leaf = make_cert("mx.example.com", issuer=not_ca, sans=("mx.example.com",))
    result = match_chain(
        [rec(2, 0, 1, root.digest(0, 1))], (leaf.der, not_ca.der, root.der), names=NAMES, now=NOW
    )
    assert not result.matched
    assert "invalid CA certificate at depth 1" in result.reason

    impostor = make_cert("Test Intermediate", ca=True)  # same name, different key
    forged = make_cert("mx.example.com", issuer=impostor, sans=("mx.example.com",), skid=False)
    chain = (forged.der, pki.inter.der)
    result = match_chain([rec(2, 0, 1, pki.inter.digest(0, 1))], chain, names=NAMES, now=NOW)
    assert not result.matched
    assert "signature failure" in result.reason

    client_only = make_pki(leaf_eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    result = match_chain(
        [rec(2, 0, 1, client_only.inter.digest(0, 1))], client_only.chain, names=NAMES, now=NOW
    )
    assert not result.matched
    assert "purpose" in result.reason


def test_path_length_constraint() -> None:
    root = make_cert("R", ca=True, path_length=0)
    inter = make_cert("I", issuer=root, ca=True)
    leaf = make_cert("mx.example.com", issuer=inter, sans=("mx.example.com",))
    chain = (leaf.der, inter.der, root.der)
    result = match_chain([rec(2, 0, 1, root.digest(0, 1))], chain, names=NAMES, now=NOW)
    assert not result.matched
    assert "path length" in result.reason
    assert match([rec(2, 0, 1, inter.digest(0, 1))], chain)


def test_no_certificate_and_garbage(pki: Pki) -> None:
    assert match_chain([rec(3, 1, 1, pki.leaf.digest(1, 1))], (), names=NAMES, now=NOW).reason == (
        "the server sent no certificate"
    )
    assert not match([rec(3, 1, 1, pki.leaf.digest(1, 1))], (b"junk",))


# ---------------------------------------------------------------- digest agility


def test_agility_strongest_digest_decides(pki: Pki) -> None:
    sha256 = rec(3, 1, 1, pki.leaf.digest(1, 1))
    sha512 = rec(3, 1, 2, pki.leaf.digest(1, 2))
    assert not match([sha256, rec(3, 1, 2, wrong(pki.leaf.digest(1, 2)))], pki.chain)
    assert match([rec(3, 1, 1, wrong(pki.leaf.digest(1, 1))), sha512], pki.chain)
    assert match([sha256, sha512], pki.chain)


def test_agility_full_data_always_counts(pki: Pki) -> None:
    assert match(
        [rec(3, 1, 0, pki.leaf.spki), rec(3, 1, 2, wrong(pki.leaf.digest(1, 2)))], pki.chain
    )


def test_agility_is_per_usage_and_selector(pki: Pki) -> None:
    # A wrong SHA-512 for the certificate does not hide a right SHA-256 for the key.
    assert match(
        [rec(3, 0, 2, wrong(pki.leaf.digest(0, 2))), rec(3, 1, 1, pki.leaf.digest(1, 1))], pki.chain
    )
    # Nor does a wrong EE SHA-512 hide a right TA SHA-256.
    assert match(
        [rec(3, 1, 2, wrong(pki.leaf.digest(1, 2))), rec(2, 0, 1, pki.inter.digest(0, 1))],
        pki.chain,
    )
    # Within the TA records the strongest digest decides too.
    assert not match(
        [rec(2, 0, 1, pki.inter.digest(0, 1)), rec(2, 0, 2, wrong(pki.inter.digest(0, 2)))],
        pki.chain,
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from([0, 1, 2]), st.booleans()),
        min_size=1,
        max_size=6,
    )
)
def test_agility_property(records: list[tuple[int, int, bool]]) -> None:
    """EE matches iff some (selector) group has a right full record or a right
    record among its strongest digest type."""
    pki = _AGILITY_PKI
    assocs = [
        rec(3, s, m, pki.leaf.digest(s, m) if right else wrong(pki.leaf.digest(s, m)))
        for s, m, right in records
    ]
    expected = False
    for selector in (0, 1):
        group = [(m, right) for s, m, right in records if s == selector]
        if not group:
            continue
        strongest = max(m for m, _ in group)
        if any(right and (m == 0 or m == strongest) for m, right in group):
            expected = True
    assert match(assocs, pki.chain) is expected


_AGILITY_PKI = make_pki()


# ---------------------------------------------------------------- loading


def test_screen_dns_drops_what_postfix_drops() -> None:
    records = [
        TlsaRecord(3, 1, 1, b"a" * 32),
        TlsaRecord(2, 0, 1, b"b" * 32),
        TlsaRecord(1, 1, 1, b"c" * 32),
        TlsaRecord(0, 0, 0, b"d"),
        TlsaRecord(4, 1, 1, b"e" * 32),
        TlsaRecord(3, 1, 255, b"f" * 32),
        TlsaRecord(3, 1, 1, b""),
    ]
    kept, dropped = screen_dns(records)
    assert [str(a)[:5] for a in kept] == ["3 1 1", "2 0 1"]
    assert [d.reason for d in dropped] == [
        "unsupported TLSA certificate usage",
        "unsupported TLSA certificate usage",
        "unsupported TLSA certificate usage",
        "reserved private-use matching type",
        "truncated TLSA RR",
    ]


def test_screen_openssl_drops_malformed(pki: Pki) -> None:
    items = [
        rec(3, 1, 1, b"a" * 32),
        rec(3, 1, 1, b"a" * 31),
        rec(3, 1, 2, b"a" * 32),
        rec(3, 2, 1, b"a" * 32),
        rec(3, 1, 3, b"a" * 32),
        rec(2, 0, 0, pki.root.der),
        rec(2, 0, 0, pki.root.der + b"\x00"),
        rec(2, 1, 0, pki.root.spki),
        rec(2, 1, 0, b"\x30\x03\x02\x01\x01"),
        rec(3, 0, 255, b"a" * 20),
    ]
    usable, dropped = screen_openssl(items)
    assert usable == [items[0], items[5], items[7]]
    assert [d.reason for d in dropped] == [
        "bad digest length",
        "bad digest length",
        "bad selector",
        "bad matching type",
        "bad certificate",
        "bad public key",
        "bad matching type",
    ]
    usable, _ = screen_openssl([items[-1]], fingerprint_digest="sha1")
    assert usable == [items[-1]]


def test_fingerprint_records_match_with_the_configured_digest(pki: Pki) -> None:
    import hashlib

    md5 = hashlib.md5(pki.leaf.der).digest()
    pkey_sha1 = hashlib.sha1(
        pki.leaf.cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).digest()
    assert match([rec(3, 0, 255, md5)], pki.chain, names=None, fingerprint_digest="md5")
    assert match([rec(3, 1, 255, pkey_sha1)], pki.chain, names=None, fingerprint_digest="sha1")
    assert not match([rec(3, 1, 255, pkey_sha1)], pki.chain, names=None, fingerprint_digest="md5")


def test_max_depth_limits_chain_building() -> None:
    root = make_cert("R0", ca=True)
    chain_certs = [root]
    for i in range(1, 6):
        chain_certs.append(make_cert(f"R{i}", issuer=chain_certs[-1], ca=True))
    leaf = make_cert("mx.example.com", issuer=chain_certs[-1], sans=("mx.example.com",))
    chain = (leaf.der, *[c.der for c in reversed(chain_certs)])
    anchor = [rec(2, 0, 1, root.digest(0, 1))]
    assert match(anchor, chain, max_depth=10)
    assert not match(anchor, chain, max_depth=3)


def test_time_is_an_input() -> None:
    pki = make_pki(leaf_not_after=NOW + DAY)
    anchor = [rec(2, 0, 1, pki.inter.digest(0, 1))]
    assert match(anchor, pki.chain, now=NOW)
    assert not match(anchor, pki.chain, now=NOW + dt.timedelta(days=2))


NAME_CONSTRAINT_CASES = [
    (["example.com"], [], ["mx.example.com"], "x", True),
    (["example.com"], [], ["example.com"], "x", True),
    (["example.com"], [], ["mx.example.net"], "x", False),
    (["example.com"], [], ["mx.notexample.com"], "x", False),
    ([".example.com"], [], ["example.com"], "x", False),
    ([], ["bad.example.com"], ["a.bad.example.com", "mx.example.com"], "x", False),
    ([], ["bad.example.com"], ["mx.example.com"], "x", True),
    (["example.com"], [], [], "mx.example.com", True),  # CN as a DNS id
    (["example.com"], [], [], "mx.example.net", False),
]


@pytest.mark.parametrize(("permitted", "excluded", "sans", "cn", "ok"), NAME_CONSTRAINT_CASES)
def test_name_constraints_on_the_ta_path(
    permitted: list[str], excluded: list[str], sans: list[str], cn: str, ok: bool
) -> None:
    from cryptography import x509

    constraints = x509.NameConstraints(
        permitted_subtrees=[x509.DNSName(p) for p in permitted] or None,
        excluded_subtrees=[x509.DNSName(e) for e in excluded] or None,
    )
    root = make_cert("Constrained Root", ca=True, name_constraints=constraints)
    leaf = make_cert(cn, issuer=root, sans=sans)
    refs = tuple(MatchName(n) for n in ([*sans, cn] if sans else [cn]))
    result = match_chain(
        [rec(2, 0, 1, root.digest(0, 1))], (leaf.der, root.der), names=refs, now=NOW
    )
    assert result.matched is ok, result.reason
    if not ok:
        assert "subtree violation" in result.reason


@pytest.mark.parametrize(("permitted", "excluded", "sans", "cn", "ok"), NAME_CONSTRAINT_CASES)
def test_name_constraint_cases_agree_with_openssl_verify(
    tmp_path: Path, permitted: list[str], excluded: list[str], sans: list[str], cn: str, ok: bool
) -> None:
    """The expectations above are what ``openssl verify`` says for the same certificates."""
    import subprocess

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from tests.peers import find_binary

    openssl = find_binary("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    constraints = x509.NameConstraints(
        permitted_subtrees=[x509.DNSName(p) for p in permitted] or None,
        excluded_subtrees=[x509.DNSName(e) for e in excluded] or None,
    )
    root = make_cert("Constrained Root", ca=True, name_constraints=constraints)
    leaf = make_cert(cn, issuer=root, sans=sans)
    (tmp_path / "root.pem").write_bytes(root.cert.public_bytes(Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.cert.public_bytes(Encoding.PEM))
    out = subprocess.run(
        [
            openssl,
            "verify",
            "-attime",
            str(int(NOW.timestamp())),
            "-CAfile",
            str(tmp_path / "root.pem"),
            str(tmp_path / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (out.returncode == 0) is ok, out.stdout + out.stderr
