"""The ssl layer: client certificates, the context cache key, OpenSSL options.

Handshakes run against a small Python TLS server on loopback that asks for
a client certificate and records the one it got.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import NameOID

from pyfix_smtp.config import Config
from pyfix_smtp.errors import ConfigError, TlsPolicyError
from pyfix_smtp.tls.context import build_context, client_certificates, context_key
from pyfix_smtp.tls.options import TlsOptions
from pyfix_smtp.tls.policy import TlsPolicy, TlsTarget, evaluate
from pyfix_smtp.tls.workarounds import disabled_workarounds
from pyfix_smtp.transport.sync import TlsContexts

TARGET = TlsTarget(nexthop="example.test", domain="example.test", host="mx.example.test")
NOW = dt.datetime.now(dt.UTC)

PrivateKey = dsa.DSAPrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class Pki:
    directory: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate

    def issue(self, cn: str, key: PrivateKey) -> tuple[Path, Path]:
        """Certificate and key files for *cn*, signed by the CA."""
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        cert_file = self.directory / f"{cn}.pem"
        key_file = self.directory / f"{cn}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(_pem_key(key))
        return cert_file, key_file

    @property
    def ca_file(self) -> Path:
        path = self.directory / "ca.pem"
        path.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))
        return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Test CA"))
        .issuer_name(_name("Test CA"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Pki(tmp_path_factory.mktemp("pki"), key, ca)


@pytest.fixture(scope="module")
def dsa_client(pki: Pki) -> tuple[Path, Path]:
    return pki.issue("dsa-client.example.test", dsa.generate_private_key(2048))


class ClientCertServer:
    """TLS 1.2 server on loopback that asks for a client certificate (DSA needs TLS 1.2)."""

    def __init__(self, pki: Pki) -> None:
        cert, key = pki.issue("localhost", ec.generate_private_key(ec.SECP256R1()))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.maximum_version = ssl.TLSVersion.TLSv1_2
        self.context.set_ciphers("ALL:@SECLEVEL=0")  # accept DSA signatures
        self.context.verify_mode = ssl.CERT_OPTIONAL
        self.context.load_verify_locations(pki.ca_file)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.seen: list[str] = []

    def handshake(self, client: ssl.SSLContext) -> str:
        """One handshake with *client*; the CN of the client certificate the server got."""
        thread = threading.Thread(target=self._serve_one)
        thread.start()
        with (
            socket.create_connection(self.listener.getsockname(), timeout=10) as raw,
            client.wrap_socket(raw) as tsock,
        ):
            assert tsock.recv(2) == b"ok"
        thread.join(10)
        return self.seen[-1]

    def _serve_one(self) -> None:
        conn, _ = self.listener.accept()
        with self.context.wrap_socket(conn, server_side=True) as tsock:
            der = tsock.getpeercert(binary_form=True)
            cn = ""
            if der:
                attrs = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(
                    NameOID.COMMON_NAME
                )
                cn = str(attrs[0].value)
            self.seen.append(cn)
            tsock.sendall(b"ok")


@pytest.fixture(scope="module")
def server(pki: Pki) -> Iterator[ClientCertServer]:
    srv = ClientCertServer(pki)
    yield srv
    srv.listener.close()


def _policy(**options: object) -> tuple[TlsPolicy, TlsOptions]:
    opts = TlsOptions(smtp_tls_security_level="encrypt", **options)  # type: ignore[arg-type]
    return evaluate(TARGET, opts), opts


# -- smtp_tls_dcert_file / smtp_tls_dkey_file -----------------------------------------


def test_dsa_client_certificate_is_presented(
    server: ClientCertServer, dsa_client: tuple[Path, Path]
) -> None:
    cert, key = dsa_client
    policy, opts = _policy(smtp_tls_dcert_file=str(cert), smtp_tls_dkey_file=str(key))
    assert server.handshake(build_context(policy, opts)) == "dsa-client.example.test"
    policy, opts = _policy()
    assert server.handshake(build_context(policy, opts)) == ""  # no certificate at all


def test_dsa_key_in_the_certificate_file(
    server: ClientCertServer, dsa_client: tuple[Path, Path], tmp_path: Path
) -> None:
    # Postfix's default smtp_tls_dkey_file = $smtp_tls_dcert_file: one file holds both.
    cert, key = dsa_client
    both = tmp_path / "dsa-both.pem"
    both.write_bytes(key.read_bytes() + cert.read_bytes())
    policy, opts = _policy(smtp_tls_dcert_file=str(both), smtp_tls_dkey_file=str(both))
    assert server.handshake(build_context(policy, opts)) == "dsa-client.example.test"


def test_bad_dsa_key_names_the_parameter(pki: Pki, dsa_client: tuple[Path, Path]) -> None:
    cert, _ = dsa_client
    _, other_key = pki.issue("other.example.test", dsa.generate_private_key(2048))
    policy, opts = _policy(smtp_tls_dcert_file=str(cert), smtp_tls_dkey_file=str(other_key))
    with pytest.raises(TlsPolicyError, match=f"smtp_tls_dcert_file={cert}"):
        build_context(policy, opts)


def test_client_certificate_order_and_chain_files_override() -> None:
    # Postfix tls_set_my_certificate_key_info(): RSA, DSA, ECDSA; chain files win.
    opts = TlsOptions(
        smtp_tls_cert_file="rsa.pem",
        smtp_tls_key_file="rsa.key",
        smtp_tls_dcert_file="dsa.pem",
        smtp_tls_eccert_file="ec.pem",
        smtp_tls_eckey_file="ec.key",
    )
    assert client_certificates(opts) == (
        ("smtp_tls_cert_file", "rsa.pem", "rsa.key"),
        ("smtp_tls_dcert_file", "dsa.pem", None),
        ("smtp_tls_eccert_file", "ec.pem", "ec.key"),
    )
    chained = TlsOptions(smtp_tls_dcert_file="dsa.pem", smtp_tls_chain_files=("a.pem", "b.pem"))
    assert client_certificates(chained) == (
        ("smtp_tls_chain_files", "a.pem", None),
        ("smtp_tls_chain_files", "b.pem", None),
    )


# -- context_key: the drivers' context cache -------------------------------------------


def test_context_cache_tells_dsa_certificates_apart(dsa_client: tuple[Path, Path]) -> None:
    cert, key = dsa_client
    contexts = TlsContexts()
    plain_policy, plain = _policy()
    dsa_policy, with_dsa = _policy(smtp_tls_dcert_file=str(cert), smtp_tls_dkey_file=str(key))
    assert context_key(plain_policy, plain) != context_key(dsa_policy, with_dsa)
    first = contexts.get(dsa_policy, with_dsa)
    assert contexts.get(dsa_policy, with_dsa) is first
    assert contexts.get(plain_policy, plain) is not first
    # what build_context does not read does not split the cache
    same_policy, same = _policy(
        smtp_tls_dcert_file=str(cert), smtp_tls_dkey_file=str(key), smtp_tls_servername="x"
    )
    assert contexts.get(same_policy, same) is first


# -- tls_disable_workarounds -------------------------------------------------------------

WORKAROUND_CASES = [
    # (tls_disable_workarounds, mask; SAFARI_ECDHE_ECDSA_BUG 0x40 comes with any value)
    ((), 0),
    (("TLSEXT_PADDING",), 0x10 | 0x40),
    (("tlsext_padding",), 0x10 | 0x40),  # Postfix NAME_MASK_ANY_CASE
    (("CRYPTOPRO_TLSEXT_BUG, TLS_ROLLBACK_BUG",), 0x80000000 | 0x00800000 | 0x40),
    (("TLSEXT_PADDING", "LEGACY_SERVER_CONNECT"), 0x10 | 0x4 | 0x40),
    (("TLS_D5_BUG",), 0x40),  # retired by OpenSSL: means nothing
    (("CVE-2010-4180",), 0x40),
    (("0x10",), 0x10 | 0x40),  # Postfix NAME_MASK_NUMBER
    (("0X80000000",), 0x80000000 | 0x40),
]


@pytest.mark.parametrize(("value", "mask"), WORKAROUND_CASES)
def test_workaround_names_and_masks(value: tuple[str, ...], mask: int) -> None:
    assert disabled_workarounds(value) == mask
    assert TlsOptions(tls_disable_workarounds=value).workaround_mask == mask


@pytest.mark.parametrize("word", ["NO_SUCH_BUG", "0x", "0xZZ", "0x-1", "0x_10", "16", "SSL_OP_ALL"])
def test_unknown_workaround_is_a_config_error(word: str) -> None:
    with pytest.raises(ConfigError, match=f'tls_disable_workarounds.*unknown value "{word}"'):
        TlsOptions(tls_disable_workarounds=("TLSEXT_PADDING", word))


def test_workarounds_from_config() -> None:
    opts = TlsOptions.from_config(Config(tls_disable_workarounds="TLSEXT_PADDING, 0x4"))
    assert opts.workaround_mask == 0x10 | 0x4 | 0x40
    with pytest.raises(ConfigError, match="tls_disable_workarounds"):
        TlsOptions.from_config(Config(tls_disable_workarounds="bogus"))


def test_only_bug_workaround_bits_are_cleared() -> None:
    default_policy, default = _policy()
    base = build_context(default_policy, default).options
    assert base & ssl.OP_NO_RENEGOTIATION  # tls_bug_bits(): never renegotiate
    assert base & 0x10  # TLSEXT_PADDING, part of SSL_OP_ALL
    # NO_SSLv3 | NO_COMPRESSION are not work-arounds: a mask naming them changes nothing
    policy, opts = _policy(tls_disable_workarounds=("TLSEXT_PADDING", "0x2020000"))
    options = build_context(policy, opts).options
    assert options == base & ~(0x10 | 0x40)
    assert options & ssl.OP_NO_SSLv3
    assert options & ssl.OP_NO_COMPRESSION
    assert context_key(policy, opts) != context_key(default_policy, default)


def _client_hello_extensions(context: ssl.SSLContext) -> list[int]:
    """The extension types of the ClientHello that *context* sends."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    record = bytearray()

    def read_hello() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(10)
            while len(record) < 5 or len(record) < 5 + int.from_bytes(record[3:5], "big"):
                data = conn.recv(65536)
                if not data:
                    break
                record.extend(data)

    thread = threading.Thread(target=read_hello)
    thread.start()
    with (
        socket.create_connection(listener.getsockname(), timeout=10) as raw,
        pytest.raises(OSError),  # the "server" hangs up after the hello
    ):
        context.wrap_socket(raw, server_hostname="mx.example.test")
    thread.join(10)
    listener.close()
    body = bytes(record[9:])  # record header (5), handshake header (4)
    pos = 2 + 32  # version, random
    pos += 1 + body[pos]  # session id
    pos += 2 + int.from_bytes(body[pos : pos + 2], "big")  # cipher suites
    pos += 1 + body[pos]  # compression methods
    end = pos + 2 + int.from_bytes(body[pos : pos + 2], "big")
    pos += 2
    types = []
    while pos < end:
        types.append(int.from_bytes(body[pos : pos + 2], "big"))
        pos += 4 + int.from_bytes(body[pos + 2 : pos + 4], "big")
    return types


def test_disabled_padding_workaround_on_the_wire() -> None:
    # SSL_OP_TLSEXT_PADDING pads a ClientHello of 256-511 bytes with the
    # padding extension (RFC 7685, type 21); disabling it leaves the padding out.
    policy, opts = _policy()
    assert 21 in _client_hello_extensions(build_context(policy, opts))
    policy, opts = _policy(tls_disable_workarounds=("TLSEXT_PADDING",))
    types = _client_hello_extensions(build_context(policy, opts))
    assert 0 in types  # SNI still there: the hello is otherwise the same
    assert 21 not in types
