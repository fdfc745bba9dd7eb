"""The SASL authentication failure cache (``smtp_sasl_auth_cache_name``).

After a server answers AUTH with ``535``, Postfix remembers the failure for
this server host name, username and password, and for
``smtp_sasl_auth_cache_time`` (90 days) fails at once with the remembered
reply instead of trying the known-bad password again. A changed password
misses the cache. Postfix smtp_sasl_auth_cache.c:

* key ``host;username``, where host is the server's host name;
* value ``timestamp;base64(SHA-1(password));status;reply text``;
* an entry is expired when ``timestamp + ttl < now``; an expired, malformed
  or other-password entry is deleted when it is found.

:class:`AuthFailureCache` holds that logic and takes ``now`` as an argument;
the storage is a small :class:`AuthCacheStore` protocol with an in-memory and
a sqlite3 implementation (plug in Redis or similar to share it between
processes or machines).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, runtime_checkable

from pyfix_smtp.errors import ConfigError
from pyfix_smtp.sasl.failures import cached_auth_failed
from pyfix_smtp.status import Failure, Reply, is_enhanced_status

__all__ = [
    "AuthCacheStore",
    "AuthFailureCache",
    "CachedFailure",
    "MemoryAuthCacheStore",
    "SqliteAuthCacheStore",
    "open_auth_cache",
]

log = logging.getLogger("pyfix_smtp.sasl")

PARAMETER = "smtp_sasl_auth_cache_name"

# smtp_sasl_auth_cache_valid_value(): sscanf("%lu;%[^;];%[^;];%[^\n]")
_VALUE_RE = re.compile(r"(\d+);([^;]+);([^;]+);([^\n]+)")


@runtime_checkable
class AuthCacheStore(Protocol):
    """String key/value storage for the failure cache.

    Implementations should not raise on storage trouble; like Postfix, log
    and behave as a miss (the client then simply tries to authenticate).
    """

    def get(self, key: str) -> str | None:
        """The value stored under *key*, or ``None``."""
        ...

    def put(self, key: str, value: str) -> None:
        """Store *value* under *key*, replacing any old value."""
        ...

    def delete(self, key: str) -> None:
        """Remove *key* (no error when absent)."""
        ...


class MemoryAuthCacheStore:
    """An in-process store (a dict); forgets everything when the process ends."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        """The value stored under *key*, or ``None``."""
        return self._data.get(key)

    def put(self, key: str, value: str) -> None:
        """Store *value* under *key*."""
        self._data[key] = value

    def delete(self, key: str) -> None:
        """Remove *key*."""
        self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)


class SqliteAuthCacheStore:
    """A persistent store in one sqlite3 database file, safe for several processes.

    Each statement commits at once. Errors are logged and treated as a miss.
    One object must not be shared between threads; open one per thread.
    """

    __slots__ = ("_db", "path")

    def __init__(self, path: str | Path, *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS sasl_auth_cache"
                " (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
        except sqlite3.Error as exc:
            raise ConfigError(PARAMETER, f"sqlite:{path}", f"cannot open database: {exc}") from exc

    def get(self, key: str) -> str | None:
        """The value stored under *key*, or ``None``."""
        try:
            row = self._db.execute(
                "SELECT value FROM sasl_auth_cache WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.Error as exc:
            log.warning("SASL auth failure map %s: lookup failed for %s: %s", self.path, key, exc)
            return None
        return None if row is None else str(row[0])

    def put(self, key: str, value: str) -> None:
        """Store *value* under *key* (Postfix DICT_FLAG_DUP_REPLACE)."""
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO sasl_auth_cache (key, value) VALUES (?, ?)", (key, value)
            )
        except sqlite3.Error as exc:
            log.warning("SASL auth failure map %s: update failed for %s: %s", self.path, key, exc)

    def delete(self, key: str) -> None:
        """Remove *key*."""
        try:
            self._db.execute("DELETE FROM sasl_auth_cache WHERE key = ?", (key,))
        except sqlite3.Error as exc:
            log.warning("SASL auth failure map %s: entry not deleted: %s: %s", self.path, key, exc)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> SqliteAuthCacheStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class CachedFailure:
    """A remembered AUTH failure.

    Attributes:
        timestamp: when it was stored (seconds, as given to ``record``).
        status: the enhanced status of the server's reply (``"5.7.8"``).
        text: the server's reply text with its code (``"535 5.7.8 ..."``).
    """

    timestamp: int
    status: str
    text: str

    def failure(self, host: str, *, soft_bounce: bool = True) -> Failure:
        """Postfix's "SASL [CACHED] authentication failed" outcome for *host*."""
        return cached_auth_failed(self.status, self.text, host=host, soft_bounce=soft_bounce)


def _key(host: str, username: str) -> str:
    return f"{host};{username}"  # smtp_sasl_auth_cache_make_key()


def _password_hash(password: str) -> str:
    # smtp_sasl_auth_cache_make_pass(): base64(SHA1(password)), unsalted.
    digest = hashlib.sha1(password.encode("utf-8"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


class AuthFailureCache:
    """Remember 535 AUTH failures per (server host name, username, password).

    *ttl* is ``smtp_sasl_auth_cache_time`` in seconds. Time is always passed in.
    """

    __slots__ = ("store", "ttl")

    def __init__(self, store: AuthCacheStore, ttl: float) -> None:
        if ttl < 0:
            raise ConfigError("smtp_sasl_auth_cache_time", ttl, "must not be negative")
        self.store = store
        self.ttl = ttl

    def find(self, host: str, username: str, password: str, *, now: float) -> CachedFailure | None:
        """The remembered failure, or ``None``; stale entries are deleted on the way.

        Postfix smtp_sasl_auth_cache_find(): an expired entry, one for another
        password, or a malformed one is removed.
        """
        key = _key(host, username)
        entry = self.store.get(key)
        if entry is None:
            return None
        match = _VALUE_RE.match(entry)
        if match is None or not is_enhanced_status(match[3]):
            log.warning("bad smtp_sasl_auth_cache entry: %.100s", entry)
            self.store.delete(key)
            return None
        timestamp = int(match[1])
        if timestamp + self.ttl < now or match[2] != _password_hash(password):
            self.store.delete(key)
            return None
        return CachedFailure(timestamp, match[3], match[4])

    def record(self, host: str, username: str, password: str, reply: Reply, *, now: float) -> bool:
        """Remember *reply* if it is a 535; return whether it was stored.

        Postfix smtp_sasl_authenticate(): only ``resp->code == 535`` is cached.
        """
        if reply.code != 535:
            return False
        text = str(reply).replace("\n", " ")
        value = f"{int(now)};{_password_hash(password)};{reply.status};{text}"
        self.store.put(_key(host, username), value)
        return True


def open_auth_cache(name: str, ttl: float) -> AuthFailureCache | None:
    """Build the cache ``smtp_sasl_auth_cache_name`` names, or ``None`` when empty.

    Accepted: ``sqlite:/path/to/file`` (a sqlite3 database we create) and
    ``memory:`` (per process). A leading ``proxy:`` is accepted and ignored
    (Postfix requires it to serialise writers; sqlite locks by itself).
    Postfix's ``btree:``/``lmdb:`` files cannot be used.
    """
    value = name.strip()
    if not value:
        return None
    if any(ch in value for ch in ", \t"):
        raise ConfigError(PARAMETER, name, "contains multiple values")
    table = value.removeprefix("proxy:")
    kind, sep, path = table.partition(":")
    if not sep:
        raise ConfigError(PARAMETER, name, "expected type:name, e.g. sqlite:/path/to/file")
    if kind == "memory":
        return AuthFailureCache(MemoryAuthCacheStore(), ttl)
    if kind == "sqlite":
        if not path:
            raise ConfigError(PARAMETER, name, "sqlite: needs a database file path")
        return AuthFailureCache(SqliteAuthCacheStore(path), ttl)
    raise ConfigError(
        PARAMETER,
        name,
        f"unsupported table type {kind!r}: pyfix_smtp keeps this cache in sqlite; "
        "use sqlite:/path/to/file (or memory:)",
    )
