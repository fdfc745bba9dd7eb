"""Parameter value types: how Postfix text becomes a typed Python value.

Each :class:`Kind` parses expanded main.cf text (``parse``), validates a
Python value given directly (``coerce``) and writes a value back as main.cf
text (``format``). Errors are :class:`~pyfix_smtp.errors.ConfigError`
naming the parameter and the offending value.
"""

from __future__ import annotations

import ipaddress
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from pyfix_smtp.errors import ConfigError, LookupTableError
from pyfix_smtp.maps import Table, TableList, open_table
from pyfix_smtp.maps.syntax import COMMA_SPACE, split_tokens

__all__ = [
    "INT_MAX",
    "Bool",
    "CompatLevel",
    "Enum",
    "HostAddress",
    "Int",
    "Kind",
    "List",
    "Ports",
    "RequireTlsPolicy",
    "Str",
    "Tables",
    "Time",
    "compat_level_key",
]

#: Largest value of a C ``int``: Postfix stores integers and times in one.
INT_MAX = 2**31 - 1
_TIME_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TIME_RE = re.compile(r"([0-9]+)([smhdw]?)")
_INT_RE = re.compile(r"[+-]?[0-9]+")


class Kind(ABC):
    """How one parameter's value is parsed, validated and written."""

    __slots__ = ()

    #: The Python type of the parsed value, as written in annotations.
    python_type: str = "str"

    @property
    @abstractmethod
    def label(self) -> str:
        """Short description for the parameter reference page."""

    @abstractmethod
    def parse(self, text: str, name: str) -> object:
        """Parse expanded main.cf *text* for parameter *name*."""

    def coerce(self, value: object, name: str) -> object:
        """Validate a Python value given directly (not as text)."""
        raise ConfigError(name, value, f"expected Postfix text or {self.python_type}")

    def format(self, value: object, name: str) -> str:
        """Write *value* as main.cf text (the inverse of :meth:`parse`)."""
        return str(value)


@dataclass(frozen=True, slots=True)
class Bool(Kind):
    """``yes``/``no``, case-insensitive (Postfix mail_conf_bool.c)."""

    python_type = "bool"

    @property
    def label(self) -> str:
        return "bool"

    def parse(self, text: str, name: str) -> bool:
        lowered = text.lower()
        if lowered == "yes":
            return True
        if lowered == "no":
            return False
        raise ConfigError(name, text, 'bad boolean: expected "yes" or "no"')

    def coerce(self, value: object, name: str) -> bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(name, value, "expected a bool")

    def format(self, value: object, name: str) -> str:
        return "yes" if value else "no"


@dataclass(frozen=True, slots=True)
class Time(Kind):
    """A time with unit ``s``, ``m``, ``h``, ``d`` or ``w``; stored as seconds.

    Postfix global/conv_time.c: a whole number with at most one unit letter;
    a bare number is in the parameter's default unit (the unit letter of its
    default value, mail_conf_time.c ``get_def_time_unit()``).
    """

    unit: str = "s"
    min: int = 0
    max: int = 0  # 0: no maximum (Postfix convention)

    python_type = "float"

    @property
    def label(self) -> str:
        return f"time (bare number: {self.unit})"

    def parse(self, text: str, name: str) -> float:
        match = _TIME_RE.fullmatch(text)
        if match is None:
            raise ConfigError(name, text, "bad time value or unit (use e.g. 30s, 5m, 1h, 1d, 1w)")
        seconds = int(match.group(1)) * _TIME_UNITS[match.group(2) or self.unit]
        if seconds > INT_MAX:
            raise ConfigError(name, text, "time value too large")
        return self._check(float(seconds), text, name)

    def coerce(self, value: object, name: str) -> float:
        if isinstance(value, timedelta):
            seconds = value.total_seconds()
        elif isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        else:
            raise ConfigError(name, value, "expected seconds (int or float) or a timedelta")
        if not math.isfinite(seconds) or seconds < 0 or seconds > INT_MAX:
            raise ConfigError(name, value, "time must be between 0 and 2147483647 seconds")
        return self._check(seconds, value, name)

    def _check(self, seconds: float, shown: object, name: str) -> float:
        if self.min and seconds < self.min:
            raise ConfigError(name, shown, f"must be at least {self.min}s")
        if self.max and seconds > self.max:
            raise ConfigError(name, shown, f"must be at most {self.max}s")
        return seconds

    def format(self, value: object, name: str) -> str:
        assert isinstance(value, float | int)
        if value != int(value):
            raise ConfigError(name, value, "fractional seconds have no main.cf spelling")
        return f"{int(value)}s"


@dataclass(frozen=True, slots=True)
class Int(Kind):
    """A decimal integer within [min, max] (Postfix mail_conf_int.c).

    Postfix skips the minimum check when its minimum is 0, so a negative
    count slips through there; we reject values below *min* always.
    """

    min: int = 0
    max: int = INT_MAX

    python_type = "int"

    @property
    def label(self) -> str:
        return f"int >= {self.min}" if self.max == INT_MAX else f"int {self.min}..{self.max}"

    def parse(self, text: str, name: str) -> int:
        if _INT_RE.fullmatch(text) is None:
            raise ConfigError(name, text, "bad numerical value")
        return self._check(int(text), text, name)

    def coerce(self, value: object, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, value, "expected an int")
        return self._check(value, value, name)

    def _check(self, number: int, shown: object, name: str) -> int:
        if number < self.min:
            raise ConfigError(name, shown, f"must be at least {self.min}")
        if number > self.max:
            raise ConfigError(name, shown, f"must be at most {self.max}")
        return number


@dataclass(frozen=True, slots=True)
class Str(Kind):
    """Free text; *min_length*/*max_length* as in Postfix's string tables."""

    min_length: int = 0
    max_length: int = 0  # 0: unlimited

    @property
    def label(self) -> str:
        return "text" if not self.min_length else "text (non-empty)"

    def parse(self, text: str, name: str) -> str:
        if len(text) < self.min_length:
            raise ConfigError(name, text, "must not be empty")
        if self.max_length and len(text) > self.max_length:
            raise ConfigError(name, text, f"must be at most {self.max_length} characters")
        return text


@dataclass(frozen=True, slots=True)
class Enum(Kind):
    """One name from *choices*; stored in canonical (lower-case) form."""

    choices: tuple[str, ...]
    case_sensitive: bool = False

    @property
    def label(self) -> str:
        shown = ["(empty)" if c == "" else c for c in self.choices]
        return "one of: " + ", ".join(shown)

    def parse(self, text: str, name: str) -> str:
        probe = text if self.case_sensitive else text.lower()
        for choice in self.choices:
            if probe == choice:
                return choice
        allowed = ", ".join(repr(c) for c in self.choices)
        raise ConfigError(name, text, f"expected one of {allowed}")


@dataclass(frozen=True, slots=True)
class List(Kind):
    """A list separated by commas and/or whitespace; stored as a tuple.

    ``{ ... }`` groups are kept whole (Postfix ``mystrtokq()``). With
    *choices*, every item must be one of them (``smtp_host_lookup``).
    """

    separators: str = COMMA_SPACE
    choices: tuple[str, ...] = ()
    case_sensitive: bool = True
    min_items: int = 0

    python_type = "tuple[str, ...]"

    @property
    def label(self) -> str:
        if self.choices:
            return "list of: " + ", ".join(self.choices)
        return "list" if self.separators == COMMA_SPACE else "list (also : separated)"

    def parse(self, text: str, name: str) -> tuple[str, ...]:
        items = tuple(split_tokens(text, self.separators))
        return self._check(items, text, name)

    def coerce(self, value: object, name: str) -> tuple[str, ...]:
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            items = tuple(str(v) for v in value)
            for item in items:
                if split_tokens(item, self.separators) != [item]:
                    raise ConfigError(name, value, f"list item {item!r} is not a single item")
            return self._check(items, value, name)
        raise ConfigError(name, value, "expected Postfix text or a list of str")

    def _check(self, items: tuple[str, ...], shown: object, name: str) -> tuple[str, ...]:
        if len(items) < self.min_items:
            raise ConfigError(name, shown, "must not be empty")
        if self.choices:
            checked = []
            for item in items:
                probe = item if self.case_sensitive else item.lower()
                if probe not in self.choices:
                    allowed = ", ".join(repr(c) for c in self.choices)
                    raise ConfigError(name, shown, f"unknown item {item!r}; expected {allowed}")
                checked.append(probe)
            return tuple(checked)
        return items

    def format(self, value: object, name: str) -> str:
        assert isinstance(value, tuple)
        return ", ".join(value)


TableInput = TableList | Table | Mapping[str, str] | Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class Tables(Kind):
    """A list of lookup tables (``type:name, ...``) as a :class:`TableList`."""

    max_tables: int = 0  # 0: unlimited; smtp_reply_filter takes one table

    python_type = "TableList"

    @property
    def label(self) -> str:
        return "lookup table" if self.max_tables == 1 else "lookup tables"

    def parse(self, text: str, name: str) -> TableList:
        return self._check(TableList.parse(text, parameter=name), text, name)

    def coerce(self, value: object, name: str) -> TableList:
        if isinstance(value, TableList):
            tables = value
        elif isinstance(value, list | tuple):
            tables = TableList(_table(v, name) for v in value)
        else:
            tables = TableList([_table(value, name)])
        return self._check(tables, value, name)

    def _check(self, tables: TableList, shown: object, name: str) -> TableList:
        if self.max_tables and len(tables) > self.max_tables:
            raise ConfigError(name, shown, f"at most {self.max_tables} table(s) allowed")
        return tables

    def format(self, value: object, name: str) -> str:
        assert isinstance(value, TableList)
        try:
            return value.to_text()
        except LookupTableError as exc:
            raise ConfigError(name, value, exc.reason) from None


def _table(value: object, name: str) -> Table:
    if isinstance(value, Table | str | Mapping) or callable(value):
        return open_table(value, parameter=name)
    raise ConfigError(name, value, "expected a table reference, Table, mapping or callable")


_REQTLS_ACTIONS = ("enforce", "opportunistic+starttls", "opportunistic", "disable", "error")


@dataclass(frozen=True, slots=True)
class RequireTlsPolicy(Kind):
    """``smtp_requiretls_policy``: actions and ``type:table`` items in order.

    Postfix smtp/smtp_reqtls_policy.c ``smtp_reqtls_policy_parse()``: an item
    with a ``:`` is a table; any other item must be an action.
    """

    python_type = "tuple[str | Table, ...]"

    @property
    def label(self) -> str:
        return "policy list (" + ", ".join(_REQTLS_ACTIONS) + ", type:table)"

    def parse(self, text: str, name: str) -> tuple[str | Table, ...]:
        items: list[str | Table] = []
        for token in split_tokens(text, COMMA_SPACE):
            if ":" in token:
                items.append(open_table(token, parameter=name))
            elif token in _REQTLS_ACTIONS:
                items.append(token)
            else:
                raise ConfigError(name, text, f"unknown policy action {token!r}")
        return tuple(items)

    def coerce(self, value: object, name: str) -> tuple[str | Table, ...]:
        if not isinstance(value, list | tuple):
            raise ConfigError(name, value, "expected Postfix text or a list")
        items: list[str | Table] = []
        for item in value:
            if isinstance(item, str) and ":" not in item:
                if item not in _REQTLS_ACTIONS:
                    raise ConfigError(name, value, f"unknown policy action {item!r}")
                items.append(item)
            else:
                items.append(_table(item, name))
        return tuple(items)

    def format(self, value: object, name: str) -> str:
        assert isinstance(value, tuple)
        parts = []
        for item in value:
            if isinstance(item, Table):
                if item.ref.startswith("python:"):
                    raise ConfigError(name, item, "has no main.cf text form")
                parts.append(item.ref)
            else:
                parts.append(str(item))
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Ports(Kind):
    """``known_tcp_ports``: ``name=port`` and ``name=name=port`` associations.

    Postfix global/config_known_tcp_ports.c; stored as ``(name, port)`` pairs.
    """

    python_type = "tuple[tuple[str, int], ...]"

    @property
    def label(self) -> str:
        return "service=port list"

    def parse(self, text: str, name: str) -> tuple[tuple[str, int], ...]:
        pairs: list[tuple[str, int]] = []
        seen: set[str] = set()
        for association in text.split(","):
            if not association.strip():
                continue
            parts = [part.strip() for part in association.split("=")]
            if len(parts) < 2:
                raise ConfigError(name, text, f'"{association.strip()}" is not name=port')
            port_text = parts[-1]
            if not port_text.isdigit() or not port_text.isascii():
                raise ConfigError(name, text, f"bad port {port_text!r}")
            port = int(port_text)
            if not 0 < port < 65536:
                raise ConfigError(name, text, f"port {port} out of range")
            for service in parts[:-1]:
                if not service or any(c.isspace() for c in service) or service.isdigit():
                    raise ConfigError(name, text, f"bad service name {service!r}")
                if service in seen:
                    raise ConfigError(name, text, f"duplicate service name {service!r}")
                seen.add(service)
                pairs.append((service, port))
        return tuple(pairs)

    def coerce(self, value: object, name: str) -> tuple[tuple[str, int], ...]:
        if isinstance(value, Mapping):
            pairs = list(value.items())
        elif isinstance(value, list | tuple) and all(
            isinstance(pair, tuple) and len(pair) == 2 for pair in value
        ):
            pairs = list(value)
        else:
            raise ConfigError(name, value, "expected Postfix text or a mapping of name to port")
        if not all(isinstance(s, str) and isinstance(p, int) for s, p in pairs):
            raise ConfigError(name, value, "expected service names (str) and ports (int)")
        return self.parse(", ".join(f"{s}={p}" for s, p in pairs), name)

    def format(self, value: object, name: str) -> str:
        assert isinstance(value, tuple)
        return ", ".join(f"{service}={port}" for service, port in value)


def compat_level_key(text: str) -> tuple[int, int, int] | None:
    """Parse a compatibility level ``major[.minor[.patch]]`` into a tuple.

    Postfix global/compat_level.c ``compat_level_from_string()``: minor and
    patch are 0..1023. Returns ``None`` when *text* is not a level.
    """
    parts = text.split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isascii() and p.isdigit() for p in parts):
        return None
    numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
    if numbers[1] > 1023 or numbers[2] > 1023:
        return None
    return numbers[0], numbers[1], numbers[2]


@dataclass(frozen=True, slots=True)
class CompatLevel(Kind):
    """``compatibility_level``: ``major[.minor[.patch]]``."""

    @property
    def label(self) -> str:
        return "compatibility level"

    def parse(self, text: str, name: str) -> str:
        if compat_level_key(text) is None:
            raise ConfigError(name, text, "bad compatibility level (e.g. 3.11)")
        return text


@dataclass(frozen=True, slots=True)
class HostAddress(Kind):
    """An optional numeric IPv4 or IPv6 address (``smtp_bind_address``)."""

    version: int

    @property
    def label(self) -> str:
        return f"IPv{self.version} address or empty"

    def parse(self, text: str, name: str) -> str:
        if not text:
            return text
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise ConfigError(name, text, f"not an IPv{self.version} address") from None
        if address.version != self.version or "%" in text:
            raise ConfigError(name, text, f"not an IPv{self.version} address")
        return text
