"""Postfix match lists: ``namadr_list`` (``debug_peer_list``) and ``string_list``.

Postfix util/match_list.c parses a list once: names, addresses, networks,
``type:table`` lookups and ``/file/name`` includes, each optionally negated
with ``!``; the first pattern that matches decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from pyfix_smtp.errors import ConfigError, LookupTableError
from pyfix_smtp.maps import Table, open_table
from pyfix_smtp.maps.files import read_table_text
from pyfix_smtp.maps.syntax import logical_lines, split_tokens

__all__ = ["PeerList", "StringList"]

_V4_CHARS = frozenset("01234567890.")
_V6_CHARS = _V4_CHARS | frozenset("abcdefABCDEF:")
_NETWORK_CHARS = _V6_CHARS | frozenset("[]/")


def _is_table(pattern: str) -> bool:
    """Postfix match_ops.c MATCH_DICTIONARY(): ``type:name``, not ``[addr]``."""
    return not pattern.startswith("[") and ":" in pattern


class _MatchList:
    """Postfix match_list.c: patterns in order, ``!`` negates, first match wins.

    A pattern is a string, a ``type:table`` (looked up), or ``/file/name``
    whose lines hold more patterns.
    """

    __slots__ = ("_patterns", "parameter")

    def __init__(self, items: Iterable[str], *, parameter: str) -> None:
        self.parameter = parameter
        self._patterns: list[tuple[bool, str | Table]] = []
        self._parse(items, True)

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def _parse(self, items: Iterable[str], sense: bool) -> None:
        # Postfix match_list_parse()
        for token in items:
            match = sense
            item = token
            while item.startswith("!"):
                match = not match
                item = item[1:]
            if not item:
                raise ConfigError(self.parameter, token, "no pattern after '!'")
            if item.startswith("/"):  # /file/name: its patterns, in line order
                text = read_table_text(item, ref=item, parameter=self.parameter)
                try:
                    lines = [line.text for line in logical_lines(text)]
                except ValueError as exc:
                    raise ConfigError(self.parameter, item, str(exc)) from None
                for line in lines:
                    self._parse(split_tokens(line), match)
            elif _is_table(item):
                self._patterns.append((match, open_table(item, parameter=self.parameter)))
            else:
                pattern = item.casefold()
                self._check(pattern)
                self._patterns.append((match, pattern))

    def _check(self, pattern: str) -> None:
        """Refuse a malformed plain pattern when the list is built."""


class StringList(_MatchList):
    """A Postfix ``string_list`` such as ``smtp_connection_cache_destinations``.

    Postfix match_ops.c match_string(): a plain pattern matches the whole
    string, case-insensitively; a ``type:table`` matches when the string is
    a key in it.

    Raises:
        ConfigError: an unreadable file, a table that cannot be opened or a
            ``!`` without a pattern.
    """

    __slots__ = ()

    def matches(self, string: str) -> bool:
        """Postfix string_list_match(): does *string* match (a table error: no)?"""
        string = string.casefold()
        try:
            for match, pattern in self._patterns:
                if isinstance(pattern, str):
                    if pattern == string:
                        return match
                elif pattern.lookup(string) is not None:
                    return match
        except LookupTableError:
            return False  # match_list_match(): a table lookup problem ends the search
        return False


class PeerList(_MatchList):
    """A Postfix host name/address list (``namadr_list``) such as ``debug_peer_list``.

    Patterns, first match wins: a host name (also matching its subdomains:
    Postfix lists ``debug_peer_list`` in ``parent_domain_matches_subdomains``),
    an IP address (IPv6 in ``[ ]``), a network ``addr/len``, a ``type:table``
    looked up by name (and parent domains, in fixed-key tables) and by
    address, or ``/file/name`` whose lines are patterns too; ``!`` negates.

    Raises:
        ConfigError: an unreadable file, a table that cannot be opened, a
            malformed network or a ``!`` without a pattern.
    """

    __slots__ = ()

    def __init__(self, items: Iterable[str], *, parameter: str = "debug_peer_list") -> None:
        super().__init__(items, parameter=parameter)

    def _check(self, pattern: str) -> None:
        if "/" in pattern and _NETWORK_CHARS.issuperset(pattern):
            self._network(pattern)  # checked now (Postfix: at match time)

    def _network(self, pattern: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        text = pattern.replace("[", "").replace("]", "")
        try:
            return ipaddress.ip_network(text, strict=True)  # cidr_match_parse()
        except ValueError as exc:
            raise ConfigError(self.parameter, pattern, str(exc)) from None

    def matches(self, name: str, address: str) -> bool:
        """Postfix namadr_list_match(): does the host *name* or *address* match?"""
        name = name.casefold()
        address = address.casefold()
        try:
            for match, pattern in self._patterns:
                if self._name_matches(name, pattern) or self._address_matches(address, pattern):
                    return match
        except LookupTableError:
            return False  # match_list_match(): a table lookup problem ends the search
        return False

    @staticmethod
    def _name_matches(name: str, pattern: str | Table) -> bool:
        """Postfix match_ops.c match_hostname() with MATCH_FLAG_PARENT."""
        if not isinstance(pattern, str):
            entry = name
            while entry:
                if (entry is name or pattern.fixed) and pattern.lookup(entry) is not None:
                    return True
                dot = entry.find(".", 1)
                if dot < 0:
                    break
                entry = entry[dot + 1 :]  # parent style: "example.com", not ".example.com"
            return False
        if name == pattern:
            return True
        return name.endswith(pattern) and name[-len(pattern) - 1 : -len(pattern)] == "."

    def _address_matches(self, address: str, pattern: str | Table) -> bool:
        """Postfix match_ops.c match_hostaddr()."""
        if not address or not _V6_CHARS.issuperset(address):
            return False
        if not isinstance(pattern, str):
            return pattern.lookup(address) is not None
        if pattern == address or pattern == f"[{address}]":
            return True
        if (
            (":" in address) != (":" in pattern)
            or not any(c in pattern for c in ":/")
            or _V4_CHARS.issuperset(pattern)
            or not _NETWORK_CHARS.issuperset(pattern)
        ):
            return False
        try:
            host = ipaddress.ip_address(address)
        except ValueError:
            return False
        if "/" in pattern:
            return host in self._network(pattern)
        try:
            return host == ipaddress.ip_address(pattern.strip("[]"))
        except ValueError:
            return False
