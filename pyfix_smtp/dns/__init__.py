"""MX/SRV/address resolution with Postfix's ordering, limits and DNSSEC tracking.

* :mod:`pyfix_smtp.dns.plan` - the sans-IO planner: destinations -> sites ->
  ordered candidate addresses (a generator that yields queries).
* :mod:`pyfix_smtp.dns.options` / :mod:`pyfix_smtp.dns.results` - its input
  options and output values.
* :mod:`pyfix_smtp.dns.resolve` - resolver adapters over dnspython (sync and
  asyncio) and the system resolver.
* :mod:`pyfix_smtp.dns.runner` - :func:`plan_sync` / :func:`plan_async`.
* :mod:`pyfix_smtp.dns.records` - the query and answer types.
* :mod:`pyfix_smtp.dns.probe` - ``dnssec_probe``: is DNSSEC validation available?

The I/O modules (``resolve``, ``runner``) are imported on first use, so
importing the planner never imports sockets or asyncio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from pyfix_smtp.dns.options import AddressPreference, DnsSupport, Family, HostLookup, PlanOptions
from pyfix_smtp.dns.plan import (
    AsyncResolver,
    Nexthop,
    Resolver,
    final_failure,
    plan,
    plan_batched,
    plan_site,
    plan_site_batched,
)
from pyfix_smtp.dns.records import Answer, Query, Rcode
from pyfix_smtp.dns.results import Candidate, FinalFailure, Origin, Plan, Site, Source

if TYPE_CHECKING:
    from pyfix_smtp.dns.resolve import (
        AsyncDnsResolver,
        AsyncNativeResolver,
        DnsResolver,
        NativeResolver,
    )
    from pyfix_smtp.dns.runner import plan_async, plan_sync

__all__ = [
    "AddressPreference",
    "Answer",
    "AsyncDnsResolver",
    "AsyncNativeResolver",
    "AsyncResolver",
    "Candidate",
    "DnsResolver",
    "DnsSupport",
    "Family",
    "FinalFailure",
    "HostLookup",
    "NativeResolver",
    "Nexthop",
    "Origin",
    "Plan",
    "PlanOptions",
    "Query",
    "Rcode",
    "Resolver",
    "Site",
    "Source",
    "final_failure",
    "plan",
    "plan_async",
    "plan_batched",
    "plan_site",
    "plan_site_batched",
    "plan_sync",
]

_LAZY = {
    "AsyncDnsResolver": "pyfix_smtp.dns.resolve",
    "AsyncNativeResolver": "pyfix_smtp.dns.resolve",
    "DnsResolver": "pyfix_smtp.dns.resolve",
    "NativeResolver": "pyfix_smtp.dns.resolve",
    "plan_async": "pyfix_smtp.dns.runner",
    "plan_sync": "pyfix_smtp.dns.runner",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyfix_smtp.dns' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
