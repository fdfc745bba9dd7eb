"""Print the address plan Postfix's smtp(8) would follow for a destination.

Examples::

    python examples/plan_domain.py example.com
    python examples/plan_domain.py example.test --nameserver 127.0.0.1 --port 5353 --dnssec
    python examples/plan_domain.py "example.com:submission" --srv submission
    python examples/plan_domain.py example.com --fallback "[relay.example.net]" --async

The destination uses Postfix nexthop syntax (``domain``, ``[host]:port``,
a list). Without ``--nameserver`` the system resolver configuration is used.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import sys

from pyfix_smtp import destination
from pyfix_smtp.dns import (
    AsyncDnsResolver,
    DnsResolver,
    DnsSupport,
    Family,
    Plan,
    PlanOptions,
    plan_async,
    plan_sync,
)
from pyfix_smtp.dns.ordering import AddressPreference


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("destination", help="nexthop, e.g. example.com or [mx.example.com]:587")
    parser.add_argument("--nameserver", action="append", help="resolver address (repeatable)")
    parser.add_argument("--port", type=int, default=None, help="resolver port")
    parser.add_argument("--dnssec", action="store_true", help="smtp_dns_support_level = dnssec")
    parser.add_argument("--lmtp", action="store_true", help="plan for LMTP instead of SMTP")
    parser.add_argument("--fallback", action="append", default=[], help="smtp_fallback_relay")
    parser.add_argument("--srv", action="append", default=[], help="use_srv_lookup service")
    parser.add_argument("--limit", type=int, default=5, help="smtp_mx_address_limit")
    parser.add_argument(
        "--prefer",
        choices=[p.value for p in AddressPreference],
        default="any",
        help="smtp_address_preference",
    )
    parser.add_argument("--ipv4-only", action="store_true", help="inet_protocols = ipv4")
    parser.add_argument("--me", action="append", default=[], help="one of my own addresses")
    parser.add_argument("--seed", type=int, default=None, help="seed for the address shuffle")
    parser.add_argument("--async", dest="use_async", action="store_true", help="use asyncio")
    return parser.parse_args(argv)


def show(plan: Plan) -> None:
    for site in plan.sites:
        kind = "fallback relay" if site.is_fallback else "nexthop"
        mx = {True: "validated", False: "not validated", None: "n/a"}[site.mx_authentic]
        print(f"{kind} {site.nexthop}: {site.source.value} lookup, MX/SRV RRset {mx}")
        for n, cand in enumerate(site.candidates, 1):
            flags = []
            if cand.best_mx:
                flags.append("best")
            if cand.authentic:
                flags.append("dnssec")
            if cand.cname_chain:
                flags.append("cname " + " > ".join(cand.cname_chain))
            print(f"  {n}. pref {cand.preference:<5} {cand.endpoint:<45} {', '.join(flags)}")
        for cand in site.spare:
            print(f"     (beyond smtp_mx_address_limit) {cand.endpoint}")
        if site.failure is not None:
            print(f"  no address: {site.failure}")
        for warning in site.warnings:
            print(f"  warning: {warning}")
        if site.i_am_mx:
            print("  this host is an MX for the destination: backups after it are not used")
    if plan.failure is not None:
        print(f"delivery would fail: {plan.failure}")
    if plan.best_mx_transport:
        print(f"mail would be passed to best_mx_transport {plan.best_mx_transport}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    protocol = "lmtp" if args.lmtp else "smtp"
    sites = destination.sites(
        args.destination, args.fallback, protocol=protocol, use_srv_lookup=args.srv
    )
    options = PlanOptions(
        protocol=protocol,
        smtp_mx_address_limit=args.limit,
        smtp_address_preference=AddressPreference(args.prefer),
        smtp_dns_support_level=DnsSupport.DNSSEC if args.dnssec else DnsSupport.ENABLED,
        inet_protocols=frozenset({Family.IPV4} if args.ipv4_only else {Family.IPV4, Family.IPV6}),
        own_addresses=frozenset(ipaddress.ip_address(a) for a in args.me),
    )
    rng = random.Random(args.seed)
    if args.use_async:
        aresolver = AsyncDnsResolver(nameservers=args.nameserver, port=args.port)
        plan = asyncio.run(plan_async(sites, aresolver, options, rng))
    else:
        resolver = DnsResolver(nameservers=args.nameserver, port=args.port)
        plan = plan_sync(sites, resolver, options, rng)
    show(plan)
    return 1 if plan.failure is not None else 0


if __name__ == "__main__":
    sys.exit(main())
