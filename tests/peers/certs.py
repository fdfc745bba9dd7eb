"""Test certificates (trustme), shared by every TLS peer and the DNS zone's TLSA.

One CA and one ECDSA server certificate for the lab names, written to files
the servers read. PEERS.md: ``cert_chain_pems`` leaves out the root, so
``server.pem`` is leaf + CA, or DANE-TA (``2 0 1``) cannot match.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SERVER_NAMES = (
    "mx.example.test",
    "mx2.example.test",
    "mta-sts.example.test",
    "localhost",
    "127.0.0.1",
    "::1",
)


@dataclass(frozen=True)
class LabCerts:
    """Paths and digests of the lab PKI."""

    directory: Path
    ca: trustme.CA
    ca_pem: Path  # CA certificate (trust anchor file)
    server_pem: Path  # leaf + CA
    server_key: Path
    leaf_der: bytes
    ca_der: bytes

    @property
    def leaf_spki_sha256(self) -> bytes:
        """TLSA ``3 1 1`` data: SHA-256 of the leaf's SubjectPublicKeyInfo."""
        cert = x509.load_der_x509_certificate(self.leaf_der)
        spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(spki).digest()

    @property
    def ca_sha256(self) -> bytes:
        """TLSA ``2 0 1`` data: SHA-256 of the CA certificate."""
        return hashlib.sha256(self.ca_der).digest()


def make_lab_certs(directory: Path) -> LabCerts:
    """Create the CA and server certificate under *directory*."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert(*SERVER_NAMES)
    ca_pem = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    server_pem = directory / "server.pem"
    server_pem.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems) + ca.cert_pem.bytes())
    server_key = directory / "server.key"
    leaf.private_key_pem.write_to_path(str(server_key))
    server_key.chmod(0o644)  # read by unprivileged server processes in the lab
    leaf_cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    return LabCerts(
        directory=directory,
        ca=ca,
        ca_pem=ca_pem,
        server_pem=server_pem,
        server_key=server_key,
        leaf_der=leaf_cert.public_bytes(Encoding.DER),
        ca_der=ca_cert.public_bytes(Encoding.DER),
    )


@pytest.fixture(scope="session")
def lab_certs(tmp_path_factory: pytest.TempPathFactory) -> LabCerts:
    """The lab CA and server certificate (session scope)."""
    directory = tmp_path_factory.mktemp("certs")
    directory.chmod(0o755)
    return make_lab_certs(directory)
