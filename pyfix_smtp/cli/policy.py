"""``pyfix-smtp policy DESTINATION``: the TLS policy for each server, and why.

The destination is planned as ``plan`` does; each distinct server (host,
port and DNSSEC facts) then gets :func:`pyfix_smtp.tls.evaluate` with the
TLSA lookups answered by the resolver, exactly as the delivery core asks
them. With ``smtp_mta_sts_enable = yes`` the MTA-STS policy of the nexthop
domain is discovered first (TXT record, then the HTTPS policy file) and
applied. Exit status: 0 when at least one server is usable, 75 when none is
(every server would be skipped, or the plan failed softly), 69 when the plan
failed for good.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pyfix_smtp.cli.common import (
    EX_OK,
    EX_TEMPFAIL,
    Environment,
    destinations,
    discover_sts,
    make_plan,
    status_for_failure,
)
from pyfix_smtp.cli.plan import failure_json

if TYPE_CHECKING:
    from pyfix_smtp.destination import Destination
    from pyfix_smtp.dns.results import Candidate, Plan, Site
    from pyfix_smtp.tls.mtasts import StsOutcome, StsPolicy
    from pyfix_smtp.tls.policy import TlsPolicy, TlsTarget

__all__ = ["ServerPolicy", "policy_json", "run", "server_policies"]


@dataclass
class ServerPolicy:
    """One evaluated server: its TLS policy and the addresses it applies to."""

    site: Site
    target: TlsTarget
    policy: TlsPolicy
    candidates: list[Candidate] = field(default_factory=list)


def _target(env: Environment, site: Site, cand: Candidate) -> TlsTarget:
    from pyfix_smtp.delivery.tlsplan import target_for

    nexthop = site.nexthop
    if nexthop.startswith("inet:"):
        nexthop = nexthop[5:]
    unix = cand.port == 0
    # Postfix smtp_connect_local(): $myhostname names a UNIX-domain LMTP server.
    domain = env.config.myhostname if unix else site.domain
    return target_for(site, cand, nexthop=nexthop, domain=domain)


def server_policies(
    env: Environment,
    plan: Plan,
    dests: tuple[Destination, ...],
    *,
    on_sts: list[tuple[str, StsOutcome]] | None = None,
) -> list[ServerPolicy]:
    """Evaluate the TLS policy of every distinct server in *plan*, in plan order.

    MTA-STS outcomes (when enabled) are appended to *on_sts* as
    ``(domain, outcome)``.
    """
    from pyfix_smtp.tls.levels import TlsLevel
    from pyfix_smtp.tls.options import TlsOptions
    from pyfix_smtp.tls.policy import Reason, evaluate

    options = TlsOptions.from_config(env.config)
    found: dict[TlsTarget, ServerPolicy] = {}
    for site, dest in zip(plan.sites, dests, strict=False):
        if not site.candidates:
            continue
        sts: StsPolicy | None = None
        outcome = discover_sts(env, dest)
        if outcome is not None:
            if on_sts is not None:
                on_sts.append((dest.host, outcome))
            sts = outcome.policy
        for cand in site.candidates:
            target = _target(env, site, cand)
            entry = found.get(target)
            if entry is None:
                policy = evaluate(target, options, resolve=env.lookup, sts=sts)
                if target.port is None and policy.level is TlsLevel.MAY and not policy.skip:
                    # Postfix smtp_connect_local(): no opportunistic TLS on a UNIX socket.
                    reason = Reason(
                        "smtp_connect_local",
                        "opportunistic TLS encryption is not appropriate for unix-domain"
                        " destinations: level none",
                    )
                    policy = replace(policy, level=TlsLevel.NONE, reasons=(*policy.reasons, reason))
                entry = found[target] = ServerPolicy(site, target, policy)
            entry.candidates.append(cand)
    return list(found.values())


def policy_json(item: ServerPolicy) -> dict[str, object]:
    """One server's policy as JSON."""
    policy = item.policy
    return {
        "nexthop": item.target.nexthop,
        "host": item.target.host,
        "port": item.target.port,
        "addresses": [c.address for c in item.candidates],
        "level": str(policy.level),
        "skip": policy.skip,
        "failure": failure_json(policy.failure),
        "reasons": [{"source": r.source, "text": r.text} for r in policy.reasons],
        "sni": policy.sni,
        "match_names": [str(n) for n in policy.match_names],
        "tlsa": [str(a) for a in policy.associations],
        "protocols": policy.protocols,
        "cipher_grade": policy.cipher_grade,
        "mta_sts_mx": list(policy.mx_patterns),
    }


def run(env: Environment) -> int:
    """Explain the TLS policy of every server of the destination."""
    args = env.args
    dests = destinations(env.config, args.destination)
    plan = make_plan(env, dests, args.seed)
    sts: list[tuple[str, StsOutcome]] = []
    items = server_policies(env, plan, dests, on_sts=sts)
    if args.json:
        data = {
            "nexthop": args.destination,
            "mta_sts": [
                {
                    "domain": domain,
                    "source": o.source,
                    "mode": o.policy.mode.value if o.policy is not None else None,
                    "mx": list(o.policy.mx) if o.policy is not None else [],
                    "notes": list(o.notes),
                    "failure": o.failure,
                }
                for domain, o in sts
            ],
            "servers": [policy_json(item) for item in items],
            "plan_failure": failure_json(plan.failure),
        }
        env.print(json.dumps(data, indent=2))
    else:
        for domain, outcome in sts:
            env.print(f"MTA-STS {domain}: " + "; ".join(outcome.notes))
        for item in items:
            if sts or item is not items[0]:
                env.print()
            env.print(item.policy.explain())
            env.print("   addresses: " + ", ".join(c.address for c in item.candidates))
        if plan.failure is not None:
            if items:
                env.print()
            env.print(f"no server to try: {plan.failure}")
    if plan.failure is not None and not items:
        return status_for_failure(plan.failure.soft)
    if not any(not item.policy.skip for item in items):
        return EX_TEMPFAIL
    return EX_OK
