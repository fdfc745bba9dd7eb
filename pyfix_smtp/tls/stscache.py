"""MTA-STS policy caches: in memory and in sqlite3 (RFC 8461 §5.1 state).

Both implement :class:`pyfix_smtp.tls.mtasts.StsCache`. A deployment with
many processes or machines can plug in a shared store (Redis, a database)
through the same three methods.
"""

from __future__ import annotations

import sqlite3
import threading

from pyfix_smtp.errors import TlsPolicyError
from pyfix_smtp.tls.mtasts import CachedSts, parse_sts_policy

__all__ = ["MemoryStsCache", "SqliteStsCache"]


class MemoryStsCache:
    """An in-process cache (a dict)."""

    def __init__(self) -> None:
        self._entries: dict[str, CachedSts] = {}

    def get(self, domain: str) -> CachedSts | None:
        """The entry for *domain*, or None."""
        return self._entries.get(domain.lower())

    def put(self, domain: str, entry: CachedSts) -> None:
        """Store the entry."""
        self._entries[domain.lower()] = entry

    def delete(self, domain: str) -> None:
        """Forget *domain*."""
        self._entries.pop(domain.lower(), None)

    def __len__(self) -> int:
        return len(self._entries)


class SqliteStsCache:
    """A persistent cache in an sqlite3 database (shared by processes on one host).

    The policy text is stored and parsed again on :meth:`get`.
    """

    _SCHEMA = (
        "CREATE TABLE IF NOT EXISTS mta_sts (domain TEXT PRIMARY KEY, id TEXT NOT NULL,"
        " fetched REAL NOT NULL, policy TEXT NOT NULL)"
    )

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute(self._SCHEMA)

    def get(self, domain: str) -> CachedSts | None:
        """The entry for *domain*; a row whose policy no longer parses is dropped."""
        key = domain.lower()
        with self._lock:
            row = self._db.execute(
                "SELECT id, fetched, policy FROM mta_sts WHERE domain = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        try:
            policy = parse_sts_policy(row[2], key)
        except TlsPolicyError:
            self.delete(key)
            return None
        return CachedSts(policy, str(row[0]), float(row[1]))

    def put(self, domain: str, entry: CachedSts) -> None:
        """Store the entry (its policy text)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO mta_sts (domain, id, fetched, policy) VALUES (?, ?, ?, ?)",
                (domain.lower(), entry.id, entry.fetched, entry.policy.text),
            )

    def delete(self, domain: str) -> None:
        """Forget *domain*."""
        with self._lock:
            self._db.execute("DELETE FROM mta_sts WHERE domain = ?", (domain.lower(),))

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
