"""The one table interface the SASL code needs from :mod:`pyfix_smtp.maps`."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["LookupTable"]


@runtime_checkable
class LookupTable(Protocol):
    """Anything with Postfix-style ``lookup(key) -> value | None``.

    :class:`pyfix_smtp.maps.TableList` (the value of a lookup-table parameter)
    satisfies it; so does any object with such a method (a test double, a
    database adapter).
    """

    def lookup(self, key: str) -> str | None:
        """Return the value for *key*, or ``None`` when no table has it."""
        ...
