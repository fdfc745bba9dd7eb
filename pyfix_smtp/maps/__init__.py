"""Postfix lookup tables ("maps") for parameters such as ``smtp_tls_policy_maps``.

Supported: ``inline:{ key=value, { key = text } }``, ``static:value``,
``static:{ text }``, ``texthash:/path`` (a Postfix table source file read
as is, no ``postmap`` needed), ``regexp:/path`` and ``pcre:/path`` (Python
``re``, Postfix rule syntax including ``if``/``endif``), ``cidr:/path``, the
``{ {rule}, ... }`` inline form of the last three, and Python mappings and
callables. Binary and network types (``hash:``, ``lmdb:``, ``mysql:``,
``proxy:`` ...) raise :class:`~pyfix_smtp.errors.LookupTableError`.

Example::

    >>> from pyfix_smtp.maps import TableList
    >>> policy = TableList.parse("inline:{ .example.com=secure, example.com=verify }")
    >>> policy.lookup_with_parents("mx.example.com")
    'secure'
"""

from __future__ import annotations

from pyfix_smtp.maps.base import CallableTable, MappingTable, StaticTable, Table, fold_key
from pyfix_smtp.maps.cidr import CidrTable
from pyfix_smtp.maps.regexp import PatternTable
from pyfix_smtp.maps.tablelist import (
    TableLike,
    TableList,
    open_table,
    parent_keys,
    valid_hostname,
)

__all__ = [
    "CallableTable",
    "CidrTable",
    "MappingTable",
    "PatternTable",
    "StaticTable",
    "Table",
    "TableLike",
    "TableList",
    "fold_key",
    "open_table",
    "parent_keys",
    "valid_hostname",
]
