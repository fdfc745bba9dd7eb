"""Where the servers and the clients run: one CPU each, so runs are comparable.

On this kind of machine (2 virtual CPUs) a ping-pong protocol runs about three
times faster when client and server happen to share a CPU (a wake-up on the
same CPU is a context switch; across CPUs it waits for the other CPU to wake),
and the scheduler picks either placement from run to run: unpinned figures
come out bimodal. So the servers (smtp-sink, NSD, unbound) are started on the
first allowed CPU and every measured client on the second. Children inherit the
affinity of the thread that spawns them, so :func:`on` sets it around the spawn
only. With fewer than two CPUs, or ``--no-pin``, nothing is pinned.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """CPU sets for servers and clients (None: leave to the scheduler)."""

    server: frozenset[int] | None = None
    client: frozenset[int] | None = None

    @classmethod
    def split(cls) -> Placement:
        """Servers on the first allowed CPU, clients on the second."""
        allowed = sorted(os.sched_getaffinity(0))
        if len(allowed) < 2:
            return cls()
        return cls(frozenset({allowed[0]}), frozenset({allowed[1]}))

    def describe(self) -> str:
        """For the machine facts."""
        if self.server is None or self.client is None:
            return "not pinned (scheduler's choice)"
        return (
            f"servers on CPU {','.join(map(str, sorted(self.server)))}, "
            f"clients on CPU {','.join(map(str, sorted(self.client)))}"
        )


@contextlib.contextmanager
def on(cpus: frozenset[int] | None) -> Iterator[None]:
    """Run the block (and the processes it spawns) on *cpus*."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
