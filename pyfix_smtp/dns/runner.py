"""Tiny drivers that run the sans-IO planner with a resolver.

:func:`plan_sync` asks one query at a time, in Postfix's order.
:func:`plan_async` runs the batched planner and answers each batch of
independent queries concurrently (``asyncio.gather``); the plan is the same.
The loops are generic (:func:`run_sync`, :func:`run_async`), so any
planner-style generator (a caller's own, or the delivery core) can use them.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from pyfix_smtp.dns.plan import (
    AsyncResolver,
    BatchSteps,
    Nexthop,
    Plan,
    PlanOptions,
    Resolver,
    Steps,
    plan,
    plan_batched,
)
from pyfix_smtp.dns.records import Answer, Query

__all__ = ["plan_async", "plan_sync", "run_async", "run_sync"]

T = TypeVar("T")


def run_sync(steps: Steps[T], lookup: Callable[[Query], Answer]) -> T:
    """Drive a one-query-at-a-time generator with a blocking *lookup*."""
    try:
        query = next(steps)
        while True:
            query = steps.send(lookup(query))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def run_async(steps: BatchSteps[T], lookup: Callable[[Query], Awaitable[Answer]]) -> T:
    """Drive a batched generator; the queries of one batch run concurrently."""
    try:
        batch = next(steps)
        while True:
            if len(batch) == 1:
                answers: tuple[Answer, ...] = (await lookup(batch[0]),)
            else:
                answers = tuple(await asyncio.gather(*(lookup(q) for q in batch)))
            batch = steps.send(answers)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def plan_sync(
    destinations: Sequence[Nexthop],
    resolver: Resolver,
    options: PlanOptions | None = None,
    rng: random.Random | None = None,
) -> Plan:
    """Plan *destinations* with a blocking resolver.

    *rng* defaults to a fresh ``random.Random()``; pass a seeded one for a
    reproducible order.
    """
    steps = plan(destinations, options or PlanOptions(), rng or random.Random())
    return run_sync(steps, resolver.lookup)


async def plan_async(
    destinations: Sequence[Nexthop],
    resolver: AsyncResolver,
    options: PlanOptions | None = None,
    rng: random.Random | None = None,
) -> Plan:
    """Plan *destinations* with an asyncio resolver (concurrent lookups)."""
    steps = plan_batched(destinations, options or PlanOptions(), rng or random.Random())
    return await run_async(steps, resolver.lookup)
