"""Opening tables by reference and searching a list of them (Postfix maps.c)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from ipaddress import IPv4Address, IPv6Address

from pyfix_smtp.errors import LookupTableError
from pyfix_smtp.maps.base import CallableTable, MappingTable, Table
from pyfix_smtp.maps.cidr import open_cidr, parse_address
from pyfix_smtp.maps.fixed import open_inline, open_static, open_texthash
from pyfix_smtp.maps.regexp import open_pattern_table
from pyfix_smtp.maps.syntax import COMMA_SPACE, split_tokens

__all__ = ["TableLike", "TableList", "open_table", "parent_keys", "valid_hostname"]

#: What may stand for one table: a Table, a ``type:name`` text, a mapping
#: (fixed keys, case-folded) or a callable ``key -> str | None``.
TableLike = Table | str | Mapping[str, str] | Callable[[str], str | None]

_UNSUPPORTED = {
    "hash", "btree", "dbm", "sdbm", "cdb", "lmdb", "mysql", "pgsql", "sqlite", "ldap",
    "memcache", "tcp", "socketmap", "nis", "nisplus", "netinfo", "proxy", "unix", "fail",
    "environ", "internal", "pipemap", "unionmap", "randmap", "debug", "mongodb",
}  # fmt: skip


def open_table(spec: TableLike, *, parameter: str | None = None, fold: bool = True) -> Table:
    """Open one table from a ``type:name`` reference or a Python object.

    Supported references: ``inline:{...}``, ``static:value``,
    ``static:{...}``, ``texthash:/path``, ``regexp:/path``, ``pcre:/path``,
    ``cidr:/path`` and the ``regexp:``/``pcre:``/``cidr:`` inline form
    ``{ {rule}, ... }``. A :class:`~collections.abc.Mapping` becomes a
    fixed-key table (a case-folded snapshot when *fold*); a callable becomes
    a pattern table called with the key as given. Files are read now; any
    problem raises :class:`LookupTableError` naming *parameter* (default:
    the reference itself).
    """
    if isinstance(spec, Table):
        return spec
    if isinstance(spec, Mapping):
        return MappingTable(spec, ref=f"python:{type(spec).__name__}", fold=fold)
    if not isinstance(spec, str):
        if callable(spec):
            return CallableTable(spec)
        raise LookupTableError(parameter or "table", spec, "not a table reference")
    where = parameter or spec
    kind, colon, name = spec.partition(":")
    if not colon or not kind or not name:
        raise LookupTableError(where, spec, 'expecting "type:name" form')
    if kind == "inline":
        return open_inline(name, parameter=where, fold=fold)
    if kind == "static":
        return open_static(name, parameter=where)
    if kind == "texthash":
        return open_texthash(name, parameter=where, fold=fold)
    if kind in ("regexp", "pcre"):
        return open_pattern_table(kind, name, parameter=where)
    if kind == "cidr":
        return open_cidr(name, parameter=where)
    if kind in _UNSUPPORTED:
        raise LookupTableError(
            where,
            spec,
            f'table type "{kind}" is not supported by pyfix_smtp; use texthash: '
            "(the same source file, no postmap needed), inline:, or pass a Python "
            "mapping or callable",
        )
    raise LookupTableError(where, spec, f'unknown table type "{kind}"')


def valid_hostname(name: str) -> bool:
    """Postfix util/valid_hostname.c ``valid_hostname()`` (plus U-labels).

    Labels of letters, digits, ``_`` and inner ``-``, at most 63 characters,
    no empty labels, at most 255 characters, not all-numeric. A non-ASCII
    name is valid when it converts to an A-label name (Postfix
    ``valid_utf8_hostname()`` with smtputf8_enable).
    """
    if not name:
        return False
    if not name.isascii():
        import idna  # deferred: only non-ASCII names need it

        try:
            ascii_name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return False
        return valid_hostname(ascii_name)
    if len(name) > 255 or name.startswith(".") or name.endswith(".") or ".." in name:
        return False
    numeric = True
    for label in name.split("."):
        if len(label) > 63 or label.startswith("-") or label.endswith("-"):
            return False
        for ch in label:
            if not (ch.isalnum() or ch in "_-"):
                return False
            if not ch.isdigit():
                numeric = False
    return not numeric


def parent_keys(name: str) -> tuple[str, ...]:
    """The keys Postfix tries for a domain: the name, then ``.parent`` forms.

    Postfix smtp/smtp_tls_policy.c ``tls_policy_lookup()``:
    ``mail.example.com`` gives ``mail.example.com``, ``.example.com``,
    ``.com``. A name that is not a valid host name (``[10.0.0.1]:25``, an IP
    address, a UNIX-domain path) is looked up once, as is.
    """
    if not valid_hostname(name):
        return (name,)
    keys = [name]
    dot = name.find(".", 1)
    while dot >= 0:
        keys.append(name[dot:])
        dot = name.find(".", dot + 1)
    return tuple(keys)


class TableList:
    """An ordered list of tables searched first to last (a Postfix "maps").

    Build one from a parameter value with :meth:`parse`, or from tables and
    table-like objects directly. Empty when the parameter is empty; an empty
    TableList is false in a boolean context.
    """

    __slots__ = ("tables",)

    def __init__(self, tables: Iterable[TableLike] = (), *, fold: bool = True) -> None:
        self.tables: tuple[Table, ...] = tuple(open_table(t, fold=fold) for t in tables)

    @classmethod
    def parse(cls, text: str, *, parameter: str | None = None, fold: bool = True) -> TableList:
        """Open every ``type:name`` in *text* (separated by commas/whitespace).

        Postfix global/maps.c ``maps_create()``: separators inside ``{ }``
        do not split.
        """
        tables = [
            open_table(ref, parameter=parameter, fold=fold)
            for ref in split_tokens(text, COMMA_SPACE)
        ]
        return cls(tables)

    def lookup(self, key: str, *, fixed_only: bool = False) -> str | None:
        """Return the first table's result for *key*, or ``None``.

        Postfix global/maps.c ``maps_find()``: an empty key finds nothing; a
        table returning an empty string is a configuration error
        (:class:`LookupTableError`), as in Postfix where it defers the
        delivery. With *fixed_only*, pattern tables are skipped (Postfix
        DICT_FLAG_FIXED partial-key lookups).
        """
        if not key:
            return None
        for table in self.tables:
            if fixed_only and not table.fixed:
                continue
            result = table.lookup(key)
            if result is not None:
                if not result:
                    raise LookupTableError(
                        table.ref,
                        key,
                        "lookup returned an empty string; a table must return no "
                        "result when it has none",
                    )
                return result
        return None

    def lookup_with_parents(self, name: str) -> str | None:
        """Look up *name*, then its ``.parent`` forms (see :func:`parent_keys`).

        This is the search order of ``smtp_tls_policy_maps``: every table is
        asked for ``mail.example.com`` before any is asked for
        ``.example.com``.
        """
        for key in parent_keys(name):
            result = self.lookup(key)
            if result is not None:
                return result
        return None

    def lookup_address(self, address: str | IPv4Address | IPv6Address) -> str | None:
        """Look up an IP address in its canonical printable form.

        Used for tables indexed by the server address
        (``smtp_discard_ehlo_keyword_address_maps``,
        ``smtp_pix_workaround_maps``); IPv6 addresses are compressed and
        lower-case as Postfix prints them.
        """
        if not isinstance(address, str):
            return self.lookup(str(address))
        parsed = parse_address(address)
        return self.lookup(address if parsed is None else str(parsed))

    @property
    def refs(self) -> tuple[str, ...]:
        """The reference text of each table, in order."""
        return tuple(table.ref for table in self.tables)

    def to_text(self) -> str:
        """The Postfix parameter text for this list (``, ``-separated refs).

        Raises :class:`LookupTableError` for tables built from Python objects,
        which have no main.cf spelling.
        """
        for table in self.tables:
            if table.ref.startswith("python:"):
                raise LookupTableError(table.ref, table, "has no main.cf text form")
        return ", ".join(self.refs)

    def __iter__(self) -> Iterator[Table]:
        return iter(self.tables)

    def __len__(self) -> int:
        return len(self.tables)

    def __bool__(self) -> bool:
        return bool(self.tables)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TableList):
            return NotImplemented
        return self.tables == other.tables

    def __hash__(self) -> int:
        return hash(self.tables)

    def __repr__(self) -> str:
        return f"TableList({list(self.refs)!r})"
