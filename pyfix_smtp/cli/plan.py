"""``pyfix-smtp plan DESTINATION``: the servers smtp(8) would try, in order.

Text output is one block per site (the nexthop, then fallback relays) with a
numbered table of candidates; ``--json`` prints the same facts as one JSON
object. The exit status is 0 when there is a server to try, else 75 or 69
for the plan's soft or hard failure (Postfix's status and text are printed).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pyfix_smtp.cli.common import (
    EX_OK,
    Environment,
    destinations,
    make_plan,
    status_for_failure,
)

if TYPE_CHECKING:
    from pyfix_smtp.dns.results import Candidate, Plan, Site
    from pyfix_smtp.status import Failure

__all__ = ["candidate_json", "failure_json", "plan_json", "render_plan", "run"]

_SOURCE_TEXT = {
    "mx": "MX lookup",
    "implicit-mx": "no MX record: the domain's own addresses (implicit MX)",
    "host": "host lookup, no MX",
    "srv": "SRV lookup",
    "unix": "UNIX-domain socket",
}


def _yes_no(value: bool | None) -> str:
    return "n/a" if value is None else "yes" if value else "no"


def failure_json(failure: Failure | None) -> dict[str, object] | None:
    """A failure as JSON: status, reason and whether it is soft."""
    if failure is None:
        return None
    return {"status": failure.status, "reason": failure.reason, "soft": failure.soft}


def candidate_json(cand: Candidate) -> dict[str, object]:
    """One candidate address as JSON."""
    return {
        "host": cand.hostname,
        "address": cand.address,
        "port": cand.port,
        "family": cand.family.value,
        "preference": cand.preference,
        "best_mx": cand.best_mx,
        "from_fallback": cand.from_fallback,
        "mx_authentic": cand.mx_authentic,
        "address_authentic": cand.address_authentic,
        "authentic": cand.authentic,
        "qname": cand.qname,
        "cname_chain": list(cand.cname_chain),
        "origin": cand.origin.value,
        "ttl": cand.ttl,
        "weight": cand.weight,
        "endpoint": cand.endpoint,
    }


def _site_json(site: Site) -> dict[str, object]:
    return {
        "nexthop": site.nexthop,
        "domain": site.domain,
        "port": site.port,
        "service": site.service,
        "source": site.source.value,
        "is_fallback": site.is_fallback,
        "final": site.final,
        "mx_qname": site.mx_qname,
        "mx_authentic": site.mx_authentic,
        "i_am_mx": site.i_am_mx,
        "loop_detection": site.loop_detection,
        "candidates": [candidate_json(c) for c in site.candidates],
        "spare": [candidate_json(c) for c in site.spare],
        "failure": failure_json(site.failure),
        "warnings": list(site.warnings),
    }


def plan_json(nexthop: str, protocol: str, plan: Plan) -> dict[str, object]:
    """The whole plan as JSON."""
    return {
        "nexthop": nexthop,
        "protocol": protocol,
        "sites": [_site_json(s) for s in plan.sites],
        "failure": failure_json(plan.failure),
        "best_mx_transport": plan.best_mx_transport,
        "warnings": list(plan.warnings),
    }


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def render_plan(plan: Plan, *, dnssec: bool = True) -> list[str]:
    """The plan as text lines.

    With *dnssec* (``smtp_dns_support_level = dnssec``) the DNSSEC status of
    each MX/SRV RRset and each candidate is shown; otherwise it was not asked.
    """
    lines: list[str] = []
    for site in plan.sites:
        kind = "fallback relay" if site.is_fallback else "nexthop"
        how = _SOURCE_TEXT.get(site.source.value, site.source.value)
        head = f"{kind} {site.nexthop}: {how}"
        if dnssec and site.mx_authentic is not None:
            record = "SRV" if site.source.value == "srv" else "MX"
            head += f", {record} RRset DNSSEC-validated: {_yes_no(site.mx_authentic)}"
        lines.append(head)
        if site.candidates:
            rows = [["#", "pref", "host", "address", "port"] + (["dnssec"] if dnssec else [])]
            for n, cand in enumerate(site.candidates, 1):
                row = [
                    str(n),
                    str(cand.preference),
                    cand.hostname,
                    cand.address,
                    str(cand.port) if cand.port else "-",
                ]
                if dnssec:
                    row.append("-" if cand.port == 0 else _yes_no(cand.authentic))
                rows.append(row)
            lines += _table(rows)
        for cand in site.spare:
            lines.append(f"  beyond smtp_mx_address_limit: {cand.endpoint}")
        chains = {(c.qname, c.cname_chain) for c in site.candidates if c.cname_chain}
        for qname, chain in sorted(chains):
            lines.append(f"  {qname}: CNAME {' -> '.join(chain)}")
        if site.failure is not None:
            lines.append(f"  no server: {site.failure}")
        if site.i_am_mx:
            lines.append("  this host is an MX: the list ends before our own preference")
        for warning in site.warnings:
            lines.append(f"  warning: {warning}")
    for warning in plan.warnings:
        lines.append(f"warning: {warning}")
    if plan.failure is not None:
        lines.append(f"delivery would fail: {plan.failure}")
    if plan.best_mx_transport:
        lines.append(f"mail would go to best_mx_transport {plan.best_mx_transport}")
    return lines


def run(env: Environment) -> int:
    """Print the plan; 0 with a server to try, else 75 (soft) or 69 (hard)."""
    args = env.args
    plan = make_plan(env, destinations(env.config, args.destination), args.seed)
    if args.json:
        env.print(json.dumps(plan_json(args.destination, env.config.protocol, plan), indent=2))
    else:
        dnssec = env.config.smtp_dns_support_level.lower() == "dnssec"
        for line in render_plan(plan, dnssec=dnssec):
            env.print(line)
    if plan.failure is not None:
        return status_for_failure(plan.failure.soft)
    return EX_OK
