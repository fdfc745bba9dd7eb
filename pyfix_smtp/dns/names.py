"""Host name and numeric address syntax, as Postfix checks it before and after DNS.

Postfix refuses to send a query for a name that fails ``valid_hostname()``
or that is a numeric address (``dns_lookup_x()``), and it drops MX/SRV/CNAME
targets in replies that fail the same test (``valid_rr_name()``). These pure
functions reproduce those checks so the planner makes the same decisions
whatever resolver answers its queries.
"""

from __future__ import annotations

import ipaddress
import re

import idna

__all__ = [
    "VALID_HOSTNAME_LEN",
    "VALID_LABEL_LEN",
    "ascii_domain",
    "parse_address",
    "valid_hostaddr",
    "valid_hostname",
    "valid_rr_name",
]

VALID_LABEL_LEN = 63  # Postfix valid_hostname.h
VALID_HOSTNAME_LEN = 255  # Postfix valid_hostname.h

_LABEL_CHAR = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_DIGITS = frozenset("0123456789")
_HEX_RUN = re.compile(r"[0-9a-fA-F]*")


def valid_hostname(name: str, *, wildcard: bool = False) -> bool:
    """Postfix ``valid_hostname()``: letters, digits, ``_`` and inner hyphens.

    Labels of 1-63 characters, no empty label, no trailing dot, at most 255
    characters, not all-numeric. With *wildcard*, a leading ``*`` label is
    allowed (``DO_WILDCARD``, used for names in DNS replies).
    """
    # Postfix valid_hostname.c valid_hostname()
    if not name:
        return False
    label_length = 0
    label_count = 0
    non_numeric = False
    last = len(name) - 1
    for i, ch in enumerate(name):
        if ch in _LABEL_CHAR:
            if label_length == 0:
                label_count += 1
            label_length += 1
            if label_length > VALID_LABEL_LEN:
                return False
            if ch not in _DIGITS:
                non_numeric = True
        elif wildcard and ch == "*":
            if label_length or label_count or (i < last and name[i + 1] != "."):
                return False
            label_count += 1
            label_length += 1
            non_numeric = True
        elif ch == ".":
            if label_length == 0 or i == last:
                return False
            label_length = 0
        elif ch == "-":
            non_numeric = True
            label_length += 1
            if label_length == 1 or i == last or name[i + 1] == ".":
                return False
        else:
            return False
    if not non_numeric:
        return False
    return len(name) <= VALID_HOSTNAME_LEN


def _valid_ipv4_hostaddr(addr: str) -> bool:
    # Postfix valid_hostname.c valid_ipv4_hostaddr()
    if not addr:
        return False
    in_byte = False
    byte_count = 0
    byte_val = 0
    last = len(addr) - 1
    for i, ch in enumerate(addr):
        if ch in _DIGITS:
            if not in_byte:
                in_byte = True
                byte_val = 0
                byte_count += 1
            byte_val = byte_val * 10 + ord(ch) - 48
            if byte_val > 255:
                return False
        elif ch == ".":
            if not in_byte or i == last:
                return False
            # "Allow 0.0.0.0 but not 0.1.2.3"
            if byte_count == 1 and byte_val == 0 and addr.strip("0."):
                return False
            in_byte = False
        else:
            return False
    return byte_count == 4


def _valid_ipv6_hostaddr(addr: str) -> bool:
    # Postfix valid_hostname.c valid_ipv6_hostaddr(): eight hex fields, one
    # "::" compression, optional trailing dotted quad.
    null_field = 0
    field = 0
    length = 0
    pos = 0
    end = len(addr)
    while True:
        ch = addr[pos] if pos < end else ""
        if ch == "":
            if field < 2:
                return False
            return not (length == 0 and null_field != field - 1)
        if ch == ".":
            if field < 2 or field > 6:
                return False
            return _valid_ipv4_hostaddr(addr[pos - length :])
        if ch == ":":
            nxt = addr[pos + 1] if pos + 1 < end else ""
            if field == 0 and length == 0 and nxt.isascii() and nxt.isalnum():
                return False
            field += 1
            if field > 7:
                return False
            pos += 1
            length = 0
            if pos < end and addr[pos] == ":":
                if null_field > 0:
                    return False
                null_field = field
            continue
        match = _HEX_RUN.match(addr, pos)
        length = match.end() - pos if match else 0
        if length > 4 or length <= 0:
            return False
        pos += length


def valid_hostaddr(addr: str) -> bool:
    """Postfix ``valid_hostaddr()``: a dotted quad or an RFC 4291 IPv6 text form."""
    if not addr:
        return False
    if ":" in addr:
        return _valid_ipv6_hostaddr(addr)
    return _valid_ipv4_hostaddr(addr)


def valid_rr_name(name: str) -> bool:
    """Postfix ``valid_rr_name()``: may a name in a DNS reply be used?

    Numeric names pass (Postfix only warns), as do valid host names with an
    optional leading ``*`` label.
    """
    # Postfix dns_lookup.c valid_rr_name()
    return valid_hostaddr(name) or valid_hostname(name, wildcard=True)


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address when *text* is a numeric IPv4/IPv6 address, else None.

    Postfix ``hostaddr_to_sockaddr()`` (getaddrinfo with AI_NUMERICHOST). A
    zone index (``fe80::1%eth0``) is accepted, as getaddrinfo accepts it.
    """
    if not text or not (text[0].isdigit() or ":" in text):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def ascii_domain(name: str) -> str:
    """*name* in A-label form (Postfix ``midna_domain_to_ascii()``).

    ASCII names are returned unchanged. A name that IDNA (UTS #46,
    non-transitional) cannot convert is returned unchanged too, as Postfix
    does; the later ``valid_hostname()`` check then rejects it with
    "invalid host or domain name".
    """
    if name.isascii():
        return name
    try:
        return idna.encode(name, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError:
        return name
