"""Properties of the planner over random MX/address record sets (hypothesis)."""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from pyfix_smtp import destination
from pyfix_smtp.dns.options import AddressPreference, Family, PlanOptions
from pyfix_smtp.dns.plan import plan_batched
from pyfix_smtp.dns.records import Answer, Query, Rcode
from pyfix_smtp.dns.results import Plan
from pyfix_smtp.dns.runner import plan_sync
from tests.test_dns_plan import FakeResolver, Spec

V4 = [f"192.0.2.{i}" for i in range(1, 9)]
V6 = [f"2001:db8::{i}" for i in range(1, 9)]
ERRORS = [Rcode.SERVFAIL, Rcode.NXDOMAIN, Rcode.NODATA, Rcode.REFUSED]


@dataclass(frozen=True)
class Case:
    zone: dict[str, Spec]
    hosts: dict[str, set[str]]  # host -> addresses it has in DNS
    prefs: dict[str, int]
    options: PlanOptions
    seed: int


def _answer(draw: st.DrawFn, pool: list[str]) -> Spec:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from(ERRORS))
    return draw(st.lists(st.sampled_from(pool), max_size=4, unique=True)) or Rcode.NODATA


@st.composite
def cases(draw: st.DrawFn) -> Case:
    count = draw(st.integers(0, 7))
    zone: dict[str, Spec] = {}
    hosts: dict[str, set[str]] = {}
    prefs: dict[str, int] = {}
    mx: list[str] = []
    for i in range(count):
        host = f"h{i}.example.com"
        pref = draw(st.integers(0, 3)) * 10
        prefs[host] = pref
        mx.append(f"{pref} {host}")
        a = _answer(draw, V4)
        aaaa = _answer(draw, V6)
        zone[f"{host} A"] = a
        zone[f"{host} AAAA"] = aaaa
        hosts[host] = {x for spec in (a, aaaa) if isinstance(spec, list) for x in spec}
    if mx:
        zone["example.com MX"] = draw(st.permutations(mx))
    else:
        zone["example.com MX"] = Rcode.NODATA
        zone["example.com A"] = _answer(draw, V4)
        prefs["example.com"] = 0
        spec = zone["example.com A"]
        hosts["example.com"] = set(spec) if isinstance(spec, list) else set()
    protocols = draw(
        st.sampled_from(
            [
                frozenset({Family.IPV4}),
                frozenset({Family.IPV6}),
                frozenset({Family.IPV4, Family.IPV6}),
            ]
        )
    )
    own = draw(st.sets(st.sampled_from(V4[:3] + V6[:3]), max_size=1))
    options = PlanOptions(
        smtp_mx_address_limit=draw(st.integers(0, 6)),
        smtp_randomize_addresses=draw(st.booleans()),
        smtp_address_preference=draw(st.sampled_from(list(AddressPreference))),
        smtp_balance_inet_protocols=draw(st.booleans()),
        inet_protocols=protocols,
        own_addresses=frozenset(ipaddress.ip_address(a) for a in own),
    )
    return Case(zone, hosts, prefs, options, draw(st.integers(0, 2**32)))


def _plan(case: Case) -> Plan:
    dests = destination.sites("example.com")
    return plan_sync(dests, FakeResolver(case.zone), case.options, random.Random(case.seed))


@settings(max_examples=150, deadline=None)
@given(cases())
def test_plan_invariants(case: Case) -> None:
    plan = _plan(case)
    (site,) = plan.sites
    cands = site.candidates
    # a candidate list xor a failure
    assert bool(cands) != (site.failure is not None)
    # every address at most once
    keys = [(c.address, c.port) for c in cands + site.spare]
    assert len(keys) == len(set(keys))
    # the address limit is respected
    limit = case.options.smtp_mx_address_limit
    if limit:
        assert len(cands) <= limit
    # preference order is never violated
    prefs = [c.preference for c in cands + site.spare]
    assert prefs == sorted(prefs)
    for c in cands + site.spare:
        # each address really belongs to its host, at the host's preference
        assert c.address in case.hosts[c.qname]
        assert c.preference == case.prefs[c.qname]
        # only enabled families
        assert c.family in case.options.inet_protocols
        # nothing at or beyond our own preference when we are an MX
        assert ipaddress.ip_address(c.address) not in case.options.own_addresses
    if site.i_am_mx:
        own_prefs = [
            case.prefs[h]
            for h, a in case.hosts.items()
            if {ipaddress.ip_address(x) for x in a} & case.options.own_addresses
        ]
        assert all(c.preference < min(own_prefs) for c in cands)
    # family preference within one MX preference
    if case.options.smtp_address_preference is not AddressPreference.ANY:
        first = (
            Family.IPV6
            if case.options.smtp_address_preference is AddressPreference.IPV6
            else Family.IPV4
        )
        for pref in set(prefs):
            fams = [c.family for c in cands + site.spare if c.preference == pref]
            flips = [i for i in range(1, len(fams)) if fams[i] != fams[i - 1]]
            assert len(flips) <= 1
            assert not flips or fams[0] is first


@settings(max_examples=60, deadline=None)
@given(cases())
def test_plan_is_deterministic_and_batching_changes_nothing(case: Case) -> None:
    plan = _plan(case)
    assert plan == _plan(case)
    resolver = FakeResolver(case.zone)
    steps = plan_batched(destination.sites("example.com"), case.options, random.Random(case.seed))
    batches = 0

    def answer(batch: tuple[Query, ...]) -> tuple[Answer, ...]:
        nonlocal batches
        batches += 1
        return tuple(resolver.lookup(q) for q in batch)

    result = None
    try:
        batch = next(steps)
        while True:
            batch = steps.send(answer(batch))
    except StopIteration as done:
        result = done.value
    assert result == plan
    # MX, then every host's addresses in one go
    assert batches <= 2
