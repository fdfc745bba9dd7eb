"""MTA-STS (RFC 8461): TXT record, policy file, MX patterns, cache and discovery.

Postfix needs an external policy server for MTA-STS; pyfix_smtp does it
natively. Everything here is pure; the cache implementations (memory, sqlite3) are in
:mod:`pyfix_smtp.tls.stscache` and the HTTPS fetch is an effect the driver
executes (:mod:`pyfix_smtp.tls.fetch` has the stdlib implementation).

Discovery (:func:`discover`) is a generator like the DNS planner: it yields
a :class:`~pyfix_smtp.dns.records.Query` for the ``_mta-sts`` TXT record and a
:class:`StsFetch` for the policy file, receives the
:class:`~pyfix_smtp.dns.records.Answer` / :class:`FetchResult`, and returns an
:class:`StsOutcome`. :func:`discover_sync` runs it with plain callables.

Rules (RFC 8461):

* §3.1: TXT records not starting with ``v=STSv1`` are ignored; not exactly one
  left, or a malformed one, means "no MTA-STS" for this lookup.
* §3.2: the policy has ``version: STSv1``, ``mode`` (enforce/testing/none),
  ``max_age`` (at most 31557600 s) and ``mx`` patterns (required unless mode
  is none); the first occurrence of a repeated field other than ``mx``
  wins; unknown fields are ignored; lines end in LF or CRLF.
* §3.3: fetched from ``https://mta-sts.<domain>/.well-known/mta-sts.txt``
  with a valid certificate, no redirects, status 200, size and time limits.
* §4.1: ``*.example.com`` matches exactly one extra leftmost label.
* §5.1: a cached, unexpired policy is used when the TXT id is unchanged, and
  also when the TXT lookup or the fetch fails; a changed id triggers a fetch.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Protocol

from pyfix_smtp.dns.records import Answer, Query, Rcode, TxtRecord
from pyfix_smtp.errors import TlsPolicyError

__all__ = [
    "MAX_AGE_LIMIT",
    "POLICY_MAX_BYTES",
    "CachedSts",
    "FetchResult",
    "StsCache",
    "StsFetch",
    "StsMode",
    "StsOutcome",
    "StsPolicy",
    "StsRecord",
    "discover",
    "discover_async",
    "discover_sync",
    "mx_pattern_matches",
    "parse_sts_policy",
    "parse_sts_record",
    "policy_url",
    "select_sts_record",
]

MAX_AGE_LIMIT = 31557600  # RFC 8461 §3.2: max_age is at most one year
POLICY_MAX_BYTES = 64 * 1024  # RFC 8461 §3.3: "e.g., 64 KB"
FETCH_TIMEOUT = 60.0  # RFC 8461 §3.3: "e.g., one minute"

_ID_RE = re.compile(r"[A-Za-z0-9]{1,32}")
_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}")
_EXT_VALUE_RE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")
_LABEL_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?")


class StsMode(enum.Enum):
    """The policy ``mode`` (RFC 8461 §5)."""

    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class StsRecord:
    """A parsed ``_mta-sts`` TXT record: ``v=STSv1; id=...`` plus extensions."""

    id: str
    extensions: tuple[tuple[str, str], ...] = ()


def parse_sts_record(text: str) -> StsRecord:
    """Parse one TXT record (RFC 8461 §3.1 ABNF).

    Raises:
        TlsPolicyError: not an STSv1 record or malformed; ``policy`` is the text.
    """
    if not text.startswith("v=STSv1"):
        raise TlsPolicyError("not an MTA-STS record", policy=text)
    rest = text[len("v=STSv1") :]
    fields_: list[tuple[str, str]] = []
    pos = 0
    while True:
        m = re.match(r"[ \t]*;[ \t]*", rest[pos:])
        if not m:
            break
        pos += m.end()
        if pos == len(rest):
            break  # a trailing separator is allowed
        km = _KEY_RE.match(rest, pos)
        if not km:
            raise TlsPolicyError(f"malformed field at offset {pos + 7}", policy=text)
        key = km.group()
        pos = km.end()
        if not rest.startswith("=", pos):
            raise TlsPolicyError(f"missing '=' after {key!r}", policy=text)
        pos += 1
        vm = (_ID_RE if key == "id" else _EXT_VALUE_RE).match(rest, pos)
        if not vm:
            raise TlsPolicyError(f"malformed value of {key!r}", policy=text)
        fields_.append((key, vm.group()))
        pos = vm.end()
    if pos != len(rest):
        raise TlsPolicyError(f"unexpected text {rest[pos:]!r}", policy=text)
    ids = [v for k, v in fields_ if k == "id"]
    if not ids:
        raise TlsPolicyError("missing id", policy=text)
    return StsRecord(ids[0], tuple((k, v) for k, v in fields_ if k != "id"))


def select_sts_record(answer: Answer) -> tuple[StsRecord | None, str]:
    """Pick the MTA-STS record from a TXT answer (RFC 8461 §3.1).

    Returns (record, why): record is None when there is no usable record,
    and *why* says so ("no record", "lookup failed: ...", "2 records" ...).
    """
    if answer.rcode in (Rcode.NXDOMAIN, Rcode.NODATA) or (
        answer.rcode is Rcode.NOERROR and not answer.records
    ):
        return None, "no MTA-STS TXT record"
    if answer.rcode is not Rcode.NOERROR:
        return None, f"TXT lookup failed: {answer.rcode.value} {answer.detail}".rstrip()
    texts = []
    for rec in answer.records:
        if isinstance(rec, TxtRecord):
            texts.append(rec.text.decode("utf-8", "replace"))
    candidates = [t for t in texts if t.startswith("v=STSv1")]
    if not candidates:
        return None, "no MTA-STS TXT record"
    if len(candidates) > 1:
        return None, f"{len(candidates)} MTA-STS TXT records"
    try:
        return parse_sts_record(candidates[0]), "TXT record found"
    except TlsPolicyError as exc:
        return None, f"invalid MTA-STS TXT record: {exc.reason}"


def _valid_domain(name: str) -> bool:
    labels = name.split(".")
    return len(labels) >= 1 and all(_LABEL_RE.fullmatch(label) for label in labels)


@dataclass(frozen=True, slots=True)
class StsPolicy:
    """A parsed policy file for *domain*."""

    domain: str
    mode: StsMode
    max_age: int
    mx: tuple[str, ...]
    text: str = field(default="", repr=False)
    extensions: tuple[tuple[str, str], ...] = ()

    def matches(self, host: str) -> bool:
        """Does MX host *host* match one of the ``mx`` patterns (RFC 8461 §4.1)?"""
        return any(mx_pattern_matches(pattern, host) for pattern in self.mx)


def mx_pattern_matches(pattern: str, host: str) -> bool:
    """RFC 8461 §4.1 (Postfix smtp_tls_policy.c match_sts_mx_host_pattern()).

    ``*.example.com`` matches ``mx.example.com`` but neither ``example.com``
    nor ``a.b.example.com``; otherwise names must be equal, ignoring case.
    """
    host = host.rstrip(".").lower()
    pattern = pattern.rstrip(".").lower()
    if host == pattern:
        return True
    if pattern.startswith("*.") and len(pattern) > 2:
        dot = host.find(".")
        return dot > 0 and host[dot + 1 :] == pattern[2:]
    return False


def parse_sts_policy(text: str, domain: str) -> StsPolicy:
    """Parse a policy file (RFC 8461 §3.2).

    Raises:
        TlsPolicyError: a syntax error, a missing field, or a value out of
            range; ``reason`` names the line.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # a final line terminator
    seen: dict[str, str] = {}
    mx: list[str] = []
    extensions: list[tuple[str, str]] = []
    for number, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9_.\-]{0,31}):[ \t]*(.*?)[ \t]*", line)
        if not m:
            raise TlsPolicyError(f"line {number}: malformed field {line!r}")
        key, value = m.group(1), m.group(2)
        if key == "mx":
            pattern = value[2:] if value.startswith("*.") else value
            if not _valid_domain(pattern):
                raise TlsPolicyError(f"line {number}: invalid mx pattern {value!r}")
            mx.append(value.lower())
            continue
        if key in seen:
            continue  # RFC 8461 §3.2: the first occurrence is used
        if key == "version" and value != "STSv1":
            raise TlsPolicyError(f"line {number}: unsupported version {value!r}")
        if key == "mode" and value not in ("enforce", "testing", "none"):
            raise TlsPolicyError(f"line {number}: invalid mode {value!r}")
        if key == "max_age" and (
            not re.fullmatch(r"[0-9]{1,10}", value) or int(value) > MAX_AGE_LIMIT
        ):
            raise TlsPolicyError(f"line {number}: invalid max_age {value!r}")
        if key not in ("version", "mode", "max_age"):
            if not value:
                raise TlsPolicyError(f"line {number}: empty value for {key!r}")
            extensions.append((key, value))
        seen[key] = value
    for required in ("version", "mode", "max_age"):
        if required not in seen:
            raise TlsPolicyError(f"missing field {required!r}")
    mode = StsMode(seen["mode"])
    if not mx and mode is not StsMode.NONE:
        raise TlsPolicyError("missing mx field")
    return StsPolicy(domain.lower(), mode, int(seen["max_age"]), tuple(mx), text, tuple(extensions))


def policy_url(domain: str) -> str:
    """``https://mta-sts.<domain>/.well-known/mta-sts.txt`` (RFC 8461 §3.2)."""
    return f"https://mta-sts.{domain.rstrip('.').lower()}/.well-known/mta-sts.txt"


@dataclass(frozen=True, slots=True)
class StsFetch:
    """Effect: fetch the policy file of *domain* over HTTPS (RFC 8461 §3.3).

    The driver must verify the certificate for ``mta-sts.<domain>``, send that
    name as SNI and Host, refuse redirects and stop after *max_bytes* and
    *timeout* seconds.
    """

    domain: str
    url: str
    host: str
    max_bytes: int = POLICY_MAX_BYTES
    timeout: float = FETCH_TIMEOUT


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What the driver got for an :class:`StsFetch`.

    ``error`` is set when no complete response arrived (TLS failure, timeout,
    too large); otherwise ``status`` and ``body`` are set.
    """

    status: int = 0
    body: bytes = b""
    content_type: str = ""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CachedSts:
    """A cache entry: the policy, the TXT id it belongs to, and when it was fetched."""

    policy: StsPolicy
    id: str
    fetched: float

    @property
    def expires(self) -> float:
        """Fetch time plus max_age (RFC 8461 §3.2)."""
        return self.fetched + self.policy.max_age

    def valid(self, now: float) -> bool:
        """Still within max_age."""
        return now < self.expires


class StsCache(Protocol):
    """Storage for MTA-STS policies, shared across deliveries (and processes)."""

    def get(self, domain: str) -> CachedSts | None:
        """The entry for *domain*, expired or not, or None."""
        ...

    def put(self, domain: str, entry: CachedSts) -> None:
        """Store or replace the entry for *domain*."""
        ...

    def delete(self, domain: str) -> None:
        """Forget *domain*."""
        ...


@dataclass(frozen=True, slots=True)
class StsOutcome:
    """The result of discovery for one domain.

    Attributes:
        policy: the policy to apply, or None (no MTA-STS for now).
        source: ``"fetched"``, ``"cache"`` or ``"none"``.
        notes: what happened, for explanations and TLSRPT-style reports.
        failure: a TLSRPT result type when something went wrong
            (``sts-policy-fetch-error``, ``sts-policy-invalid``,
            ``sts-webpki-invalid``), else None.
    """

    policy: StsPolicy | None
    source: str
    notes: tuple[str, ...] = ()
    failure: str | None = None


StsEffect = Query | StsFetch


def discover(
    domain: str,
    *,
    cache: StsCache,
    now: float,
    fetch_timeout: float = FETCH_TIMEOUT,
) -> Generator[StsEffect, Answer | FetchResult, StsOutcome]:
    """Find the MTA-STS policy of *domain* (RFC 8461 §3 and §5.1).

    Yields a TXT :class:`Query`, then maybe an :class:`StsFetch`; send back an
    :class:`Answer` and a :class:`FetchResult`. *now* is a POSIX timestamp.
    """
    domain = domain.rstrip(".").lower()
    notes: list[str] = []
    cached = cache.get(domain)
    if cached is not None and not cached.valid(now):
        notes.append(f"cached policy (id {cached.id}) expired")
        cache.delete(domain)
        cached = None

    answer = yield Query(f"_mta-sts.{domain}", "TXT")
    if not isinstance(answer, Answer):
        raise TypeError(f"discover() expected an Answer, got {answer!r}")
    record, why = select_sts_record(answer)
    notes.append(why)
    if record is None:
        if cached is not None:  # RFC 8461 §5.1: apply an unexpired cached policy
            notes.append(f"using cached policy (id {cached.id})")
            return StsOutcome(cached.policy, "cache", tuple(notes))
        return StsOutcome(None, "none", tuple(notes))
    if cached is not None and cached.id == record.id:
        notes.append(f"cached policy id {cached.id} is current")
        return StsOutcome(cached.policy, "cache", tuple(notes))

    request = StsFetch(domain, policy_url(domain), f"mta-sts.{domain}", timeout=fetch_timeout)
    result = yield request
    if not isinstance(result, FetchResult):
        raise TypeError(f"discover() expected a FetchResult, got {result!r}")
    failure: str | None = None
    policy: StsPolicy | None = None
    if result.error is not None:
        why = f"policy fetch failed: {result.error}"
        failure = (
            "sts-webpki-invalid" if "certificate" in result.error else "sts-policy-fetch-error"
        )
    elif result.status != 200:
        why = f"policy fetch returned HTTP status {result.status}"
        failure = "sts-policy-fetch-error"
    elif len(result.body) > POLICY_MAX_BYTES:
        why = f"policy larger than {POLICY_MAX_BYTES} bytes"
        failure = "sts-policy-invalid"
    else:
        try:
            policy = parse_sts_policy(result.body.decode("utf-8"), domain)
            why = f"fetched policy: mode {policy.mode.value}, max_age {policy.max_age}"
        except (TlsPolicyError, UnicodeDecodeError) as exc:
            reason = exc.reason if isinstance(exc, TlsPolicyError) else str(exc)
            why = f"invalid policy: {reason}"
            failure = "sts-policy-invalid"
    notes.append(why)
    if policy is None:
        if cached is not None:
            notes.append(f"using cached policy (id {cached.id})")
            return StsOutcome(cached.policy, "cache", tuple(notes), failure)
        return StsOutcome(None, "none", tuple(notes), failure)
    cache.put(domain, CachedSts(policy, record.id, now))
    return StsOutcome(policy, "fetched", tuple(notes))


async def discover_async(
    domain: str,
    *,
    resolve: Callable[[Query], Awaitable[Answer]],
    fetch: Callable[[StsFetch], Awaitable[FetchResult]],
    cache: StsCache,
    now: float,
) -> StsOutcome:
    """:func:`discover` for asyncio drivers (run the stdlib fetcher in a thread)."""
    gen = discover(domain, cache=cache, now=now)
    reply: Answer | FetchResult | None = None
    try:
        while True:
            effect = gen.send(reply) if reply is not None else next(gen)
            reply = await resolve(effect) if isinstance(effect, Query) else await fetch(effect)
    except StopIteration as stop:
        outcome: StsOutcome = stop.value
        return outcome


def discover_sync(
    domain: str,
    *,
    resolve: Callable[[Query], Answer],
    fetch: Callable[[StsFetch], FetchResult],
    cache: StsCache,
    now: float,
) -> StsOutcome:
    """Run :func:`discover` with a resolver and a fetcher (e.g. :func:`tls.fetch.fetch_policy`)."""
    gen = discover(domain, cache=cache, now=now)
    reply: Answer | FetchResult | None = None
    try:
        while True:
            effect = gen.send(reply) if reply is not None else next(gen)
            reply = resolve(effect) if isinstance(effect, Query) else fetch(effect)
    except StopIteration as stop:
        outcome: StsOutcome = stop.value
        return outcome
