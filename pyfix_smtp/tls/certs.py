"""X.509 helpers shared by DANE, fingerprints and PKIX checks (pure, cryptography).

What is here mirrors what OpenSSL does for Postfix:

* :func:`match_names` - OpenSSL X509_check_host() with Postfix's flags
  (``X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS``): DNS subjectAltNames, the
  subject CN only when there is no DNS SAN, each compared with
  :func:`pyfix_smtp.tls.names.match_host`.
* :func:`validate_path` - the checks of OpenSSL's ``check_chain()`` and
  ``internal_verify()`` for a path from the leaf up to an already chosen
  trust anchor: CA flags, path lengths, key usage, server-auth purpose,
  signatures and validity dates.

This module loads cryptography; it is imported only when a certificate must
be parsed (DANE, fingerprint, trust-anchor and CA checks). Names and
fingerprints that need no parsing live in :mod:`.names` and
:mod:`.fingerprints` (re-exported here).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pyfix_smtp.tls.fingerprints import colon_hex, fingerprint, spki_der
from pyfix_smtp.tls.names import MatchName, ascii_lower, is_ldh, match_host, parse_ip, to_ascii

__all__ = [
    "ChainError",
    "MatchName",
    "PathAnchor",
    "certificate_names",
    "check_ca",
    "colon_hex",
    "fingerprint",
    "likely_issued",
    "load_certificate",
    "match_host",
    "match_names",
    "parse_ip",
    "self_issued",
    "signed_by_key",
    "spki_der",
    "time_valid",
    "to_ascii",
    "validate_path",
]

_SGC_OIDS = (
    x509.ObjectIdentifier("2.16.840.1.113730.4.1"),  # Netscape server gated crypto
    x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),  # Microsoft SGC
)


class ChainError(Exception):
    """A certificate path failed a check; ``depth`` is 0 for the leaf."""

    def __init__(self, reason: str, depth: int, *, name_mismatch: bool = False) -> None:
        self.reason = reason
        self.depth = depth
        self.name_mismatch = name_mismatch  # the only problem is the name
        super().__init__(f"{reason} (depth {depth})")


def load_certificate(der: bytes) -> x509.Certificate:
    """Parse one DER certificate (ValueError when it is not one)."""
    return x509.load_der_x509_certificate(der)


# ---------------------------------------------------------------- host names


def certificate_names(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(DNS subjectAltNames, subject common names) of *cert*."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns_names = tuple(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns_names = ()
    cns: list[str] = []
    for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attr.value
        cns.append(value if isinstance(value, str) else value.decode("utf-8", "replace"))
    return dns_names, tuple(cns)


def match_names(cert: x509.Certificate, refs: Sequence[MatchName]) -> MatchName | None:
    """The reference name that *cert* matches, or None.

    Host names: any one must match a DNS subjectAltName, or the subject CN
    when the certificate has no DNS SAN (OpenSSL do_x509_check()). An IP
    address reference (OpenSSL 3 keeps only the first) must *also* match an
    iPAddress subjectAltName: OpenSSL's check_id() requires both.
    """
    hosts = [r for r in refs if not r.ip]
    ips = [r for r in refs if r.ip][:1]
    matched: MatchName | None = None
    if hosts:
        dns_names, cns = certificate_names(cert)
        candidates = dns_names if dns_names else cns
        matched = next((r for r in hosts for p in candidates if match_host(p, r)), None)
        if matched is None:
            return None
    if ips:
        wanted = parse_ip(ips[0].name)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            addresses = san.value.get_values_for_type(x509.IPAddress)
        except x509.ExtensionNotFound:
            addresses = []
        if wanted not in addresses:
            return None
        matched = matched or ips[0]
    return matched


# ---------------------------------------------------------------- chain checks


def _ext(
    cert: x509.Certificate, cls: type[x509.ExtensionType]
) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return cert.extensions.get_extension_for_class(cls)
    except x509.ExtensionNotFound:
        return None


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    ext = _ext(cert, x509.KeyUsage)
    return ext.value if ext is not None and isinstance(ext.value, x509.KeyUsage) else None


def _akid_skid_consistent(issuer: x509.Certificate, subject: x509.Certificate) -> bool:
    """OpenSSL X509_check_akid(): a present AKID must agree with the issuer."""
    akid_ext = _ext(subject, x509.AuthorityKeyIdentifier)
    if akid_ext is None or not isinstance(akid_ext.value, x509.AuthorityKeyIdentifier):
        return True
    akid = akid_ext.value
    if akid.key_identifier is not None:
        skid_ext = _ext(issuer, x509.SubjectKeyIdentifier)
        if (
            skid_ext is not None
            and isinstance(skid_ext.value, x509.SubjectKeyIdentifier)
            and skid_ext.value.digest != akid.key_identifier
        ):
            return False
    if akid.authority_cert_serial_number is not None:
        if akid.authority_cert_serial_number != issuer.serial_number:
            return False
        names = akid.authority_cert_issuer or []
        dirnames = [n.value for n in names if isinstance(n, x509.DirectoryName)]
        if dirnames and issuer.issuer not in dirnames:
            return False
    return True


def _sig_alg_matches(issuer: x509.Certificate, subject: x509.Certificate) -> bool:
    """OpenSSL check_sig_alg_match(): the signature type fits the issuer key type."""
    key = issuer.public_key()
    params = subject.signature_algorithm_parameters
    if isinstance(key, rsa.RSAPublicKey):
        return isinstance(params, padding.PKCS1v15 | padding.PSS)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return isinstance(params, ec.ECDSA)
    return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey | dsa.DSAPublicKey)


def likely_issued(issuer: x509.Certificate, subject: x509.Certificate) -> bool:
    """OpenSSL ossl_x509_likely_issued(): names, AKID and key type agree (no signature check)."""
    try:
        if issuer.subject != subject.issuer:
            return False
        return _akid_skid_consistent(issuer, subject) and _sig_alg_matches(issuer, subject)
    except (ValueError, UnsupportedAlgorithm):
        return False


def self_issued(cert: x509.Certificate) -> bool:
    """Subject equals issuer and the AKID (if any) points at the own key (EXFLAG_SI)."""
    return likely_issued(cert, cert)


def check_ca(cert: x509.Certificate) -> int:
    """OpenSSL check_ca(): 0 not a CA, 1 basicConstraints CA, 3 v1 root, 4 keyCertSign only."""
    usage = _key_usage(cert)
    if usage is not None and not usage.key_cert_sign:
        return 0
    bc = _ext(cert, x509.BasicConstraints)
    if bc is not None and isinstance(bc.value, x509.BasicConstraints):
        return 1 if bc.value.ca else 0
    if cert.version is x509.Version.v1 and self_issued(cert):
        return 3
    if usage is not None:
        return 4
    return 0


def _path_length(cert: x509.Certificate) -> int | None:
    bc = _ext(cert, x509.BasicConstraints)
    if bc is not None and isinstance(bc.value, x509.BasicConstraints):
        return bc.value.path_length
    return None


def _server_purpose_ok(cert: x509.Certificate, *, ca: bool) -> bool:
    """OpenSSL check_purpose_ssl_server(): EKU serverAuth/SGC, leaf key usage for TLS."""
    eku = _ext(cert, x509.ExtendedKeyUsage)
    if eku is not None and isinstance(eku.value, x509.ExtendedKeyUsage):
        oids = list(eku.value)
        if ExtendedKeyUsageOID.SERVER_AUTH not in oids and not any(o in oids for o in _SGC_OIDS):
            return False
    if ca:
        return check_ca(cert) != 0
    usage = _key_usage(cert)
    return usage is None or bool(
        usage.digital_signature or usage.key_encipherment or usage.key_agreement
    )


def time_valid(cert: x509.Certificate, now: dt.datetime) -> str | None:
    """None when *now* lies in the validity period, else the reason."""
    if now < cert.not_valid_before_utc:
        return "certificate is not yet valid"
    if now > cert.not_valid_after_utc:
        return "certificate has expired"
    return None


def signed_by_key(cert: x509.Certificate, key: object) -> bool:
    """Is *cert*'s signature made with *key* (a cryptography public key)?"""
    sig = cert.signature
    tbs = cert.tbs_certificate_bytes
    params = cert.signature_algorithm_parameters
    digest = cert.signature_hash_algorithm
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if not isinstance(params, padding.PKCS1v15 | padding.PSS) or digest is None:
                return False
            key.verify(sig, tbs, params, digest)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if not isinstance(params, ec.ECDSA):
                return False
            key.verify(sig, tbs, params)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(sig, tbs)
        elif isinstance(key, dsa.DSAPublicKey):
            if digest is None:
                return False
            key.verify(sig, tbs, digest)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        return signed_by_key(cert, issuer.public_key())
    except (ValueError, UnsupportedAlgorithm):
        return False


def _nc_dns(name: str, base: str) -> bool:
    """OpenSSL nc_dns(): *base* covers *name* (whole labels; ``.base`` only below)."""
    if not base:
        return True
    if len(name) < len(base):
        return False
    if len(name) > len(base):
        tail = name[len(name) - len(base) :]
        if base[0] != "." and name[len(name) - len(base) - 1] != ".":
            return False
        return ascii_lower(tail) == ascii_lower(base)
    return ascii_lower(name) == ascii_lower(base)


def _nc_ip(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> bool:
    return address.version == network.version and address in network


def _cn_dns_ids(cert: x509.Certificate) -> list[str]:
    """OpenSSL cn2dnsid(): CNs that look like DNS names (a dot, LDH labels)."""
    out = []
    for value in certificate_names(cert)[1]:
        labels = value.split(".")
        if len(labels) > 1 and all(label and all(is_ldh(ch) for ch in label) for label in labels):
            out.append(value)
    return out


def _check_name_constraints(path: Sequence[x509.Certificate]) -> None:
    """OpenSSL check_name_constraints(): DNS and IP subtrees of every CA above.

    Self-issued certificates other than the leaf are not checked; for the
    leaf, CNs that look like host names count as DNS names too.
    """
    for i in range(len(path) - 1, -1, -1):
        cert = path[i]
        if i != 0 and self_issued(cert):
            continue
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            dns = list(san.get_values_for_type(x509.DNSName))
            ips = list(san.get_values_for_type(x509.IPAddress))
        except x509.ExtensionNotFound:
            dns, ips = [], []
        if i == 0:
            dns += _cn_dns_ids(cert)
        for j in range(len(path) - 1, i, -1):
            ext = _ext(path[j], x509.NameConstraints)
            if ext is None or not isinstance(ext.value, x509.NameConstraints):
                continue
            nc = ext.value
            permitted = list(nc.permitted_subtrees or [])
            excluded = list(nc.excluded_subtrees or [])
            allowed_dns = [g.value for g in permitted if isinstance(g, x509.DNSName)]
            denied_dns = [g.value for g in excluded if isinstance(g, x509.DNSName)]
            allowed_ip = [g.value for g in permitted if isinstance(g, x509.IPAddress)]
            denied_ip = [g.value for g in excluded if isinstance(g, x509.IPAddress)]
            for name in dns:
                if any(_nc_dns(name, base) for base in denied_dns):
                    raise ChainError(f"excluded subtree violation: {name}", i)
                if allowed_dns and not any(_nc_dns(name, base) for base in allowed_dns):
                    raise ChainError(f"permitted subtree violation: {name}", i)
            for addr in ips:
                nets = [
                    n
                    for n in denied_ip
                    if isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network)
                ]
                if isinstance(addr, ipaddress.IPv4Address | ipaddress.IPv6Address):
                    if any(_nc_ip(addr, n) for n in nets):
                        raise ChainError(f"excluded subtree violation: {addr}", i)
                    ok = [
                        n
                        for n in allowed_ip
                        if isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network)
                    ]
                    if ok and not any(_nc_ip(addr, n) for n in ok):
                        raise ChainError(f"permitted subtree violation: {addr}", i)


@dataclass(frozen=True, slots=True)
class PathAnchor:
    """How the top of a path is trusted.

    ``bare_key`` is set when a public key outside the path (DANE ``2 1 0`` or
    a trust-anchor file key) signed the top certificate.
    """

    bare_key: object | None = None


def validate_path(
    path: Sequence[x509.Certificate],
    *,
    now: dt.datetime,
    anchor: PathAnchor,
    names: Sequence[MatchName] | None,
) -> MatchName | None:
    """Check a path ``path[0]`` (leaf) .. ``path[-1]`` (trust anchor).

    The anchor was chosen by the caller (TLSA match, trust store). Mirrors
    OpenSSL check_chain(), check_name_constraints() and internal_verify():
    unknown critical extensions, CA flags (``CA:TRUE`` below the top), path
    lengths, the ssl_server purpose, DNS/IP name constraints, key usage of
    issuers, signatures from leaf to anchor,
    and validity dates of every certificate checked - including a
    self-issued anchor, excluding a non-self-issued anchor. With *names*,
    the leaf must match one of them.

    Returns:
        The reference name that matched (None when *names* is None).

    Raises:
        ChainError: the first failed check, with its depth.
    """
    top = len(path) - 1
    plen = 0
    for depth, cert in enumerate(path):
        try:
            for ext in cert.extensions:
                if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
                    raise ChainError("unhandled critical extension", depth)
        except ValueError as exc:
            raise ChainError(f"malformed certificate extensions: {exc}", depth) from None
        if depth > 0:
            ca = check_ca(cert)
            if ca == 0 or (depth < top and ca != 1):
                raise ChainError("invalid CA certificate", depth)
            pathlen = _path_length(cert)
            if depth > 1 and pathlen is not None and plen > pathlen:
                raise ChainError("path length constraint exceeded", depth)
            if not self_issued(cert):
                plen += 1
        if not _server_purpose_ok(cert, ca=depth > 0):
            raise ChainError("unsupported certificate purpose", depth)

    _check_name_constraints(path)

    # OpenSSL check_id() runs here, but Postfix's verify callback lets any
    # other error take priority over a name mismatch (tls_verify.c
    # update_error_state()), so the mismatch is raised last.
    matched: MatchName | None = None
    if names is not None:
        matched = match_names(path[0], names)

    # internal_verify(): start at the anchor and walk down to the leaf.
    n = top
    if anchor.bare_key is not None:
        why = time_valid(path[n], now)  # the key already verified path[top]
        if why:
            raise ChainError(why, n)
        start = n - 1
    elif self_issued(path[n]):
        why = time_valid(path[n], now)  # OpenSSL checks a self-issued anchor's dates too
        if why:
            raise ChainError(why, n)
        start = n - 1
    else:
        if n == 0:
            raise ChainError("unable to verify the first certificate", 0)
        start = n - 1  # a non-self-issued anchor is not itself checked
    for depth in range(start, -1, -1):
        issuer, cert = path[depth + 1], path[depth]
        usage = _key_usage(issuer)
        if usage is not None and not usage.key_cert_sign:
            raise ChainError("issuer key usage does not include certificate signing", depth + 1)
        if not _signed_by(cert, issuer):
            raise ChainError("certificate signature failure", depth)
        why = time_valid(cert, now)
        if why:
            raise ChainError(why, depth)
    if names is not None and matched is None:
        raise ChainError("certificate name does not match", 0, name_mismatch=True)
    return matched


def der_of(cert: x509.Certificate) -> bytes:
    """DER encoding of *cert*."""
    return cert.public_bytes(Encoding.DER)
