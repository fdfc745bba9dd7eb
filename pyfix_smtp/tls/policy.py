"""Per-server TLS policy: Postfix's smtp_tls_policy.c, pure and explainable.

:func:`evaluate_steps` computes the :class:`TlsPolicy` for one candidate
server (:class:`TlsTarget`): the global level, the ``smtp_tls_policy_maps``
entry (or the obsolete ``smtp_tls_per_site``), ``TLS-Required: no``, DANE
(TLSA lookups are *yielded* as :class:`~pyfix_smtp.dns.records.Query` and
answered by the driver), native MTA-STS, protocols, ciphers, SNI, match
names, fingerprints and trust anchors. It follows Postfix's
``policy_create()``, ``tls_policy_lookup()``, ``dane_init()`` and
``set_cipher_grade()`` step by step; each step adds a :class:`Reason`, so
``policy.explain()`` answers "why".

A policy with a :attr:`TlsPolicy.failure` means "skip this server" (Postfix
MARK_INVALID: 4.7.5 "client TLS configuration problem", or the DANE
reasons). It still counts toward the address limit and never turns into a
weaker level.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pyfix_smtp.dns.options import Family
from pyfix_smtp.dns.records import Answer, Query, Rcode, TlsaRecord
from pyfix_smtp.dns.results import Candidate, Site
from pyfix_smtp.errors import LookupTableError, TlsPolicyError
from pyfix_smtp.status import Failure
from pyfix_smtp.tls import dane as dane_mod
from pyfix_smtp.tls.dane import Association, Discarded
from pyfix_smtp.tls.entry import SEPARATORS, PolicyEntry, parse_entry, valid_hostname
from pyfix_smtp.tls.levels import TlsLevel
from pyfix_smtp.tls.mtasts import StsMode, StsPolicy, mx_pattern_matches
from pyfix_smtp.tls.names import MatchName, to_ascii
from pyfix_smtp.tls.options import LookupTable, TlsOptions
from pyfix_smtp.tls.protocols import ProtocolRange, cipher_list, parse_protocols, protocol_range
from pyfix_smtp.tls.requiretls import RequireTlsAction, check_level

__all__ = [
    "MxFacts",
    "Reason",
    "TlsPolicy",
    "TlsTarget",
    "evaluate",
    "evaluate_async",
    "evaluate_steps",
    "hex_decode_fingerprint",
    "load_trust_anchors",
    "lookup_policy_entry",
    "resolve_match_names",
]

CONFIG_PROBLEM = "client TLS configuration problem"


@dataclass(frozen=True, slots=True)
class MxFacts:
    """The MX (or SRV) record that led to the server, as Postfix's ``iter->mx``.

    Attributes:
        qname: the name that was looked up (the nexthop domain).
        rname: its owner after CNAME expansion (== qname without CNAME).
        authentic: the MX RRset was DNSSEC-validated.
    """

    qname: str
    rname: str = ""
    authentic: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "qname", self.qname.rstrip(".").lower())
        object.__setattr__(self, "rname", (self.rname or self.qname).rstrip(".").lower())


@dataclass(frozen=True, slots=True)
class TlsTarget:
    """One candidate server, as the delivery core knows it.

    Attributes:
        nexthop: the policy-table key, as written: ``example.com``,
            ``[mx.example.com]:587``, ``example.com:submission``; for LMTP
            over a UNIX socket, the socket path. Without LMTP's ``inet:`` or
            ``unix:`` prefix (Postfix leaves it out of the lookup key).
        domain: the nexthop domain for certificate matching (``nexthop`` and
            ``dot-nexthop``): without ``[]`` and port; ``$myhostname`` for
            UNIX-domain LMTP.
        host: the server's host name (Postfix ``hostname``), after
            ``smtp_cname_overrides_servername``.
        port: the TCP port (the SRV port when there is one); None for a UNIX socket.
        host_qname: the name whose addresses were looked up (default *host*).
        host_rname: its owner after CNAME expansion (default *host_qname*).
        address_authentic: the address RRset was DNSSEC-validated.
        mx: the MX/SRV record facts, or None (``[host]`` nexthop, no MX).
    """

    nexthop: str
    domain: str
    host: str
    port: int | None = 25
    host_qname: str = ""
    host_rname: str = ""
    address_authentic: bool = False
    mx: MxFacts | None = None

    @classmethod
    def from_candidate(cls, site: Site, candidate: Candidate, *, myhostname: str = "") -> TlsTarget:
        """The target for one address of a DNS plan (:mod:`pyfix_smtp.dns.plan`).

        Postfix uses ``$myhostname`` as the nexthop name for UNIX-domain LMTP
        (smtp_connect.c), so pass *myhostname* for those.
        """
        unix = candidate.family is Family.UNIX
        mx: MxFacts | None = None
        if site.mx_authentic is not None and site.mx_qname:
            mx = MxFacts(site.mx_qname, site.mx_rname or "", site.mx_authentic)
        return cls(
            nexthop=site.nexthop,
            domain=myhostname if unix else site.domain,
            host=candidate.hostname,
            port=None if unix else candidate.port,
            host_qname=candidate.qname,
            host_rname=candidate.rname,
            address_authentic=candidate.address_authentic,
            mx=mx,
        )

    def __post_init__(self) -> None:
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"port out of range: {self.port}")
        object.__setattr__(self, "host", self.host.rstrip("."))
        object.__setattr__(self, "domain", self.domain.rstrip("."))
        qname = (self.host_qname or self.host).rstrip(".").lower()
        object.__setattr__(self, "host_qname", qname)
        object.__setattr__(self, "host_rname", (self.host_rname or qname).rstrip(".").lower())


@dataclass(frozen=True, slots=True)
class Reason:
    """One step of the decision: *source* (a parameter, table or DNS name) and *text*."""

    source: str
    text: str

    def __str__(self) -> str:
        return f"{self.source}: {self.text}"


@dataclass(frozen=True, slots=True)
class TlsPolicy:
    """The TLS policy for one server, and why.

    Attributes:
        target: the server it applies to.
        level: the effective level (``halfdane`` when DANE applies with an
            insecure MX RRset; ``encrypt`` when TLSA records are unusable ...).
        failure: set when the server must be skipped; ``level`` then shows
            the level that was being applied.
        reasons: the steps, in order.
        entry: the policy-table entry that matched, if any.
        protocols: the Postfix protocol list in force; ``protocol_range`` the
            versions OpenSSL will offer.
        cipher_grade, cipher_exclusions, cipher_list: Postfix grade, the
            exclusion list and the resulting OpenSSL cipher string.
        sni: the SNI name to send (already resolved), or None.
        match_names: reference names for certificate name checks.
        associations: usable TLSA records (DNS DANE, synthetic fingerprint
            ``3 x 255`` records or trust-anchor-file records).
        discarded: records dropped while loading, with reasons.
        dane_base_domain: the TLSA base domain (DANE levels).
        ee_namechecks: DANE-EE matches need a name match too (trust-anchor files).
        fingerprint_digest: the digest of matching type 255.
        connection_reuse, enable_rpk: smtp_tls_connection_reuse / enable_rpk.
        sts: the MTA-STS policy that shaped this policy, if any.
        mx_patterns: MTA-STS MX patterns the server name must match.
        tls_required_no: a ``TLS-Required: no`` header capped the level.
        verify_depth: the longest chain to build.
    """

    target: TlsTarget
    level: TlsLevel
    failure: Failure | None = None
    reasons: tuple[Reason, ...] = ()
    entry: PolicyEntry | None = None
    protocols: str = ""
    protocol_range: ProtocolRange | None = None
    cipher_grade: str = ""
    cipher_exclusions: str = ""
    cipher_list: str = ""
    sni: str | None = None
    match_names: tuple[MatchName, ...] = ()
    associations: tuple[Association, ...] = ()
    discarded: tuple[Discarded, ...] = ()
    dane_base_domain: str | None = None
    ee_namechecks: bool = False
    fingerprint_digest: str | None = None
    connection_reuse: bool = False
    enable_rpk: bool = False
    sts: StsPolicy | None = None
    mx_patterns: tuple[str, ...] = ()
    tls_required_no: bool = False
    verify_depth: int = 10

    @property
    def skip(self) -> bool:
        """The server must not be used (see :attr:`failure`)."""
        return self.failure is not None

    @property
    def plaintext_fallback(self) -> bool:
        """Postfix retries in plaintext after a failed handshake only at ``may``."""
        return self.level is TlsLevel.MAY

    @property
    def use_tls(self) -> bool:
        """TLS will be attempted."""
        return self.failure is None and self.level.tls_enabled

    @property
    def tls_required(self) -> bool:
        """No plaintext delivery to this server."""
        return self.level.tls_required

    def explain(self) -> str:
        """A human-readable account of the decision."""
        t = self.target
        head = f"TLS policy for {t.host}"
        if t.port is not None:
            head += f" port {t.port}"
        head += f" (nexthop {t.nexthop})"
        lines = [head + ":"]
        lines += [f"  - {r}" for r in self.reasons]
        if self.failure is not None:
            lines.append(f"=> skip this server: {self.failure}")
            return "\n".join(lines)
        lines.append(f"=> level {self.level}")
        if self.level.tls_enabled:
            if self.protocol_range is not None:
                lines.append(f"   protocols {self.protocols!r} -> {self.protocol_range}")
            lines.append(f"   cipher grade {self.cipher_grade}")
            lines.append(f"   SNI {self.sni or '(none)'}")
        if self.match_names:
            lines.append("   certificate names: " + ", ".join(map(str, self.match_names)))
        if self.associations:
            lines.append("   TLSA: " + "; ".join(map(str, self.associations)))
        if self.mx_patterns:
            lines.append("   MTA-STS mx: " + ", ".join(self.mx_patterns))
        return "\n".join(lines)


# ------------------------------------------------------------------ lookups


class _LookupFailed(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _table_get(table: LookupTable, key: str) -> str | None:
    try:
        return table.lookup(key)
    except (LookupTableError, OSError) as exc:
        raise _LookupFailed(str(exc)) from None


def lookup_policy_entry(table: LookupTable, nexthop: str) -> tuple[str, str] | None:
    """Find the policy-table value for *nexthop* (Postfix tls_policy_lookup()).

    ``[host]``, ``[host]:port`` and ``host:port`` are looked up once, as
    written; a bare domain is looked up, then its parent domains with a
    leading dot (``sub.example.com``, ``.example.com``, ``.com``).

    Returns:
        (key that matched, table value), or None.

    Raises:
        TlsPolicyError: the table could not be read.
    """
    keys = [nexthop]
    if valid_hostname(nexthop) or (not nexthop.isascii() and _valid_utf8(nexthop)):
        name = nexthop
        while (dot := name.find(".", 1)) >= 0:
            name = name[dot:]
            keys.append(name)
    for key in keys:
        try:
            value = _table_get(table, key)
        except _LookupFailed as exc:
            raise TlsPolicyError(f"policy table lookup error: {exc.reason}", policy=key) from None
        if value is not None:
            return key, value
    return None


def _valid_utf8(name: str) -> bool:
    try:
        return valid_hostname(to_ascii(name))
    except ValueError:
        return False


_PER_SITE = {"none": 0, "may": 1, "must_nopeermatch": 2, "must": 3}


def _per_site_level(
    table: LookupTable, dest: str, host: str, global_level: TlsLevel, reasons: list[Reason]
) -> TlsLevel | Failure | None:
    """Postfix tls_site_lookup() for the obsolete smtp_tls_per_site."""
    site: TlsLevel | None = None
    lookups = [(dest, "next-hop destination")]
    if dest.lower() != host.lower():
        lookups.append((host, "server hostname"))
    for key, what in lookups:
        try:
            value = _table_get(table, key)
        except _LookupFailed as exc:
            reasons.append(
                Reason("smtp_tls_per_site", f"{what} {key!r}: lookup error {exc.reason}")
            )
            return Failure("4.3.0", "Temporary lookup error")
        if value is None:
            continue
        reasons.append(Reason("smtp_tls_per_site", f"{what} {key!r} -> {value!r}"))
        word = value.strip().lower()
        if word not in _PER_SITE:
            reasons.append(Reason("smtp_tls_per_site", f"unknown TLS policy {value!r}"))
            return Failure("4.7.5", CONFIG_PROBLEM)
        if word == "none":
            if site is None or site <= TlsLevel.MAY:  # NONE overrides MAY or NOTFOUND
                site = TlsLevel.NONE
        elif word == "may":
            if site is None:  # MAY overrides NOTFOUND but not NONE
                site = TlsLevel.MAY
        elif word == "must_nopeermatch":
            if site is None or site < TlsLevel.ENCRYPT:
                site = TlsLevel.ENCRYPT
        elif site is None or site < TlsLevel.VERIFY:
            site = TlsLevel.VERIFY
    if site is TlsLevel.MAY and global_level > TlsLevel.MAY:
        site = global_level  # a wildcard MAY yields to a stronger global level
    return site


# ------------------------------------------------------------------ helpers


def hex_decode_fingerprint(text: str) -> bytes | None:
    """Postfix hex_decode_opt(HEX_DECODE_FLAG_ALLOW_COLON): ``AA:BB...`` or ``AABB...``.

    Returns None for malformed input (odd digits, stray or trailing colons).
    """
    if len(text) > 3 * 64:  # EVP_MAX_MD_SIZE
        return None
    out = bytearray()
    i, n = 0, len(text)
    hexdigits = "0123456789abcdefABCDEF"
    while i < n:
        if n - i < 2 or text[i] not in hexdigits or text[i + 1] not in hexdigits:
            return None
        out.append(int(text[i : i + 2], 16))
        if n - i > 4 and text[i + 2] == ":":
            i += 1
        i += 2
    return bytes(out)


_PEM_BEGIN = "-----BEGIN "


def load_trust_anchors(
    path: str, read_file: Callable[[str], bytes]
) -> tuple[list[Association], str | None]:
    """Load a trust-anchor file (Postfix tls_dane_load_trustfile()).

    Certificates become ``2 0 0`` and ``3 0 0`` records, public keys ``2 1 0``
    and ``3 1 0`` (Postfix also lets anchors match the leaf). Other PEM
    objects are skipped.

    Returns:
        (records, error): *error* is set when the file cannot be read, holds
        no PEM object, or has a malformed one.
    """
    import base64
    import binascii

    try:
        text = read_file(path).decode("ascii", "replace")
    except OSError as exc:
        return [], f"error opening trust anchor file: {path}: {exc.strerror or exc}"
    records: list[Association] = []
    count = 0
    pos = 0
    while (start := text.find(_PEM_BEGIN, pos)) >= 0:
        line_end = text.find("-----", start + len(_PEM_BEGIN))
        if line_end < 0:
            return [], f"error reading: {path}: malformed PEM header"
        label = text[start + len(_PEM_BEGIN) : line_end]
        end_marker = f"-----END {label}-----"
        body_start = line_end + 5
        end = text.find(end_marker, body_start)
        if end < 0:
            return [], f"error reading: {path}: missing {end_marker}"
        body = "".join(text[body_start:end].split())
        try:
            der = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return [], f"error reading: {path}: bad base64 in {label}"
        count += 1
        pos = end + len(end_marker)
        if label in ("CERTIFICATE", "X509 CERTIFICATE"):
            records.append(Association(2, 0, 0, der, "tafile"))
            records.append(Association(3, 0, 0, der, "tafile"))
        elif label == "PUBLIC KEY":
            records.append(Association(2, 1, 0, der, "tafile"))
            records.append(Association(3, 1, 0, der, "tafile"))
    if count == 0:
        return [], f"error reading: {path}: no PEM objects"
    return records, None


def _read_file(path: str) -> bytes:
    return Path(path).read_bytes()


@dataclass(slots=True)
class _State:
    """Mutable working copy of Postfix's SMTP_TLS_POLICY while evaluating."""

    level: TlsLevel
    reasons: list[Reason] = field(default_factory=list)
    failure: Failure | None = None
    entry: PolicyEntry | None = None
    protocols: str | None = None
    grade: str | None = None
    exclusions: str | None = None
    sni: str | None = None
    matchargv: list[str] | None = None
    associations: list[Association] = field(default_factory=list)
    discarded: list[Discarded] = field(default_factory=list)
    dane_base: str | None = None
    dane_usable_checked: bool = False
    tafiles: tuple[str, ...] = ()
    conn_reuse: bool = False
    enable_rpk: bool = False
    sts: StsPolicy | None = None
    mx_patterns: tuple[str, ...] = ()
    enforce_patterns: bool = False
    tls_required_no: bool = False

    def note(self, source: str, text: str) -> None:
        self.reasons.append(Reason(source, text))

    def invalid(self, source: str, text: str, reason: str = CONFIG_PROBLEM) -> None:
        self.note(source, text)
        self.failure = Failure("4.7.5", reason)


_NONDANE_CONFIG, _NONDANE_DEST, _DANE_CANTAUTH = 0, 1, 2


def _dane_incompat(st: _State, kind: int, text: str) -> None:
    """Postfix dane_incompat(): fall back at ``dane``, fail at ``dane-only``."""
    if st.level is TlsLevel.DANE:
        st.level = TlsLevel.ENCRYPT if kind == _DANE_CANTAUTH else TlsLevel.MAY
        st.note("DANE", f"{text}: level {st.level}")
    elif kind == _NONDANE_CONFIG:
        st.invalid("DANE", f"{text} (dane-only)")
    else:
        st.invalid("DANE", f"{text} (dane-only)", reason=text)


@dataclass(slots=True)
class _Tlsa:
    """Result of Postfix tls_dane_resolve(): flags plus records."""

    error: str | None = None
    notfound: bool = False
    unusable: bool = False
    base_domain: str = ""
    records: list[Association] = field(default_factory=list)
    discarded: list[Discarded] = field(default_factory=list)


def _tlsa_lookup(name: str, port: int) -> Generator[Query, Answer, _Tlsa]:
    """Postfix dane_lookup() for one base domain."""
    query = Query(dane_mod.tlsa_query_name(name, port), "TLSA")
    answer = yield query
    result = _Tlsa(base_domain=name)
    if answer.rcode is Rcode.NOERROR and answer.records:
        if answer.authentic:
            records = [r for r in answer.records if isinstance(r, TlsaRecord)]
            kept, dropped = dane_mod.screen_dns(records)
            result.records, result.discarded = kept, dropped
            result.unusable = not kept
        else:
            result.notfound = True  # an unvalidated answer counts as no TLSA
    elif answer.rcode in (Rcode.NXDOMAIN, Rcode.NODATA, Rcode.NOERROR):
        result.notfound = True
    else:
        result.error = f"{query.name}: {answer.rcode.value} {answer.detail}".rstrip()
    return result


def _tls_dane_resolve(
    target: TlsTarget, port: int, force: bool, st: _State
) -> Generator[Query, Answer, _Tlsa]:
    """Postfix tls_dane.c tls_dane_resolve(): rname first, then qname, DNSSEC rules."""
    iscname = target.host_rname != target.host_qname
    secure = True
    if not force and not target.address_authentic:
        if iscname:  # Postfix qname_secure(): is the CNAME itself signed?
            answer = yield Query(target.host_qname, "CNAME")
            if answer.rcode is Rcode.NOERROR:
                secure = answer.authentic
            else:
                why = (
                    "no longer a CNAME"
                    if answer.rcode in (Rcode.NXDOMAIN, Rcode.NODATA)
                    else (answer.rcode.value)
                )
                return _Tlsa(error=f"DNSSEC status lookup error for {target.host_qname}: {why}")
        else:
            secure = False
        st.note(
            "DANE",
            f"address records of {target.host_qname} are not DNSSEC-validated"
            + ("" if secure else ": no TLSA lookup"),
        )
    if not secure:
        return _Tlsa(notfound=True, base_domain=target.host_qname)
    found: _Tlsa | None = None
    if target.address_authentic:
        found = yield from _tlsa_lookup(target.host_rname, port)
        if found.notfound and iscname:
            found = None
    if found is None:
        found = yield from _tlsa_lookup(target.host_qname, port)
    return found


def _dane_init(
    st: _State, target: TlsTarget, options: TlsOptions
) -> Generator[Query, Answer, None]:
    """Postfix smtp_tls_policy.c dane_init()."""
    if target.port is None:
        st.invalid(
            "DANE",
            f'{target.nexthop}: the "dane" security level is invalid for UNIX-domain sockets',
        )
        return
    if options.smtp_dns_support_level.lower() != "dnssec" or "dns" not in [
        h.lower() for h in options.smtp_host_lookup
    ]:
        _dane_incompat(
            st,
            _NONDANE_CONFIG,
            f"{target.nexthop}: {st.level} configured with dnssec lookups disabled",
        )
        return
    if options.protocol == "smtp" and options.ignore_mx_lookup_error:
        _dane_incompat(
            st,
            _NONDANE_CONFIG,
            f"{target.nexthop}: {st.level} configured with MX lookup errors ignored",
        )
        return
    resolver_opts = {o.lower() for o in options.smtp_dns_resolver_options}
    if resolver_opts & {"res_defnames", "res_dnsrch"}:
        _dane_incompat(
            st,
            _NONDANE_CONFIG,
            f"{target.nexthop}: dns resolver options incompatible with {st.level} TLS",
        )
        return
    insecure_mx = target.mx is not None and not target.mx.authentic
    if target.mx is not None:
        st.note(
            "DNSSEC",
            f"MX RRset of {target.mx.qname} is "
            + ("insecure" if insecure_mx else "DNSSEC-validated"),
        )
    mx_policy = options.insecure_mx_policy
    if insecure_mx and (st.level is TlsLevel.DANE_ONLY or mx_policy <= TlsLevel.MAY):
        _dane_incompat(st, _NONDANE_DEST, "non DNSSEC destination")
        return
    tlsa = yield from _tls_dane_resolve(
        target, target.port, options.smtp_tls_force_insecure_host_tlsa_lookup, st
    )
    if tlsa.error is not None:
        st.note("DANE", tlsa.error)
        st.failure = Failure("4.7.5", f"TLSA lookup error for {target.host}:{target.port}")
        return
    st.discarded.extend(tlsa.discarded)
    if tlsa.notfound:
        _dane_incompat(st, _NONDANE_DEST, "no TLSA records found")
        return
    for d in tlsa.discarded:
        st.note("TLSA", f"discarded {d}")
    if tlsa.unusable:
        _dane_incompat(st, _DANE_CANTAUTH, "TLSA records unusable")
        return
    if insecure_mx:
        if mx_policy is TlsLevel.ENCRYPT:
            _dane_incompat(st, _DANE_CANTAUTH, "Verification not possible, MX RRset is insecure")
            return
        st.level = TlsLevel.HALFDANE
        st.note("DANE", "usable TLSA records but insecure MX RRset: halfdane")
    names = [tlsa.base_domain]
    if target.mx is not None:  # with DANE the name checks are not configurable
        names += (
            [target.mx.rname]
            if target.mx.qname == target.mx.rname
            else [
                target.mx.rname,
                target.mx.qname,
            ]
        )
    st.matchargv = names
    st.dane_base = tlsa.base_domain
    st.associations = list(tlsa.records)
    st.note(
        "TLSA",
        f"{dane_mod.tlsa_query_name(tlsa.base_domain, target.port)}: "
        f"{len(tlsa.records)} record(s): " + "; ".join(map(str, tlsa.records)),
    )


def _set_cipher_grade(st: _State, options: TlsOptions) -> None:
    """Postfix set_cipher_grade(): grade by level, plus level-dependent exclusions."""
    mand_exclude = also_exclude = ""
    if st.level in (TlsLevel.NONE,):
        return
    if st.level is TlsLevel.MAY:
        st.grade = st.grade or options.smtp_tls_ciphers
    elif st.level is TlsLevel.ENCRYPT:
        st.grade = st.grade or options.smtp_tls_mandatory_ciphers
        mand_exclude, also_exclude = options.smtp_tls_mandatory_exclude_ciphers, "eNULL"
    else:
        st.grade = st.grade or options.smtp_tls_mandatory_ciphers
        mand_exclude, also_exclude = options.smtp_tls_mandatory_exclude_ciphers, "aNULL"
    if st.exclusions is None:  # the "exclude" attribute overrides main.cf exclusions
        st.exclusions = " ".join(x for x in (options.smtp_tls_exclude_ciphers, mand_exclude) if x)
    st.exclusions = " ".join(x for x in (st.exclusions, also_exclude) if x)


def _split_match(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        out += [w for w in value.replace(",", " ").replace(":", " ").split() if w]
    return out


def resolve_match_names(
    matchargv: Sequence[str], target: TlsTarget
) -> tuple[list[MatchName], list[str]]:
    """Postfix tls_client.c add_namechecks(): match strategies to reference names.

    ``nexthop``, ``dot-nexthop`` and ``hostname`` (any case) become the
    target's names; ``.domain`` matches below *domain*; other names are
    literal (U-labels become A-labels). Returns (names, notes about skipped
    entries: ``.`` alone, a second IP address, invalid IDNA).
    """
    names: list[MatchName] = []
    notes: list[str] = []
    for raw in matchargv:
        word = raw.lower()
        subdomain = False
        if word == "nexthop":
            name = target.domain
        elif word == "dot-nexthop":
            name, subdomain = target.domain, True
        elif word == "hostname":
            name = target.host
        elif raw.startswith("."):
            if raw == ".":
                notes.append('ignoring invalid match name: "."')
                continue
            name, subdomain = raw[1:], True
        else:
            name = raw
        try:
            ascii_name = to_ascii(name)
        except ValueError as exc:
            notes.append(f"ignoring match name {name!r}: {exc}")
            continue
        ref = MatchName(ascii_name.lower(), subdomain)
        if ref.ip and any(n.ip for n in names):
            # OpenSSL 3 SSL_add1_host(): "There can be only one IP address".
            notes.append(f'error loading match name: "{ascii_name}"')
            continue
        if ref not in names:
            names.append(ref)
    return names, notes


def _resolve_sni(sni: str, target: TlsTarget) -> str:
    """Postfix tls_auth_enable(): ``hostname``/``nexthop`` or a literal name."""
    if sni == "hostname":
        name = target.host
    elif sni == "nexthop":
        name = target.domain
    else:
        name = sni
    return to_ascii(name)


def _lookup_entry(st: _State, options: TlsOptions, target: TlsTarget) -> TlsLevel | None:
    """The site level from smtp_tls_policy_maps or smtp_tls_per_site (None: not found)."""
    table = options.policy_table
    if table is not None:
        try:
            found = lookup_policy_entry(table, target.nexthop)
        except TlsPolicyError as exc:
            st.invalid("smtp_tls_policy_maps", f"{target.nexthop!r}: {exc.reason}")
            return None
        if found is None:
            st.note("smtp_tls_policy_maps", f"no entry for {target.nexthop!r}")
            return None
        key, value = found
        st.note("smtp_tls_policy_maps", f"{key!r} -> {value!r}")
        try:
            entry = parse_entry(value)
        except TlsPolicyError as exc:
            st.invalid("smtp_tls_policy_maps", f"next-hop destination {key!r}: {exc.reason}")
            return None
        for token in entry.ignored:
            st.note("smtp_tls_policy_maps", f'ignoring attribute "{token}" with TLS disabled')
        st.entry = entry
        st.grade, st.protocols, st.sni = entry.ciphers, entry.protocols, entry.servername
        st.exclusions = entry.exclude
        st.tafiles = entry.tafile
        if entry.match is not None:
            st.matchargv = list(entry.match)
        if entry.connection_reuse is not None:
            st.conn_reuse = entry.connection_reuse
        if entry.enable_rpk is not None:
            st.enable_rpk = entry.enable_rpk
        if entry.sts and entry.mx_host_pattern and options.smtp_tls_enforce_sts_mx_patterns:
            # Postfix SAFE_FOR_SMTP_TLS_ENF_STS_MX_PAT(): needs a match list too.
            st.mx_patterns = entry.mx_host_pattern
            if st.matchargv is not None:
                st.matchargv = ["hostname"]  # Postfix: STS plugin -> match the MX host name
                st.note(
                    "smtp_tls_enforce_sts_mx_patterns", "certificate must match the MX host name"
                )
        return entry.level
    per_site = options.per_site_table
    if per_site is not None:
        result = _per_site_level(per_site, target.nexthop, target.host, st.level, st.reasons)
        if isinstance(result, Failure):
            st.failure = result
            return None
        return result
    return None


def evaluate_steps(
    target: TlsTarget,
    options: TlsOptions,
    *,
    tls_required_no: bool = False,
    requiretls: RequireTlsAction | None = None,
    sts: StsPolicy | None = None,
    read_file: Callable[[str], bytes] = _read_file,
) -> Generator[Query, Answer, TlsPolicy]:
    """Compute the TLS policy for *target* (Postfix policy_create()).

    Yields DNS :class:`Query` objects (TLSA, and CNAME for DNSSEC status)
    and expects an :class:`Answer` for each.

    Args:
        target: the candidate server.
        options: the TLS parameters.
        tls_required_no: the message has a ``TLS-Required: no`` header
            (RFC 8689 §5). Ignored when *requiretls* is set: REQUIRETLS wins.
        requiretls: the REQUIRETLS action for this nexthop when the sender
            requested REQUIRETLS (see :mod:`pyfix_smtp.tls.requiretls`), else None.
        sts: the recipient domain's MTA-STS policy when native MTA-STS is on.
        read_file: reads trust-anchor files (injected for tests).
    """
    st = _State(level=options.global_level)
    st.conn_reuse = options.smtp_tls_connection_reuse
    st.enable_rpk = options.smtp_tls_enable_rpk
    st.note("smtp_tls_security_level", f"global level {st.level}")

    site_level: TlsLevel | None = None
    st.tls_required_no = tls_required_no and options.tls_required_enable and requiretls is None
    if st.tls_required_no:  # Postfix STATE_TLS_NOT_REQUIRED()
        cap = TlsLevel.ENCRYPT if options.smtp_tls_wrappermode else TlsLevel.MAY
        if st.level > cap:
            st.level = cap
        st.note("TLS-Required: no", f"no policy lookup, level at most {cap}")
    else:
        site_level = _lookup_entry(st, options, target)
    if st.failure is not None:
        return _finish(st, target, options, requiretls)
    if site_level is not None:
        st.level = site_level
        st.note("policy", f"site level {site_level}")

    # Native MTA-STS acts like a last policy table: only without a table entry.
    apply_sts = (
        sts is not None and st.entry is None and site_level is None and not st.tls_required_no
    )
    if apply_sts and sts is not None and sts.mode is not StsMode.ENFORCE:
        st.note("MTA-STS", f"{sts.domain}: mode {sts.mode.value}, not enforced")
        apply_sts = False

    if st.level.dane_based:
        yield from _dane_init(st, target, options)
        if st.failure is not None:  # never weaken a DANE failure, not even for MTA-STS
            return _finish(st, target, options, requiretls)

    if apply_sts and sts is not None:
        _apply_sts(st, sts)

    if st.level > TlsLevel.NONE and st.protocols is None:
        st.protocols = (
            options.smtp_tls_protocols
            if st.level is TlsLevel.MAY
            else options.smtp_tls_mandatory_protocols
        )
    if st.level > TlsLevel.NONE and st.sni is None:
        if options.smtp_tls_servername and not valid_hostname(options.smtp_tls_servername):
            st.invalid(
                "smtp_tls_servername",
                f'"{options.smtp_tls_servername}" specifies an invalid hostname',
            )
            return _finish(st, target, options, requiretls)
        st.sni = options.smtp_tls_servername

    _set_cipher_grade(st, options)

    if st.level is TlsLevel.FINGERPRINT:
        values = (
            list(st.matchargv)
            if st.matchargv is not None
            else [v for item in options.smtp_tls_fingerprint_cert_match for v in _split(item)]
        )
        for value in values:
            raw = hex_decode_fingerprint(value)
            if raw is None:
                st.note("fingerprint", f"malformed fingerprint value: {value[:100]}")
                continue
            st.associations.append(Association(3, 0, 255, raw, "fingerprint"))
            st.associations.append(Association(3, 1, 255, raw, "fingerprint"))
        if not st.associations:
            st.invalid(
                "fingerprint",
                f"nexthop domain {target.domain}: configured at fingerprint security level, "
                "but with no fingerprints to match.",
            )
    elif st.level in (TlsLevel.VERIFY, TlsLevel.SECURE):
        if st.matchargv is None:
            st.matchargv = _split_match(
                options.smtp_tls_verify_cert_match
                if st.level is TlsLevel.VERIFY
                else options.smtp_tls_secure_cert_match
            )
        _load_anchor_files(st, st.tafiles, "tafile", read_file)
        if st.failure is None and not st.associations:
            _load_anchor_files(
                st, options.smtp_tls_trust_anchor_file, "smtp_tls_trust_anchor_file", read_file
            )
        if st.failure is None and st.associations:
            st.note("trust anchors", f"{len(st.associations) // 2} anchor(s) replace the CA store")
    return _finish(st, target, options, requiretls)


def _load_anchor_files(
    st: _State, paths: Sequence[str], source: str, read_file: Callable[[str], bytes]
) -> None:
    for path in paths:
        loaded, error = load_trust_anchors(path, read_file)
        if error is not None:
            st.invalid(source, error)
            return
        st.associations += loaded


def _apply_sts(st: _State, sts: StsPolicy) -> None:
    """Native MTA-STS enforce (RFC 8461 §4.2; §2: DANE takes precedence)."""
    usable, _ = dane_mod.screen_openssl(st.associations)
    st.sts = sts
    if st.level.dane_based and usable:
        if st.level is TlsLevel.HALFDANE:  # the MX RRset is not DNSSEC-validated
            st.mx_patterns, st.enforce_patterns = sts.mx, True
            st.note("MTA-STS", f"{sts.domain}: enforce; MX names checked, DANE authenticates")
        else:
            st.note("MTA-STS", f"{sts.domain}: enforce, but DANE takes precedence")
        return
    st.mx_patterns, st.enforce_patterns = sts.mx, True
    if st.level >= TlsLevel.FINGERPRINT and not st.level.dane_based:
        st.note("MTA-STS", f"{sts.domain}: enforce; MX names checked, level {st.level} kept")
        return
    st.level = TlsLevel.SECURE
    st.matchargv = ["hostname"]
    if st.sni is None:
        st.sni = "hostname"
    st.associations = []
    st.dane_base = None
    st.note("MTA-STS", f"{sts.domain}: enforce -> secure, certificate must match the MX host name")


def _split(value: str) -> list[str]:
    return value.translate(str.maketrans(SEPARATORS, " " * len(SEPARATORS))).split()


def _finish(
    st: _State, target: TlsTarget, options: TlsOptions, requiretls: RequireTlsAction | None
) -> TlsPolicy:
    """The checks Postfix makes after policy_create(), then freeze the result.

    Order as in smtp_connect.c: policy failure, REQUIRETLS level check,
    ``smtp_tls_wrappermode`` level check, MTA-STS MX authorization; then what
    tls_client_start() would reject (protocols, ciphers, unusable records),
    decided here before connecting.
    """
    names: list[MatchName] = []
    prange: ProtocolRange | None = None
    clist = ""
    sni: str | None = None
    fpt = options.smtp_tls_fingerprint_digest.lower() if st.level is TlsLevel.FINGERPRINT else None
    usable: list[Association] = list(st.associations)

    if st.failure is None and requiretls is not None:
        st.note("REQUIRETLS", f"action {requiretls}")
        failure = check_level(requiretls, st.level, target.host)
        if failure is not None:
            st.note("REQUIRETLS", failure.reason)
            st.failure = failure
    if st.failure is None and options.smtp_tls_wrappermode and st.level < TlsLevel.ENCRYPT:
        st.invalid(
            "smtp_tls_wrappermode",
            'smtp_tls_wrappermode requires "smtp_tls_security_level = encrypt" (or stronger)',
        )
    if st.failure is None and st.mx_patterns and (st.enforce_patterns or st.matchargv is not None):
        _authorize_mx(st, target)

    if st.failure is None and st.level > TlsLevel.NONE:
        try:
            prange = protocol_range(parse_protocols(st.protocols or ""), dane=st.level.dane_based)
            for note in prange.notes:
                st.note("protocols", note)
            clist = cipher_list(
                st.grade or "",
                st.exclusions or "",
                high=options.tls_high_cipherlist,
                medium=options.tls_medium_cipherlist,
                null=options.tls_null_cipherlist,
            )
        except TlsPolicyError as exc:
            st.invalid("TLS settings", exc.reason)
    # tls_client_start() picks the SNI name before it finds out that no TLSA
    # record is usable, so a DANE fallback to "encrypt" still sends the base domain.
    dane_sni = st.level.dane_based and st.dane_base is not None
    if st.failure is None and st.associations:
        usable = _screen_usable(st, fpt)
    if st.failure is None and st.level > TlsLevel.NONE:
        try:
            if dane_sni and st.dane_base is not None:
                sni = to_ascii(st.dane_base)  # RFC 7672 §8.1: SNI is the TLSA base domain
            elif st.sni:
                sni = _resolve_sni(st.sni, target)
        except ValueError as exc:
            st.invalid("SNI", str(exc))
    if (
        st.failure is None
        and st.matchargv is not None
        and st.level.must_match
        and st.level is not TlsLevel.FINGERPRINT
    ):
        names, notes = resolve_match_names(st.matchargv, target)
        for note in notes:
            st.note("match", note)
        if not names:
            st.invalid(
                "match", "could not configure peer name checks", "Server certificate not verified"
            )
    return TlsPolicy(
        target=target,
        level=st.level,
        failure=st.failure,
        reasons=tuple(st.reasons),
        entry=st.entry,
        protocols=st.protocols or "",
        protocol_range=prange,
        cipher_grade=st.grade or "",
        cipher_exclusions=st.exclusions or "",
        cipher_list=clist,
        sni=sni or None,
        match_names=tuple(names),
        associations=tuple(usable),
        discarded=tuple(st.discarded),
        dane_base_domain=st.dane_base,
        ee_namechecks=st.level.must_pkix,
        fingerprint_digest=fpt,
        connection_reuse=st.conn_reuse,
        enable_rpk=st.enable_rpk,
        sts=st.sts,
        mx_patterns=st.mx_patterns,
        tls_required_no=st.tls_required_no,
        verify_depth=options.smtp_tls_scert_verifydepth + 1,
    )


def _authorize_mx(st: _State, target: TlsTarget) -> None:
    """Postfix smtp_tls_authorize_mx_hostname(): the MX name must match an STS pattern."""
    try:
        host = to_ascii(target.host).lower()
    except ValueError:
        host = target.host.lower()
    if any(mx_pattern_matches(p, host) for p in st.mx_patterns):
        st.note("MTA-STS", f"MX name {host!r} matches the STS MX patterns")
        return
    if st.sts is not None:
        domain = st.sts.domain
    elif st.entry is not None and st.entry.policy_domain:
        domain = st.entry.policy_domain
    else:
        domain = target.domain
    st.note("MTA-STS", f"MX name {host!r} does not match the STS MX patterns of {domain!r}")
    st.failure = Failure("4.7.5", f"MX host {host} does not match the MTA-STS policy of {domain}")


def _screen_usable(st: _State, fpt: str | None) -> list[Association]:
    """OpenSSL SSL_dane_tlsa_add(): keep what the library would use (tls_client_start())."""
    usable, dropped = dane_mod.screen_openssl(st.associations, fingerprint_digest=fpt)
    for d in dropped:
        st.note("TLSA", f"unusable {d}")
    st.discarded.extend(dropped)
    if usable:
        return usable
    if st.level in (TlsLevel.DANE, TlsLevel.HALFDANE):
        st.note("DANE", "all TLSA records unusable, fallback to unauthenticated TLS")
        st.level = TlsLevel.ENCRYPT
        st.matchargv = None
    elif st.level is TlsLevel.FINGERPRINT:
        st.invalid("fingerprint", "all fingerprints unusable", "Server certificate not verified")
    elif st.level is TlsLevel.DANE_ONLY:
        st.invalid("DANE", "all TLSA records unusable", "TLSA records unusable")
    else:
        st.invalid("trust anchors", "all trust anchors unusable", "Server certificate not verified")
    return usable


def evaluate(
    target: TlsTarget,
    options: TlsOptions,
    *,
    resolve: Callable[[Query], Answer] | None = None,
    tls_required_no: bool = False,
    requiretls: RequireTlsAction | None = None,
    sts: StsPolicy | None = None,
    read_file: Callable[[str], bytes] = _read_file,
) -> TlsPolicy:
    """Run :func:`evaluate_steps` to completion, answering queries with *resolve*.

    Raises:
        TlsPolicyError: a DNS lookup is needed (a DANE level) but no
            *resolve* was given.
    """
    gen = evaluate_steps(
        target,
        options,
        tls_required_no=tls_required_no,
        requiretls=requiretls,
        sts=sts,
        read_file=read_file,
    )
    try:
        query = next(gen)
        while True:
            if resolve is None:
                raise TlsPolicyError(
                    f"a DNS lookup is needed ({query.name} {query.rdtype}) but no resolver given"
                )
            query = gen.send(resolve(query))
    except StopIteration as stop:
        policy: TlsPolicy = stop.value
        return policy


async def evaluate_async(
    target: TlsTarget,
    options: TlsOptions,
    *,
    resolve: Callable[[Query], Awaitable[Answer]],
    tls_required_no: bool = False,
    requiretls: RequireTlsAction | None = None,
    sts: StsPolicy | None = None,
    read_file: Callable[[str], bytes] = _read_file,
) -> TlsPolicy:
    """:func:`evaluate` for asyncio drivers: *resolve* is awaited for each query."""
    gen = evaluate_steps(
        target,
        options,
        tls_required_no=tls_required_no,
        requiretls=requiretls,
        sts=sts,
        read_file=read_file,
    )
    try:
        query = next(gen)
        while True:
            query = gen.send(await resolve(query))
    except StopIteration as stop:
        policy: TlsPolicy = stop.value
        return policy


def with_failure(policy: TlsPolicy, failure: Failure, reason: Reason) -> TlsPolicy:
    """A copy of *policy* that skips the server, with one more reason."""
    return replace(policy, failure=failure, reasons=(*policy.reasons, reason))
