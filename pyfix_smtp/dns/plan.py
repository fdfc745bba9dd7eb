"""Where to deliver: destinations -> sites -> ordered candidate addresses (sans-IO).

This is Postfix's ``smtp_addr.c`` and the address part of ``smtp_connect.c``
as a pure planner. It never does I/O: it *yields* DNS questions
(:class:`~pyfix_smtp.dns.records.Query`) and is *sent* the answers
(:class:`~pyfix_smtp.dns.records.Answer`), so the same code runs under a
synchronous driver, an asyncio driver, a test with canned answers, or inside
the delivery core with ``yield from``::

    steps = plan(destinations, options, rng)
    query = next(steps)
    while True:
        try:
            query = steps.send(resolver.lookup(query))
        except StopIteration as done:
            result = done.value
            break

:func:`pyfix_smtp.dns.plan_sync` and :func:`pyfix_smtp.dns.plan_async` run
that loop with a resolver from :mod:`pyfix_smtp.dns.resolve`.
:func:`plan_batched` yields *tuples* of independent queries (all A/AAAA
lookups of one MX list at once) so an async driver can run them
concurrently; the result is identical.

Ordering follows Postfix 3.11: MX records sorted by preference; addresses
collected in MX order; when ``smtp_randomize_addresses`` the whole list is
shuffled and stably re-sorted by preference and ``smtp_address_preference``;
``smtp_balance_inet_protocols`` keeps both families within
``smtp_mx_address_limit``; best-MX-is-myself truncation; RFC 2782 order for
SRV. Failures carry Postfix's enhanced status code and reason text.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from pyfix_smtp.dns.lookup import (
    Combined,
    DnsStatus,
    LookupResult,
    as_reply_filter,
    combine,
    interpret,
    invalid_name,
)
from pyfix_smtp.dns.names import ascii_domain, parse_address
from pyfix_smtp.dns.options import (
    AddressPreference,
    DnsSupport,
    Family,
    HostLookup,
    PlanOptions,
)
from pyfix_smtp.dns.ordering import (
    DNS_RR_LIST_LIMIT,
    balance_families,
    shuffle,
    sort_by_preference,
    sort_srv,
)
from pyfix_smtp.dns.records import AddressRecord, Answer, MxRecord, Query, Rcode, SrvRecord
from pyfix_smtp.dns.results import Candidate, FinalFailure, Origin, Plan, Site, Source
from pyfix_smtp.errors import DestinationError, DnsError
from pyfix_smtp.status import Failure

__all__ = [
    "AddressPreference",
    "AsyncResolver",
    "Batch",
    "BatchSteps",
    "Candidate",
    "DnsSupport",
    "Family",
    "FinalFailure",
    "HostLookup",
    "Nexthop",
    "Origin",
    "Plan",
    "PlanOptions",
    "Resolver",
    "Site",
    "Source",
    "Steps",
    "final_failure",
    "plan",
    "plan_batched",
    "plan_site",
    "plan_site_batched",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")

#: One step of the batched planner: independent queries to answer, in order.
Batch = tuple[Query, ...]
BatchSteps = Generator[Batch, tuple[Answer, ...], T]
Steps = Generator[Query, Answer, T]

SMTP_PORT = 25  # Postfix smtp_connect.c IPPORT_SMTP: loop detection only here


class Nexthop(Protocol):
    """What the planner needs to know about one destination.

    :class:`pyfix_smtp.destination.Destination` provides these attributes;
    :func:`pyfix_smtp.destination.sites` gives the list with fallback relays.
    """

    @property
    def text(self) -> str:
        """The destination as written (``"[mx.example]:587"``), for logs."""
        ...

    @property
    def host(self) -> str:
        """Domain, host name or IP address, without brackets."""
        ...

    @property
    def port(self) -> int:
        """TCP port (0 for a UNIX-domain socket)."""
        ...

    @property
    def service(self) -> str | None:
        """Symbolic service (``"smtp"``, ``"submission"``), None for a numeric port."""
        ...

    @property
    def mx_lookup(self) -> bool:
        """False for ``[host]``: look up the host's addresses, not MX records."""
        ...

    @property
    def srv_lookup(self) -> bool:
        """Look up ``_service._tcp.host`` SRV records first (``use_srv_lookup``)."""
        ...

    @property
    def is_fallback(self) -> bool:
        """True for a fallback relay (``smtp_fallback_relay``)."""
        ...

    @property
    def path(self) -> str | None:
        """The socket path of an LMTP ``unix:`` destination, else None."""
        ...


class Resolver(Protocol):
    """Answers one DNS question (blocking).

    The answer must be final: CNAMEs followed, ``records`` of the asked type
    at the end of the chain, ``authentic`` only when every step validated.
    Implementations: :class:`pyfix_smtp.dns.resolve.DnsResolver`,
    :class:`pyfix_smtp.dns.resolve.NativeResolver`, or your own (caching).
    """

    def lookup(self, query: Query) -> Answer:
        """Answer *query*; report failures in ``Answer.rcode``, never raise."""
        ...


class AsyncResolver(Protocol):
    """Answers one DNS question (asyncio); see :class:`Resolver`."""

    async def lookup(self, query: Query) -> Answer:
        """Answer *query*; report failures in ``Answer.rcode``, never raise."""
        ...


class _Why:
    """Postfix's DSN_BUF ``why``: enhanced status and reason text."""

    __slots__ = ("reason", "status")

    def __init__(self) -> None:
        self.status = ""
        self.reason = ""

    @property
    def soft(self) -> bool:
        return self.status.startswith("4")

    @property
    def hard(self) -> bool:
        return self.status.startswith("5")

    def reset(self) -> None:
        self.status = ""
        self.reason = ""

    def write(self, text: str | None) -> None:
        """dns_lookup() wrote its text into the reason buffer."""
        if text is not None:
            self.reason = text

    def simple(self, status: str, reason: str) -> None:
        self.status = status
        self.reason = reason

    def failure(self) -> Failure | None:
        if not self.status:
            return None
        return Failure(self.status, self.reason or "unknown error")


@dataclass(frozen=True, slots=True)
class _Addr:
    """An address-list entry (Postfix DNS_RR of type A/AAAA)."""

    ip: IPAddress
    preference: int
    port: int
    qname: str
    rname: str
    authentic: bool
    cname_chain: tuple[str, ...]
    origin: Origin
    ttl: int
    weight: int = 0

    @property
    def is_ipv6(self) -> bool:
        return self.ip.version == 6


class _AddrList:
    """Postfix's address list: append with the 100-record cap."""

    __slots__ = ("items", "seen", "truncated", "unique", "warnings")

    def __init__(self, unique: bool, warnings: list[str]) -> None:
        self.items: list[_Addr] = []
        self.seen: set[tuple[IPAddress, int]] = set()
        self.truncated = False
        self.unique = unique
        self.warnings = warnings

    def append(self, addr: _Addr, qtype: str) -> None:
        if self.truncated:
            return
        key = (addr.ip, addr.port)
        if self.unique and key in self.seen:
            return
        if len(self.items) == DNS_RR_LIST_LIMIT:  # Postfix dns_rr_append_with_limit()
            self.truncated = True
            self.warnings.append(
                f"DNS record count limit ({DNS_RR_LIST_LIMIT}) exceeded -- dropping"
                f" excess record(s) after qname={self.items[0].qname} qtype={qtype}"
            )
            return
        self.seen.add(key)
        self.items.append(addr)


def _family(ip: IPAddress) -> Family:
    return Family.IPV6 if ip.version == 6 else Family.IPV4


_GAI_TEXT = {
    # glibc gai_strerror() texts, used when the adapter gives none
    Rcode.SERVFAIL: "Temporary failure in name resolution",
    Rcode.TIMEOUT: "Temporary failure in name resolution",
    Rcode.NXDOMAIN: "Name or service not known",
    Rcode.BADNAME: "Name or service not known",
    Rcode.NODATA: "No address associated with hostname",
    Rcode.NOERROR: "No address associated with hostname",
    Rcode.SYSERROR: "System error",
}


class _Context:
    """Per-plan state: options, randomness, answered queries, warnings."""

    def __init__(self, options: PlanOptions, rng: random.Random) -> None:
        self.options = options
        self.rng = rng
        self.answers: dict[Query, Answer] = {}
        self.warnings: list[str] = []
        self.dnssec = options.smtp_dns_support_level is DnsSupport.DNSSEC
        self.families = options.inet_protocols
        self.lookups = options.host_lookup
        # Postfix inet_proto.c: A before AAAA when both are enabled.
        self.atypes = tuple(
            t
            for t, fam in (("A", Family.IPV4), ("AAAA", Family.IPV6))
            if fam in options.inet_protocols
        )
        self.search = bool(options.smtp_dns_resolver_options)
        self.reply_filter = as_reply_filter(options.smtp_dns_reply_filter)

    # -- asking ------------------------------------------------------------

    def prefetch(self, queries: Iterable[Query]) -> BatchSteps[None]:
        """Ask every not-yet-answered query in one batch."""
        todo = tuple(dict.fromkeys(q for q in queries if q not in self.answers))
        if not todo:
            return
        answers = yield todo
        _check_answers(todo, answers)
        self.answers.update(zip(todo, answers, strict=True))

    def ask(self, query: Query) -> BatchSteps[Answer]:
        if query not in self.answers:
            yield from self.prefetch((query,))
        return self.answers[query]

    def dns_lookup(self, name: str, rdtype: str, *, dnssec: bool) -> BatchSteps[LookupResult]:
        """Postfix dns_lookup(): refuse bad names, else ask and interpret."""
        refused = invalid_name(name, rdtype)
        if refused is not None:
            return refused
        query = Query(name, rdtype, dnssec=dnssec)
        answer = yield from self.ask(query)
        return interpret(answer, reply_filter=self.reply_filter, query=query)

    def address_queries(self, host: str, dnssec: bool) -> list[Query]:
        if invalid_name(host) is not None:
            return []
        return [Query(host, t, dnssec=dnssec, search=self.search) for t in self.atypes]

    def dns_lookup_addresses(self, host: str, *, dnssec: bool) -> BatchSteps[Combined]:
        """Postfix dns_lookup_v() with the enabled address types."""
        refused = invalid_name(host)
        if refused is not None:
            return combine([replace(refused, rdtype=t) for t in self.atypes])
        queries = self.address_queries(host, dnssec)
        yield from self.prefetch(queries)
        results = [
            interpret(self.answers[q], reply_filter=self.reply_filter, query=q) for q in queries
        ]
        return combine(results)

    # -- smtp_addr_one / smtp_addr_list -----------------------------------

    def addr_one(
        self,
        out: _AddrList,
        host: str,
        pref: int,
        port: int,
        dnssec: bool,
        why: _Why,
        weight: int = 0,
    ) -> BatchSteps[None]:
        """Postfix smtp_addr_one(): the addresses of one host name."""
        ip = parse_address(host)
        if ip is not None and _family(ip) in self.families:
            out.append(
                _Addr(ip, pref, port, host, host, False, (), Origin.NUMERIC, 0, weight),
                "A" if ip.version == 4 else "AAAA",
            )
            return
        # "A soft error dominates past and future hard errors."
        if HostLookup.DNS in self.lookups:
            combined = yield from self.dns_lookup_addresses(host, dnssec=dnssec)
            why.write(combined.text)
            status = combined.status
            if status is DnsStatus.OK:
                for part in combined.parts:
                    for record in part.records:
                        assert isinstance(record, AddressRecord)
                        addr_ip = ipaddress.ip_address(record.address)
                        out.append(
                            _Addr(
                                addr_ip,
                                pref,
                                port,
                                host,
                                part.rname,
                                part.authentic,
                                part.cname_chain,
                                Origin.DNS,
                                part.ttl,
                                weight,
                            ),
                            part.rdtype,
                        )
                self.warnings.extend(combined.warnings)
                return
            self.warnings.extend(combined.warnings)
            if status is DnsStatus.FAIL:
                why.status = "4.4.3" if why.soft else "5.4.3"
                return
            if status is DnsStatus.INVAL:
                why.status = "4.4.4" if why.soft else "5.4.4"
                return
            if status is DnsStatus.POLICY:
                why.status = "4.7.0"
                return
            if status is not DnsStatus.NOTFOUND:
                why.status = "4.4.3"
                return
            why.status = "4.4.4" if why.soft else "5.4.4"
            # "maybe native naming service will succeed"
        if HostLookup.NATIVE in self.lookups:
            answer = yield from self.ask(Query(host, "ADDRINFO", dnssec=False))
            self._native(out, host, pref, port, why, weight, answer)

    def _native(
        self,
        out: _AddrList,
        host: str,
        pref: int,
        port: int,
        why: _Why,
        weight: int,
        answer: Answer,
    ) -> None:
        # Postfix smtp_addr_one(): getaddrinfo() errors and results.
        rcode = answer.rcode
        if rcode is Rcode.NOERROR and answer.records:
            found = 0
            for record in answer.records:
                if not isinstance(record, AddressRecord):
                    continue
                ip = parse_address(record.address)
                if ip is None:
                    continue
                if _family(ip) not in self.families:
                    self.warnings.append(
                        f"skipping address family {_family(ip).value} for host {host}"
                    )
                    continue
                found += 1
                out.append(
                    _Addr(ip, pref, port, host, host, False, (), Origin.NATIVE, 0, weight),
                    "A" if ip.version == 4 else "AAAA",
                )
                if out.truncated:
                    break
            if found == 0:
                why.simple("4.4.4" if why.soft else "5.4.4", f"{host}: host not found")
            return
        retry = rcode in (Rcode.SERVFAIL, Rcode.TIMEOUT, Rcode.SYSERROR)
        nohost = rcode in (
            Rcode.SERVFAIL,
            Rcode.TIMEOUT,
            Rcode.NXDOMAIN,
            Rcode.NODATA,
            Rcode.NOERROR,
            Rcode.BADNAME,
        )
        if why.soft or retry:
            status = "4.4.4" if nohost else "4.3.0"
        else:
            status = "5.4.4" if nohost else "5.3.0"
        text = answer.detail or _GAI_TEXT.get(rcode, "Non-recoverable failure in name resolution")
        why.simple(status, f"unable to look up host {host}: {text}")

    def addr_list(
        self,
        names: Sequence[tuple[int, str, int, int]],
        *,
        mx_authentic: bool,
        default_port: int,
        why: _Why,
    ) -> BatchSteps[_AddrList]:
        """Postfix smtp_addr_list(): addresses of MX/SRV hosts in order.

        *names* are (preference, host, port, weight); port 0 = destination port.
        """
        dnssec = self.dnssec and (
            mx_authentic or self.options.smtp_tls_dane_insecure_mx_policy != "may"
        )
        out = _AddrList(self.options.unique_addresses, self.warnings)
        if HostLookup.DNS in self.lookups:  # ask every host's A/AAAA at once
            yield from self.prefetch(
                q
                for _pref, host, _port, _w in names
                if not self._numeric_ok(host)
                for q in self.address_queries(host, dnssec)
            )
        if HostLookup.NATIVE in self.lookups and HostLookup.DNS in self.lookups:
            native: list[Query] = []
            for _pref, host, _port, _w in names:
                if self._numeric_ok(host):
                    continue
                combined = yield from self.dns_lookup_addresses(host, dnssec=dnssec)  # answered
                if combined.status is DnsStatus.NOTFOUND:  # native only after "not found"
                    native.append(Query(host, "ADDRINFO", dnssec=False))
            yield from self.prefetch(native)
        elif HostLookup.NATIVE in self.lookups:
            yield from self.prefetch(
                Query(host, "ADDRINFO", dnssec=False)
                for _pref, host, _port, _w in names
                if not self._numeric_ok(host)
            )
        for pref, host, port, weight in names:
            yield from self.addr_one(out, host, pref, port or default_port, dnssec, why, weight)
            if out.truncated:
                break
        return out

    def _numeric_ok(self, host: str) -> bool:
        ip = parse_address(host)
        return ip is not None and _family(ip) in self.families

    # -- self detection ---------------------------------------------------

    def find_self(self, items: Sequence[_Addr]) -> _Addr | None:
        """Postfix smtp_find_self(): the first address that is ours or our proxy's."""
        own = self.options.own_addresses
        proxy = self.options.proxy_addresses
        for addr in items:
            if addr.ip in own or addr.ip in proxy:
                return addr
        return None

    def order(self, items: list[_Addr], *, sort: bool) -> list[_Addr]:
        """Shuffle, sort by preference/family, balance (Postfix smtp_domain_addr())."""
        opts = self.options
        if len(items) > 1:
            if opts.smtp_randomize_addresses:
                items = shuffle(items, self.rng)
            if sort:
                items = sort_by_preference(items, opts.smtp_address_preference)
            if opts.smtp_mx_address_limit > 0 and opts.smtp_balance_inet_protocols:
                items = balance_families(items, opts.smtp_mx_address_limit)
        return items


@dataclass
class _Found:
    """What one of smtp_domain_addr/host_addr/service_addr produced."""

    items: list[_Addr]
    source: Source
    mx_qname: str | None = None
    mx_rname: str | None = None
    mx_authentic: bool | None = None
    i_am_mx: bool = False
    srv_fallback: bool = False


def _host_addr(ctx: _Context, host: str, why: _Why, loop_detect: bool) -> BatchSteps[_Found]:
    """Postfix smtp_host_addr(): the addresses of one host (implicit MX)."""
    why.reset()
    ahost = ascii_domain(host)
    out = _AddrList(ctx.options.unique_addresses, ctx.warnings)
    yield from ctx.addr_one(out, ahost, 0, 0, ctx.dnssec, why)
    items = out.items
    if items and loop_detect and ctx.find_self(items) is not None:
        why.simple("5.4.6", f"mail for {host} loops back to myself")
        return _Found([], Source.HOST)
    # "The following changes the order of equal-preference hosts."
    items = ctx.order(items, sort=len(ctx.atypes) > 1)
    return _Found(items, Source.HOST)


def _truncate_self(
    ctx: _Context, items: list[_Addr], best_pref: int, name: str, why: _Why
) -> tuple[list[_Addr], bool]:
    """Postfix smtp_find_self() + smtp_truncate_self(): cut at our own preference."""
    me = ctx.find_self(items)
    if me is None:
        return items, False
    kept: list[_Addr] = []
    for addr in items:
        if addr.preference == me.preference:
            break
        kept.append(addr)
    if not kept:
        best_found = items[0].preference
        if best_pref != best_found:
            why.simple("4.4.4", f"unable to find primary relay for {name}")
        else:
            why.simple("5.4.6", f"mail for {name} loops back to myself")
    return kept, True


def _domain_addr(ctx: _Context, name: str, why: _Why, loop_detect: bool) -> BatchSteps[_Found]:
    """Postfix smtp_domain_addr(): MX lookup, then the MX hosts' addresses."""
    opts = ctx.options
    why.reset()
    aname = ascii_domain(name)
    mx = yield from ctx.dns_lookup(aname, "MX", dnssec=ctx.dnssec)
    ctx.warnings.extend(mx.warnings)
    why.write(mx.text)
    status = mx.status
    if status is DnsStatus.OK:
        records = sorted(
            (r for r in mx.records if isinstance(r, MxRecord)), key=lambda r: r.preference
        )
        best_pref = records[0].preference
        names = [(r.preference, r.exchange, 0, 0) for r in records]
        found = _Found([], Source.MX, mx_qname=aname, mx_rname=mx.rname, mx_authentic=mx.authentic)
        out = yield from ctx.addr_list(names, mx_authentic=mx.authentic, default_port=0, why=why)
        items = out.items
        if not items:
            if opts.smtp_defer_if_no_mx_address_found and why.hard:
                why.status = "4" + why.status[1:]  # Postfix SMTP_SET_SOFT_DSN
            ctx.warnings.append(f"no MX host for {name} has a valid address record")
            return found
        if loop_detect:
            items, found.i_am_mx = _truncate_self(ctx, items, best_pref, name, why)
        found.items = ctx.order(items, sort=True)
        return found
    if status is DnsStatus.NOTFOUND:
        return _implicit((yield from _host_addr(ctx, aname, why, loop_detect)))
    if status is DnsStatus.NULLMX:
        why.status = "5.1.0"  # RFC 7505 §3
        return _Found([], Source.MX, mx_qname=aname, mx_rname=mx.rname)
    if status is DnsStatus.POLICY:
        why.status = "4.7.0"
        return _Found([], Source.MX, mx_qname=aname, mx_rname=mx.rname)
    if status is DnsStatus.INVAL:
        why.status = "5.4.4"
    elif status is DnsStatus.FAIL:
        why.status = "5.4.3"
    else:
        why.status = "4.4.3"
    if opts.ignore_mx_lookup_error:
        ctx.warnings.append(f"ignoring MX lookup error for {name}: {why.reason}")
        return _implicit((yield from _host_addr(ctx, aname, why, loop_detect)))
    return _Found([], Source.MX, mx_qname=aname)


def _implicit(found: _Found) -> _Found:
    found.source = Source.IMPLICIT_MX
    return found


def _service_addr(
    ctx: _Context,
    name: str,
    service: str,
    why: _Why,
    loop_detect: bool,
    fallback_to_mx: bool,
    default_port: int,
) -> BatchSteps[_Found]:
    """Postfix smtp_service_addr(): SRV lookup (RFC 2782), then the targets' addresses."""
    opts = ctx.options
    why.reset()
    qname = f"_{service}._tcp.{name}"
    aname = ascii_domain(qname)
    allow_fallback = opts.allow_srv_lookup_fallback
    srv = yield from ctx.dns_lookup(aname, "SRV", dnssec=ctx.dnssec)
    ctx.warnings.extend(srv.warnings)
    why.write(srv.text)
    found = _Found([], Source.SRV, mx_qname=aname, mx_rname=srv.rname)
    status = srv.status
    if status is DnsStatus.OK:
        records = sort_srv([_Srv(r) for r in srv.records if isinstance(r, SrvRecord)], ctx.rng)
        found.mx_authentic = srv.authentic
        best_pref = records[0].preference
        names = [(r.preference, r.record.target, r.record.port, r.weight) for r in records]
        out = yield from ctx.addr_list(
            names, mx_authentic=srv.authentic, default_port=default_port, why=why
        )
        items = out.items
        if not items:
            ctx.warnings.append(f"no SRV host for {qname} has a valid address record")
        else:
            if loop_detect:
                items, found.i_am_mx = _truncate_self(ctx, items, best_pref, qname, why)
            # "TODO: sort by priority, weight, and address family preference."
            limit = opts.smtp_mx_address_limit
            if len(items) > 1 and limit > 0 and opts.smtp_balance_inet_protocols:
                items = balance_families(items, limit)
            found.items = items
    elif status is DnsStatus.POLICY:
        why.status = "4.7.0"
    elif status is DnsStatus.NULLSRV:
        why.status = "5.1.0"
    elif status is DnsStatus.NOTFOUND:
        why.status = "5.4.4"
    else:
        if status is DnsStatus.INVAL:
            why.status = "5.4.4"
        elif status is DnsStatus.FAIL:
            why.status = "5.4.3"
        else:
            why.status = "4.4.3"
        allow_fallback = allow_fallback or opts.ignore_srv_lookup_error
    if not found.items and allow_fallback:
        ctx.warnings.append(f"skipping SRV lookup for {qname}: {why.reason}")
        if fallback_to_mx:
            fallback = yield from _domain_addr(ctx, name, why, loop_detect)
        else:
            fallback = yield from _host_addr(ctx, name, why, loop_detect)
        fallback.srv_fallback = True
        return fallback
    return found


@dataclass(frozen=True, slots=True)
class _Srv:
    record: SrvRecord

    @property
    def preference(self) -> int:
        return self.record.priority

    @property
    def weight(self) -> int:
        return self.record.weight


def plan_site_batched(
    destination: Nexthop,
    options: PlanOptions,
    rng: random.Random,
    *,
    last: bool = True,
) -> BatchSteps[Site]:
    """Plan one destination; yields batches of queries.

    *last* says whether this is the last destination in the list (Postfix
    FINAL_NEXTHOP); the returned :attr:`Site.final` also becomes true when
    we are an MX for the destination or mail loops back to us.
    """
    ctx = _Context(options, rng)
    site = yield from _plan_site(ctx, destination, last=last)
    return site


def _plan_site(ctx: _Context, dest: Nexthop, *, last: bool) -> BatchSteps[Site]:
    opts = ctx.options
    why = _Why()
    smtp = opts.protocol == "smtp"
    path = dest.path
    if path is not None:  # Postfix smtp_connect_local()
        candidate = Candidate(
            hostname=opts.myhostname,
            address=path,
            port=0,
            family=Family.UNIX,
            best_mx=True,
            origin=Origin.PATH,
            qname=path,
            rname=path,
        )
        return Site(
            nexthop=dest.text,
            domain=path,
            port=0,
            service=dest.service or str(dest.port),
            source=Source.UNIX,
            candidates=(candidate,),
            final=True,
        )
    ctx.warnings.clear()
    if not opts.inet_protocols:  # Postfix smtp_connect_inet()
        return Site(
            nexthop=dest.text,
            domain=dest.host,
            port=dest.port,
            service=dest.service or str(dest.port),
            source=Source.HOST,
            failure=Failure("4.4.4", "all network protocols are disabled"),
            is_fallback=dest.is_fallback,
            final=True,
        )
    # Postfix smtp_connect_inet(): no MX/SRV for [host], LMTP (MX) or without DNS.
    dns = opts.smtp_dns_support_level is not DnsSupport.DISABLED
    loop_detect = smtp and dest.port == SMTP_PORT  # smtp_connect.c: port 25 only
    lookup_mx = dns and smtp and dest.mx_lookup
    if dns and dest.srv_lookup and dest.service:
        found = yield from _service_addr(
            ctx, dest.host, dest.service, why, loop_detect, lookup_mx, dest.port
        )
    elif not lookup_mx:
        found = yield from _host_addr(ctx, dest.host, why, loop_detect)
    else:
        found = yield from _domain_addr(ctx, dest.host, why, loop_detect)
    items = found.items
    final = last or found.i_am_mx  # "If we're MX host, don't connect to non-MX backups."
    failure = None if items else why.failure()
    if failure is None and not items:
        failure = Failure("4.3.0", "server unavailable or unable to receive mail")
    if failure is not None and failure.status[1:] == ".4.6":
        final = True  # "Don't try fall-back hosts if mail loops to myself."
    best = items[0].preference if items else 0
    hname = opts.smtp_cname_overrides_servername
    converted = [
        Candidate(
            hostname=a.rname if hname else a.qname,
            address=str(a.ip),
            port=a.port or dest.port,
            family=_family(a.ip),
            preference=a.preference,
            best_mx=a.preference == best,
            from_fallback=dest.is_fallback,
            mx_authentic=found.mx_authentic,
            address_authentic=a.authentic,
            qname=a.qname,
            rname=a.rname,
            cname_chain=a.cname_chain,
            origin=a.origin,
            ttl=a.ttl,
            weight=a.weight,
        )
        for a in items
    ]
    limit = opts.smtp_mx_address_limit
    cut = len(converted) if limit == 0 else limit
    return Site(
        nexthop=dest.text,
        domain=ascii_domain(dest.host),
        port=dest.port,
        service=dest.service or str(dest.port),
        source=found.source,
        candidates=tuple(converted[:cut]),
        spare=tuple(converted[cut:]),
        failure=failure,
        is_fallback=dest.is_fallback,
        final=final,
        i_am_mx=found.i_am_mx,
        loop_detection=loop_detect,
        mx_qname=found.mx_qname,
        mx_rname=found.mx_rname,
        mx_authentic=found.mx_authentic,
        srv_fallback=found.srv_fallback,
        warnings=tuple(ctx.warnings),
    )


def plan_batched(
    destinations: Sequence[Nexthop],
    options: PlanOptions,
    rng: random.Random,
) -> BatchSteps[Plan]:
    """Plan every destination in order (Postfix ``smtp_connect_inet()``).

    Sites are planned until one is *final*. Yields batches of independent
    queries and expects the answers in the same order.
    """
    if not destinations:
        raise DestinationError("", "null destination: no nexthop to plan")
    if not options.inet_protocols and destinations[0].path is None:
        return Plan((), Failure("4.4.4", "all network protocols are disabled"))
    sites: list[Site] = []
    warnings: list[str] = []
    if destinations[0].path is not None:  # LMTP unix: no fallback relays
        ignored = [d.text for d in destinations[1:]]
        if ignored:
            warnings.append(
                f'ignoring fallback relay "{", ".join(ignored)}" for non-TCP connections'
            )
        destinations = destinations[:1]
    ctx = _Context(options, rng)
    for i, dest in enumerate(destinations):
        site = yield from _plan_site(ctx, dest, last=i == len(destinations) - 1)
        sites.append(site)
        if site.final:
            break
    return _conclude(tuple(sites), destinations, options, tuple(warnings))


def _conclude(
    sites: tuple[Site, ...],
    destinations: Sequence[Nexthop],
    options: PlanOptions,
    warnings: tuple[str, ...],
) -> Plan:
    if any(site.candidates for site in sites):
        return Plan(sites, warnings=warnings)
    last = sites[-1]
    final = final_failure(
        last.failure, fallback=last.is_fallback, first_nexthop=destinations[0].text, options=options
    )
    return Plan(sites, final.failure, final.best_mx_transport, warnings + final.warnings)


def final_failure(
    failure: Failure | None,
    *,
    fallback: bool,
    first_nexthop: str,
    options: PlanOptions,
) -> FinalFailure:
    """What Postfix reports for recipients left after the last site was tried.

    Postfix ``smtp_connect_inet()`` after its site loop, for the status of the
    last site tried (a lookup failure or, in the delivery agent, the last
    connection or session failure):

    * no status at all: 4.3.0 "server unavailable or unable to receive mail";
    * a hard status at a fallback relay, or at a nexthop that is the
      ``relayhost`` as written: 4.3.5 (a configuration problem should not
      bounce mail), text kept;
    * a hard mail-loop status (5.4.6, SMTP) with ``best_mx_transport`` set:
      the mail goes to that transport instead.

    Args:
        failure: the last site's failure, or None.
        fallback: the last site tried was a fallback relay.
        first_nexthop: the first destination of the nexthop, as written.
        options: the plan options (protocol, relayhost, best_mx_transport).
    """
    if failure is None:
        return FinalFailure(Failure("4.3.0", "server unavailable or unable to receive mail"))
    if not failure.hard:
        return FinalFailure(failure)
    smtp = options.protocol == "smtp"
    if fallback:
        return FinalFailure(
            Failure("4.3.5", failure.reason),
            warnings=("smtp_fallback_relay configuration problem",),  # VAR_SMTP_FALLBACK
        )
    if smtp and options.relayhost and first_nexthop == options.relayhost:
        return FinalFailure(
            Failure("4.3.5", failure.reason), warnings=("relayhost configuration problem",)
        )
    if smtp and failure.status[1:] == ".4.6" and options.best_mx_transport:
        return FinalFailure(failure, best_mx_transport=options.best_mx_transport)
    return FinalFailure(failure)


def plan_site(
    destination: Nexthop,
    options: PlanOptions,
    rng: random.Random,
    *,
    last: bool = True,
) -> Steps[Site]:
    """Plan one destination; yields one :class:`Query` at a time."""
    return _one_by_one(plan_site_batched(destination, options, rng, last=last))


def plan(
    destinations: Sequence[Nexthop],
    options: PlanOptions,
    rng: random.Random,
) -> Steps[Plan]:
    """Plan every destination; yields one :class:`Query` at a time.

    Send each query's :class:`Answer`; the generator returns the
    :class:`Plan`. Use ``yield from`` inside another sans-IO generator.
    """
    return _one_by_one(plan_batched(destinations, options, rng))


def _one_by_one(gen: BatchSteps[T]) -> Steps[T]:
    try:
        batch = next(gen)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    while True:
        answers = []
        for query in batch:
            answer = yield query
            answers.append(answer)
        try:
            batch = gen.send(tuple(answers))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def _check_answers(queries: Batch, answers: object) -> None:
    if not isinstance(answers, tuple) or len(answers) != len(queries):
        raise DnsError(
            queries[0].name,
            queries[0].rdtype,
            "4.3.0",
            f"resolver driver sent {answers!r} for {len(queries)} queries",
        )
    for query, answer in zip(queries, answers, strict=True):
        if not isinstance(answer, Answer):
            raise DnsError(query.name, query.rdtype, "4.3.0", f"not an Answer: {answer!r}")
        asked = answer.query
        if asked.rdtype != query.rdtype or asked.name.lower() != query.name.lower():
            raise DnsError(
                query.name,
                query.rdtype,
                "4.3.0",
                f"answer for {asked.name}/{asked.rdtype} sent for a different query",
            )
