"""SASL auth failure cache (Postfix smtp_sasl_auth_cache.c) with explicit time."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyfix_smtp.errors import ConfigError
from pyfix_smtp.sasl.cache import (
    AuthCacheStore,
    AuthFailureCache,
    MemoryAuthCacheStore,
    SqliteAuthCacheStore,
    open_auth_cache,
)
from pyfix_smtp.status import Reply

DAY = 86400.0
TTL = 90 * DAY  # smtp_sasl_auth_cache_time default
T0 = 1_700_000_000.0
REJECT = Reply(535, "5.7.8", ("5.7.8 Error: authentication failed: authentication failure",))


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuthCacheStore]:
    if request.param == "memory":
        yield MemoryAuthCacheStore()
    else:
        with SqliteAuthCacheStore(tmp_path / "auth.sqlite") as db:
            yield db


def test_key_and_value_format(store: AuthCacheStore) -> None:
    cache = AuthFailureCache(store, TTL)
    assert cache.record("mx.example", "alice", "wrong", REJECT, now=T0)
    digest = base64.b64encode(hashlib.sha1(b"wrong").digest()).decode()
    assert store.get("mx.example;alice") == (
        f"{int(T0)};{digest};5.7.8;535 5.7.8 Error: authentication failed: authentication failure"
    )


def test_hit_miss_and_password_change(store: AuthCacheStore) -> None:
    cache = AuthFailureCache(store, TTL)
    assert cache.find("mx.example", "alice", "wrong", now=T0) is None  # miss: nothing stored
    cache.record("mx.example", "alice", "wrong", REJECT, now=T0)
    hit = cache.find("mx.example", "alice", "wrong", now=T0 + DAY)
    assert hit is not None
    assert (hit.timestamp, hit.status) == (int(T0), "5.7.8")
    assert hit.text == "535 5.7.8 Error: authentication failed: authentication failure"
    # Another user or host: miss.
    assert cache.find("mx.example", "bob", "wrong", now=T0) is None
    assert cache.find("mx2.example", "alice", "wrong", now=T0) is None
    # A changed password misses, and the stale entry is removed.
    assert cache.find("mx.example", "alice", "fixed", now=T0 + DAY) is None
    assert store.get("mx.example;alice") is None


def test_expiry_boundary(store: AuthCacheStore) -> None:
    cache = AuthFailureCache(store, TTL)
    cache.record("mx", "u", "p", REJECT, now=T0)
    # Postfix: expired when "time_stamp + ttl < now", so exactly ttl is still valid.
    assert cache.find("mx", "u", "p", now=T0 + TTL) is not None
    assert cache.find("mx", "u", "p", now=T0 + TTL + 1) is None
    assert store.get("mx;u") is None  # expired entry deleted
    assert cache.find("mx", "u", "p", now=T0) is None  # and stays gone


def test_zero_ttl(store: AuthCacheStore) -> None:
    cache = AuthFailureCache(store, 0)
    cache.record("mx", "u", "p", REJECT, now=T0)
    assert cache.find("mx", "u", "p", now=T0) is not None
    assert cache.find("mx", "u", "p", now=T0 + 1) is None


@pytest.mark.parametrize(
    "reply",
    [
        Reply(454, "4.7.0", ("4.7.0 Temporary authentication failure",)),
        Reply(534, "5.7.9", ("5.7.9 Authentication mechanism is too weak",)),
        Reply(554, "5.0.0", ("5.0.0 no",)),
    ],
)
def test_only_535_is_cached(store: AuthCacheStore, reply: Reply) -> None:
    cache = AuthFailureCache(store, TTL)
    assert not cache.record("mx", "u", "p", reply, now=T0)
    assert cache.find("mx", "u", "p", now=T0) is None


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "123;hash;5.7.8",  # no text
        "123;hash;9.9.9;535 text",  # invalid status
        "abc;hash;5.7.8;535 text",
    ],
)
def test_malformed_entry_is_removed(
    store: AuthCacheStore, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    store.put("mx;u", value)
    cache = AuthFailureCache(store, TTL)
    with caplog.at_level(logging.WARNING, logger="pyfix_smtp.sasl"):
        assert cache.find("mx", "u", "p", now=T0) is None
    assert "bad smtp_sasl_auth_cache entry" in caplog.text
    assert store.get("mx;u") is None


def test_hit_gives_postfix_failure(store: AuthCacheStore) -> None:
    cache = AuthFailureCache(store, TTL)
    cache.record("mx.example", "u", "p", REJECT, now=T0)
    hit = cache.find("mx.example", "u", "p", now=T0)
    assert hit is not None
    soft = hit.failure("mx.example")
    assert str(soft) == (
        "4.7.8 SASL [CACHED] authentication failed; server mx.example said: "
        "535 5.7.8 Error: authentication failed: authentication failure"
    )
    assert hit.failure("mx.example", soft_bounce=False).status == "5.7.8"


def test_text_keeps_semicolons(store: AuthCacheStore) -> None:
    cache = AuthFailureCache(store, TTL)
    reply = Reply(535, "5.7.8", ("5.7.8 bad; really bad",))
    cache.record("mx", "u", "p", reply, now=T0)
    hit = cache.find("mx", "u", "p", now=T0)
    assert hit is not None
    assert hit.text == "535 5.7.8 bad; really bad"


def test_sqlite_persists_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "auth.sqlite"
    with SqliteAuthCacheStore(path) as db:
        AuthFailureCache(db, TTL).record("mx", "u", "p", REJECT, now=T0)
    with SqliteAuthCacheStore(path) as db:
        assert AuthFailureCache(db, TTL).find("mx", "u", "p", now=T0 + DAY) is not None


def test_sqlite_errors_are_misses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = SqliteAuthCacheStore(tmp_path / "auth.sqlite")
    db.close()
    with caplog.at_level(logging.WARNING, logger="pyfix_smtp.sasl"):
        assert db.get("k") is None
        db.put("k", "v")
        db.delete("k")
    assert "lookup failed" in caplog.text
    assert "update failed" in caplog.text


def test_sqlite_unopenable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot open database"):
        SqliteAuthCacheStore(tmp_path / "missing-dir" / "auth.sqlite")


def test_negative_ttl() -> None:
    with pytest.raises(ConfigError, match="smtp_sasl_auth_cache_time"):
        AuthFailureCache(MemoryAuthCacheStore(), -1)


def test_open_auth_cache(tmp_path: Path) -> None:
    assert open_auth_cache("", TTL) is None
    memory = open_auth_cache("memory:", TTL)
    assert memory is not None
    assert isinstance(memory.store, MemoryAuthCacheStore)
    assert memory.ttl == TTL
    for name in (f"sqlite:{tmp_path}/a.sqlite", f"proxy:sqlite:{tmp_path}/b.sqlite"):
        cache = open_auth_cache(name, TTL)
        assert cache is not None
        assert isinstance(cache.store, SqliteAuthCacheStore)
        cache.store.close()
    assert (tmp_path / "b.sqlite").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("proxy:btree:/var/lib/postfix/sasl_auth_cache", "unsupported table type 'btree'"),
        ("lmdb:/x", "unsupported table type 'lmdb'"),
        ("sqlite:", "needs a database file path"),
        ("sqlite:/a, sqlite:/b", "multiple values"),
        ("/var/lib/cache", "expected type:name"),
    ],
)
def test_open_auth_cache_errors(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        open_auth_cache(name, TTL)
    assert info.value.parameter == "smtp_sasl_auth_cache_name"
