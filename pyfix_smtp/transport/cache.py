"""The connection cache: live connections kept open for the next delivery.

Postfix's smtp(8) hands an idle session to scache(8) under two labels, the
nexthop (the first good session of a destination) and the endpoint
(``host[address]:port``); a later delivery asks for either and reuses the
connection after an ``RSET`` probe (Postfix smtp_reuse.c, scache_multi.c).
The delivery core decides *what* to store and *under which labels*
(:class:`~pyfix_smtp.delivery.effects.CacheSave`,
:class:`~pyfix_smtp.delivery.effects.CacheTake`); this module only keeps the
live connections with the core's :class:`~pyfix_smtp.delivery.effects.CachedSession`.

* One connection may be stored under several labels; taking it under any of
  them removes it from all (it becomes the caller's current connection).
* A label may hold several connections (an asyncio client delivering to the
  same nexthop over 20 connections at once stores 20); the most recently
  stored one is taken first, as scache_multi does.
* An entry expires at ``session.expires`` (``smtp_connection_cache_time_limit``)
  or ``session.reuse_deadline`` (``smtp_connection_reuse_time_limit``),
  whichever comes first; expired entries are closed without ``QUIT`` (as
  scache(8) closes them) whenever the cache is used, by :meth:`sweep`, or by
  the asyncio client's timer.
* The cache is bounded: storing into a full cache closes the oldest entry.

Not thread-safe: use one cache per thread (a :class:`~pyfix_smtp.transport.client.Client`
per thread) or one per event loop. Connections cannot move between event
loops, so every asyncio client keeps its own cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pyfix_smtp.delivery.effects import CachedSession

__all__ = ["DEFAULT_MAX_SIZE", "ConnectionCache"]

DEFAULT_MAX_SIZE = 256
"""Connections a cache keeps at most (the oldest is closed to make room)."""

C = TypeVar("C")


@dataclass(slots=True, eq=False)
class _Entry(Generic[C]):
    connection: C
    session: CachedSession
    labels: tuple[str, ...]
    deadline: float  # min(expires, reuse_deadline)


class ConnectionCache(Generic[C]):
    """Live connections of type *C* with the core's session state, under labels.

    Args:
        close: closes one connection (``polite=True`` when the user closes
            the cache, False when an entry expired or was evicted).
        max_size: the most connections kept at once.
        clock: wall-clock time, the clock of ``CachedSession.expires``
            (the core's ``GetTime`` result, ``time.time()``).
    """

    def __init__(
        self,
        close: Callable[[C, bool], None],
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_size < 0:
            raise ValueError(f"max_size must be >= 0, got {max_size}")
        self._close = close
        self._clock = clock
        self.max_size = max_size
        self._labels: dict[str, list[_Entry[C]]] = {}
        self._entries: dict[int, _Entry[C]] = {}  # id -> entry, in insertion order
        self._earliest = float("inf")  # no entry expires before this

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def next_expiry(self) -> float | None:
        """The earliest time an entry expires, or None when the cache is empty."""
        if not self._entries:
            return None
        return min(e.deadline for e in self._entries.values())  # exact, after drops

    @property
    def expiry_bound(self) -> float | None:
        """No entry expires before this (cheap: may be earlier than :attr:`next_expiry`)."""
        if not self._entries:
            return None
        return self._earliest

    def labels(self) -> list[str]:
        """The labels that hold at least one connection (for logs and tests)."""
        return [label for label, entries in self._labels.items() if entries]

    def save(self, labels: Iterable[str], session: CachedSession, connection: C) -> None:
        """Store *connection* under every label of *labels*.

        With no label or ``max_size == 0`` nothing can find the connection
        again, so it is closed at once.
        """
        names = tuple(dict.fromkeys(labels))
        now = self._clock()
        self._sweep(now)
        deadline = min(session.expires, session.reuse_deadline)
        if not names or self.max_size == 0 or deadline <= now:
            self._close(connection, False)
            return
        while len(self._entries) >= self.max_size:
            oldest = next(iter(self._entries.values()))
            self._drop(oldest)
            self._close(oldest.connection, False)
        entry = _Entry(connection, session, names, deadline)
        self._entries[id(entry)] = entry
        self._earliest = min(self._earliest, deadline)
        for name in names:
            self._labels.setdefault(name, []).append(entry)

    def take(self, labels: Iterable[str]) -> tuple[C, CachedSession] | None:
        """Remove and return the newest live connection under the first label that has one."""
        if not self._entries:
            return None
        self._sweep(self._clock())
        for name in labels:
            entries = self._labels.get(name)
            if entries:
                entry = entries[-1]
                self._drop(entry)
                return entry.connection, entry.session
        return None

    def sweep(self) -> int:
        """Close every expired entry now; returns how many were closed."""
        return self._sweep(self._clock())

    def close_all(self, *, polite: bool = True) -> None:
        """Close every cached connection (``polite``: say QUIT first, best effort)."""
        entries = list(self._entries.values())
        self._entries.clear()
        self._labels.clear()
        self._earliest = float("inf")
        for entry in entries:
            self._close(entry.connection, polite)

    def _sweep(self, now: float) -> int:
        if now < self._earliest:
            return 0
        expired = [e for e in self._entries.values() if e.deadline <= now]
        for entry in expired:
            self._drop(entry)
            self._close(entry.connection, False)
        self._earliest = min((e.deadline for e in self._entries.values()), default=float("inf"))
        return len(expired)

    def _drop(self, entry: _Entry[C]) -> None:
        del self._entries[id(entry)]
        for name in entry.labels:
            entries = self._labels.get(name)
            if entries is None:
                continue
            entries.remove(entry)
            if not entries:
                del self._labels[name]
