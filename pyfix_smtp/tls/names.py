"""Reference names for certificate checks and host name matching (pure, no X.509 parsing).

:class:`MatchName` is a name a server certificate must match (Postfix's
``match=`` names, the MX host, the nexthop); :func:`match_host` compares one
certificate name with one reference name as OpenSSL X509_check_host() does
with Postfix's flags (``X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS``):
case-insensitive ASCII, a wildcard only as the whole leftmost label of a
name with at least three labels, matching exactly one non-empty label; a
reference name that starts with ``.`` matches any name below that domain
(Postfix ``dot-nexthop``).

Parsing certificates is left to :mod:`.certs`, so the policy layer and a
delivery that checks no certificate never load cryptography.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import idna

__all__ = ["MatchName", "ascii_lower", "is_ldh", "match_host", "parse_ip", "to_ascii"]


@dataclass(frozen=True, slots=True)
class MatchName:
    """A reference name for certificate matching, in A-label form.

    ``subdomain=True`` means "any name below *name*" (Postfix ``.domain``
    or ``dot-nexthop``); *name* itself then does not match.
    """

    name: str
    subdomain: bool = False

    @property
    def ip(self) -> bool:
        """The name is an IP address (OpenSSL 3 SSL_add1_host() then checks iPAddress SANs)."""
        return not self.subdomain and parse_ip(self.name) is not None

    def __str__(self) -> str:
        return "." + self.name if self.subdomain else self.name


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address, or None for anything else (OpenSSL a2i_IPADDRESS())."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def to_ascii(name: str) -> str:
    """A-label form of a domain name (Postfix midna_domain_to_ascii()); ASCII names unchanged."""
    if name.isascii():
        return name
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"invalid internationalized domain name {name!r}: {exc}") from None


def is_ldh(ch: str) -> bool:
    """*ch* is an ASCII letter, digit or hyphen (a host name label character)."""
    return ch.isascii() and (ch.isalnum() or ch == "-")


def _valid_star(pattern: str) -> int:
    """OpenSSL valid_star() with NO_PARTIAL_WILDCARDS: index of a usable '*', else -1."""
    star = -1
    label_start = True
    idna_label = False
    hyphen = False
    dots = 0
    n = len(pattern)
    for i, ch in enumerate(pattern):
        if ch == "*":
            at_end = i == n - 1 or pattern[i + 1] == "."
            if star >= 0 or idna_label or dots or not label_start or not at_end:
                return -1  # one star, whole first label, not in an A-label
            star = i
            label_start = False
        elif ch.isascii() and ch.isalnum():
            if label_start and ascii_lower(pattern[i : i + 4]) == "xn--":
                idna_label = True
            label_start = hyphen = False
        elif ch == ".":
            if hyphen or label_start:
                return -1
            label_start, hyphen, idna_label = True, False, False
            dots += 1
        elif ch == "-":
            if label_start:
                return -1
            hyphen = True
        else:
            return -1
    if label_start or hyphen or dots < 2:  # at least two dots after the star
        return -1
    return star


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """ASCII-only case folding, as OpenSSL's equal_nocase()."""
    return text.translate(_ASCII_LOWER)


def _equal_nocase(pattern: str, reference: str, subdomain: bool) -> bool:
    """OpenSSL equal_nocase() with skip_prefix() for ``.domain`` references."""
    if "\x00" in pattern:
        return False
    if subdomain and len(pattern) > len(reference):
        pattern = pattern[len(pattern) - len(reference) :]
    return len(pattern) == len(reference) and ascii_lower(pattern) == ascii_lower(reference)


def match_host(pattern: str, ref: MatchName) -> bool:
    """Does the certificate name *pattern* match the reference *ref*?

    OpenSSL equal_wildcard()/wildcard_match() semantics with
    ``X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS`` (Postfix tls_client.c
    add_namechecks()).
    """
    reference = "." + ref.name if ref.subdomain else ref.name
    if not ref.subdomain:
        star = _valid_star(pattern)
        if star >= 0:
            suffix = pattern[star + 1 :]
            if len(reference) < len(suffix) + 1:
                return False  # the wildcard must match at least one character
            wild = reference[: len(reference) - len(suffix)]
            if ascii_lower(reference[len(wild) :]) != ascii_lower(suffix):
                return False
            return wild == "*" or all(is_ldh(ch) for ch in wild)  # a literal '*' matches too
    return _equal_nocase(pattern, reference, ref.subdomain)
