"""Reading planner parameters from a Config object (pure helpers).

The planner does not import :mod:`pyfix_smtp.config`; it reads attributes by
their Postfix names and checks their types here, so a wrong value fails with
a :class:`~pyfix_smtp.errors.ConfigError` naming the parameter. A parameter
the object does not have takes Postfix's default.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable
from typing import TypeVar

from pyfix_smtp.errors import ConfigError

E = TypeVar("E", bound=enum.Enum)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SPLIT = re.compile(r"[\s,]+")


def get_str(cfg: object, name: str, default: str) -> str:
    """A text parameter."""
    value = getattr(cfg, name, default)
    if not isinstance(value, str):
        raise ConfigError(name, value, "expected text")
    return value.strip()


def get_bool(cfg: object, name: str, default: bool) -> bool:
    """A yes/no parameter (a bool, or Postfix's yes/no/true/false text)."""
    value = getattr(cfg, name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "true", "1", "no", "false", "0"):
        return value.strip().lower() in ("yes", "true", "1")
    raise ConfigError(name, value, "expected yes or no")


def get_int(cfg: object, name: str, default: int) -> int:
    """A non-negative integer parameter."""
    value = getattr(cfg, name, default)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(name, value, "expected a number")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(name, value, "expected a number") from None
    if number < 0:
        raise ConfigError(name, value, "must be 0 or more")
    return number


def get_words(cfg: object, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A list parameter: a tuple of words, or text separated by commas/space."""
    value = getattr(cfg, name, default)
    if isinstance(value, str):
        return tuple(w for w in _SPLIT.split(value) if w)
    if isinstance(value, tuple | list) and all(isinstance(w, str) for w in value):
        return tuple(w.strip() for w in value if w.strip())
    raise ConfigError(name, value, "expected a list of names")


def parse_choice(name: str, value: str, kind: type[E]) -> E:
    """One enumeration value by its Postfix spelling (case-insensitive)."""
    for member in kind:
        if member.value == value.strip().lower():
            return member
    allowed = ", ".join(str(m.value) for m in kind)
    raise ConfigError(name, value, f"expected one of: {allowed}")


def choice(cfg: object, name: str, kind: type[E], default: str = "") -> E:
    """An enumeration parameter."""
    return parse_choice(name, get_str(cfg, name, default), kind)


def inet_protocols(words: tuple[str, ...]) -> frozenset[str]:
    """``inet_protocols``: ``all``, ``ipv4``, ``ipv6`` or a list -> {"ipv4", "ipv6"}.

    Postfix inet_proto.c; an empty list disables every protocol.
    """
    found: set[str] = set()
    for word in words:
        w = word.lower()
        if w == "all":
            found |= {"ipv4", "ipv6"}
        elif w in ("ipv4", "ipv6"):
            found.add(w)
        else:
            raise ConfigError("inet_protocols", word, "expected all, ipv4 or ipv6")
    return frozenset(found)


def interface_addresses(
    name: str,
    words: tuple[str, ...],
    given: Iterable[str | IPAddress] | None,
) -> frozenset[IPAddress]:
    """Numeric addresses of ``inet_interfaces``/``proxy_interfaces``.

    *given* (already resolved by the caller) wins. Otherwise every entry
    must be an IP address (optionally in brackets); ``all``,
    ``loopback-only`` and host names need the system and raise.
    """
    if given is not None:
        out: set[IPAddress] = set()
        for item in given:
            if isinstance(item, ipaddress.IPv4Address | ipaddress.IPv6Address):
                out.add(item)
                continue
            try:
                out.add(ipaddress.ip_address(item.strip("[]")))
            except ValueError:
                raise ConfigError(name, item, "not an IP address") from None
        return frozenset(out)
    found: set[IPAddress] = set()
    for word in words:
        text = word.strip("[]")
        try:
            found.add(ipaddress.ip_address(text))
        except ValueError:
            raise ConfigError(
                name,
                word,
                "needs the system's interface addresses: pass them to"
                " PlanOptions.from_config(), or use pyfix_smtp.dns.resolve.plan_options()",
            ) from None
    return frozenset(found)
