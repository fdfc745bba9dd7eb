"""Explain the TLS policy Postfix's smtp(8) would apply to each MX host of a domain.

The DNS answers come either from a resolver (live) or from the command line
(``--answer``), so the decision can be studied without a network::

    # offline: a DNSSEC-signed domain whose MX publishes a TLSA record
    python examples/explain_tls_policy.py example.com --level dane \\
        --answer "MX example.com 10 mx.example.com" \\
        --answer "A mx.example.com 192.0.2.1" \\
        --answer "TLSA _25._tcp.mx.example.com 3 1 1 $(printf '01%.0s' $(seq 32))"

    # the same domain, but the MX RRset is not signed (-> halfdane)
    python examples/explain_tls_policy.py example.com --level dane --insecure example.com ...

    # a policy table entry and an MTA-STS policy file
    python examples/explain_tls_policy.py example.com --policy-maps "inline:{.com=verify}" ...
    python examples/explain_tls_policy.py example.com --sts-policy mta-sts.txt ...

    # live DNS through a validating resolver
    python examples/explain_tls_policy.py example.test --level dane \\
        --nameserver 127.0.0.1 --port 5353

``--answer`` takes ``TYPE NAME DATA``: ``MX name pref host``, ``A name addr``,
``AAAA name addr``, ``TLSA name usage selector mtype hex``, ``TXT name text``.
Answers are DNSSEC-validated unless the name is listed with ``--insecure``;
names without answers do not exist (NXDOMAIN); ``--servfail NAME`` makes a
lookup fail.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

from pyfix_smtp import destination, tls
from pyfix_smtp.dns import DnsResolver, DnsSupport, PlanOptions, plan_sync
from pyfix_smtp.dns.records import (
    AddressRecord,
    Answer,
    MxRecord,
    Query,
    Rcode,
    Record,
    TlsaRecord,
    TxtRecord,
)


class CannedResolver:
    """Answers from the command line (for studying decisions offline)."""

    def __init__(self, answers: list[str], insecure: list[str], servfail: list[str]) -> None:
        self.records: dict[tuple[str, str], list[Record]] = defaultdict(list)
        self.insecure = {n.lower().rstrip(".") for n in insecure}
        self.servfail = {n.lower().rstrip(".") for n in servfail}
        for spec in answers:
            rdtype, name, *data = spec.split()
            self.records[(rdtype.upper(), name.lower().rstrip("."))].append(
                self._record(rdtype.upper(), data)
            )

    @staticmethod
    def _record(rdtype: str, data: list[str]) -> Record:
        if rdtype == "MX":
            return MxRecord(int(data[0]), data[1].rstrip("."))
        if rdtype in ("A", "AAAA"):
            return AddressRecord(data[0])
        if rdtype == "TLSA":
            return TlsaRecord(int(data[0]), int(data[1]), int(data[2]), bytes.fromhex(data[3]))
        if rdtype == "TXT":
            return TxtRecord((" ".join(data).encode(),))
        raise SystemExit(f"unsupported --answer type {rdtype}")

    def lookup(self, query: Query) -> Answer:
        name = query.name.lower().rstrip(".")
        if name in self.servfail:
            return Answer(query, Rcode.SERVFAIL, detail="Host not found, try again")
        authentic = name not in self.insecure
        records = tuple(self.records.get((query.rdtype, name), ()))
        if records:
            return Answer(query, Rcode.NOERROR, records, authentic=authentic, canonical_name=name)
        if query.rdtype == "CNAME":
            return Answer(query, Rcode.NODATA, authentic=authentic)
        exists = any(key[1] == name for key in self.records)
        rcode = Rcode.NODATA if exists else Rcode.NXDOMAIN
        return Answer(query, rcode, authentic=authentic, canonical_name=name)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("destination", help="nexthop, e.g. example.com or [mx.example.com]:25")
    parser.add_argument("--level", default="may", help="smtp_tls_security_level")
    parser.add_argument("--policy-maps", default="", help="smtp_tls_policy_maps")
    parser.add_argument(
        "--insecure-mx-policy", default="dane", help="smtp_tls_dane_insecure_mx_policy"
    )
    parser.add_argument("--servername", default="", help="smtp_tls_servername")
    parser.add_argument("--answer", action="append", default=[], help="TYPE NAME DATA")
    parser.add_argument(
        "--insecure", action="append", default=[], help="answers for NAME not validated"
    )
    parser.add_argument("--servfail", action="append", default=[], help="lookups of NAME fail")
    parser.add_argument("--nameserver", action="append", help="live resolver address")
    parser.add_argument("--port", type=int, default=None, help="live resolver port")
    parser.add_argument("--sts-policy", type=Path, help="an MTA-STS policy file to apply")
    parser.add_argument("--sts", action="store_true", help="discover MTA-STS (TXT + HTTPS)")
    parser.add_argument(
        "--tls-required-no", action="store_true", help="message has TLS-Required: no"
    )
    parser.add_argument(
        "--requiretls",
        choices=[a.text for a in tls.RequireTlsAction],
        help="the sender requested REQUIRETLS; the action for this nexthop",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    resolver: CannedResolver | DnsResolver
    if args.answer or args.servfail:
        resolver = CannedResolver(args.answer, args.insecure, args.servfail)
    else:
        resolver = DnsResolver(nameservers=args.nameserver, port=args.port)
    options = tls.TlsOptions(
        smtp_tls_security_level=args.level,
        smtp_tls_policy_maps=args.policy_maps,
        smtp_dns_support_level="dnssec",
        smtp_tls_dane_insecure_mx_policy=args.insecure_mx_policy,
        smtp_tls_servername=args.servername,
    )
    plan_options = PlanOptions(
        smtp_dns_support_level=DnsSupport.DNSSEC, smtp_randomize_addresses=False
    )
    plan = plan_sync(destination.sites(args.destination), resolver, plan_options, random.Random(0))

    sts: tls.StsPolicy | None = None
    domain = plan.sites[0].domain if plan.sites else args.destination
    if args.sts_policy is not None:
        sts = tls.parse_sts_policy(args.sts_policy.read_text(), domain)
    elif args.sts:
        from pyfix_smtp.tls.fetch import fetch_policy

        outcome = tls.discover_sync(
            domain,
            resolve=resolver.lookup,
            fetch=fetch_policy,
            cache=tls.MemoryStsCache(),
            now=time.time(),
        )
        print(f"MTA-STS for {domain}: " + "; ".join(outcome.notes))
        sts = outcome.policy
    requiretls = None
    if args.requiretls:
        requiretls = next(a for a in tls.RequireTlsAction if a.text == args.requiretls)

    if plan.failure is not None:
        print(f"no server to try: {plan.failure}")
    seen: set[tuple[str, int]] = set()
    for site in plan.sites:
        for cand in site.candidates:
            if (cand.hostname, cand.port) in seen:
                continue  # one explanation per host and port
            seen.add((cand.hostname, cand.port))
            target = tls.TlsTarget.from_candidate(site, cand)
            policy = tls.evaluate(
                target,
                options,
                resolve=resolver.lookup,
                tls_required_no=args.tls_required_no,
                requiretls=requiretls,
                sts=sts,
            )
            print(policy.explain())
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
