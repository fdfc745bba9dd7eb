"""Check the server's certificate chain against a :class:`TlsPolicy` (pure).

After the handshake the driver hands the certificates the server sent
(:func:`pyfix_smtp.tls.context.peer_chain`) to :func:`check_peer`, which
applies the policy the way Postfix's tls_client.c verify_x509() reports it:

* ``may``/``encrypt``: nothing must match; the chain is labelled "Trusted"
  when it leads to a trusted CA (given as *anchors*), else "Untrusted".
* ``fingerprint``: the leaf certificate or public key digest must be listed.
* ``halfdane``/``dane``/``dane-only``: TLSA matching (:mod:`.dane`).
* ``verify``/``secure``: PKIX trust (from the handshake, or *anchors*) plus a
  name match; with trust-anchor files, TLSA-style matching with names.

A must-match level that does not match yields 4.7.5 "Server certificate not
verified": the server is skipped (Postfix smtp_proto.c smtp_start_tls()).

Certificates are parsed (and cryptography imported) only by the checks that
need it: at ``may``/``encrypt`` without CA anchors only the DER digests are
computed.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyfix_smtp.status import Failure
from pyfix_smtp.tls.dane import DaneMatch, match_chain
from pyfix_smtp.tls.fingerprints import colon_hex, fingerprint
from pyfix_smtp.tls.levels import TlsLevel
from pyfix_smtp.tls.names import MatchName
from pyfix_smtp.tls.policy import TlsPolicy

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "NOT_VERIFIED",
    "PeerCheck",
    "PeerStatus",
    "check_peer",
    "pkix_validate",
]

NOT_VERIFIED = Failure("4.7.5", "Server certificate not verified")


class PeerStatus(enum.Enum):
    """How Postfix labels the connection ("... TLS connection established")."""

    ANONYMOUS = "Anonymous"
    UNTRUSTED = "Untrusted"
    TRUSTED = "Trusted"
    VERIFIED = "Verified"


@dataclass(frozen=True, slots=True)
class PeerCheck:
    """The verdict on the server certificate.

    Attributes:
        status: Postfix's label for the connection.
        trusted: the chain is trusted (PKIX or DANE), names aside.
        matched: the policy's match requirement is met.
        failure: 4.7.5 "Server certificate not verified" when the level
            requires a match and there is none; else None.
        detail: what matched or why not, for logs.
        fingerprint: leaf certificate digest (``AA:BB:..``) with the policy's
            digest (sha256 unless ``fingerprint`` level says otherwise).
        pkey_fingerprint: digest of the leaf's public key.
        dane: the TLSA matching result, when TLSA-style matching was done.
        name: the reference name the certificate matched.
    """

    status: PeerStatus
    trusted: bool
    matched: bool
    failure: Failure | None
    detail: str
    fingerprint: str = ""
    pkey_fingerprint: str = ""
    dane: DaneMatch | None = None
    name: MatchName | None = None


def pkix_validate(
    chain: Sequence[bytes],
    anchors: Sequence[x509.Certificate],
    *,
    now: dt.datetime,
    names: Sequence[MatchName] | None = None,
    max_depth: int = 10,
) -> tuple[bool, str]:
    """Is *chain* (leaf first) issued by one of *anchors* (trusted CA certificates)?

    Trusted issuers are preferred to sent ones at each step (OpenSSL
    X509_V_FLAG_TRUSTED_FIRST); the path is then checked like OpenSSL does
    (:func:`pyfix_smtp.tls.certs.validate_path`).

    Returns:
        (trusted, reason)
    """
    from pyfix_smtp.tls.certs import (
        ChainError,
        PathAnchor,
        likely_issued,
        load_certificate,
        self_issued,
        time_valid,
        validate_path,
    )

    try:
        leaf = load_certificate(chain[0])
    except (IndexError, ValueError) as exc:
        return False, f"cannot parse the server certificate: {exc}"
    pool: list[x509.Certificate] = []
    for der in chain[1:]:
        try:
            pool.append(load_certificate(der))
        except ValueError:
            continue
    anchor_ders = {a.tbs_certificate_bytes for a in anchors}
    path = [leaf]
    while len(path) <= max_depth:
        top = path[-1]
        if top.tbs_certificate_bytes in anchor_ders:
            break  # the server sent a trusted certificate itself
        trusted_issuer = next((a for a in anchors if likely_issued(a, top)), None)
        if trusted_issuer is not None:
            path.append(trusted_issuer)
            break
        if self_issued(top):
            return False, "self-signed certificate"
        candidates = [c for c in pool if likely_issued(c, top) and c not in path]
        if not candidates:
            return False, "unable to get local issuer certificate"
        valid = [c for c in candidates if time_valid(c, now) is None]
        path.append(valid[0] if valid else candidates[-1])
    else:
        return False, "certificate chain too long"
    try:
        validate_path(path, now=now, anchor=PathAnchor(), names=names)
    except ChainError as exc:
        return False, f"{exc.reason} at depth {exc.depth}"
    return True, f"trusted via {path[-1].subject.rfc4514_string()}"


def check_peer(
    policy: TlsPolicy,
    chain: Sequence[bytes],
    *,
    now: dt.datetime,
    pkix_verified: bool | None = None,
    anchors: Sequence[x509.Certificate] | None = None,
) -> PeerCheck:
    """Apply *policy* to the certificates the server sent (DER, leaf first).

    Args:
        policy: the policy the session was started with.
        chain: the server's certificate chain, leaf first (empty: no certificate).
        now: the current time (aware datetime).
        pkix_verified: True when OpenSSL already verified the chain during
            the handshake (the ``verify``/``secure`` context does), False when
            it failed, None when it was not asked to.
        anchors: trusted CA certificates for a Python-side PKIX check when
            *pkix_verified* is None (for the "Trusted" label at may/encrypt).
    """
    level = policy.level
    if not chain:
        failure = NOT_VERIFIED if level.must_match else None
        return PeerCheck(PeerStatus.ANONYMOUS, False, False, failure, "no server certificate")
    digest = policy.fingerprint_digest or "sha256"
    try:
        fpt = colon_hex(fingerprint(chain[0], digest))
        pkey_fpt = colon_hex(fingerprint(chain[0], digest, public_key=True))
    except ValueError as exc:
        failure = NOT_VERIFIED if level.must_match else None
        return PeerCheck(PeerStatus.UNTRUSTED, False, False, failure, f"bad certificate: {exc}")

    def verdict(
        trusted: bool,
        matched: bool,
        detail: str,
        dane: DaneMatch | None = None,
        name: MatchName | None = None,
    ) -> PeerCheck:
        if matched and level.must_match:
            status = PeerStatus.TRUSTED if level.never_secured else PeerStatus.VERIFIED
        elif trusted:
            status = PeerStatus.TRUSTED
        else:
            status = PeerStatus.UNTRUSTED
        failure = NOT_VERIFIED if level.must_match and not matched else None
        return PeerCheck(status, trusted, matched, failure, detail, fpt, pkey_fpt, dane, name)

    if policy.associations and level.must_match:
        result = match_chain(
            policy.associations,
            chain,
            names=policy.match_names if level is not TlsLevel.FINGERPRINT else None,
            now=now,
            ee_namechecks=policy.ee_namechecks,
            fingerprint_digest=policy.fingerprint_digest,
            max_depth=policy.verify_depth,
        )
        # Postfix verify_x509(): a name mismatch alone still counts as trusted.
        return verdict(result.trusted, result.matched, result.reason, result, result.name)

    if level.must_match:  # verify/secure with the CA store
        if pkix_verified is None:
            if anchors is None:
                return verdict(False, False, "the chain was not verified against a CA store")
            pkix_verified, why = pkix_validate(
                chain, anchors, now=now, max_depth=policy.verify_depth
            )
        else:
            why = "verified by OpenSSL" if pkix_verified else "not verified by OpenSSL"
        if not pkix_verified:
            return verdict(False, False, why)
        from pyfix_smtp.tls.certs import load_certificate, match_names

        try:
            leaf = load_certificate(chain[0])
        except ValueError as exc:
            return verdict(True, False, f"cannot parse the server certificate: {exc}")
        name = match_names(leaf, policy.match_names)
        if name is None:
            wanted = ", ".join(map(str, policy.match_names))
            return verdict(True, False, f"certificate name does not match any of: {wanted}")
        return verdict(True, True, f"{why}; matched name {name}", name=name)

    # may / encrypt: nothing must match; label only.
    if pkix_verified is not None:
        return verdict(pkix_verified, False, "PKIX check against smtp_tls_CAfile/CApath")
    if anchors is not None:
        trusted, why = pkix_validate(chain, anchors, now=now, max_depth=policy.verify_depth)
        return verdict(trusted, False, why)
    return verdict(False, False, "no trust check requested")
