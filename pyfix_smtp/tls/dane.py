"""DANE TLSA matching (RFC 7671/7672) as OpenSSL does it for Postfix (pure).

Loading happens in two stages, as in Postfix:

1. :func:`screen_dns` - Postfix tls_dane.c ``parse_tlsa_rr()``: drop
   truncated records, usages other than DANE-TA(2)/DANE-EE(3) (PKIX usages
   0/1 do not apply to SMTP), and the private matching type 255. When nothing
   is left the RRset is "unusable" and ``dane`` falls back to ``encrypt``.
2. :func:`screen_openssl` - OpenSSL ``SSL_dane_tlsa_add()``: drop unknown
   selectors and matching types, digests of the wrong length and full-data
   records that do not decode as a certificate (selector 0) or public key
   (selector 1). With nothing left Postfix also falls back to ``encrypt``
   (``dane``) or fails authentication (``dane-only``).

Matching (:func:`match_chain`) follows OpenSSL's dane_verify()/dane_match():

* DANE-EE(3) records are tried against the leaf only; a match needs no chain,
  no dates and - at the DANE levels - no name check.
* DANE-TA(2) records are tried against the issuers in the chain the server
  sent, built upwards from the leaf; a TA record matching the leaf itself does
  not count (unless the leaf is self-issued). Full ``2 0 0`` certificates from
  DNS may complete the chain, and a full ``2 1 0`` key may have signed the
  top certificate. Certificates above the matched anchor are ignored. The
  path to the anchor is then checked (signatures, dates, CA flags) and the
  leaf must match one of the reference names.
* Digest agility (RFC 7671 §9): for each usage and selector only the
  strongest digest present counts (SHA2-512 over SHA2-256); full-data
  records always count.

cryptography (through :mod:`.certs`) is imported by the first call that
parses a certificate or key, not with this module: the policy layer screens
TLSA records without it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyfix_smtp.dns.records import TlsaRecord
from pyfix_smtp.tls.fingerprints import spki_der
from pyfix_smtp.tls.names import MatchName

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "Association",
    "DaneMatch",
    "Discarded",
    "match_chain",
    "screen_dns",
    "screen_openssl",
    "tlsa_query_name",
]

DANE_TA = 2
DANE_EE = 3
SELECTOR_CERT = 0
SELECTOR_SPKI = 1
MATCH_FULL = 0
MATCH_SHA256 = 1
MATCH_SHA512 = 2
MATCH_PRIVATE = 255  # Postfix: fingerprint digests, never accepted from DNS

# Postfix tls_dane.c tls_dane_digest_init() with tls_dane_digests = "sha512 sha256":
# higher ordinal = preferred; the private fingerprint code point ranks above both.
_ORDINAL = {MATCH_FULL: 0, MATCH_SHA256: 1, MATCH_SHA512: 2, MATCH_PRIVATE: 3}
_DIGEST = {MATCH_SHA256: "sha256", MATCH_SHA512: "sha512"}


def tlsa_query_name(host: str, port: int) -> str:
    """The TLSA owner name ``_port._tcp.host`` (RFC 6698 §3, RFC 7672 §2.2)."""
    return f"_{port}._tcp.{host.rstrip('.')}"


@dataclass(frozen=True, slots=True)
class Association:
    """One TLSA association in Postfix's internal form.

    ``source`` says where it came from: ``"dns"``, ``"fingerprint"``
    (synthetic ``3 0 255``/``3 1 255`` records) or ``"tafile"``.
    """

    usage: int
    selector: int
    mtype: int
    data: bytes
    source: str = "dns"

    @classmethod
    def from_record(cls, record: TlsaRecord, source: str = "dns") -> Association:
        """Convert a DNS TLSA record."""
        return cls(record.usage, record.selector, record.mtype, record.data, source)

    def __str__(self) -> str:
        data = self.data.hex()
        if len(data) > 64:
            data = data[:32] + "..." + data[-32:]
        return f"{self.usage} {self.selector} {self.mtype} {data}"


@dataclass(frozen=True, slots=True)
class Discarded:
    """An association dropped while loading, with Postfix/OpenSSL's reason."""

    association: Association
    reason: str

    def __str__(self) -> str:
        return f"{self.association}: {self.reason}"


def screen_dns(records: Iterable[TlsaRecord]) -> tuple[list[Association], list[Discarded]]:
    """Stage 1: Postfix parse_tlsa_rr() on a DNSSEC-validated RRset."""
    kept: list[Association] = []
    dropped: list[Discarded] = []
    for record in records:
        assoc = Association.from_record(record)
        if not record.data:
            dropped.append(Discarded(assoc, "truncated TLSA RR"))
        elif record.usage not in (DANE_TA, DANE_EE):
            dropped.append(Discarded(assoc, "unsupported TLSA certificate usage"))
        elif record.mtype == MATCH_PRIVATE:
            dropped.append(Discarded(assoc, "reserved private-use matching type"))
        else:
            kept.append(assoc)
    return kept, dropped


def _digest_name(mtype: int, fingerprint_digest: str | None) -> str | None:
    if mtype == MATCH_PRIVATE:
        return fingerprint_digest
    return _DIGEST.get(mtype)


def screen_openssl(
    associations: Iterable[Association], *, fingerprint_digest: str | None = None
) -> tuple[list[Association], list[Discarded]]:
    """Stage 2: what OpenSSL's SSL_dane_tlsa_add() accepts ("usable" records).

    *fingerprint_digest* enables matching type 255 with that digest (the
    ``fingerprint`` level's ``smtp_tls_fingerprint_digest``).
    """
    usable: list[Association] = []
    dropped: list[Discarded] = []
    for assoc in associations:
        reason = _unusable(assoc, fingerprint_digest)
        if reason is None:
            usable.append(assoc)
        else:
            dropped.append(Discarded(assoc, reason))
    return usable, dropped


def _unusable(assoc: Association, fingerprint_digest: str | None) -> str | None:
    if assoc.usage > DANE_EE:
        return "bad certificate usage"
    if assoc.selector > SELECTOR_SPKI:
        return "bad selector"
    if assoc.mtype != MATCH_FULL:
        name = _digest_name(assoc.mtype, fingerprint_digest)
        if name is None:
            return "bad matching type"
        if len(assoc.data) != hashlib.new(name).digest_size:
            return "bad digest length"
        return None
    if not assoc.data:
        return "null data"
    # Only full-data records are parsed: cryptography is loaded here, not before.
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    from pyfix_smtp.tls.certs import load_certificate

    try:
        if assoc.selector == SELECTOR_CERT:
            load_certificate(assoc.data).public_key()
        else:
            load_der_public_key(assoc.data)
    except Exception:  # cryptography raises ValueError and friends
        return "bad certificate" if assoc.selector == SELECTOR_CERT else "bad public key"
    return None


@dataclass(frozen=True, slots=True)
class DaneMatch:
    """The outcome of :func:`match_chain`.

    Attributes:
        matched: the server is authenticated.
        trusted: the chain leads to a matched TLSA record, though it may
            still fail the name check (Postfix: trusted, not matched).
        association: the record that matched (None when nothing matched).
        depth: chain depth of the matched certificate (0 = leaf); for a bare
            ``2 1 0`` key, the depth of the certificate it signed.
        name: the reference name the leaf matched (DANE-TA, or EE with name
            checks).
        reason: why matching failed, or what matched, in words.
    """

    matched: bool
    reason: str
    association: Association | None = None
    trusted: bool = False
    depth: int = -1
    name: MatchName | None = None
    chain: tuple[bytes, ...] = field(default=(), repr=False)

    @property
    def via_trust_anchor(self) -> bool:
        """Matched through a DANE-TA(2) record."""
        return self.association is not None and self.association.usage == DANE_TA


def _sorted(associations: Iterable[Association]) -> list[Association]:
    """OpenSSL dane_tlsa_add() order: usage, selector, digest ordinal, all descending."""
    return sorted(
        associations,
        key=lambda a: (a.usage, a.selector, _ORDINAL.get(a.mtype, -1)),
        reverse=True,
    )


def _match_cert(
    records: Sequence[Association],
    cert_der: bytes,
    usages: tuple[int, ...],
    fingerprint_digest: str | None,
) -> Association | None:
    """OpenSSL dane_match() for one certificate, with digest agility."""
    usage = selector = mtype = -1
    ordinal = -1
    selected = b""
    compared = b""
    for rec in records:
        if rec.usage not in usages:
            continue
        if rec.usage != usage:
            usage, mtype = rec.usage, -1
            ordinal = _ORDINAL.get(rec.mtype, -1)
        if rec.selector != selector:
            selector, mtype = rec.selector, -1
            ordinal = _ORDINAL.get(rec.mtype, -1)
            try:
                selected = cert_der if selector == SELECTOR_CERT else spki_der(cert_der)
            except ValueError:
                return None
        elif rec.mtype != MATCH_FULL and _ORDINAL.get(rec.mtype, -1) < ordinal:
            continue  # RFC 7671 §9: weaker digest of the same usage/selector ignored
        if rec.mtype != mtype:
            mtype = rec.mtype
            name = _digest_name(mtype, fingerprint_digest)
            compared = selected if name is None else hashlib.new(name, selected).digest()
        if compared == rec.data:
            return rec
    return None


def _find_issuer(
    cert: x509.Certificate,
    pool: Sequence[tuple[bytes, x509.Certificate]],
    chain: Sequence[bytes],
    now: dt.datetime,
) -> tuple[bytes, x509.Certificate] | None:
    """OpenSSL find_issuer(): prefer a currently valid issuer, else the latest expiring."""
    from pyfix_smtp.tls.certs import likely_issued, self_issued, time_valid

    best: tuple[bytes, x509.Certificate] | None = None
    self_leaf = len(chain) == 1 and self_issued(cert)
    for der, candidate in pool:
        if not likely_issued(candidate, cert):
            continue
        if der in chain and not self_leaf:
            continue
        if time_valid(candidate, now) is None:
            return der, candidate
        if best is None or candidate.not_valid_after_utc > best[1].not_valid_after_utc:
            best = (der, candidate)
    return best


def match_chain(
    associations: Sequence[Association],
    chain: Sequence[bytes],
    *,
    names: Sequence[MatchName] | None,
    now: dt.datetime,
    ee_namechecks: bool = False,
    fingerprint_digest: str | None = None,
    max_depth: int = 10,
) -> DaneMatch:
    """Authenticate the server chain *chain* (DER, leaf first) against TLSA *associations*.

    Args:
        associations: usable records (after :func:`screen_openssl`).
        chain: the certificates the server sent, leaf first.
        names: reference names for DANE-TA (and for DANE-EE when
            *ee_namechecks*); None skips name checks.
        now: the current time, for DANE-TA path validity.
        ee_namechecks: check names on DANE-EE matches too (Postfix does so
            for trust-anchor files at ``verify``/``secure``; RFC 7672 §3.1.1
            forbids it at the DANE levels).
        fingerprint_digest: the digest of matching type 255 (``fingerprint`` level).
        max_depth: the longest chain to build (Postfix smtp_tls_scert_verifydepth + 1).
    """
    if not chain:
        return DaneMatch(False, "the server sent no certificate")
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    from pyfix_smtp.tls.certs import (
        ChainError,
        PathAnchor,
        load_certificate,
        match_names,
        signed_by_key,
        validate_path,
    )

    records = _sorted(associations)
    leaf_der = chain[0]
    try:
        leaf = load_certificate(leaf_der)
    except ValueError as exc:
        return DaneMatch(False, f"cannot parse the server certificate: {exc}")

    ee = _match_cert(records, leaf_der, (DANE_EE,), fingerprint_digest)
    if ee is not None:  # OpenSSL dane_verify(): a DANE-EE match is final
        matched_name: MatchName | None = None
        if ee_namechecks and names is not None:
            matched_name = match_names(leaf, names)
            if matched_name is None:
                return DaneMatch(
                    False, "certificate name does not match", ee, trusted=True, depth=0
                )
        return DaneMatch(
            True, f"matched DANE EE certificate: {ee}", ee, trusted=True, depth=0, name=matched_name
        )

    ta_records = [r for r in records if r.usage == DANE_TA]
    if not ta_records:
        return DaneMatch(False, "no TLSA record matched the server certificate")

    pool: list[tuple[bytes, x509.Certificate]] = []
    for der in chain:  # OpenSSL's untrusted list includes the leaf
        try:
            pool.append((der, load_certificate(der)))
        except ValueError:
            continue
    for rec in ta_records:  # "2 0 0" certificates from DNS may complete the chain
        if rec.selector == SELECTOR_CERT and rec.mtype == MATCH_FULL:
            try:
                pool.append((rec.data, load_certificate(rec.data)))
            except ValueError:
                continue

    path_der: list[bytes] = [leaf_der]
    path: list[x509.Certificate] = [leaf]
    anchor: Association | None = None
    bare_key: object | None = None
    while len(path) <= max_depth:
        found = _find_issuer(path[-1], pool, path_der, now)
        if found is None:
            break
        path_der.append(found[0])
        path.append(found[1])
        anchor = _match_cert(ta_records, found[0], (DANE_TA,), fingerprint_digest)
        if anchor is not None:
            break  # certificates above the anchor are never looked at

    if anchor is None:  # OpenSSL check_dane_pkeys(): a bare TA key signed the top
        for rec in ta_records:
            if rec.selector != SELECTOR_SPKI or rec.mtype != MATCH_FULL:
                continue
            key = load_der_public_key(rec.data)
            if signed_by_key(path[-1], key):
                anchor, bare_key = rec, key
                break
    if anchor is None:
        return DaneMatch(False, "no TLSA record matched the server certificate chain")

    depth = len(path) - 1
    try:
        name = validate_path(path, now=now, anchor=PathAnchor(bare_key), names=names)
    except ChainError as exc:
        reason = f"{exc.reason} at depth {exc.depth}"
        return DaneMatch(False, reason, anchor, trusted=exc.name_mismatch, depth=depth)
    what = "TA public key verified certificate" if bare_key is not None else "TA certificate"
    return DaneMatch(
        True,
        f"matched DANE {what} at depth {depth}: {anchor}",
        anchor,
        trusted=True,
        depth=depth,
        name=name,
        chain=tuple(path_der),
    )
