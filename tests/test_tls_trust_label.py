"""The Trusted/Untrusted label at levels that do not verify in the handshake.

Postfix (tls_client.c) lets OpenSSL verify the chain at every level and logs
"Trusted" when it verifies against its CAs, even at may and encrypt.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pyfix_smtp.tls.context import pkix_trusted
from pyfix_smtp.tls.options import TlsOptions
from pyfix_smtp.tls.policy import TlsTarget, evaluate

NOW = dt.datetime.now(dt.UTC)
TARGET = TlsTarget(nexthop="[mx.example.test]", domain="mx.example.test", host="mx.example.test")


def _der_chain(ca: trustme.CA, name: str) -> tuple[bytes, ...]:
    leaf = ca.issue_cert(name)
    return tuple(
        x509.load_pem_x509_certificate(pem.bytes()).public_bytes(Encoding.DER)
        for pem in leaf.cert_chain_pems
    )


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trust") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.mark.parametrize("level", ["may", "encrypt"])
def test_chain_from_our_ca_is_trusted(level: str, ca: trustme.CA, ca_file: Path) -> None:
    options = TlsOptions(smtp_tls_security_level=level, smtp_tls_CAfile=str(ca_file))
    policy = evaluate(TARGET, options)
    assert pkix_trusted(policy, options, _der_chain(ca, "mx.example.test"), now=NOW) is True


@pytest.mark.parametrize("level", ["may", "encrypt"])
def test_chain_from_another_ca_is_not(level: str, ca_file: Path) -> None:
    options = TlsOptions(smtp_tls_security_level=level, smtp_tls_CAfile=str(ca_file))
    policy = evaluate(TARGET, options)
    other = _der_chain(trustme.CA(), "mx.example.test")
    assert pkix_trusted(policy, options, other, now=NOW) is False


def test_without_ca_files_nothing_is_checked(ca: trustme.CA) -> None:
    # Postfix: with no CAfile/CApath (and tls_append_default_CA = no) no CA is trusted.
    options = TlsOptions(smtp_tls_security_level="may")
    policy = evaluate(TARGET, options)
    assert pkix_trusted(policy, options, _der_chain(ca, "mx.example.test"), now=NOW) is None


def test_verify_level_was_checked_in_the_handshake(ca: trustme.CA, ca_file: Path) -> None:
    options = TlsOptions(smtp_tls_security_level="verify", smtp_tls_CAfile=str(ca_file))
    policy = evaluate(TARGET, options)
    assert pkix_trusted(policy, options, _der_chain(ca, "mx.example.test"), now=NOW) is True


def test_no_certificate_is_not_trusted(ca_file: Path) -> None:
    options = TlsOptions(smtp_tls_security_level="may", smtp_tls_CAfile=str(ca_file))
    policy = evaluate(TARGET, options)
    assert pkix_trusted(policy, options, (), now=NOW) is None
