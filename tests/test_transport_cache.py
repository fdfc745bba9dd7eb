"""ConnectionCache: labels, expiry, bounds (the live connections are tokens here).

The cache only stores objects and calls ``close`` on them, so these tests
use plain strings as connections and a settable clock; the drivers' tests
(test_transport_drivers.py) cache real sockets and streams.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyfix_smtp.delivery.effects import CachedSession, Endpoint
from pyfix_smtp.transport.cache import ConnectionCache

ENDPOINT = Endpoint("mx.example.net", "192.0.2.25", 25)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def session(
    expires: float, reuse_deadline: float = 10_000.0, state: object = None
) -> CachedSession:
    return CachedSession(ENDPOINT, state, 1, expires, reuse_deadline)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def closed() -> list[tuple[str, bool]]:
    return []


@pytest.fixture
def cache(clock: Clock, closed: list[tuple[str, bool]]) -> ConnectionCache[str]:
    return ConnectionCache(lambda c, polite: closed.append((c, polite)), max_size=3, clock=clock)


def test_take_under_any_label_removes_from_all(cache: ConnectionCache[str]) -> None:
    s = session(1002.0, state="core")
    cache.save(["example.net", ENDPOINT.label], s, "conn1")
    assert sorted(cache.labels()) == sorted(["example.net", ENDPOINT.label])
    assert cache.take(["nope", ENDPOINT.label]) == ("conn1", s)
    assert cache.take(["example.net"]) is None
    assert len(cache) == 0
    assert cache.labels() == []


def test_first_label_with_a_connection_wins(cache: ConnectionCache[str]) -> None:
    cache.save(["a"], session(2000.0), "in-a")
    cache.save(["b"], session(2000.0), "in-b")
    found = cache.take(["b", "a"])
    assert found is not None
    assert found[0] == "in-b"


def test_newest_connection_of_a_label_first(cache: ConnectionCache[str]) -> None:
    for name in ("old", "mid", "new"):
        cache.save(["example.net"], session(2000.0), name)
    taken = [cache.take(["example.net"]) for _ in range(4)]
    assert [t[0] if t else None for t in taken] == ["new", "mid", "old", None]


@pytest.mark.parametrize(
    ("expires", "reuse_deadline", "now", "kept"),
    [
        (1002.0, 1300.0, 1001.9, True),
        (1002.0, 1300.0, 1002.0, False),  # smtp_connection_cache_time_limit
        (1300.0, 1002.0, 1002.0, False),  # smtp_connection_reuse_time_limit
        (1300.0, 1300.0, 1299.0, True),
    ],
)
def test_expiry(
    cache: ConnectionCache[str],
    clock: Clock,
    closed: list[tuple[str, bool]],
    expires: float,
    reuse_deadline: float,
    now: float,
    kept: bool,
) -> None:
    cache.save(["x"], session(expires, reuse_deadline), "conn")
    clock.now = now
    found = cache.take(["x"])
    assert (found is not None) is kept
    assert closed == ([] if kept else [("conn", False)])


def test_sweep_closes_expired_entries_only(
    cache: ConnectionCache[str], clock: Clock, closed: list[tuple[str, bool]]
) -> None:
    cache.save(["a"], session(1001.0), "short")
    cache.save(["b"], session(1005.0), "long")
    assert cache.next_expiry == 1001.0
    clock.now = 1001.5
    assert cache.sweep() == 1
    assert closed == [("short", False)]
    assert cache.next_expiry == 1005.0
    assert cache.labels() == ["b"]


def test_expiry_bound_is_never_later_than_the_next_expiry(
    cache: ConnectionCache[str], clock: Clock
) -> None:
    # The asyncio client times its sweeps by the bound (no pass over the
    # cache per delivery); a sweep makes it exact again.
    assert cache.expiry_bound is None
    cache.save(["a"], session(1001.0), "short")
    cache.save(["b"], session(1005.0), "long")
    assert cache.expiry_bound == cache.next_expiry == 1001.0
    assert cache.take(["a"]) is not None  # taken: the bound stays low
    bound, exact = cache.expiry_bound, cache.next_expiry
    assert bound is not None
    assert exact is not None
    assert bound <= exact == 1005.0
    clock.now = 1001.5
    assert cache.sweep() == 0
    assert cache.expiry_bound == cache.next_expiry == 1005.0
    assert cache.take(["b"]) is not None
    assert cache.expiry_bound is None


def test_full_cache_closes_the_oldest(
    cache: ConnectionCache[str], closed: list[tuple[str, bool]]
) -> None:
    for i in range(4):
        cache.save([f"l{i}"], session(2000.0), f"c{i}")
    assert closed == [("c0", False)]
    assert len(cache) == 3
    assert cache.take(["l0"]) is None


def test_already_expired_or_unlabelled_is_closed_at_once(
    cache: ConnectionCache[str], closed: list[tuple[str, bool]]
) -> None:
    cache.save(["a"], session(999.0), "late")
    cache.save([], session(2000.0), "nameless")
    assert closed == [("late", False), ("nameless", False)]
    assert len(cache) == 0


def test_size_zero_disables_caching(closed: list[tuple[str, bool]]) -> None:
    cache: ConnectionCache[str] = ConnectionCache(
        lambda c, p: closed.append((c, p)), max_size=0, clock=Clock()
    )
    cache.save(["a"], session(2000.0), "c")
    assert closed == [("c", False)]


def test_close_all_is_polite(cache: ConnectionCache[str], closed: list[tuple[str, bool]]) -> None:
    cache.save(["a", "b"], session(2000.0), "c1")
    cache.save(["a"], session(2000.0), "c2")
    cache.close_all()
    assert closed == [("c1", True), ("c2", True)]
    assert len(cache) == 0
    assert cache.next_expiry is None


def test_negative_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_size"):
        ConnectionCache(lambda c, p: None, max_size=-1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.just("save"), st.sets(st.sampled_from("abcd"), min_size=1), st.floats(0, 20)
            ),
            st.tuples(st.just("take"), st.lists(st.sampled_from("abcd"), min_size=1), st.just(0.0)),
            st.tuples(st.just("tick"), st.just(set()), st.floats(0, 5)),
        ),
        max_size=40,
    )
)
def test_every_connection_is_taken_or_closed_exactly_once(
    ops: list[tuple[str, object, float]],
) -> None:
    clock = Clock(0.0)
    closed: list[str] = []
    cache: ConnectionCache[str] = ConnectionCache(
        lambda c, p: closed.append(c), max_size=3, clock=clock
    )
    saved: list[str] = []
    taken: list[str] = []
    for n, (op, labels, value) in enumerate(ops):
        if op == "save":
            name = f"c{n}"
            saved.append(name)
            cache.save(sorted(labels), session(clock.now + value), name)  # type: ignore[call-overload]
        elif op == "take":
            found = cache.take(labels)  # type: ignore[arg-type]
            if found is not None:
                assert found[1].expires > clock.now  # never an expired one
                taken.append(found[0])
        else:
            clock.now += value
        assert len(cache) <= 3
    cache.close_all()
    assert sorted(taken + closed) == sorted(saved)
