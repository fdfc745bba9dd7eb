"""Resolver adapters without a DNS server: error mapping, getaddrinfo, interfaces.

The adapters against a real validating resolver are in
tests/integration/test_dns_real.py.
"""

from __future__ import annotations

import ipaddress
import socket

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.resolver
import pytest

from pyfix_smtp.config import Config
from pyfix_smtp.dns.options import DnsSupport, Family
from pyfix_smtp.dns.records import AddressRecord, Query, Rcode
from pyfix_smtp.dns.resolve import (
    AsyncDnsResolver,
    AsyncNativeResolver,
    DnsResolver,
    NativeResolver,
    _Chase,
    _gai_rcode,
    _no_nameservers,
    interface_addresses,
    local_addresses,
    plan_options,
)
from pyfix_smtp.errors import ConfigError


def _response(rcode: int, *, ad: bool = False) -> dns.message.Message:
    query = dns.message.make_query("example.com", "MX")
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if ad:
        response.flags |= dns.flags.AD
    return response


def _no_servers(*entries: object) -> dns.resolver.NoNameservers:
    request = dns.message.make_query("example.com", "MX")
    errors = [
        ("127.0.0.1", False, 53, entry, entry if isinstance(entry, dns.message.Message) else None)
        for entry in entries
    ]
    return dns.resolver.NoNameservers(request=request, errors=errors)


@pytest.mark.parametrize(
    ("entries", "rcode"),
    [
        ((_response(dns.rcode.SERVFAIL),), Rcode.SERVFAIL),
        ((_response(dns.rcode.REFUSED),), Rcode.REFUSED),
        ((_response(dns.rcode.FORMERR),), Rcode.FORMERR),
        ((_response(dns.rcode.NOTIMP),), Rcode.NOTIMP),
        ((ConnectionRefusedError("refused"),), Rcode.TIMEOUT),
        # a soft error from one server dominates a hard one from another
        ((_response(dns.rcode.REFUSED), _response(dns.rcode.SERVFAIL)), Rcode.SERVFAIL),
        ((_response(dns.rcode.REFUSED), OSError("unreachable")), Rcode.TIMEOUT),
        ((), Rcode.SERVFAIL),
    ],
)
def test_all_servers_failed(entries: tuple[object, ...], rcode: Rcode) -> None:
    assert _no_nameservers(_no_servers(*entries)) is rcode


@pytest.mark.parametrize(
    ("exc", "rcode"),
    [
        (dns.resolver.LifetimeTimeout(timeout=1.0, errors=[]), Rcode.TIMEOUT),
        (dns.resolver.NoResolverConfiguration("no nameservers"), Rcode.SYSERROR),
        (dns.resolver.YXDOMAIN(), Rcode.REFUSED),
        (dns.name.LabelTooLong(), Rcode.BADNAME),
        (dns.name.EmptyLabel(), Rcode.BADNAME),
        (UnicodeError("bad label"), Rcode.BADNAME),
        (OSError("network unreachable"), Rcode.TIMEOUT),
        (dns.exception.FormError("garbage"), Rcode.SERVFAIL),
    ],
)
def test_exception_mapping(exc: Exception, rcode: Rcode) -> None:
    answer = _Chase(Query("example.com", "MX")).error(exc)
    assert answer.rcode is rcode
    assert not answer.authentic
    assert answer.records == ()


def test_nxdomain_keeps_the_ad_bit() -> None:
    qname = dns.name.from_text("gone.example.com")
    secure = dns.resolver.NXDOMAIN(qnames=[qname], responses={qname: _response(3, ad=True)})
    answer = _Chase(Query("gone.example.com", "A")).error(secure)
    assert (answer.rcode, answer.authentic) == (Rcode.NXDOMAIN, True)
    insecure = dns.resolver.NXDOMAIN(qnames=[qname], responses={qname: _response(3)})
    assert not _Chase(Query("gone.example.com", "A")).error(insecure).authentic
    # without DNSSEC asked, never authentic
    plain = _Chase(Query("gone.example.com", "A", dnssec=False)).error(secure)
    assert not plain.authentic


@pytest.mark.parametrize(
    ("code", "rcode"),
    [
        (socket.EAI_NONAME, Rcode.NXDOMAIN),
        (socket.EAI_AGAIN, Rcode.SERVFAIL),
        (socket.EAI_FAIL, Rcode.REFUSED),
        (socket.EAI_MEMORY, Rcode.SYSERROR),
        (getattr(socket, "EAI_SYSTEM", socket.EAI_MEMORY), Rcode.SYSERROR),
        (
            getattr(socket, "EAI_NODATA", socket.EAI_NONAME),
            Rcode.NODATA if hasattr(socket, "EAI_NODATA") else Rcode.NXDOMAIN,
        ),
    ],
)
def test_getaddrinfo_error_mapping(code: int, rcode: Rcode) -> None:
    assert _gai_rcode(socket.gaierror(code, "text")) is rcode


def test_native_resolver_reads_the_hosts_file() -> None:
    answer = NativeResolver().lookup(Query("localhost", "ADDRINFO"))
    assert answer.rcode is Rcode.NOERROR
    assert AddressRecord("127.0.0.1") in answer.records
    assert not answer.authentic
    v4 = NativeResolver().lookup(Query("localhost", "A"))
    assert all(":" not in r.address for r in v4.records)  # type: ignore[union-attr]
    assert NativeResolver().lookup(Query("localhost", "MX")).rcode is Rcode.NOTIMP


def test_native_resolver_bad_name() -> None:
    answer = NativeResolver().lookup(Query("a" * 300, "ADDRINFO"))
    assert answer.rcode in (Rcode.BADNAME, Rcode.NXDOMAIN, Rcode.REFUSED)
    assert answer.records == ()


async def test_async_native_resolver() -> None:
    answer = await AsyncNativeResolver().lookup(Query("localhost", "ADDRINFO"))
    assert AddressRecord("127.0.0.1") in answer.records
    assert (await AsyncNativeResolver().lookup(Query("x", "TXT"))).rcode is Rcode.NOTIMP


def test_dns_resolver_sends_addrinfo_to_the_system() -> None:
    resolver = DnsResolver(nameservers=["127.0.0.1"], port=9, lifetime=0.2)
    answer = resolver.lookup(Query("localhost", "ADDRINFO"))
    assert AddressRecord("127.0.0.1") in answer.records


def test_dns_resolver_flags() -> None:
    resolver = DnsResolver(nameservers=["127.0.0.1"], port=5300, timeout=0.5, lifetime=1.5)
    assert resolver.resolver.nameservers == ["127.0.0.1"]
    assert resolver.resolver.port == 5300
    # DNSSEC queries: AD bit and EDNS0 with DO (Postfix RES_USE_DNSSEC + RES_TRUSTAD)
    secure = resolver._secure
    assert secure.flags is not None
    assert secure.flags & dns.flags.AD
    assert secure.edns == 0
    assert secure.ednsflags & dns.flags.DO
    assert not (resolver._plain.ednsflags & dns.flags.DO)


async def test_bad_names_and_types_are_answered_not_raised() -> None:
    resolver = DnsResolver(nameservers=["127.0.0.1"], port=9, lifetime=0.2)
    long_label = "a" * 70 + ".example"
    assert resolver.lookup(Query(long_label, "A")).rcode is Rcode.BADNAME
    assert resolver.lookup(Query("example.com", "NAPTR")).rcode is Rcode.NOTIMP
    aio = AsyncDnsResolver(nameservers=["127.0.0.1"], port=9, lifetime=0.2)
    assert (await aio.lookup(Query(long_label, "A"))).rcode is Rcode.BADNAME


def test_local_addresses_include_loopback() -> None:
    found = local_addresses()
    assert ipaddress.ip_address("127.0.0.1") in found
    assert all(a.version == 4 for a in local_addresses(["ipv4"]))


def test_interface_addresses() -> None:
    got = interface_addresses("inet_interfaces", ["192.0.2.1", "[::1]", "localhost"])
    assert ipaddress.ip_address("192.0.2.1") in got
    assert ipaddress.ip_address("::1") in got
    assert ipaddress.ip_address("127.0.0.1") in got
    loop = interface_addresses("inet_interfaces", ["loopback-only"], ["ipv4"])
    assert loop == frozenset({ipaddress.ip_address("127.0.0.1")})
    with pytest.raises(ConfigError) as err:
        interface_addresses("proxy_interfaces", ["x" * 64 + ".invalid"])  # refused locally
    assert err.value.parameter == "proxy_interfaces"


def test_plan_options_from_a_real_config() -> None:
    cfg = Config.from_postconf(
        "smtp_dns_support_level = dnssec\n"
        "inet_protocols = ipv4\n"
        "inet_interfaces = loopback-only\n"
        "proxy_interfaces = 192.0.2.77\n"
        "smtp_address_preference = ipv4\n"
    )
    opts = plan_options(cfg)
    assert opts.smtp_dns_support_level is DnsSupport.DNSSEC
    assert opts.inet_protocols == frozenset({Family.IPV4})
    assert opts.own_addresses == frozenset({ipaddress.ip_address("127.0.0.1")})
    assert opts.proxy_addresses == frozenset({ipaddress.ip_address("192.0.2.77")})
    assert opts.smtp_dns_reply_filter is None  # an empty table list is no filter
