"""Lookup-table types: the abstract :class:`Table` and the simple tables.

A Postfix table maps a key to a text result. Fixed-key tables (``inline:``,
``static:``, ``texthash:``, a Python mapping) fold the key's case; pattern
tables (``regexp:``, ``pcre:``, ``cidr:``, a Python callable) see the key as
given and decide themselves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

from pyfix_smtp.errors import LookupTableError

__all__ = ["CallableTable", "MappingTable", "StaticTable", "Table", "fold_key"]


def fold_key(key: str) -> str:
    """Case-fold a lookup key like Postfix's DICT_FLAG_FOLD_FIX.

    ASCII keys are lowercased (util/dict_ht.c ``lowercase()``); with UTF-8
    enabled Postfix applies full Unicode case folding (util/dict_utf8.c
    ``casefold()``), which is what :meth:`str.casefold` does.
    """
    return key.lower() if key.isascii() else key.casefold()


class Table(ABC):
    """One lookup table.

    Attributes:
        ref: the Postfix ``type:name`` text this table came from, or a
            ``python:...`` description for tables built from Python objects.
        fixed: True for fixed-key tables (exact keys, Postfix
            DICT_FLAG_FIXED), False for pattern tables. Callers that do
            parent-domain lookups only do them in fixed tables.
    """

    __slots__ = ()

    ref: str
    fixed: bool

    @abstractmethod
    def lookup(self, key: str) -> str | None:
        """Return the result for *key*, or ``None`` when the table has none."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ref}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Table):
            return NotImplemented
        return type(self) is type(other) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash((type(self), self._identity()))

    def _identity(self) -> object:
        """What makes two tables equal: their reference text by default."""
        return self.ref


class StaticTable(Table):
    """``static:value``: every key maps to the same value (Postfix dict_static.c)."""

    __slots__ = ("fixed", "ref", "value")

    def __init__(self, value: str, *, ref: str | None = None) -> None:
        self.value = value
        self.ref = ref if ref is not None else f"static:{{{value}}}"
        self.fixed = True

    def lookup(self, key: str) -> str | None:
        """Return the static value for any key."""
        return self.value


class MappingTable(Table):
    """A fixed-key table held in memory: ``inline:``, ``texthash:`` or a dict.

    Keys are case-folded when *fold* is true (Postfix DICT_FLAG_FOLD_FIX);
    the table is a snapshot of *entries*. Two keys that fold to the same key
    are a :class:`LookupTableError`.
    """

    __slots__ = ("_entries", "fixed", "fold", "ref")

    def __init__(self, entries: Mapping[str, str], *, ref: str, fold: bool = True) -> None:
        self.ref = ref
        self.fold = fold
        self.fixed = True
        folded: dict[str, str] = {}
        for key, value in entries.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise LookupTableError(
                    ref, entries, f"keys and values must be str, got {key!r}: {value!r}"
                )
            fkey = fold_key(key) if fold else key
            if fkey in folded:
                raise LookupTableError(ref, entries, f"duplicate entry: {key!r}")
            folded[fkey] = value
        self._entries = folded

    def lookup(self, key: str) -> str | None:
        """Return the value stored under *key* (case-folded), or ``None``."""
        return self._entries.get(fold_key(key) if self.fold else key)

    def __len__(self) -> int:
        return len(self._entries)

    def _identity(self) -> object:
        if self.ref.startswith("python:"):
            return (self.fold, tuple(sorted(self._entries.items())))
        return (self.ref, self.fold)


class CallableTable(Table):
    """A Python callable ``(key) -> str | None`` used as a pattern table.

    The key is passed as given (no case folding); the callable decides. Two
    CallableTables are equal when they wrap the same callable.
    """

    __slots__ = ("fixed", "function", "ref")

    def __init__(self, function: Callable[[str], str | None], *, fixed: bool = False) -> None:
        self.function = function
        self.fixed = fixed
        name = getattr(function, "__qualname__", None) or type(function).__name__
        self.ref = f"python:{name}"

    def lookup(self, key: str) -> str | None:
        """Call the wrapped function; its result must be ``str`` or ``None``."""
        result = self.function(key)
        if result is not None and not isinstance(result, str):
            raise LookupTableError(
                self.ref, key, f"lookup function returned {type(result).__name__}, not str"
            )
        return result

    def _identity(self) -> object:
        return (id(self.function), self.fixed)
