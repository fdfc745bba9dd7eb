"""Delivering through the public API in integration tests, sync and asyncio alike.

``deliver_mode`` is a fixture parametrized over ``"sync"`` and ``"async"``;
``deliverer`` turns it into one callable, so a test body is written once::

    def test_x(deliverer: Deliverer) -> None:
        report = deliverer(envelope, content, nexthop, config)

Sync runs ``pyfix_smtp.deliver(..., client=Client(...))``, async runs
``pyfix_smtp.deliver_async(..., client=AsyncClient(...))`` in a fresh event
loop. Each call gets its own client without a connection cache (tests must
not leak connections into each other), with a fixed ``own_addresses`` so
best-MX loop detection does not depend on this machine's interfaces.

:func:`check_outcomes` is the invariant every integration test asserts:
exactly one outcome per recipient, in order, and no recipient reported
delivered that the server did not accept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pytest

import pyfix_smtp
from pyfix_smtp import Action, AsyncClient, Client, DeliveryReport, Envelope, RecipientOutcome
from tests.peers.dns import DnsLab

#: Our interface addresses for best-MX loop detection: none of the lab's, and
#: two of them, so smtp(8)'s single-inet_interfaces bind rule does not apply.
OWN_ADDRESSES = ("192.0.2.1", "198.51.100.1")
#: Our host name: distinct from every lab server's name.
MYHOSTNAME = "client.pyfix.test"

DONE = (Action.DELIVERED, Action.RELAYED)


@dataclass(frozen=True)
class Deliverer:
    """Delivers one message through the public API, blocking or with asyncio."""

    mode: str

    def __call__(
        self,
        envelope: Envelope,
        content: object,
        nexthop: str,
        config: pyfix_smtp.Config | None = None,
        *,
        dns: DnsLab | None = None,
        **kwargs: object,
    ) -> DeliveryReport:
        """Deliver and return the report; *dns* points the resolver at a lab."""
        if self.mode == "sync":
            resolver = dns.resolver() if dns is not None else None
            with Client(
                config, resolver=resolver, cache_size=0, own_addresses=OWN_ADDRESSES
            ) as client:
                return pyfix_smtp.deliver(
                    envelope,
                    content,
                    nexthop,
                    config,
                    client=client,
                    **kwargs,  # type: ignore[arg-type]
                )

        async def run() -> DeliveryReport:
            resolver = dns.async_resolver() if dns is not None else None
            async with AsyncClient(
                config, resolver=resolver, cache_size=0, own_addresses=OWN_ADDRESSES
            ) as client:
                return await pyfix_smtp.deliver_async(
                    envelope,
                    content,
                    nexthop,
                    config,
                    client=client,
                    **kwargs,  # type: ignore[arg-type]
                )

        return asyncio.run(run())


@pytest.fixture(params=["sync", "async"])
def deliver_mode(request: pytest.FixtureRequest) -> str:
    """``"sync"`` or ``"async"``."""
    return str(request.param)


@pytest.fixture
def deliverer(deliver_mode: str) -> Deliverer:
    """Delivers through ``pyfix_smtp.deliver`` or ``pyfix_smtp.deliver_async``."""
    return Deliverer(deliver_mode)


def check_outcomes(
    report: DeliveryReport,
    recipients: Sequence[str],
    accepted: Iterable[str],
    *,
    exact: bool = True,
) -> dict[str, RecipientOutcome]:
    """Assert the delivery invariants and return the outcomes by recipient.

    * exactly one outcome per recipient, in the envelope's order;
    * every outcome's action matches its status class (2/4/5);
    * no recipient is reported delivered/relayed that the server did not
      accept (*accepted*: what the server recorded);
    * with *exact*, every accepted recipient is reported delivered/relayed
      too (a server that accepted silently while we report a deferral
      would mean a duplicate delivery on retry).
    """
    assert [o.recipient for o in report] == list(recipients), report.log_lines()
    for outcome in report:
        first = {Action.DELIVERED: "2", Action.RELAYED: "2", Action.DEFERRED: "4"}.get(
            outcome.action, "5"
        )
        assert outcome.status.startswith(first), outcome
    done = {o.recipient for o in report if o.action in DONE}
    accepted_set = set(accepted)
    assert done <= accepted_set, f"reported delivered but not accepted: {done - accepted_set}"
    if exact:
        assert done == accepted_set, f"accepted but not reported: {accepted_set - done}"
    return {o.recipient: o for o in report}


def wait_for(probe: Callable[[], bool], *, timeout: float = 15.0, what: str = "condition") -> None:
    """Poll *probe* until true (asynchronous local delivery by a real server)."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
