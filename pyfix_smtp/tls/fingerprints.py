"""Certificate and public-key fingerprints from DER, without parsing X.509 (pure).

What Postfix logs and matches at every level (``smtp_tls_fingerprint_digest``,
TLSA selectors): the digest of the certificate, or of its
SubjectPublicKeyInfo exactly as encoded inside it. A DER walk of a few
elements finds the SPKI, so a delivery at ``may`` or ``encrypt`` logs
fingerprints without loading cryptography.
"""

from __future__ import annotations

import hashlib

__all__ = ["colon_hex", "fingerprint", "spki_der"]


def _der_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """Return (tag, content start, content end) of the DER element at *pos*."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def spki_der(cert_der: bytes) -> bytes:
    """The SubjectPublicKeyInfo as encoded inside *cert_der* (TLSA selector 1).

    OpenSSL hashes the certificate's own encoding (i2d_X509_PUBKEY), which
    need not equal a re-encoding of the parsed key, so this walks the DER.
    """
    _, start, _ = _der_header(cert_der, 0)  # Certificate SEQUENCE
    tag, tbs_start, tbs_end = _der_header(cert_der, start)  # TBSCertificate
    if tag != 0x30:
        raise ValueError("certificate has no TBSCertificate")
    pos = tbs_start
    index = 0
    while pos < tbs_end:
        tag, _, end = _der_header(cert_der, pos)
        if index == 0 and tag == 0xA0:  # [0] version, optional
            pos = end
            continue
        # serial, signature, issuer, validity, subject, subjectPublicKeyInfo
        if index == 5:
            return cert_der[pos:end]
        index += 1
        pos = end
    raise ValueError("certificate has no SubjectPublicKeyInfo")


def fingerprint(cert_der: bytes, digest: str, *, public_key: bool = False) -> bytes:
    """Digest of the certificate (or its SPKI) with *digest* (``sha256``, ``sha1``, ``md5``...)."""
    data = spki_der(cert_der) if public_key else cert_der
    return hashlib.new(digest, data).digest()


def colon_hex(data: bytes) -> str:
    """``AA:BB:...`` as Postfix logs fingerprints."""
    return ":".join(f"{b:02X}" for b in data)
