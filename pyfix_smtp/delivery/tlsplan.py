"""The TLS decisions the core makes per nexthop and per server (sans-IO).

* :func:`requiretls_action` - Postfix ``state->reqtls_level`` for a nexthop:
  ``None`` unless the sender requested REQUIRETLS and ``requiretls_enable``
  is on, else the ``smtp_requiretls_policy`` action for the TLS nexthop name.
* :func:`sts_policy` - native MTA-STS (beyond Postfix, which needs an
  external policy server): discovery for a nexthop domain, its TXT lookup
  and HTTPS fetch done through ``Resolve`` and ``FetchStsPolicy`` effects.
* :func:`server_policy` - the :class:`~pyfix_smtp.tls.policy.TlsPolicy` for
  one candidate server (Postfix smtp_get_effective_tls_level()), TLSA and
  CNAME queries done through ``Resolve`` effects. Policies that needed no
  DNS are remembered across deliveries in the Config's
  :attr:`~pyfix_smtp.delivery.options.DeliveryOptions.memo` (they depend on
  the configuration and the server only), which keeps the per-message cost
  low on busy connections.
"""

from __future__ import annotations

from collections.abc import Generator

from pyfix_smtp.delivery.effects import (
    Effect,
    EffectResult,
    FetchedPolicy,
    FetchStsPolicy,
    IoFailure,
    Resolve,
)
from pyfix_smtp.delivery.options import DeliveryOptions
from pyfix_smtp.dns.records import Answer, Query
from pyfix_smtp.dns.results import Candidate, Site, Source
from pyfix_smtp.tls.mtasts import FetchResult, StsCache, StsFetch, StsPolicy, discover
from pyfix_smtp.tls.policy import MxFacts, TlsPolicy, TlsTarget, evaluate_steps
from pyfix_smtp.tls.requiretls import RequireTlsAction

__all__ = ["requiretls_action", "server_policy", "sts_policy", "target_for"]


def requiretls_action(
    options: DeliveryOptions, *, requested: bool, nexthop_domain: str
) -> RequireTlsAction | None:
    """Postfix smtp_connect_inet()/smtp_connect_local(): the REQUIRETLS action.

    None when REQUIRETLS was not requested or ``requiretls_enable = no``
    (Postfix then uses ``SMTP_REQTLS_POLICY_ACT_DISABLE`` and honours
    ``TLS-Required: no``); otherwise the policy's action, ``disable``
    included.
    """
    policy = options.requiretls_policy
    if not requested or policy is None:
        return None
    action, _why = policy.evaluate(nexthop_domain)
    return action


def target_for(site: Site, candidate: Candidate, *, nexthop: str, domain: str) -> TlsTarget:
    """The TLS view of one candidate server (Postfix's iterator fields)."""
    mx: MxFacts | None = None
    if site.source in (Source.MX, Source.SRV) and site.mx_qname:
        mx = MxFacts(site.mx_qname, site.mx_rname or "", bool(site.mx_authentic))
    unix = candidate.port == 0
    return TlsTarget(
        nexthop=nexthop,
        domain=domain,
        host=candidate.hostname,
        port=None if unix else candidate.port,
        host_qname=candidate.qname or candidate.hostname,
        host_rname=candidate.rname or candidate.qname or candidate.hostname,
        address_authentic=candidate.address_authentic,
        mx=mx,
    )


def server_policy(
    options: DeliveryOptions,
    target: TlsTarget,
    *,
    tls_required_no: bool,
    requiretls: RequireTlsAction | None,
    sts: StsPolicy | None,
) -> Generator[Effect, EffectResult, TlsPolicy]:
    """The TLS policy for *target*; DNS questions become ``Resolve`` effects."""
    memo = options.memo
    key = ("tls", target, tls_required_no, requiretls, sts)
    found = memo.get(key)
    if found is not None:
        assert isinstance(found, TlsPolicy)
        return found
    steps = evaluate_steps(
        target, options.tls, tls_required_no=tls_required_no, requiretls=requiretls, sts=sts
    )
    asked = False
    answer: Answer | None = None
    try:
        query = next(steps)
        while True:
            asked = True
            result = yield Resolve(query)
            if not isinstance(result, Answer):
                raise TypeError(f"Resolve needs an Answer, got {result!r}")
            answer = result
            query = steps.send(answer)
    except StopIteration as stop:
        policy = stop.value
    assert isinstance(policy, TlsPolicy)
    if not asked:
        if len(memo) > 4096:
            memo.clear()
        memo[key] = policy
    return policy


def sts_policy(
    domain: str, *, cache: StsCache, now: float, timeout: float
) -> Generator[Effect, EffectResult, tuple[StsPolicy | None, tuple[str, ...]]]:
    """Native MTA-STS discovery for *domain* (RFC 8461 §3, §5.1).

    Returns the policy to apply (None: no MTA-STS) and notes for the report.
    """
    steps = discover(domain, cache=cache, now=now, fetch_timeout=timeout)
    reply: Answer | FetchResult | None = None
    try:
        effect = next(steps)
        while True:
            if isinstance(effect, Query):
                answer = yield Resolve(effect)
                if not isinstance(answer, Answer):
                    raise TypeError(f"Resolve needs an Answer, got {answer!r}")
                reply = answer
            else:
                reply = yield from _fetch(effect)
            effect = steps.send(reply)
    except StopIteration as stop:
        outcome = stop.value
    return outcome.policy, outcome.notes


def _fetch(request: StsFetch) -> Generator[Effect, EffectResult, FetchResult]:
    result = yield FetchStsPolicy(request.domain, request.timeout, max_bytes=request.max_bytes)
    if isinstance(result, FetchedPolicy):
        return FetchResult(status=result.status, body=result.body, content_type=result.content_type)
    if isinstance(result, FetchResult):
        return result
    if isinstance(result, IoFailure):
        return FetchResult(error=result.reason)
    raise TypeError(f"FetchStsPolicy needs a FetchedPolicy or IoFailure, got {result!r}")
