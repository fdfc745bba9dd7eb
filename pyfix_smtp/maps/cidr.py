"""``cidr:`` tables: network/prefix patterns (Postfix dict_cidr.c, cidr_match.c)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pyfix_smtp.errors import LookupTableError
from pyfix_smtp.maps.base import Table
from pyfix_smtp.maps.files import read_rules
from pyfix_smtp.maps.syntax import logical_lines

__all__ = ["CidrTable", "open_cidr", "parse_address"]

_ISSPACE = " \t\n\v\f\r"
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> _Address | None:
    """Parse a lookup key the way ``inet_pton()`` would, or return ``None``.

    The family is IPv6 when the text contains ``:`` (cidr_match.c
    CIDR_MATCH_ADDR_FAMILY); scope suffixes (``%eth0``) are not addresses.
    """
    if "%" in text:
        return None
    try:
        if ":" in text:
            return ipaddress.IPv6Address(text)
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Rule:
    """One compiled line: a match rule, an ``if`` or an ``endif``."""

    op: str  # "match", "if", "endif"
    network: _Network | None
    match: bool  # False for a negated pattern
    value: str
    lineno: int
    block_end: int = -1  # for "if": index of the matching "endif"

    def matches(self, address: _Address) -> bool:
        """cidr_match.c ``cidr_match_entry()``: same family and inside (or not)."""
        assert self.network is not None
        if self.network.version != address.version:
            return False
        return (address in self.network) == self.match


def _parse_network(pattern: str) -> _Network:
    """cidr_match.c ``cidr_match_parse()``: ``addr``, ``addr/len``, ``[addr]/len``."""
    text = pattern
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"missing ']' character after \"{text}\"")
        inner, after = text[1:close], text[close + 1 :]
        if after and not after.startswith("/"):
            raise ValueError(f'garbage after "[{inner}]"')
        text = inner + after
    address, slash, mask = text.partition("/")
    family_v6 = ":" in address
    bits = 128 if family_v6 else 32
    if slash:
        if not mask.isdigit() or not mask.isascii():
            raise ValueError(f'bad mask value in "{address}/{mask}"')
        if int(mask) > bits:
            raise ValueError(f'bad mask length in "{address}/{mask}"')
    parsed = parse_address(address)
    if parsed is None or (parsed.version == 6) != family_v6:
        what = "bad network value in" if slash else "bad address pattern:"
        raise ValueError(f'{what} "{text}"')
    prefix = int(mask) if slash else bits
    try:
        return ipaddress.ip_network(f"{parsed}/{prefix}", strict=True)
    except ValueError:
        network = ipaddress.ip_network(f"{parsed}/{prefix}", strict=False)
        raise ValueError(
            f'non-null host address bits in "{address}/{mask}", '
            f'perhaps you should use "{network}" instead'
        ) from None


def _negations(text: str) -> tuple[bool, str]:
    """Consume leading ``!`` (each toggles) and whitespace."""
    match = True
    i = 0
    while i < len(text) and (text[i] == "!" or text[i] in _ISSPACE):
        if text[i] == "!":
            match = not match
        i += 1
    return match, text[i:]


def _is_keyword(line: str, word: str) -> bool:
    n = len(word)
    return line[:n].lower() == word and not line[n : n + 1].isalnum()


def parse_cidr(text: str, *, ref: str, parameter: str) -> CidrTable:
    """Compile cidr table text (rules one per logical line)."""
    rules: list[_Rule] = []
    stack: list[int] = []
    try:
        lines = list(logical_lines(text))
    except ValueError as exc:
        raise LookupTableError(parameter, ref, str(exc)) from None
    for lineno, line in lines:
        line = line.strip(_ISSPACE)
        try:
            if _is_keyword(line, "if"):
                match, pattern = _negations(line[2:])
                if not pattern:
                    raise ValueError("no address pattern")
                network = _parse_network(pattern.strip(_ISSPACE))
                stack.append(len(rules))
                rules.append(_Rule("if", network, match, "", lineno))
                continue
            if _is_keyword(line, "endif"):
                if line[5:].strip(_ISSPACE):
                    raise ValueError("garbage after ENDIF")
                if not stack:
                    raise ValueError("ENDIF without IF")
                opener = stack.pop()
                rules[opener] = _replace_end(rules[opener], len(rules))
                rules.append(_Rule("endif", None, True, "", lineno))
                continue
            match, rest = _negations(line)
            pattern, _, value = _split_ws(rest)
            value = value.strip(_ISSPACE)
            if not pattern:
                raise ValueError("no address pattern")
            network = _parse_network(pattern)
            if not value:
                raise ValueError("no lookup result")
            rules.append(_Rule("match", network, match, value, lineno))
        except ValueError as exc:
            raise LookupTableError(parameter, ref, str(exc), line=lineno) from None
    if stack:
        unclosed = rules[stack[-1]].lineno
        raise LookupTableError(parameter, ref, "IF has no matching ENDIF", line=unclosed)
    return CidrTable(tuple(rules), ref=ref)


def _split_ws(text: str) -> tuple[str, str, str]:
    for i, ch in enumerate(text):
        if ch in _ISSPACE:
            return text[:i], ch, text[i + 1 :]
    return text, "", ""


def _replace_end(rule: _Rule, end: int) -> _Rule:
    return _Rule(rule.op, rule.network, rule.match, rule.value, rule.lineno, end)


class CidrTable(Table):
    """A compiled ``cidr:`` table; keys are IP address strings."""

    __slots__ = ("_rules", "fixed", "ref")

    def __init__(self, rules: tuple[_Rule, ...], *, ref: str) -> None:
        self._rules = rules
        self.ref = ref
        self.fixed = False

    def lookup(self, key: str) -> str | None:
        """Return the result of the first rule matching address *key*.

        cidr_match.c ``cidr_match_execute()``: a key that is not an address
        matches nothing; an ``if`` whose pattern does not match skips to its
        ``endif``.
        """
        address = parse_address(key)
        if address is None:
            return None
        rules = self._rules
        i = 0
        while i < len(rules):
            rule = rules[i]
            if rule.op == "match":
                if rule.matches(address):
                    return rule.value
            elif rule.op == "if" and not rule.matches(address):
                i = rule.block_end
            i += 1
        return None


def open_cidr(name: str, *, parameter: str) -> CidrTable:
    """Open ``cidr:/path`` or ``cidr:{ {rule}, ... }``."""
    ref = f"cidr:{name}"
    return parse_cidr(read_rules("cidr", name, parameter=parameter), ref=ref, parameter=parameter)
