"""Ordering of MX, SRV and address lists the way Postfix orders them (pure).

Every function takes the records as a list and returns a new list; the only
source of randomness is the ``random.Random`` passed in, so a seeded
generator gives a reproducible order. Postfix draws with ``myrand() % n``;
``rng.randrange(n)`` draws from the same distribution.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

__all__ = [
    "DNS_RR_LIST_LIMIT",
    "AddressPreference",
    "balance_families",
    "shuffle",
    "sort_by_preference",
    "sort_srv",
]

# Postfix dns_rr.c var_dns_rr_list_limit: a DNS_RR list never holds more
# than 100 records; longer lists are truncated with a warning.
DNS_RR_LIST_LIMIT = 100


class AddressPreference(enum.Enum):
    """``smtp_address_preference``: which family goes first at equal preference."""

    ANY = "any"
    IPV4 = "ipv4"
    IPV6 = "ipv6"


class Preferred(Protocol):
    """A record with an MX/SRV preference and an address family."""

    @property
    def preference(self) -> int: ...

    @property
    def is_ipv6(self) -> bool: ...


class Weighted(Protocol):
    """An SRV record: priority (as ``preference``) and weight."""

    @property
    def preference(self) -> int: ...

    @property
    def weight(self) -> int: ...


P = TypeVar("P", bound=Preferred)
W = TypeVar("W", bound=Weighted)
T = TypeVar("T")


def shuffle(items: Sequence[T], rng: random.Random) -> list[T]:
    """Uniform random permutation (Postfix ``dns_rr_shuffle()``, Fisher-Yates)."""
    out = list(items)
    n = len(out)
    for i in range(n - 1):
        r = i + rng.randrange(n - i)  # Postfix dns_rr.c dns_rr_shuffle()
        out[i], out[r] = out[r], out[i]
    return out


def sort_by_preference(items: Sequence[P], preference: AddressPreference) -> list[P]:
    """Stable sort by preference, then by family per ``smtp_address_preference``.

    Postfix ``dns_rr_compare_pref_any/_ipv4/_ipv6()`` with ``dns_rr_sort()``.
    Postfix uses qsort(3), which is not guaranteed stable; we sort stably, so
    with ``smtp_randomize_addresses = no`` equal records keep DNS order.
    """
    if preference is AddressPreference.IPV6:
        return sorted(items, key=lambda r: (r.preference, not r.is_ipv6))
    if preference is AddressPreference.IPV4:
        return sorted(items, key=lambda r: (r.preference, r.is_ipv6))
    return sorted(items, key=lambda r: r.preference)


def balance_families(items: Sequence[P], limit: int) -> list[P]:
    """Keep a fair share of IPv4 and IPv6 within *limit* addresses.

    Postfix ``smtp_balance_inet_proto()``: only when both families are present
    and the list is longer than the limit. With L = limit: if the IPv6 count
    is at most L/2 keep every IPv6 address; else if the IPv4 count is at most
    L/2 keep every IPv4 address; else split L, the extra odd slot going to the
    family of the first address. The relative order is unchanged.
    """
    limit = min(limit, DNS_RR_LIST_LIMIT)  # Postfix: "dns_rr_append() won't interfere"
    v6_count = sum(1 for r in items if r.is_ipv6)
    v4_count = len(items) - v6_count
    if not (v4_count > 0 and v6_count > 0 and v4_count + v6_count > limit):
        return list(items)
    half = limit // 2
    if v6_count <= half:  # region R1
        v6_target = v6_count
        v4_target = limit - v6_target
    elif v4_count <= half:  # region R3
        v4_target = v4_count
        v6_target = limit - v4_target
    else:  # region R2: round toward the family of the first address
        v4_target = (limit + (0 if items[0].is_ipv6 else 1)) // 2
        v6_target = limit - v4_target
    out: list[P] = []
    for r in items:
        if r.is_ipv6:
            if v6_target > 0:
                out.append(r)
                v6_target -= 1
        elif v4_target > 0:
            out.append(r)
            v4_target -= 1
    return out


def _weight_order(group: list[W], rng: random.Random) -> None:
    # Postfix dns_rr.c weight_order(): RFC 2782 weighted selection, except
    # that a zero weight is treated as a small weight, not specially.
    unordered = sum(r.weight for r in group)
    if unordered == 0:
        return
    count = len(group)
    for i in range(count - 1):
        threshold = rng.randrange(unordered + 1)  # 0..unordered inclusive
        running = 0
        for k in range(i, count):
            running += group[k].weight
            if running >= threshold:
                unordered -= group[k].weight
                group[i], group[k] = group[k], group[i]
                break


def sort_srv(items: Sequence[W], rng: random.Random) -> list[W]:
    """RFC 2782 order: shuffle, sort by priority, weighted order within a priority.

    Postfix ``dns_srv_rr_sort()``.
    """
    if not items:
        return []
    out = sorted(shuffle(items, rng), key=lambda r: r.preference)
    left = 0
    n = len(out)
    for right in range(1, n + 1):
        if right == n or out[right].preference != out[left].preference:
            if right - left > 1:
                group = out[left:right]
                _weight_order(group, rng)
                out[left:right] = group
            left = right
    return out
