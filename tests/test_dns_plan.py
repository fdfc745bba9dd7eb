"""The address planner against a scripted resolver: Postfix smtp_addr.c, case by case.

Each zone is a dict ``"name TYPE" -> records | Rcode | Reply``; a name that
is not listed answers NXDOMAIN. Expected orders, codes and texts come from
reading Postfix 3.11 (smtp_addr.c, dns_lookup.c, dns_rr.c, smtp_connect.c).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest

from pyfix_smtp import destination
from pyfix_smtp.dns.lookup import record_text
from pyfix_smtp.dns.options import (
    AddressPreference,
    DnsSupport,
    Family,
    HostLookup,
    PlanOptions,
)
from pyfix_smtp.dns.plan import Steps, final_failure, plan_batched
from pyfix_smtp.dns.plan import plan as plan_steps
from pyfix_smtp.dns.records import (
    AddressRecord,
    Answer,
    MxRecord,
    Query,
    Rcode,
    Record,
    SrvRecord,
)
from pyfix_smtp.dns.results import Origin, Plan, Site, Source
from pyfix_smtp.dns.runner import plan_async, plan_sync, run_async, run_sync
from pyfix_smtp.errors import ConfigError, DnsError
from pyfix_smtp.status import Failure

# --------------------------------------------------------------------------
# A scripted resolver


@dataclass(frozen=True)
class Reply:
    """A scripted answer with extras: CNAME target, authenticity, detail."""

    records: Sequence[str] = ()
    rcode: Rcode = Rcode.NOERROR
    authentic: bool = True
    cname: str | None = None
    detail: str = ""


Spec = Sequence[str] | Rcode | Reply


def _record(rdtype: str, text: str) -> Record:
    if rdtype == "MX":
        pref, host = text.split()
        return MxRecord(int(pref), "" if host == "." else host)
    if rdtype == "SRV":
        prio, weight, port, target = text.split()
        return SrvRecord(int(prio), int(weight), int(port), "" if target == "." else target)
    return AddressRecord(text)


def _key(text: str) -> str:
    name, rdtype = text.split()
    return f"{name.lower()} {rdtype}"


class FakeResolver:
    """Answers from a dict; records every query it was asked."""

    def __init__(self, zone: Mapping[str, Spec]) -> None:
        self.zone = {_key(k): v for k, v in zone.items()}
        self.log: list[Query] = []

    def answer(self, query: Query) -> Answer:
        spec = self.zone.get(_key(f"{query.name} {query.rdtype}"))
        if spec is None:
            return Answer(query, Rcode.NXDOMAIN, canonical_name=query.name)
        if isinstance(spec, Rcode):
            return Answer(query, spec, canonical_name=query.name, detail=f"scripted {spec.value}")
        reply = spec if isinstance(spec, Reply) else Reply(records=spec)
        chain = (reply.cname,) if reply.cname else ()
        records = tuple(_record(query.rdtype, r) for r in reply.records)
        rcode = reply.rcode
        return Answer(
            query,
            rcode,
            records if rcode is Rcode.NOERROR else (),
            # like a validating resolver: AD only when DNSSEC was asked for
            authentic=reply.authentic and query.dnssec and query.rdtype != "ADDRINFO",
            canonical_name=reply.cname or query.name,
            cname_chain=chain,
            ttl=300,
            detail=reply.detail,
        )

    def lookup(self, query: Query) -> Answer:
        self.log.append(query)
        return self.answer(query)

    def asked(self) -> list[str]:
        return [f"{q.name} {q.rdtype}" for q in self.log]


class AsyncFakeResolver(FakeResolver):
    async def lookup(self, query: Query) -> Answer:  # type: ignore[override]
        self.log.append(query)
        await asyncio.sleep(0)
        return self.answer(query)


def run(
    zone: Mapping[str, Spec],
    nexthop: str = "example.com",
    *,
    fallback: Sequence[str] = (),
    protocol: str = "smtp",
    use_srv_lookup: Sequence[str] = (),
    seed: int = 0,
    **options: object,
) -> tuple[Plan, FakeResolver]:
    options.setdefault("smtp_randomize_addresses", False)
    options.setdefault("protocol", protocol)
    opts = PlanOptions(**options)  # type: ignore[arg-type]
    dests = destination.sites(
        nexthop,
        fallback,
        protocol=protocol,
        use_srv_lookup=use_srv_lookup,
        disable_dns_lookups=opts.smtp_dns_support_level is DnsSupport.DISABLED,
    )
    resolver = FakeResolver(zone)
    return plan_sync(dests, resolver, opts, random.Random(seed)), resolver


def addrs(site: Site) -> list[str]:
    return [f"{c.hostname}/{c.address}" for c in site.candidates]


def only(plan: Plan) -> Site:
    assert len(plan.sites) == 1
    return plan.sites[0]


def ips(*text: str) -> frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    return frozenset(ipaddress.ip_address(t) for t in text)


NOT_FOUND = "Host or domain name not found. Name service error for name={} type={}: {}"

BASIC = {
    "example.com MX": ["20 mx2.example.com", "10 mx1.example.com"],
    "mx1.example.com A": ["192.0.2.1"],
    "mx1.example.com AAAA": ["2001:db8::1"],
    "mx2.example.com A": ["192.0.2.2"],
    "mx2.example.com AAAA": Rcode.NODATA,
}

# --------------------------------------------------------------------------
# MX ordering


def test_mx_sorted_by_preference_addresses_in_mx_order() -> None:
    plan, resolver = run(BASIC)
    site = only(plan)
    assert site.source is Source.MX
    assert addrs(site) == [
        "mx1.example.com/192.0.2.1",
        "mx1.example.com/2001:db8::1",
        "mx2.example.com/192.0.2.2",
    ]
    assert [c.preference for c in site.candidates] == [10, 10, 20]
    assert [c.best_mx for c in site.candidates] == [True, True, False]
    assert all(c.port == 25 and c.origin is Origin.DNS for c in site.candidates)
    # Postfix: MX first, then A before AAAA per host, in MX preference order
    assert resolver.asked() == [
        "example.com MX",
        "mx1.example.com A",
        "mx1.example.com AAAA",
        "mx2.example.com A",
        "mx2.example.com AAAA",
    ]
    assert site.failure is None
    assert plan.failure is None
    assert site.final
    assert not site.i_am_mx
    assert site.loop_detection


def test_equal_preference_keeps_dns_order_without_randomization() -> None:
    zone = {
        "example.com MX": ["10 b.example.com", "10 a.example.com", "5 c.example.com"],
        "a.example.com A": ["192.0.2.1"],
        "b.example.com A": ["192.0.2.2"],
        "c.example.com A": ["192.0.2.3"],
    }
    plan, _ = run(zone)
    assert addrs(only(plan)) == [
        "c.example.com/192.0.2.3",
        "b.example.com/192.0.2.2",
        "a.example.com/192.0.2.1",
    ]


def test_randomization_shuffles_only_within_a_preference() -> None:
    zone = {
        "example.com MX": ["10 a.example.com", "10 b.example.com", "20 c.example.com"],
        "a.example.com A": ["192.0.2.1"],
        "b.example.com A": ["192.0.2.2"],
        "c.example.com A": ["192.0.2.3"],
    }
    firsts: Counter[str] = Counter()
    for seed in range(400):
        plan, _ = run(zone, seed=seed, smtp_randomize_addresses=True)
        order = addrs(only(plan))
        assert order[2] == "c.example.com/192.0.2.3"
        firsts[order[0]] += 1
    # a fair coin: 400 draws, 3 sigma is about 30
    assert abs(firsts["a.example.com/192.0.2.1"] - 200) < 40
    assert set(firsts) == {"a.example.com/192.0.2.1", "b.example.com/192.0.2.2"}


def test_same_seed_same_order() -> None:
    zone = {
        "example.com MX": [f"10 h{i}.example.com" for i in range(6)],
        **{f"h{i}.example.com A": [f"192.0.2.{i + 1}"] for i in range(6)},
    }
    one, _ = run(zone, seed=7, smtp_randomize_addresses=True, smtp_mx_address_limit=0)
    two, _ = run(zone, seed=7, smtp_randomize_addresses=True, smtp_mx_address_limit=0)
    other, _ = run(zone, seed=8, smtp_randomize_addresses=True, smtp_mx_address_limit=0)
    assert addrs(only(one)) == addrs(only(two))
    assert sorted(addrs(only(one))) == sorted(addrs(only(other)))


@pytest.mark.parametrize(
    ("preference", "expected"),
    [
        (
            AddressPreference.ANY,
            ["192.0.2.1", "2001:db8::1", "192.0.2.2", "2001:db8::2"],
        ),
        (
            AddressPreference.IPV6,
            ["2001:db8::1", "2001:db8::2", "192.0.2.1", "192.0.2.2"],
        ),
        (
            AddressPreference.IPV4,
            ["192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"],
        ),
    ],
)
def test_address_family_preference_at_equal_mx_preference(
    preference: AddressPreference, expected: list[str]
) -> None:
    zone = {
        "example.com MX": ["10 a.example.com", "10 b.example.com", "20 c.example.com"],
        "a.example.com A": ["192.0.2.1"],
        "a.example.com AAAA": ["2001:db8::1"],
        "b.example.com A": ["192.0.2.2"],
        "b.example.com AAAA": ["2001:db8::2"],
        "c.example.com A": ["192.0.2.3"],
        "c.example.com AAAA": ["2001:db8::3"],
    }
    plan, _ = run(zone, smtp_address_preference=preference, smtp_mx_address_limit=0)
    got = [c.address for c in only(plan).candidates]
    assert got[:4] == expected
    # the family preference never crosses an MX preference
    assert got[4:] == (
        ["2001:db8::3", "192.0.2.3"]
        if preference is AddressPreference.IPV6
        else ["192.0.2.3", "2001:db8::3"]
    )


@pytest.mark.parametrize(
    ("protocols", "types", "expected"),
    [
        ({Family.IPV4}, ["A"], ["192.0.2.1"]),
        ({Family.IPV6}, ["AAAA"], ["2001:db8::1"]),
        ({Family.IPV4, Family.IPV6}, ["A", "AAAA"], ["192.0.2.1", "2001:db8::1"]),
    ],
)
def test_inet_protocols_select_families_and_queries(
    protocols: set[Family], types: list[str], expected: list[str]
) -> None:
    plan, resolver = run(BASIC, inet_protocols=frozenset(protocols))
    site = only(plan)
    assert [c.address for c in site.candidates if c.hostname == "mx1.example.com"] == expected
    asked = [q.rdtype for q in resolver.log if q.name == "mx1.example.com"]
    assert asked == types


def test_all_protocols_disabled() -> None:
    plan, resolver = run(BASIC, inet_protocols=frozenset())
    assert plan.failure is not None
    assert (plan.failure.status, plan.failure.reason) == (
        "4.4.4",
        "all network protocols are disabled",
    )
    assert resolver.log == []


# --------------------------------------------------------------------------
# Limits and balancing (smtp_balance_inet_proto)


def _family_zone(v4: int, v6: int, *, v6_first: bool = False) -> dict[str, Spec]:
    zone: dict[str, Spec] = {"example.com MX": ["10 mx.example.com"]}
    zone["mx.example.com A"] = [f"192.0.2.{i + 1}" for i in range(v4)] or Rcode.NODATA
    zone["mx.example.com AAAA"] = [f"2001:db8::{i + 1}" for i in range(v6)] or Rcode.NODATA
    return zone


@pytest.mark.parametrize(
    ("v4", "v6", "limit", "pref", "want_v4", "want_v6"),
    [
        (8, 2, 5, AddressPreference.ANY, 3, 2),  # R1: v6 <= L/2, keep every v6
        (1, 8, 5, AddressPreference.ANY, 1, 4),  # R3: v4 <= L/2, keep every v4
        (4, 4, 5, AddressPreference.IPV4, 3, 2),  # R2: odd slot to the first family (v4)
        (4, 4, 5, AddressPreference.IPV6, 2, 3),  # R2: odd slot to the first family (v6)
        (4, 4, 4, AddressPreference.ANY, 2, 2),  # R2, even limit
        (2, 2, 5, AddressPreference.ANY, 2, 2),  # fits: nothing removed
        (9, 0, 5, AddressPreference.ANY, 5, 0),  # one family only: plain limit
    ],
)
def test_balance_inet_protocols(
    v4: int, v6: int, limit: int, pref: AddressPreference, want_v4: int, want_v6: int
) -> None:
    plan, _ = run(_family_zone(v4, v6), smtp_mx_address_limit=limit, smtp_address_preference=pref)
    site = only(plan)
    fams = Counter(c.family for c in site.candidates)
    assert (fams[Family.IPV4], fams[Family.IPV6]) == (want_v4, want_v6)
    assert len(site.candidates) <= limit


def test_balance_keeps_relative_order() -> None:
    plan, _ = run(_family_zone(4, 4), smtp_mx_address_limit=5)
    # any preference: A records were collected first; balancing drops the tail
    assert [c.address for c in only(plan).candidates] == [
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.3",
        "2001:db8::1",
        "2001:db8::2",
    ]


def test_without_balancing_the_limit_can_starve_a_family() -> None:
    plan, _ = run(_family_zone(6, 2), smtp_mx_address_limit=5, smtp_balance_inet_protocols=False)
    site = only(plan)
    assert {c.family for c in site.candidates} == {Family.IPV4}
    assert [c.address for c in site.spare] == ["192.0.2.6", "2001:db8::1", "2001:db8::2"]


def test_address_limit_zero_means_no_limit_and_no_balancing() -> None:
    plan, _ = run(_family_zone(30, 2), smtp_mx_address_limit=0)
    site = only(plan)
    assert len(site.candidates) == 32
    assert site.spare == ()


def test_limit_cuts_candidates_and_keeps_spare() -> None:
    zone = {
        "example.com MX": [f"{10 * (i + 1)} h{i}.example.com" for i in range(4)],
        **{f"h{i}.example.com A": [f"192.0.2.{i + 1}", f"198.51.100.{i + 1}"] for i in range(4)},
    }
    plan, _ = run(zone, smtp_mx_address_limit=3)
    site = only(plan)
    assert [c.address for c in site.candidates] == ["192.0.2.1", "198.51.100.1", "192.0.2.2"]
    assert len(site.spare) == 5
    assert site.spare[0].address == "198.51.100.2"


def test_record_list_is_capped_at_100() -> None:
    zone: dict[str, Spec] = {
        "example.com MX": [f"10 h{i}.example.com" for i in range(150)],
    }
    for i in range(150):
        zone[f"h{i}.example.com A"] = [f"10.0.{i // 250}.{i % 250 + 1}"]
    plan, resolver = run(zone, smtp_mx_address_limit=0)
    site = only(plan)
    assert len(site.candidates) == 100
    assert any("DNS record count limit (100) exceeded" in w for w in site.warnings)
    # hosts beyond the first 100 MX records are never looked up
    assert "h99.example.com A" in resolver.asked()
    assert "h100.example.com A" not in resolver.asked()


# --------------------------------------------------------------------------
# Implicit MX, null MX, literals


def test_no_mx_records_means_implicit_mx() -> None:
    zone = {"example.com MX": Rcode.NODATA, "example.com A": ["192.0.2.7"]}
    plan, resolver = run(zone)
    site = only(plan)
    assert site.source is Source.IMPLICIT_MX
    assert addrs(site) == ["example.com/192.0.2.7"]
    assert site.candidates[0].preference == 0
    assert site.mx_authentic is None
    assert site.candidates[0].mx_authentic is None
    assert resolver.asked() == ["example.com MX", "example.com A", "example.com AAAA"]


def test_implicit_mx_after_nxdomain_without_address_is_554() -> None:
    plan, _ = run({})
    site = only(plan)
    assert site.failure is not None
    assert site.failure.status == "5.4.4"
    # Postfix reports the last lookup of dns_lookup_v(): the AAAA one
    assert site.failure.reason == NOT_FOUND.format("example.com", "AAAA", "Host not found")
    assert plan.failure == site.failure


def test_implicit_mx_with_ipv4_only_reports_type_a() -> None:
    plan, _ = run({"example.com MX": Rcode.NODATA}, inet_protocols=frozenset({Family.IPV4}))
    failure = only(plan).failure
    assert failure is not None
    assert failure.reason == NOT_FOUND.format("example.com", "A", "Host not found")


def test_null_mx_is_a_hard_510() -> None:
    plan, resolver = run({"example.com MX": ["0 ."]})
    failure = only(plan).failure
    assert failure is not None
    assert (failure.status, failure.reason) == (
        "5.1.0",
        "Domain example.com does not accept mail (nullMX)",
    )
    assert resolver.asked() == ["example.com MX"]


def test_null_mx_wins_over_other_mx_records() -> None:
    plan, _ = run({"example.com MX": ["10 mx.example.com", "0 ."], "mx.example.com A": ["1.2.3.4"]})
    failure = only(plan).failure
    assert failure is not None
    assert failure.status == "5.1.0"


def test_null_mx_is_not_ignored_by_ignore_mx_lookup_error() -> None:
    plan, _ = run(
        {"example.com MX": ["0 ."], "example.com A": ["192.0.2.1"]},
        ignore_mx_lookup_error=True,
    )
    failure = only(plan).failure
    assert failure is not None
    assert failure.status == "5.1.0"


def test_bracketed_host_skips_mx_lookup() -> None:
    plan, resolver = run(BASIC, "[mx1.example.com]")
    site = only(plan)
    assert site.source is Source.HOST
    assert addrs(site) == ["mx1.example.com/192.0.2.1", "mx1.example.com/2001:db8::1"]
    assert resolver.asked() == ["mx1.example.com A", "mx1.example.com AAAA"]


def test_address_literal_needs_no_dns() -> None:
    plan, resolver = run({}, "[192.0.2.9]:587")
    site = only(plan)
    assert addrs(site) == ["192.0.2.9/192.0.2.9"]
    assert site.candidates[0].origin is Origin.NUMERIC
    assert site.candidates[0].port == 587
    assert not site.loop_detection  # port 587
    assert resolver.log == []


def test_ipv6_literal_with_ipv6_disabled_falls_to_dns_and_fails() -> None:
    plan, resolver = run({}, "[ipv6:2001:db8::5]", inet_protocols=frozenset({Family.IPV4}))
    failure = only(plan).failure
    assert failure is not None
    # Postfix smtp_addr_one(): the numeric name goes to dns_lookup(), which
    # refuses numeric names as "not found".
    assert (failure.status, failure.reason) == (
        "5.4.4",
        "Name service error for 2001:db8::5: invalid host or domain name",
    )
    assert resolver.log == []


def test_numeric_mx_exchange_is_used_as_address() -> None:
    plan, resolver = run({"example.com MX": ["10 192.0.2.44", "20 mx.example.com"]})
    site = only(plan)
    assert site.candidates[0].address == "192.0.2.44"
    assert site.candidates[0].origin is Origin.NUMERIC
    assert "192.0.2.44 A" not in resolver.asked()


def test_invalid_mx_exchange_is_skipped() -> None:
    zone = {
        "example.com MX": ["10 bad_-.example.com-", "20 mx.example.com"],
        "mx.example.com A": ["192.0.2.1"],
    }
    plan, _ = run(zone)
    assert addrs(only(plan)) == ["mx.example.com/192.0.2.1"]


def test_only_invalid_mx_exchanges_is_554_malformed() -> None:
    plan, _ = run({"example.com MX": ["10 -bad-.example.com"]})
    failure = only(plan).failure
    assert failure is not None
    assert (failure.status, failure.reason) == (
        "5.4.4",
        "Name service error for name=example.com type=MX: "
        "Malformed or unexpected name server reply",
    )


@dataclass(frozen=True)
class Dest:
    """A hand-made destination (the parser would refuse a bad name)."""

    host: str
    text: str = "dest"
    port: int = 25
    service: str | None = "smtp"
    mx_lookup: bool = True
    srv_lookup: bool = False
    is_fallback: bool = False
    path: str | None = None


def test_invalid_domain_is_not_queried() -> None:
    resolver = FakeResolver({})
    result = plan_sync([Dest("bad..example.com")], resolver, PlanOptions(), random.Random())
    failure = only(result).failure
    assert failure is not None
    assert (failure.status, failure.reason) == (
        "5.4.4",
        "Name service error for bad..example.com: invalid host or domain name",
    )
    assert resolver.log == []


def test_idna_domain_is_looked_up_as_a_label() -> None:
    zone = {"xn--bcher-kva.example MX": ["10 mx.example.com"], "mx.example.com A": ["192.0.2.1"]}
    plan, resolver = run(zone, "bücher.example")
    assert addrs(only(plan)) == ["mx.example.com/192.0.2.1"]
    assert resolver.asked()[0] == "xn--bcher-kva.example MX"


# --------------------------------------------------------------------------
# Lookup errors and their codes


@pytest.mark.parametrize(
    ("rcode", "status", "text"),
    [
        (Rcode.SERVFAIL, "4.4.3", "Host not found, try again"),
        (Rcode.TIMEOUT, "4.4.3", "Host not found, try again"),
        (Rcode.REFUSED, "5.4.3", "Non-recoverable error"),
        (Rcode.FORMERR, "5.4.3", "Non-recoverable error"),
        (Rcode.NOTIMP, "5.4.3", "Non-recoverable error"),
    ],
)
def test_mx_lookup_errors(rcode: Rcode, status: str, text: str) -> None:
    plan, resolver = run({"example.com MX": rcode, "example.com A": ["192.0.2.1"]})
    failure = only(plan).failure
    assert failure is not None
    assert (failure.status, failure.reason) == (status, NOT_FOUND.format("example.com", "MX", text))
    assert resolver.asked() == ["example.com MX"]  # no A lookup without ignore_mx_lookup_error


def test_mx_lookup_local_resolver_failure() -> None:
    plan, _ = run({"example.com MX": Rcode.SYSERROR})
    failure = only(plan).failure
    assert failure is not None
    assert (failure.status, failure.reason) == ("5.4.3", "Name service initialization failure")


@pytest.mark.parametrize("rcode", [Rcode.SERVFAIL, Rcode.REFUSED])
def test_ignore_mx_lookup_error_uses_the_domain_address(rcode: Rcode) -> None:
    plan, _ = run(
        {"example.com MX": rcode, "example.com A": ["192.0.2.1"]}, ignore_mx_lookup_error=True
    )
    site = only(plan)
    assert site.source is Source.IMPLICIT_MX
    assert addrs(site) == ["example.com/192.0.2.1"]
    assert any("ignoring MX lookup error" in w for w in site.warnings)


def test_mx_host_lookup_errors_soft_dominates_hard() -> None:
    # hard (NXDOMAIN) first, then soft (SERVFAIL): 4.4.3 with the soft text
    zone = {
        "example.com MX": ["10 gone.example.com", "20 flaky.example.com"],
        "flaky.example.com A": Rcode.SERVFAIL,
        "flaky.example.com AAAA": Rcode.SERVFAIL,
    }
    failure = only(run(zone)[0]).failure
    assert failure is not None
    assert failure.status == "4.4.3"
    assert failure.reason == NOT_FOUND.format(
        "flaky.example.com", "AAAA", "Host not found, try again"
    )
    # soft first, then hard: the hard one may change the text, never the class
    zone2 = {
        "example.com MX": ["10 flaky.example.com", "20 gone.example.com"],
        "flaky.example.com A": Rcode.SERVFAIL,
        "flaky.example.com AAAA": Rcode.SERVFAIL,
    }
    failure2 = only(run(zone2)[0]).failure
    assert failure2 is not None
    assert failure2.status == "4.4.4"
    assert failure2.reason == NOT_FOUND.format("gone.example.com", "AAAA", "Host not found")


def test_address_lookup_refused_is_543_or_443_after_soft() -> None:
    zone = {
        "example.com MX": ["10 a.example.com"],
        "a.example.com A": Rcode.REFUSED,
        "a.example.com AAAA": Rcode.REFUSED,
    }
    failure = only(run(zone)[0]).failure
    assert failure is not None
    assert failure.status == "5.4.3"
    zone["example.com MX"] = ["10 b.example.com", "20 a.example.com"]
    zone["b.example.com A"] = Rcode.TIMEOUT
    zone["b.example.com AAAA"] = Rcode.TIMEOUT
    failure = only(run(zone)[0]).failure
    assert failure is not None
    assert failure.status == "4.4.3"


def test_mixed_families_one_ok_is_success() -> None:
    # dns_lookup_v(): the best status wins; SERVFAIL for A, AAAA present
    zone = {
        "example.com MX": ["10 mx.example.com"],
        "mx.example.com A": Rcode.SERVFAIL,
        "mx.example.com AAAA": ["2001:db8::1"],
    }
    site = only(run(zone)[0])
    assert addrs(site) == ["mx.example.com/2001:db8::1"]
    assert site.failure is None


def test_no_mx_host_has_an_address() -> None:
    zone = {"example.com MX": ["10 a.example.com", "20 b.example.com"]}
    plan, _ = run(zone)
    site = only(plan)
    assert site.failure is not None
    assert site.failure.status == "5.4.4"
    assert "no MX host for example.com has a valid address record" in site.warnings
    deferred, _ = run(zone, smtp_defer_if_no_mx_address_found=True)
    failure = only(deferred).failure
    assert failure is not None
    assert failure.status == "4.4.4"
    assert failure.reason == site.failure.reason  # "Text does not change."


# --------------------------------------------------------------------------
# CNAMEs


def test_mx_host_behind_cname() -> None:
    zone = {
        "example.com MX": ["10 alias.example.com"],
        "alias.example.com A": Reply(["192.0.2.1"], cname="real.example.net"),
        "alias.example.com AAAA": Rcode.NODATA,
    }
    plan, _ = run(zone)
    cand = only(plan).candidates[0]
    assert (cand.hostname, cand.qname, cand.rname) == (
        "alias.example.com",
        "alias.example.com",
        "real.example.net",
    )
    assert cand.cname_chain == ("real.example.net",)
    plan2, _ = run(zone, smtp_cname_overrides_servername=True)
    assert only(plan2).candidates[0].hostname == "real.example.net"


def test_nodata_after_cname_names_the_target() -> None:
    zone = {
        "example.com MX": Reply(rcode=Rcode.NODATA, cname="target.example.net"),
        "example.com A": Reply(rcode=Rcode.NODATA, cname="target.example.net"),
        "example.com AAAA": Reply(rcode=Rcode.NODATA, cname="target.example.net"),
    }
    failure = only(run(zone)[0]).failure
    assert failure is not None
    assert failure.reason == NOT_FOUND.format(
        "target.example.net", "AAAA", "Host found but no data record of requested type"
    )


def test_cname_loop_is_not_found() -> None:
    zone = {
        "example.com MX": Rcode.LOOP,
        "example.com A": Rcode.LOOP,
        "example.com AAAA": Rcode.LOOP,
    }
    failure = only(run(zone)[0]).failure
    assert failure is not None
    assert (failure.status, failure.reason) == ("5.4.4", "Name server loop for example.com")


# --------------------------------------------------------------------------
# smtp_dns_reply_filter


def test_reply_filter_key_format() -> None:
    assert (
        record_text("example.com", 300, "MX", MxRecord(10, "mx.example.com"))
        == "example.com. 300 IN MX 10 mx.example.com."
    )
    assert (
        record_text("mx.example.com", 60, "AAAA", AddressRecord("2001:db8::1"))
        == "mx.example.com. 60 IN AAAA 2001:db8::1"
    )
    assert (
        record_text("_smtp._tcp.example.com", 5, "SRV", SrvRecord(0, 5, 25, "mx.example.com"))
        == "_smtp._tcp.example.com. 5 IN SRV 0 5 25 mx.example.com."
    )


def test_reply_filter_drops_matching_records() -> None:
    seen: list[str] = []

    def drop_private(key: str) -> str | None:
        seen.append(key)
        return "IGNORE" if key.endswith(" 2001:db8::1") else None

    plan, _ = run(BASIC, smtp_dns_reply_filter=drop_private)
    assert [c.address for c in only(plan).candidates] == ["192.0.2.1", "192.0.2.2"]
    assert "example.com. 300 IN MX 20 mx2.example.com." in seen
    assert "mx1.example.com. 300 IN AAAA 2001:db8::1" in seen


def test_reply_filter_dropping_every_mx_is_470() -> None:
    plan, _ = run(BASIC, smtp_dns_reply_filter=lambda key: "ignore" if " MX " in key else None)
    failure = only(plan).failure
    assert failure is not None
    assert (failure.status, failure.reason) == (
        "4.7.0",
        "Error looking up name=example.com type=MX: DNS reply filter drops all results",
    )


def test_reply_filter_dropping_all_addresses_is_470() -> None:
    plan, _ = run(BASIC, smtp_dns_reply_filter=lambda key: "IGNORE" if " IN A" in key else None)
    failure = only(plan).failure
    assert failure is not None
    assert failure.status == "4.7.0"


def test_reply_filter_bad_action_is_a_retry() -> None:
    plan, _ = run(BASIC, smtp_dns_reply_filter=lambda key: "DROP")
    failure = only(plan).failure
    assert failure is not None
    assert (failure.status, failure.reason) == (
        "4.4.3",
        "Error looking up name=example.com type=MX: Invalid DNS reply filter syntax",
    )


# --------------------------------------------------------------------------
# Best MX is myself


LOOPY = {
    "example.com MX": ["10 a.example.com", "20 me.example.com", "20 b.example.com"],
    "a.example.com A": ["192.0.2.1"],
    "me.example.com A": ["192.0.2.99"],
    "b.example.com A": ["192.0.2.2"],
}


def test_backup_mx_truncates_at_own_preference() -> None:
    plan, _ = run(LOOPY, fallback=["relay.example.net"], own_addresses=ips("192.0.2.99"))
    site = only(plan)  # no fallback relay: "If we're MX host, don't connect to non-MX backups."
    assert addrs(site) == ["a.example.com/192.0.2.1"]
    assert site.i_am_mx
    assert site.final


def test_primary_mx_is_myself_loops_back() -> None:
    zone = {**LOOPY, "example.com MX": ["10 me.example.com", "20 b.example.com"]}
    plan, _ = run(zone, fallback=["relay.example.net"], own_addresses=ips("192.0.2.99"))
    site = only(plan)
    assert site.failure is not None
    assert (site.failure.status, site.failure.reason) == (
        "5.4.6",
        "mail for example.com loops back to myself",
    )
    assert site.loops_back
    assert site.final
    assert plan.best_mx_transport is None


def test_unreachable_better_mx_is_444_primary_relay() -> None:
    zone = {**LOOPY, "a.example.com A": Rcode.NXDOMAIN}
    plan, _ = run(zone, own_addresses=ips("192.0.2.99"))
    failure = only(plan).failure
    assert failure is not None
    assert (failure.status, failure.reason) == (
        "4.4.4",
        "unable to find primary relay for example.com",
    )


def test_proxy_interfaces_count_as_myself() -> None:
    plan, _ = run(LOOPY, proxy_addresses=ips("192.0.2.99"))
    assert addrs(only(plan)) == ["a.example.com/192.0.2.1"]


def test_loop_detection_only_on_port_25() -> None:
    plan, _ = run(LOOPY, "example.com:587", own_addresses=ips("192.0.2.99"))
    site = only(plan)
    assert not site.loop_detection
    assert not site.i_am_mx
    assert len(site.candidates) == 3


def test_implicit_mx_pointing_at_myself_is_546() -> None:
    zone = {"example.com MX": Rcode.NODATA, "example.com A": ["192.0.2.99"]}
    plan, _ = run(zone, own_addresses=ips("192.0.2.99"))
    failure = only(plan).failure
    assert failure is not None
    assert (failure.status, failure.reason) == (
        "5.4.6",
        "mail for example.com loops back to myself",
    )


def test_best_mx_transport_is_reported_on_loop() -> None:
    zone = {**LOOPY, "example.com MX": ["10 me.example.com"]}
    plan, _ = run(zone, own_addresses=ips("192.0.2.99"), best_mx_transport="local")
    assert plan.best_mx_transport == "local"
    assert plan.failure is not None
    assert plan.failure.status == "5.4.6"


def test_lmtp_never_looks_up_mx_or_checks_loops() -> None:
    zone = {"lmtp.example.com A": ["192.0.2.99"]}
    plan, resolver = run(zone, "lmtp.example.com", protocol="lmtp", own_addresses=ips("192.0.2.99"))
    site = only(plan)
    assert addrs(site) == ["lmtp.example.com/192.0.2.99"]
    assert site.port == 24
    assert not site.loop_detection
    assert [q.rdtype for q in resolver.log] == ["A", "AAAA"]


def test_lmtp_unix_destination() -> None:
    plan, resolver = run({}, "unix:/run/dovecot/lmtp", protocol="lmtp", myhostname="me.example")
    site = only(plan)
    assert site.source is Source.UNIX
    cand = site.candidates[0]
    assert (cand.family, cand.address, cand.hostname, cand.port) == (
        Family.UNIX,
        "/run/dovecot/lmtp",
        "me.example",
        0,
    )
    assert cand.endpoint == "me.example[/run/dovecot/lmtp]"
    assert resolver.log == []


# --------------------------------------------------------------------------
# Fallback relays and the final status


def test_fallback_relay_site_after_failure() -> None:
    zone = {"example.com MX": Rcode.SERVFAIL, "relay.example.net A": ["198.51.100.1"]}
    plan, _ = run(zone, fallback=["[relay.example.net]"])
    assert len(plan.sites) == 2
    first, relay = plan.sites
    assert first.failure is not None
    assert not first.final
    assert relay.is_fallback
    assert relay.final
    assert relay.candidates[0].from_fallback
    assert plan.failure is None
    assert [c.address for c in plan.candidates] == ["198.51.100.1"]


def test_hard_failure_at_fallback_relay_becomes_435() -> None:
    plan, _ = run({"example.com MX": Rcode.SERVFAIL}, fallback=["[relay.example.net]"])
    assert plan.failure is not None
    assert plan.failure.status == "4.3.5"
    assert plan.failure.reason == NOT_FOUND.format("relay.example.net", "AAAA", "Host not found")
    assert "smtp_fallback_relay configuration problem" in plan.warnings


def test_hard_failure_at_relayhost_becomes_435() -> None:
    plan, _ = run({}, "[relay.example.net]:587", relayhost="[relay.example.net]:587")
    assert plan.failure is not None
    assert plan.failure.status == "4.3.5"
    assert "relayhost configuration problem" in plan.warnings


def test_all_sites_are_planned_in_order() -> None:
    zone = {
        "one.example A": ["192.0.2.1"],
        "two.example A": ["192.0.2.2"],
    }
    plan, _ = run(zone, "[one.example], [two.example]")
    assert [s.nexthop for s in plan.sites] == ["[one.example]", "[two.example]"]
    assert [s.final for s in plan.sites] == [False, True]


# --------------------------------------------------------------------------
# Native lookups (smtp_host_lookup)


def test_dns_disabled_uses_native_lookup_only() -> None:
    zone = {"example.com ADDRINFO": ["192.0.2.5", "2001:db8::5"]}
    plan, resolver = run(zone, smtp_dns_support_level=DnsSupport.DISABLED)
    site = only(plan)
    assert site.source is Source.HOST
    assert [c.origin for c in site.candidates] == [Origin.NATIVE, Origin.NATIVE]
    assert resolver.asked() == ["example.com ADDRINFO"]


def test_native_after_dns_not_found() -> None:
    zone = {
        "example.com MX": ["10 mx.example.com"],
        "mx.example.com ADDRINFO": ["192.0.2.5"],
    }
    plan, resolver = run(zone, smtp_host_lookup=frozenset({HostLookup.DNS, HostLookup.NATIVE}))
    assert addrs(only(plan)) == ["mx.example.com/192.0.2.5"]
    assert resolver.asked() == [
        "example.com MX",
        "mx.example.com A",
        "mx.example.com AAAA",
        "mx.example.com ADDRINFO",
    ]


def test_native_not_tried_after_dns_servfail() -> None:
    zone = {
        "example.com MX": ["10 mx.example.com"],
        "mx.example.com A": Rcode.SERVFAIL,
        "mx.example.com AAAA": Rcode.SERVFAIL,
        "mx.example.com ADDRINFO": ["192.0.2.5"],
    }
    plan, resolver = run(zone, smtp_host_lookup=frozenset({HostLookup.DNS, HostLookup.NATIVE}))
    assert only(plan).failure is not None
    assert "mx.example.com ADDRINFO" not in resolver.asked()


@pytest.mark.parametrize(
    ("rcode", "detail", "status"),
    [
        (Rcode.SERVFAIL, "Temporary failure in name resolution", "4.4.4"),  # EAI_AGAIN
        (Rcode.NXDOMAIN, "Name or service not known", "5.4.4"),  # EAI_NONAME
        (Rcode.NODATA, "No address associated with hostname", "5.4.4"),  # EAI_NODATA
        (Rcode.SYSERROR, "System error", "4.3.0"),  # EAI_SYSTEM
        (Rcode.REFUSED, "Non-recoverable failure in name resolution", "5.3.0"),  # EAI_FAIL
    ],
)
def test_native_lookup_errors(rcode: Rcode, detail: str, status: str) -> None:
    zone = {"example.com ADDRINFO": Reply(rcode=rcode, detail=detail)}
    plan, _ = run(zone, smtp_dns_support_level=DnsSupport.DISABLED)
    failure = only(plan).failure
    assert failure is not None
    assert (failure.status, failure.reason) == (
        status,
        f"unable to look up host example.com: {detail}",
    )


def test_native_result_of_disabled_family_is_host_not_found() -> None:
    zone = {"example.com ADDRINFO": ["2001:db8::5"]}
    plan, _ = run(
        zone,
        smtp_dns_support_level=DnsSupport.DISABLED,
        inet_protocols=frozenset({Family.IPV4}),
    )
    failure = only(plan).failure
    assert failure is not None
    assert (failure.status, failure.reason) == ("5.4.4", "example.com: host not found")


# --------------------------------------------------------------------------
# SRV (use_srv_lookup)

SRV = {
    "_submission._tcp.example.com SRV": [
        "10 0 2525 b.example.com",
        "0 0 587 a.example.com",
    ],
    "a.example.com A": ["192.0.2.1"],
    "a.example.com AAAA": ["2001:db8::1"],
    "b.example.com A": ["192.0.2.2"],
}


def test_srv_priority_order_and_ports() -> None:
    plan, resolver = run(SRV, "example.com:submission", use_srv_lookup=["submission"])
    site = only(plan)
    assert site.source is Source.SRV
    assert [(c.hostname, c.address, c.port) for c in site.candidates] == [
        ("a.example.com", "192.0.2.1", 587),
        ("a.example.com", "2001:db8::1", 587),
        ("b.example.com", "192.0.2.2", 2525),
    ]
    assert site.mx_qname == "_submission._tcp.example.com"
    assert resolver.asked()[0] == "_submission._tcp.example.com SRV"


def test_srv_addresses_are_not_sorted_by_family() -> None:
    plan, _ = run(
        SRV,
        "example.com:submission",
        use_srv_lookup=["submission"],
        smtp_address_preference=AddressPreference.IPV6,
        smtp_randomize_addresses=True,
    )
    assert [c.address for c in only(plan).candidates][:2] == ["192.0.2.1", "2001:db8::1"]


def test_null_srv_is_510() -> None:
    zone = {"_submission._tcp.example.com SRV": ["0 0 0 ."]}
    plan, _ = run(zone, "example.com:submission", use_srv_lookup=["submission"])
    failure = only(plan).failure
    assert failure is not None
    assert (failure.status, failure.reason) == (
        "5.1.0",
        "Domain _submission._tcp.example.com does not support SRV requests",
    )


def test_srv_not_found_is_554_without_fallback() -> None:
    zone = {"example.com MX": ["10 a.example.com"], "a.example.com A": ["192.0.2.1"]}
    plan, _ = run(zone, "example.com:submission", use_srv_lookup=["submission"])
    failure = only(plan).failure
    assert failure is not None
    assert failure.status == "5.4.4"
    plan2, resolver = run(
        zone,
        "example.com:submission",
        use_srv_lookup=["submission"],
        allow_srv_lookup_fallback=True,
    )
    site = only(plan2)
    assert site.source is Source.MX
    assert site.srv_fallback
    assert addrs(site) == ["a.example.com/192.0.2.1"]
    assert site.candidates[0].port == 587
    assert resolver.asked()[:2] == ["_submission._tcp.example.com SRV", "example.com MX"]


def test_srv_lookup_error_fallback_needs_ignore_srv_lookup_error() -> None:
    zone: dict[str, Spec] = {
        "_submission._tcp.example.com SRV": Rcode.SERVFAIL,
        "example.com MX": ["10 a.example.com"],
        "a.example.com A": ["192.0.2.1"],
    }
    plan, _ = run(zone, "example.com:submission", use_srv_lookup=["submission"])
    failure = only(plan).failure
    assert failure is not None
    assert failure.status == "4.4.3"
    plan2, _ = run(
        zone,
        "example.com:submission",
        use_srv_lookup=["submission"],
        ignore_srv_lookup_error=True,
    )
    assert addrs(only(plan2)) == ["a.example.com/192.0.2.1"]
    # a null SRV is never ignored
    zone["_submission._tcp.example.com SRV"] = ["0 0 0 ."]
    plan3, _ = run(
        zone,
        "example.com:submission",
        use_srv_lookup=["submission"],
        ignore_srv_lookup_error=True,
    )
    failure3 = only(plan3).failure
    assert failure3 is not None
    assert failure3.status == "5.1.0"


def test_lmtp_srv_falls_back_to_host_lookup() -> None:
    zone = {"lmtp.example.com A": ["192.0.2.8"]}
    plan, resolver = run(
        zone,
        "lmtp.example.com:lmtp",
        protocol="lmtp",
        use_srv_lookup=["lmtp"],
        allow_srv_lookup_fallback=True,
    )
    assert addrs(only(plan)) == ["lmtp.example.com/192.0.2.8"]
    assert "lmtp.example.com MX" not in resolver.asked()


def test_srv_weights_follow_rfc2782_statistically() -> None:
    zone = {
        "_submission._tcp.example.com SRV": [
            "0 10 587 a.example.com",
            "0 30 587 b.example.com",
            "0 60 587 c.example.com",
        ],
        "a.example.com A": ["192.0.2.1"],
        "b.example.com A": ["192.0.2.2"],
        "c.example.com A": ["192.0.2.3"],
    }
    firsts: Counter[str] = Counter()
    trials = 3000
    for seed in range(trials):
        plan, _ = run(zone, "example.com:submission", use_srv_lookup=["submission"], seed=seed)
        firsts[only(plan).candidates[0].hostname] += 1
    # Postfix weight_order(): threshold in 0..sum inclusive; P = (w + 1/3) / 101
    for host, weight in (("a", 10), ("b", 30), ("c", 60)):
        expected = (weight + 1 / 3) / 101
        assert abs(firsts[f"{host}.example.com"] / trials - expected) < 0.03


def test_srv_zero_weight_rarely_first() -> None:
    zone = {
        "_submission._tcp.example.com SRV": ["0 0 587 a.example.com", "0 99 587 b.example.com"],
        "a.example.com A": ["192.0.2.1"],
        "b.example.com A": ["192.0.2.2"],
    }
    firsts = Counter(
        only(run(zone, "example.com:submission", use_srv_lookup=["submission"], seed=s)[0])
        .candidates[0]
        .hostname
        for s in range(1000)
    )
    # only via threshold 0 with "a" shuffled first: 1/2 * 1/100
    assert firsts["a.example.com"] < 25


# --------------------------------------------------------------------------
# DNSSEC authenticity

SECURE = DnsSupport.DNSSEC


def test_authenticity_needs_dnssec_level() -> None:
    plan, resolver = run(BASIC)
    assert all(not c.address_authentic and c.mx_authentic is False for c in plan.candidates)
    assert all(not q.dnssec for q in resolver.log)
    plan2, resolver2 = run(BASIC, smtp_dns_support_level=SECURE)
    site = only(plan2)
    assert site.mx_authentic is True
    assert all(c.address_authentic and c.mx_authentic and c.authentic for c in site.candidates)
    assert all(q.dnssec for q in resolver2.log)


def test_insecure_mx_taints_candidates_but_addresses_can_validate() -> None:
    zone = {**BASIC, "example.com MX": Reply(["10 mx1.example.com"], authentic=False)}
    site = only(run(zone, smtp_dns_support_level=SECURE)[0])
    assert site.mx_authentic is False
    assert all(c.address_authentic and not c.authentic for c in site.candidates)


def test_insecure_mx_with_may_policy_looks_up_addresses_without_dnssec() -> None:
    # Postfix smtp_addr_list(): RES_USE_DNSSEC for an insecure MX only when
    # smtp_tls_dane_insecure_mx_policy is stronger than "may"
    zone = {**BASIC, "example.com MX": Reply(["10 mx1.example.com"], authentic=False)}
    plan, resolver = run(
        zone, smtp_dns_support_level=SECURE, smtp_tls_dane_insecure_mx_policy="may"
    )
    assert all(not c.address_authentic for c in only(plan).candidates)
    assert [q.dnssec for q in resolver.log] == [True, False, False]


def test_insecure_cname_taints_the_address() -> None:
    zone = {
        "example.com MX": ["10 alias.example.com"],
        "alias.example.com A": Reply(["192.0.2.1"], cname="real.example.net", authentic=False),
        "alias.example.com AAAA": Reply(["2001:db8::1"], authentic=True),
    }
    site = only(run(zone, smtp_dns_support_level=SECURE)[0])
    assert [(c.address, c.address_authentic) for c in site.candidates] == [
        ("192.0.2.1", False),
        ("2001:db8::1", True),
    ]


def test_implicit_mx_and_literal_authenticity() -> None:
    zone = {"example.com MX": Rcode.NODATA, "example.com A": ["192.0.2.7"]}
    cand = only(run(zone, smtp_dns_support_level=SECURE)[0]).candidates[0]
    assert cand.mx_authentic is None
    assert cand.address_authentic
    assert cand.authentic
    lit = only(run({}, "[192.0.2.9]", smtp_dns_support_level=SECURE)[0]).candidates[0]
    assert not lit.address_authentic


def test_srv_authenticity() -> None:
    site = only(
        run(
            SRV,
            "example.com:submission",
            use_srv_lookup=["submission"],
            smtp_dns_support_level=SECURE,
        )[0]
    )
    assert site.mx_authentic is True
    assert all(c.authentic for c in site.candidates)


# --------------------------------------------------------------------------
# Address uniqueness


def test_repeated_address_is_tried_once_by_default() -> None:
    zone = {
        "example.com MX": ["10 a.example.com", "20 b.example.com"],
        "a.example.com A": ["192.0.2.1"],
        "b.example.com A": ["192.0.2.1", "192.0.2.2"],
    }
    assert addrs(only(run(zone)[0])) == ["a.example.com/192.0.2.1", "b.example.com/192.0.2.2"]
    exact = only(run(zone, unique_addresses=False)[0])
    assert addrs(exact) == [
        "a.example.com/192.0.2.1",
        "b.example.com/192.0.2.1",
        "b.example.com/192.0.2.2",
    ]


# --------------------------------------------------------------------------
# The generator protocol and the drivers


def test_batched_planner_asks_all_addresses_at_once_with_the_same_result() -> None:
    dests = destination.sites("example.com")
    opts = PlanOptions(smtp_randomize_addresses=True)
    resolver = FakeResolver(BASIC)
    steps = plan_batched(dests, opts, random.Random(3))
    batches = []
    batch = next(steps)
    try:
        while True:
            batches.append([f"{q.name} {q.rdtype}" for q in batch])
            batch = steps.send(tuple(resolver.lookup(q) for q in batch))
    except StopIteration as done:
        batched = done.value
    assert batches == [
        ["example.com MX"],
        [
            "mx1.example.com A",
            "mx1.example.com AAAA",
            "mx2.example.com A",
            "mx2.example.com AAAA",
        ],
    ]
    serial = plan_sync(dests, FakeResolver(BASIC), opts, random.Random(3))
    assert batched == serial


async def test_async_driver_matches_sync() -> None:
    dests = destination.sites("example.com, [relay.example.net]")
    opts = PlanOptions(smtp_randomize_addresses=True)
    zone = {**BASIC, "example.com MX": Rcode.SERVFAIL, "relay.example.net A": ["192.0.2.3"]}
    got = await plan_async(dests, AsyncFakeResolver(zone), opts, random.Random(5))
    want = plan_sync(dests, FakeResolver(zone), opts, random.Random(5))
    assert got == want


async def test_run_async_runs_a_batch_concurrently() -> None:
    running = 0
    peak = 0

    async def lookup(query: Query) -> Answer:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return FakeResolver(BASIC).answer(query)

    steps = plan_batched(destination.sites("example.com"), PlanOptions(), random.Random())
    plan = await run_async(steps, lookup)
    assert len(plan.candidates) == 3
    assert peak == 4  # the four address queries of the MX hosts


def test_planner_with_yield_from() -> None:
    def outer() -> Steps[int]:
        result = yield from plan_steps(
            destination.sites("example.com"), PlanOptions(), random.Random(1)
        )
        return len(result.candidates)

    assert run_sync(outer(), FakeResolver(BASIC).lookup) == 3


def test_wrong_answer_from_driver_is_an_error() -> None:
    steps = plan_steps(destination.sites("example.com"), PlanOptions(), random.Random())
    query = next(steps)
    with pytest.raises(DnsError, match="different query"):
        steps.send(Answer(Query("other.example", "MX"), Rcode.NXDOMAIN))
    steps2 = plan_batched(destination.sites("example.com"), PlanOptions(), random.Random())
    batch = next(steps2)
    with pytest.raises(DnsError, match="1 queries"):
        steps2.send(())
    assert query == batch[0]


# --------------------------------------------------------------------------
# Options


class _Cfg:
    """Stand-in for pyfix_smtp.config.Config: attributes by Postfix name."""

    def __init__(self, **values: object) -> None:
        self.protocol = "smtp"
        self.inet_interfaces: tuple[str, ...] = ("127.0.0.1", "[::1]")
        self.__dict__.update(values)


def test_options_from_config() -> None:
    cfg = _Cfg(
        smtp_mx_address_limit=3,
        smtp_randomize_addresses=False,
        smtp_address_preference="ipv6",
        inet_protocols=("ipv4",),
        smtp_dns_support_level="dnssec",
        smtp_host_lookup=("dns", "native"),
        smtp_dns_resolver_options="res_defnames",
        best_mx_transport="local",
        proxy_interfaces=("192.0.2.50",),
    )
    opts = PlanOptions.from_config(cfg)
    assert opts.smtp_mx_address_limit == 3
    assert not opts.smtp_randomize_addresses
    assert opts.smtp_address_preference is AddressPreference.IPV6
    assert opts.inet_protocols == frozenset({Family.IPV4})
    assert opts.smtp_dns_support_level is DnsSupport.DNSSEC
    assert opts.host_lookup == frozenset({HostLookup.DNS, HostLookup.NATIVE})
    assert opts.smtp_dns_resolver_options == frozenset({"res_defnames"})
    assert opts.own_addresses == ips("127.0.0.1", "::1")
    assert opts.proxy_addresses == ips("192.0.2.50")
    assert opts.best_mx_transport == "local"


def test_options_from_config_defaults_and_disable_dns() -> None:
    opts = PlanOptions.from_config(_Cfg(disable_dns_lookups=True))
    assert opts.smtp_dns_support_level is DnsSupport.DISABLED
    assert opts.host_lookup == frozenset({HostLookup.NATIVE})
    assert opts == PlanOptions(
        smtp_dns_support_level=DnsSupport.DISABLED,
        own_addresses=ips("127.0.0.1", "::1"),
    )


@pytest.mark.parametrize(
    ("values", "parameter"),
    [
        ({"smtp_address_preference": "ipv5"}, "smtp_address_preference"),
        ({"smtp_dns_support_level": "paranoid"}, "smtp_dns_support_level"),
        ({"inet_protocols": ("ipx",)}, "inet_protocols"),
        ({"smtp_mx_address_limit": -1}, "smtp_mx_address_limit"),
        ({"smtp_host_lookup": ("nis",)}, "smtp_host_lookup"),
        ({"smtp_randomize_addresses": "maybe"}, "smtp_randomize_addresses"),
        ({"smtp_dns_resolver_options": "res_debug"}, "smtp_dns_resolver_options"),
        ({"inet_interfaces": ("all",)}, "inet_interfaces"),
        ({"smtp_tls_dane_insecure_mx_policy": "secure"}, "smtp_tls_dane_insecure_mx_policy"),
    ],
)
def test_options_from_config_rejects_bad_values(values: dict[str, object], parameter: str) -> None:
    with pytest.raises(ConfigError) as err:
        PlanOptions.from_config(_Cfg(**values))
    assert err.value.parameter == parameter


def test_options_interfaces_given_by_caller() -> None:
    opts = PlanOptions.from_config(
        _Cfg(inet_interfaces=("all",)), own_addresses=["192.0.2.1", ipaddress.ip_address("::1")]
    )
    assert opts.own_addresses == ips("192.0.2.1", "::1")
    lmtp = PlanOptions.from_config(_Cfg(protocol="lmtp", inet_interfaces=("all",)))
    assert lmtp.own_addresses == frozenset()


def test_options_from_the_real_config_class() -> None:
    from pyfix_smtp.config import Config

    cfg = Config(
        inet_interfaces="127.0.0.1, [::1]",
        smtp_address_preference="ipv6",
        smtp_dns_reply_filter="regexp:{{/ IN A 192\\.0\\.2\\.1$$/ IGNORE}}",
    )
    opts = PlanOptions.from_config(cfg)
    assert opts.smtp_address_preference is AddressPreference.IPV6
    assert opts.own_addresses == ips("127.0.0.1", "::1")
    plan, _ = run(BASIC, **{f: getattr(opts, f) for f in ("smtp_dns_reply_filter",)})
    assert [c.address for c in only(plan).candidates] == ["2001:db8::1", "192.0.2.2"]
    lmtp = PlanOptions.from_config(Config(protocol="lmtp", lmtp_host_lookup="native"))
    assert lmtp.protocol == "lmtp"
    assert lmtp.host_lookup == frozenset({HostLookup.NATIVE})


def test_allow_srv_lookup_fallback_even_after_null_srv() -> None:
    # Postfix smtp_service_addr(): allow_non_srv_fallback starts as
    # var_allow_srv_fallback and is checked whatever the SRV status was.
    zone = {
        "_submission._tcp.example.com SRV": ["0 0 0 ."],
        "example.com MX": ["10 a.example.com"],
        "a.example.com A": ["192.0.2.1"],
    }
    plan, _ = run(
        zone,
        "example.com:submission",
        use_srv_lookup=["submission"],
        allow_srv_lookup_fallback=True,
    )
    site = only(plan)
    assert site.srv_fallback
    assert addrs(site) == ["a.example.com/192.0.2.1"]
    assert any("skipping SRV lookup for _submission._tcp.example.com" in w for w in site.warnings)


def test_reply_filter_policy_is_not_an_ignorable_mx_error() -> None:
    plan, resolver = run(
        {**BASIC, "example.com A": ["192.0.2.9"]},
        ignore_mx_lookup_error=True,
        smtp_dns_reply_filter=lambda key: "IGNORE" if " MX " in key else None,
    )
    failure = only(plan).failure
    assert failure is not None
    assert failure.status == "4.7.0"
    assert "example.com A" not in resolver.asked()


@pytest.mark.parametrize(
    ("failure", "fallback", "first", "options", "status", "transport"),
    [
        (None, False, "example.com", PlanOptions(), "4.3.0", None),
        (Failure("4.4.1", "connect refused"), True, "example.com", PlanOptions(), "4.4.1", None),
        (Failure("5.4.4", "gone"), True, "example.com", PlanOptions(), "4.3.5", None),
        (
            Failure("5.4.4", "gone"),
            False,
            "[r]:587",
            PlanOptions(relayhost="[r]:587"),
            "4.3.5",
            None,
        ),
        (Failure("5.4.4", "gone"), False, "[r]", PlanOptions(relayhost="[r]:587"), "5.4.4", None),
        (
            Failure("5.4.6", "loop"),
            False,
            "x",
            PlanOptions(best_mx_transport="local"),
            "5.4.6",
            "local",
        ),
        (
            Failure("4.4.6", "loop"),
            False,
            "x",
            PlanOptions(best_mx_transport="local"),
            "4.4.6",
            None,
        ),
        (
            Failure("5.4.6", "loop"),
            False,
            "x",
            PlanOptions(protocol="lmtp", best_mx_transport="local"),
            "5.4.6",
            None,
        ),
    ],
)
def test_final_failure(
    failure: Failure | None,
    fallback: bool,
    first: str,
    options: PlanOptions,
    status: str,
    transport: str | None,
) -> None:
    final = final_failure(failure, fallback=fallback, first_nexthop=first, options=options)
    assert final.failure.status == status
    assert final.best_mx_transport == transport
    if failure is not None:
        assert final.failure.reason == failure.reason
