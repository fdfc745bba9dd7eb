"""A small certificate factory for the TLS tests (cryptography, EC P-256), and its checks.

``Pki`` builds root -> intermediate -> leaf chains with exactly the
extensions a test needs (CA flags, key usage, EKU, SANs, validity), so DANE
and PKIX tests can vary one property at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key."""
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class Issued:
    """A certificate with its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(Encoding.DER)

    @property
    def spki(self) -> bytes:
        return self.cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    def digest(self, selector: int, mtype: int) -> bytes:
        """TLSA association data for this certificate."""
        data = self.der if selector == 0 else self.spki
        if mtype == 0:
            return data
        return hashlib.new("sha256" if mtype == 1 else "sha512", data).digest()


def make_cert(
    cn: str,
    *,
    issuer: Issued | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    sans: Sequence[str] = (),
    ca: bool = False,
    path_length: int | None = None,
    not_before: dt.datetime = NOW - 30 * DAY,
    not_after: dt.datetime = NOW + 365 * DAY,
    key_usage: str | None = "auto",
    eku: Sequence[x509.ObjectIdentifier] | None = None,
    basic_constraints: bool = True,
    skid: bool = True,
    name_constraints: x509.NameConstraints | None = None,
) -> Issued:
    """Issue a certificate (self-signed when *issuer* is None)."""
    key = key or new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if basic_constraints:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    if key_usage == "auto":
        key_usage = "ca" if ca else "leaf"
    if key_usage is not None:
        sign = key_usage == "ca"
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=not sign,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=sign,
                crl_sign=sign,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if name_constraints is not None:
        builder = builder.add_extension(name_constraints, critical=True)
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    if skid:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    if issuer is not None and skid:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


@dataclass(frozen=True)
class Pki:
    """root -> intermediate -> leaf for ``mx.example.com``."""

    root: Issued
    inter: Issued
    leaf: Issued

    @property
    def chain(self) -> tuple[bytes, ...]:
        """What a server sends: leaf + intermediate (+ root for DANE-TA on the root)."""
        return (self.leaf.der, self.inter.der)

    @property
    def full_chain(self) -> tuple[bytes, ...]:
        return (self.leaf.der, self.inter.der, self.root.der)


def make_pki(
    *,
    sans: Sequence[str] = ("mx.example.com",),
    leaf_not_after: dt.datetime = NOW + 90 * DAY,
    leaf_not_before: dt.datetime = NOW - 30 * DAY,
    inter_not_after: dt.datetime = NOW + 365 * DAY,
    leaf_eku: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.SERVER_AUTH,),
    leaf_cn: str = "mx.example.com",
) -> Pki:
    """A fresh three-level PKI."""
    root = make_cert("Test Root", ca=True)
    inter = make_cert("Test Intermediate", issuer=root, ca=True, not_after=inter_not_after)
    leaf = make_cert(
        leaf_cn,
        issuer=inter,
        sans=sans,
        not_before=leaf_not_before,
        not_after=leaf_not_after,
        eku=leaf_eku,
    )
    return Pki(root, inter, leaf)


# ----------------------------------------------------------------- self-checks


def test_factory_chain_signatures_verify() -> None:
    pki = make_pki()
    pki.leaf.cert.verify_directly_issued_by(pki.inter.cert)
    pki.inter.cert.verify_directly_issued_by(pki.root.cert)
    pki.root.cert.verify_directly_issued_by(pki.root.cert)


def test_factory_digest_matches_openssl_definitions() -> None:
    pki = make_pki()
    assert pki.leaf.digest(0, 0) == pki.leaf.der
    assert pki.leaf.digest(1, 1) == hashlib.sha256(pki.leaf.spki).digest()
    assert len(pki.leaf.digest(0, 2)) == 64


def test_factory_extensions_as_requested() -> None:
    leaf = make_cert("x", sans=("a.example", "b.example"), key_usage=None, skid=False)
    names = leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.DNSName) == ["a.example", "b.example"]
    assert not any(isinstance(e.value, x509.KeyUsage) for e in leaf.cert.extensions)
