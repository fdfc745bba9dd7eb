"""Readers for the fixed-key table types: ``inline:``, ``static:``, ``texthash:``."""

from __future__ import annotations

import logging

from pyfix_smtp.errors import LookupTableError
from pyfix_smtp.maps.base import MappingTable, StaticTable, fold_key
from pyfix_smtp.maps.files import read_table_text
from pyfix_smtp.maps.syntax import (
    COMMA_SPACE,
    logical_lines,
    split_qnameval,
    split_tokens,
    strip_braces,
)

__all__ = ["open_inline", "open_static", "open_texthash", "parse_texthash"]

_log = logging.getLogger("pyfix_smtp.maps")
_ISSPACE = " \t\n\v\f\r"


def open_inline(name: str, *, parameter: str, fold: bool = True) -> MappingTable:
    """Parse ``inline:{ key=value, { key = text with spaces } }``.

    Postfix util/dict_inline.c ``dict_inline_open()``: the whole name must be
    one ``{...}`` group holding at least one entry; entries are separated by
    commas or whitespace; an entry in braces may contain spaces around
    ``=`` and in the value. A duplicate key is rejected (Postfix silently
    keeps the last one).
    """
    ref = f"inline:{name}"
    try:
        body = strip_braces(name, strip=False)
    except ValueError:
        raise LookupTableError(
            parameter, ref, 'bad syntax; need "inline:{name=value...}"'
        ) from None
    if not body:
        raise LookupTableError(parameter, ref, 'bad syntax; need "inline:{name=value...}"')
    entries: dict[str, str] = {}
    for number, token in enumerate(split_tokens(body, COMMA_SPACE), 1):
        try:
            text = strip_braces(token) if token.startswith("{") else token
            key, value = split_qnameval(text)
        except ValueError as exc:
            raise LookupTableError(parameter, ref, f"entry {number}: {exc}") from None
        folded = fold_key(key) if fold else key
        if folded in entries:
            raise LookupTableError(parameter, ref, f"entry {number}: duplicate key {key!r}")
        entries[folded] = value
    if not entries:
        raise LookupTableError(parameter, ref, "empty table")
    return MappingTable(entries, ref=ref, fold=fold)


def open_static(name: str, *, parameter: str) -> StaticTable:
    """Parse ``static:value`` or ``static:{ text with spaces }``.

    Postfix util/dict_static.c ``dict_static_open()``.
    """
    ref = f"static:{name}"
    if name.startswith("{"):
        try:
            value = strip_braces(name)
        except ValueError as exc:
            raise LookupTableError(parameter, ref, f"bad static:name syntax: {exc}") from None
    else:
        value = name
    return StaticTable(value, ref=ref)


def parse_texthash(text: str, *, ref: str, parameter: str, fold: bool = True) -> MappingTable:
    """Parse the content of a Postfix table source file (``key whitespace value``).

    Postfix util/dict_thash.c ``dict_thash_open()``: logical lines as in
    main.cf; the key ends at the first whitespace outside double quotes
    (backslash escapes one character) and keeps its quotes; key and value
    must both be non-empty; a second entry for the same (case-folded) key
    makes the table unusable, which we report as an error.
    """
    entries: dict[str, str] = {}
    try:
        lines = list(logical_lines(text))
    except ValueError as exc:
        raise LookupTableError(parameter, ref, str(exc)) from None
    for lineno, line in lines:
        in_quotes = False
        i = 0
        n = len(line)
        while i < n:
            ch = line[i]
            if ch == "\\":
                i += 1
                if i >= n:
                    break
            elif ch in _ISSPACE:
                if not in_quotes:
                    break
            elif ch == '"':
                in_quotes = not in_quotes
            i += 1
        if in_quotes:
            raise LookupTableError(parameter, ref, "unbalanced '\"'", line=lineno)
        key = line[:i]
        value = line[i + 1 :].strip(_ISSPACE) if i < n else ""
        if not key or not value:
            raise LookupTableError(
                parameter, ref, "expected format: key whitespace value", line=lineno
            )
        if key.endswith(":"):
            _log.warning(
                '%s, line %d: record is in "key: value" format; is this an alias file?',
                ref,
                lineno,
            )
        folded = fold_key(key) if fold else key
        if folded in entries:
            raise LookupTableError(parameter, ref, f"duplicate entry: {key!r}", line=lineno)
        entries[folded] = value
    return MappingTable(entries, ref=ref, fold=fold)


def open_texthash(path: str, *, parameter: str, fold: bool = True) -> MappingTable:
    """Read ``texthash:/path`` (see :func:`parse_texthash`)."""
    ref = f"texthash:{path}"
    return parse_texthash(
        read_table_text(path, ref=ref, parameter=parameter), ref=ref, parameter=parameter, fold=fold
    )
