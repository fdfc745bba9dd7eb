"""Resolver adapters: dnspython (sync and asyncio) and the system resolver.

Each adapter answers a :class:`~pyfix_smtp.dns.records.Query` with an
:class:`~pyfix_smtp.dns.records.Answer` and never raises for DNS trouble:
NXDOMAIN, NODATA, SERVFAIL, timeouts, REFUSED ... become an
:class:`~pyfix_smtp.dns.records.Rcode`. They satisfy the planner's
:class:`~pyfix_smtp.dns.plan.Resolver` / ``AsyncResolver`` protocols.

* :class:`DnsResolver` / :class:`AsyncDnsResolver` wrap
  ``dns.resolver.Resolver`` / ``dns.asyncresolver.Resolver``. A query with
  ``dnssec=True`` is sent with the AD bit and EDNS0 DO (Postfix
  ``RES_USE_DNSSEC``, ``RES_TRUSTAD``) so a validating resolver reports
  authenticity; CNAME chains are followed (at most 10 queries, as Postfix
  ``dns_lookup_x()``) and authenticity is the AND over every response.
  ``"ADDRINFO"`` queries go to the system resolver.
* :class:`NativeResolver` / :class:`AsyncNativeResolver` use
  ``getaddrinfo`` only (``smtp_host_lookup = native``): A, AAAA and
  ADDRINFO, never authentic.

:func:`plan_options`, :func:`interface_addresses` and :func:`local_addresses`
live in :mod:`pyfix_smtp.dns.interfaces` (standard library only, so a
delivery that needs no DNS does not import dnspython) and are re-exported
here.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import socket
from collections.abc import Iterable, Sequence

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.resolver
import dns.rrset
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.TLSA import TLSA
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.IN.SRV import SRV

from pyfix_smtp.dns.interfaces import interface_addresses, local_addresses, plan_options
from pyfix_smtp.dns.records import (
    AddressRecord,
    Answer,
    CnameRecord,
    MxRecord,
    Query,
    Rcode,
    Record,
    SrvRecord,
    TlsaRecord,
    TxtRecord,
)

__all__ = [
    "MAX_CNAME_QUERIES",
    "AsyncDnsResolver",
    "AsyncNativeResolver",
    "DnsResolver",
    "NativeResolver",
    "interface_addresses",
    "local_addresses",
    "plan_options",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_CNAME_QUERIES = 10  # Postfix dns_lookup_x(): "for (count = 0; count < 10; count++)"

# NS, SOA and PTR only for dnssec_probe: their records are not kept (the rcode
# and the AD bit are what the probe needs).
_DNS_TYPES = frozenset({"A", "AAAA", "MX", "SRV", "TLSA", "TXT", "CNAME", "NS", "SOA", "PTR"})
_ANSWERED = frozenset({Rcode.NOERROR, Rcode.NODATA, Rcode.NXDOMAIN})


# --------------------------------------------------------------------------
# dnspython -> Answer


def _name_text(name: dns.name.Name) -> str:
    if name == dns.name.root:
        return ""
    return name.to_text(omit_final_dot=True)


def _record(rdata: dns.rdata.Rdata) -> Record | None:
    if isinstance(rdata, MX):
        return MxRecord(rdata.preference, _name_text(rdata.exchange))
    if isinstance(rdata, SRV):
        return SrvRecord(rdata.priority, rdata.weight, rdata.port, _name_text(rdata.target))
    if isinstance(rdata, A | AAAA):
        return AddressRecord(str(rdata.address))
    if isinstance(rdata, TLSA):
        return TlsaRecord(rdata.usage, rdata.selector, rdata.mtype, bytes(rdata.cert))
    if isinstance(rdata, TXT):
        return TxtRecord(tuple(bytes(s) for s in rdata.strings))
    if isinstance(rdata, CNAME):
        return CnameRecord(_name_text(rdata.target))
    return None


class _Chase:
    """State of one lookup across CNAME re-queries (Postfix DNS_RECURSE)."""

    def __init__(self, query: Query) -> None:
        self.query = query
        self.name = query.name
        self.authentic = query.dnssec
        self.chain: list[str] = []
        self.ttl: int | None = None
        self.count = 0

    def _ttl(self, ttl: int) -> None:
        self.ttl = ttl if self.ttl is None else min(self.ttl, ttl)

    def answer(self, rcode: Rcode, records: Sequence[Record] = (), detail: str = "") -> Answer:
        return Answer(
            query=self.query,
            rcode=rcode,
            records=tuple(records),
            # AD on a negative answer is authenticated denial (RFC 4035 §3.2.3)
            authentic=self.authentic and rcode in _ANSWERED,
            canonical_name=self.name,
            cname_chain=tuple(self.chain),
            ttl=self.ttl or 0,
            detail=detail,
        )

    def response(self, response: dns.message.Message | None) -> None:
        if response is None or not response.flags & dns.flags.AD:
            self.authentic = False

    def result(self, result: dns.resolver.Answer) -> Answer | None:
        """An answer, or None to re-query the CNAME target."""
        self.response(result.response)
        chaining = result.chaining_result
        for crrset in chaining.cnames:
            for rd in crrset:
                self.chain.append(_name_text(rd.target))
                break
        self._ttl(int(chaining.minimum_ttl))
        self.name = _name_text(chaining.canonical_name)
        if result.rrset is not None:
            records = [r for r in (_record(rd) for rd in result.rrset) if r is not None]
            return self.answer(Rcode.NOERROR, records)
        if not chaining.cnames:
            return self.answer(Rcode.NODATA, detail="no records of this type")
        # The reply ended at a CNAME without data: ask for the target.
        self.count += 1
        if self.count >= MAX_CNAME_QUERIES:
            return self.answer(Rcode.LOOP, detail=f"Name server loop for {self.name}")
        return None

    def error(self, exc: Exception) -> Answer:
        """Map a dnspython exception onto an rcode."""
        if isinstance(exc, dns.resolver.NXDOMAIN):
            responses = exc.kwargs.get("responses") or {}
            for response in responses.values():
                self.response(response)
            with contextlib.suppress(Exception):
                self.name = _name_text(exc.canonical_name)
            return self.answer(Rcode.NXDOMAIN, detail="NXDOMAIN")
        if isinstance(exc, dns.resolver.NoNameservers):
            return self.answer(_no_nameservers(exc), detail=str(exc))
        if isinstance(exc, dns.exception.Timeout):
            return self.answer(Rcode.TIMEOUT, detail=str(exc))
        if isinstance(exc, dns.resolver.YXDOMAIN):
            return self.answer(Rcode.REFUSED, detail="YXDOMAIN")
        if isinstance(exc, dns.resolver.NoResolverConfiguration):
            return self.answer(Rcode.SYSERROR, detail=str(exc))
        if isinstance(exc, dns.message.ChainTooLong):
            return self.answer(Rcode.LOOP, detail=f"Name server loop for {self.name}")
        if isinstance(exc, dns.name.NameTooLong | dns.name.LabelTooLong | dns.name.EmptyLabel):
            return self.answer(Rcode.BADNAME, detail=str(exc))
        if isinstance(exc, UnicodeError | dns.exception.SyntaxError):
            return self.answer(Rcode.BADNAME, detail=str(exc))
        if isinstance(exc, OSError):
            return self.answer(Rcode.TIMEOUT, detail=str(exc))  # glibc: TRY_AGAIN
        return self.answer(Rcode.SERVFAIL, detail=f"{type(exc).__name__}: {exc}")


def _no_nameservers(exc: dns.resolver.NoNameservers) -> Rcode:
    # glibc res_query(): SERVFAIL and unreachable servers are "try again";
    # REFUSED, FORMERR, NOTIMP are "no recovery". A soft error dominates.
    rcodes: list[Rcode] = []
    for error in exc.kwargs.get("errors") or ():
        response = error[4] if len(error) > 4 else None
        if isinstance(response, dns.message.Message):
            code = response.rcode()
            if code == dns.rcode.SERVFAIL:
                rcodes.append(Rcode.SERVFAIL)
            elif code == dns.rcode.REFUSED:
                rcodes.append(Rcode.REFUSED)
            elif code == dns.rcode.FORMERR:
                rcodes.append(Rcode.FORMERR)
            elif code == dns.rcode.NOTIMP:
                rcodes.append(Rcode.NOTIMP)
            else:
                rcodes.append(Rcode.REFUSED)
        elif isinstance(error[3], dns.message.ChainTooLong):
            rcodes.append(Rcode.LOOP)
        else:
            rcodes.append(Rcode.TIMEOUT)
    for soft in (Rcode.SERVFAIL, Rcode.TIMEOUT, Rcode.LOOP):
        if soft in rcodes:
            return soft
    return rcodes[-1] if rcodes else Rcode.SERVFAIL


def _configure(
    resolver: dns.resolver.BaseResolver,
    nameservers: Sequence[str] | None,
    port: int | None,
    timeout: float | None,
    lifetime: float | None,
) -> None:
    if nameservers is not None:
        resolver.nameservers = list(nameservers)
    if port is not None:
        resolver.port = port
    if timeout is not None:
        resolver.timeout = timeout
    if lifetime is not None:
        resolver.lifetime = lifetime


def _pair(resolver: dns.resolver.BaseResolver) -> tuple[dns.resolver.BaseResolver, ...]:
    """(plain, dnssec) copies: DNSSEC queries carry AD and EDNS0 DO."""
    plain = copy.copy(resolver)
    secure = copy.copy(resolver)
    # Postfix dns_query(): RES_USE_DNSSEC adds RES_USE_EDNS0 and RES_TRUSTAD.
    secure.use_edns(0, dns.flags.DO, 1232)
    secure.flags = dns.flags.RD | dns.flags.AD
    return plain, secure


class DnsResolver:
    """Blocking resolver over ``dns.resolver.Resolver``.

    Args:
        resolver: a configured dnspython resolver to copy settings from
            (nameservers, cache, search list). Default: the system
            configuration (``/etc/resolv.conf``), or none when
            *nameservers* is given.
        nameservers: resolver addresses, e.g. ``["127.0.0.1"]``.
        port: the resolvers' port (tests use a private one).
        timeout: seconds to wait for one server.
        lifetime: seconds for the whole lookup of one name.
    """

    def __init__(
        self,
        resolver: dns.resolver.Resolver | None = None,
        *,
        nameservers: Sequence[str] | None = None,
        port: int | None = None,
        timeout: float | None = None,
        lifetime: float | None = None,
    ) -> None:
        self._init_error: str | None = None
        if resolver is None:
            try:
                resolver = dns.resolver.Resolver(configure=nameservers is None)
            except dns.exception.DNSException as exc:  # no /etc/resolv.conf
                resolver = dns.resolver.Resolver(configure=False)
                self._init_error = str(exc)
        _configure(resolver, nameservers, port, timeout, lifetime)
        self.resolver = resolver
        self._plain, self._secure = _pair(resolver)
        self._native = NativeResolver()

    def lookup(self, query: Query) -> Answer:
        """Answer *query* (never raises for DNS trouble)."""
        if query.rdtype == "ADDRINFO":
            return self._native.lookup(query)
        chase = _Chase(query)
        if query.rdtype not in _DNS_TYPES:
            return chase.answer(Rcode.NOTIMP, detail=f"unsupported type {query.rdtype}")
        if self._init_error is not None:
            return chase.answer(Rcode.SYSERROR, detail=self._init_error)
        resolver = self._secure if query.dnssec else self._plain
        assert isinstance(resolver, dns.resolver.Resolver)
        search: bool | None = query.search
        while True:
            try:
                result = resolver.resolve(
                    chase.name, query.rdtype, raise_on_no_answer=False, search=search
                )
            except Exception as exc:  # mapped onto an rcode, never raised
                return chase.error(exc)
            answer = chase.result(result)
            if answer is not None:
                return answer
            search = False  # a CNAME target is absolute


class AsyncDnsResolver:
    """Asyncio resolver over ``dns.asyncresolver.Resolver``; see :class:`DnsResolver`."""

    def __init__(
        self,
        resolver: dns.asyncresolver.Resolver | None = None,
        *,
        nameservers: Sequence[str] | None = None,
        port: int | None = None,
        timeout: float | None = None,
        lifetime: float | None = None,
    ) -> None:
        self._init_error: str | None = None
        if resolver is None:
            try:
                resolver = dns.asyncresolver.Resolver(configure=nameservers is None)
            except dns.exception.DNSException as exc:
                resolver = dns.asyncresolver.Resolver(configure=False)
                self._init_error = str(exc)
        _configure(resolver, nameservers, port, timeout, lifetime)
        self.resolver = resolver
        self._plain, self._secure = _pair(resolver)
        self._native = AsyncNativeResolver()

    async def lookup(self, query: Query) -> Answer:
        """Answer *query* (never raises for DNS trouble)."""
        if query.rdtype == "ADDRINFO":
            return await self._native.lookup(query)
        chase = _Chase(query)
        if query.rdtype not in _DNS_TYPES:
            return chase.answer(Rcode.NOTIMP, detail=f"unsupported type {query.rdtype}")
        if self._init_error is not None:
            return chase.answer(Rcode.SYSERROR, detail=self._init_error)
        resolver = self._secure if query.dnssec else self._plain
        assert isinstance(resolver, dns.asyncresolver.Resolver)
        search: bool | None = query.search
        while True:
            try:
                result = await resolver.resolve(
                    chase.name, query.rdtype, raise_on_no_answer=False, search=search
                )
            except Exception as exc:  # mapped onto an rcode, never raised
                return chase.error(exc)
            answer = chase.result(result)
            if answer is not None:
                return answer
            search = False


# --------------------------------------------------------------------------
# getaddrinfo


_FAMILIES = {"ADDRINFO": socket.AF_UNSPEC, "A": socket.AF_INET, "AAAA": socket.AF_INET6}


def _gai_rcode(exc: socket.gaierror) -> Rcode:
    # Postfix smtp_addr_one(): EAI_AGAIN/EAI_NONAME/EAI_NODATA are "host not
    # found"; EAI_AGAIN, EAI_MEMORY, EAI_SYSTEM are worth a retry.
    code = exc.errno
    if code == socket.EAI_NONAME:
        return Rcode.NXDOMAIN
    if code == getattr(socket, "EAI_NODATA", None) or code == getattr(
        socket, "EAI_ADDRFAMILY", None
    ):
        return Rcode.NODATA
    if code == socket.EAI_AGAIN:
        return Rcode.SERVFAIL
    if code in (socket.EAI_MEMORY, getattr(socket, "EAI_SYSTEM", None)):
        return Rcode.SYSERROR
    return Rcode.REFUSED  # EAI_FAIL and the rest: no recovery


def _addrinfo_answer(
    query: Query,
    infos: Iterable[tuple[object, ...]] | None,
    exc: Exception | None,
) -> Answer:
    if exc is not None:
        if isinstance(exc, socket.gaierror):
            return Answer(
                query, _gai_rcode(exc), canonical_name=query.name, detail=exc.strerror or ""
            )
        if isinstance(exc, UnicodeError):
            return Answer(query, Rcode.BADNAME, canonical_name=query.name, detail=str(exc))
        return Answer(query, Rcode.SYSERROR, canonical_name=query.name, detail=str(exc))
    seen: dict[str, None] = {}
    for info in infos or ():
        sockaddr = info[4]
        assert isinstance(sockaddr, tuple)
        text = str(sockaddr[0])
        seen.setdefault(text, None)
    records = tuple(AddressRecord(a) for a in seen)
    if not records:
        return Answer(query, Rcode.NODATA, canonical_name=query.name)
    return Answer(query, Rcode.NOERROR, records, canonical_name=query.name)


class NativeResolver:
    """The system resolver (``getaddrinfo``): /etc/hosts, nsswitch, search list.

    Answers A, AAAA and ADDRINFO (both families) queries; other types get
    NOTIMP. Never authentic.
    """

    def lookup(self, query: Query) -> Answer:
        """Answer *query* with getaddrinfo."""
        family = _FAMILIES.get(query.rdtype)
        if family is None:
            return Answer(query, Rcode.NOTIMP, detail=f"unsupported type {query.rdtype}")
        try:
            infos = socket.getaddrinfo(query.name, None, family, socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            return _addrinfo_answer(query, None, exc)
        return _addrinfo_answer(query, infos, None)


class AsyncNativeResolver:
    """:class:`NativeResolver` for asyncio (``loop.getaddrinfo``)."""

    async def lookup(self, query: Query) -> Answer:
        """Answer *query* with the event loop's getaddrinfo."""
        family = _FAMILIES.get(query.rdtype)
        if family is None:
            return Answer(query, Rcode.NOTIMP, detail=f"unsupported type {query.rdtype}")
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(query.name, None, family=family, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            return _addrinfo_answer(query, None, exc)
        return _addrinfo_answer(query, infos, None)
