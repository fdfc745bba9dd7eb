"""Real DNS: NSD serves signed/unsigned/bogus zones, unbound validates (PEERS.md §3).

Every check runs through both adapters (dns.resolver and dns.asyncresolver).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Awaitable, Callable

import pytest

from pyfix_smtp import destination
from pyfix_smtp.dns.options import DnsSupport, Family, PlanOptions
from pyfix_smtp.dns.records import (
    AddressRecord,
    Answer,
    CnameRecord,
    MxRecord,
    Query,
    Rcode,
    TlsaRecord,
)
from pyfix_smtp.dns.results import Origin, Plan, Source
from pyfix_smtp.dns.runner import plan_async, plan_sync
from tests.peers.certs import LabCerts
from tests.peers.dns import DnsLab

pytestmark = pytest.mark.peers

SECURE = PlanOptions(smtp_dns_support_level=DnsSupport.DNSSEC, smtp_randomize_addresses=False)

Lookup = Callable[[Query], Awaitable[Answer]]
Planner = Callable[..., Awaitable[Plan]]


@pytest.fixture(params=["sync", "async"])
def lookup(request: pytest.FixtureRequest, dns_lab: DnsLab) -> Lookup:
    """One lookup function per adapter, both awaitable."""
    if request.param == "sync":
        resolver = dns_lab.resolver()

        async def sync_lookup(query: Query) -> Answer:
            return resolver.lookup(query)

        return sync_lookup
    return dns_lab.async_resolver().lookup


@pytest.fixture(params=["sync", "async"])
def make_plan(request: pytest.FixtureRequest, dns_lab: DnsLab) -> Planner:
    """plan_sync or plan_async against the lab, same signature."""

    async def run(nexthop: str, options: PlanOptions = SECURE, **parse: object) -> Plan:
        dests = destination.sites(nexthop, **parse)  # type: ignore[arg-type]
        if request.param == "sync":
            return plan_sync(dests, dns_lab.resolver(), options, random.Random(0))
        return await plan_async(dests, dns_lab.async_resolver(), options, random.Random(0))

    return run


# --------------------------------------------------------------------------
# Adapters: rcodes, records, authenticity


async def test_signed_zone_is_authentic(lookup: Lookup) -> None:
    answer = await lookup(Query("example.test", "MX"))
    assert answer.rcode is Rcode.NOERROR
    assert answer.authentic
    assert sorted(answer.records, key=str) == [
        MxRecord(10, "mx.example.test"),
        MxRecord(20, "mx2.example.test"),
    ]
    aaaa = await lookup(Query("mx.example.test", "AAAA"))
    assert aaaa.records == (AddressRecord("::1"),)
    assert aaaa.authentic


async def test_unsigned_zone_is_not_authentic(lookup: Lookup) -> None:
    answer = await lookup(Query("mx.unsigned.test", "A"))
    assert answer.rcode is Rcode.NOERROR
    assert answer.records == (AddressRecord("127.0.0.1"),)
    assert not answer.authentic


async def test_without_dnssec_nothing_is_authentic(lookup: Lookup) -> None:
    answer = await lookup(Query("example.test", "MX", dnssec=False))
    assert answer.rcode is Rcode.NOERROR
    assert not answer.authentic


async def test_bogus_zone_is_servfail(lookup: Lookup) -> None:
    answer = await lookup(Query("mx.bogus.test", "A"))
    assert answer.rcode is Rcode.SERVFAIL
    assert not answer.authentic


async def test_broken_delegation_is_servfail(lookup: Lookup) -> None:
    answer = await lookup(Query("mx.broken.test", "A"))
    assert answer.rcode is Rcode.SERVFAIL


async def test_nxdomain_and_nodata_are_authenticated_denials(lookup: Lookup) -> None:
    nx = await lookup(Query("nothere.example.test", "A"))
    assert nx.rcode is Rcode.NXDOMAIN
    assert nx.authentic
    nodata = await lookup(Query("nomx.example.test", "MX"))
    assert nodata.rcode is Rcode.NODATA
    assert nodata.authentic
    insecure = await lookup(Query("nothere.unsigned.test", "A"))
    assert insecure.rcode is Rcode.NXDOMAIN
    assert not insecure.authentic


async def test_cname_chain_is_followed(lookup: Lookup) -> None:
    answer = await lookup(Query("cname.example.test", "A"))
    assert answer.records == (AddressRecord("127.0.0.1"),)
    assert answer.canonical_name == "mx.example.test"
    assert answer.cname_chain == ("mx.example.test",)
    assert answer.authentic


async def test_cname_into_unsigned_zone_taints(lookup: Lookup) -> None:
    answer = await lookup(Query("toinsecure.example.test", "A"))
    assert answer.records == (AddressRecord("127.0.0.1"),)
    assert answer.canonical_name == "mx.unsigned.test"
    assert not answer.authentic


async def test_cname_itself_can_be_asked_for(lookup: Lookup) -> None:
    # Postfix tls_dane.c qname_secure(): is the CNAME record itself signed?
    signed = await lookup(Query("toinsecure.example.test", "CNAME"))
    assert signed.rcode is Rcode.NOERROR
    assert signed.records == (CnameRecord("mx.unsigned.test"),)
    assert signed.authentic
    unsigned = await lookup(Query("mx.unsigned.test", "CNAME"))
    assert unsigned.rcode is Rcode.NODATA
    assert not unsigned.authentic


async def test_cname_loop_fails(lookup: Lookup) -> None:
    answer = await lookup(Query("loop1.example.test", "A"))
    assert answer.rcode in (Rcode.SERVFAIL, Rcode.LOOP)


async def test_tlsa_records_match_the_lab_certificate(lookup: Lookup, lab_certs: LabCerts) -> None:
    for port in (25, 10025):
        answer = await lookup(Query(f"_{port}._tcp.mx.example.test", "TLSA"))
        assert answer.authentic
        assert set(answer.records) == {
            TlsaRecord(3, 1, 1, lab_certs.leaf_spki_sha256),
            TlsaRecord(2, 0, 1, lab_certs.ca_sha256),
        }


async def test_mta_sts_txt(lookup: Lookup) -> None:
    answer = await lookup(Query("_mta-sts.example.test", "TXT"))
    assert [r.text for r in answer.records] == [b"v=STSv1; id=20240101T000000;"]  # type: ignore[union-attr]


def test_refused_from_an_authoritative_server(dns_lab: DnsLab) -> None:
    answer = dns_lab.authority_resolver().lookup(Query("nowhere.invalid", "A"))
    assert answer.rcode is Rcode.REFUSED


async def test_no_server_is_a_timeout(dns_lab: DnsLab) -> None:
    from pyfix_smtp.dns.resolve import AsyncDnsResolver, DnsResolver
    from tests.peers import free_port

    port = free_port()  # nothing listens (UDP queries go unanswered)
    sync = DnsResolver(nameservers=["127.0.0.1"], port=port, timeout=0.2, lifetime=0.4)
    assert sync.lookup(Query("example.test", "MX")).rcode in (Rcode.TIMEOUT, Rcode.SERVFAIL)
    aio = AsyncDnsResolver(nameservers=["127.0.0.1"], port=port, timeout=0.2, lifetime=0.4)
    answer = await aio.lookup(Query("example.test", "MX"))
    assert answer.rcode in (Rcode.TIMEOUT, Rcode.SERVFAIL)


# --------------------------------------------------------------------------
# The planner over real DNS


async def test_plan_mx_ordering_and_authenticity(make_plan: Planner) -> None:
    plan = await make_plan("example.test")
    (site,) = plan.sites
    assert site.source is Source.MX
    assert site.mx_authentic is True
    assert [(c.hostname, c.address, c.preference) for c in site.candidates] == [
        ("mx.example.test", "127.0.0.1", 10),
        ("mx.example.test", "::1", 10),
        ("mx2.example.test", "127.0.0.2", 20),
    ]
    assert all(c.authentic for c in site.candidates)


async def test_plan_unsigned_zone_same_order_not_authentic(make_plan: Planner) -> None:
    plan = await make_plan("unsigned.test")
    (site,) = plan.sites
    assert [c.address for c in site.candidates] == ["127.0.0.1", "::1", "127.0.0.2"]
    assert site.mx_authentic is False
    assert not any(c.address_authentic for c in site.candidates)


async def test_plan_bogus_zone_defers_443(make_plan: Planner) -> None:
    plan = await make_plan("bogus.test")
    assert plan.failure is not None
    assert plan.failure.status == "4.4.3"
    assert plan.failure.reason == (
        "Host or domain name not found. Name service error for name=bogus.test type=MX: "
        "Host not found, try again"
    )


async def test_plan_nxdomain_bounces_544(make_plan: Planner) -> None:
    plan = await make_plan("nothere.example.test")
    assert plan.failure is not None
    assert plan.failure.status == "5.4.4"
    assert plan.failure.reason == (
        "Host or domain name not found. Name service error for "
        "name=nothere.example.test type=AAAA: Host not found"
    )


async def test_plan_null_mx(make_plan: Planner) -> None:
    plan = await make_plan("nullmx.example.test")
    assert plan.failure is not None
    assert plan.failure.status == "5.1.0"


async def test_plan_implicit_mx(make_plan: Planner) -> None:
    plan = await make_plan("nomx.example.test")
    (site,) = plan.sites
    assert site.source is Source.IMPLICIT_MX
    assert [c.address for c in site.candidates] == ["127.0.0.1"]
    assert site.candidates[0].authentic


async def test_plan_numeric_mx_and_cname_mx(make_plan: Planner) -> None:
    numeric = (await make_plan("numericmx.example.test")).sites[0]
    assert [(c.address, c.origin) for c in numeric.candidates] == [("127.0.0.3", Origin.NUMERIC)]
    alias = (await make_plan("mxcname.example.test")).sites[0]
    first = alias.candidates[0]
    assert (first.hostname, first.rname, first.address) == (
        "cname.example.test",
        "mx.example.test",
        "127.0.0.1",
    )
    assert first.authentic


async def test_plan_skips_mx_host_with_servfail(make_plan: Planner) -> None:
    plan = await make_plan("brokenmx.example.test")
    (site,) = plan.sites
    assert site.failure is None
    assert {c.hostname for c in site.candidates} == {"mx.example.test"}
    # Postfix smtp_connect_inet(): "best MX" is the best preference that
    # has an address, so the backup counts as best here
    assert all(c.best_mx and c.preference == 20 for c in site.candidates)


async def test_plan_family_preference_and_limit(make_plan: Planner) -> None:
    options = PlanOptions(
        smtp_dns_support_level=DnsSupport.DNSSEC,
        smtp_randomize_addresses=True,
        smtp_mx_address_limit=3,
        inet_protocols=frozenset({Family.IPV4, Family.IPV6}),
    )
    plan = await make_plan("multi.example.test", options)
    (site,) = plan.sites
    assert len(site.candidates) == 3
    assert [c.preference for c in site.candidates] == [10, 10, 10]
    assert {c.address for c in site.candidates} == {"127.0.0.11", "fd00::11", "127.0.0.12"}
    # balancing (1 IPv6 <= 3/2: keep it, 2 IPv4) drops c.multi outright
    assert site.spare == ()


async def test_plan_srv(make_plan: Planner) -> None:
    plan = await make_plan("example.test:submission", use_srv_lookup="submission")
    (site,) = plan.sites
    assert site.source is Source.SRV
    assert site.mx_authentic is True
    assert [(c.hostname, c.port) for c in site.candidates] == [
        ("mx.example.test", 10025),
        ("mx.example.test", 10025),
        ("mx2.example.test", 10025),
    ]


async def test_plan_best_mx_is_myself(make_plan: Planner) -> None:
    options = PlanOptions(
        smtp_dns_support_level=DnsSupport.DNSSEC,
        own_addresses=frozenset({ipaddress.ip_address("127.0.0.2")}),
    )
    plan = await make_plan("example.test", options)
    (site,) = plan.sites
    assert site.i_am_mx
    assert {c.hostname for c in site.candidates} == {"mx.example.test"}
