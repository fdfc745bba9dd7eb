"""dnspython baselines for scenario 8 (DNS planning for many domains).

``run``: the plain sequential loop the issue names: for each domain, resolve
MX, then the A records of every MX host, one query at a time, with a
``dns.resolver.Resolver`` pointed at the local unbound (no cache).
``run_async``: the same lookups with ``dns.asyncresolver`` and
``asyncio.gather``, ``job.connections`` domains at a time: what plain
dnspython reaches with concurrency (a reference, not a target).
"""

from __future__ import annotations

import asyncio

import dns.asyncresolver
import dns.resolver

from benchmarks.workload import Job

LIFETIME = 10.0


def _resolver(job: Job) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = job.dns_port
    resolver.lifetime = LIFETIME
    return resolver


def _async_resolver(job: Job) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = job.dns_port
    resolver.lifetime = LIFETIME
    return resolver


def run(job: Job) -> int:
    """Resolve MX then A for every domain in turn; count domains with an address."""
    resolver = _resolver(job)
    found = 0
    for domain in job.domains:
        mx = resolver.resolve(domain, "MX")
        hosts = [r.exchange.to_text() for r in sorted(mx, key=lambda r: r.preference)]
        addresses = [a.to_text() for host in hosts for a in resolver.resolve(host, "A")]
        found += 1 if addresses else 0
    return found


async def _domain(
    resolver: dns.asyncresolver.Resolver, domain: str, gate: asyncio.Semaphore
) -> int:
    async with gate:
        mx = await resolver.resolve(domain, "MX")
        hosts = [r.exchange.to_text() for r in sorted(mx, key=lambda r: r.preference)]
        answers = await asyncio.gather(*(resolver.resolve(h, "A") for h in hosts))
        return 1 if any(len(a) for a in answers) else 0


async def run_async(job: Job) -> int:
    """The same lookups, ``job.connections`` domains concurrently."""
    resolver = _async_resolver(job)
    gate = asyncio.Semaphore(job.connections)
    results = await asyncio.gather(*(_domain(resolver, d, gate) for d in job.domains))
    return sum(results)
