"""DNS answer types shared by the planner, the TLS policy and the adapters.

The resolver adapters (:mod:`pyfix_smtp.dns.resolve`) turn dnspython results
into these frozen values; the pure layers (:mod:`pyfix_smtp.dns.plan`, the
TLS policy, DANE, MTA-STS) consume them. Nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "AddressRecord",
    "Answer",
    "CnameRecord",
    "MxRecord",
    "Query",
    "Rcode",
    "SrvRecord",
    "TlsaRecord",
    "TxtRecord",
]


class Rcode(enum.Enum):
    """Outcome of one lookup, in the categories Postfix's dns_lookup() uses."""

    NOERROR = "NOERROR"  # records present
    NODATA = "NODATA"  # name exists, no records of this type
    NXDOMAIN = "NXDOMAIN"  # name does not exist
    SERVFAIL = "SERVFAIL"  # server failure or timeout: try again
    REFUSED = "REFUSED"  # and FORMERR/NOTIMP: Postfix's "no recovery"
    FORMERR = "FORMERR"
    NOTIMP = "NOTIMP"
    TIMEOUT = "TIMEOUT"  # no answer in time: try again
    BADNAME = "BADNAME"  # the name is not a valid DNS name
    LOOP = "LOOP"  # too many CNAME indirections (Postfix: "Name server loop")
    SYSERROR = "SYSERROR"  # local resolver failure (no configuration, EAI_SYSTEM): try again


@dataclass(frozen=True, slots=True)
class Query:
    """One lookup the planner wants answered: *name* (A-label form) and type.

    Attributes:
        name: the name to look up, A-label form, no trailing dot.
        rdtype: "MX", "A", "AAAA", "SRV", "TLSA", "TXT", "CNAME", or
            "ADDRINFO": the system resolver (getaddrinfo), answered with
            A and AAAA :class:`AddressRecord` values, never authentic
            (``smtp_host_lookup = native``).
        dnssec: ask a validating resolver for DNSSEC status (EDNS DO and
            the AD bit; Postfix ``RES_USE_DNSSEC``). Without it the answer
            is never authentic.
        search: apply the resolver's search list to the name (Postfix
            ``smtp_dns_resolver_options = res_defnames, res_dnsrch``).
    """

    name: str
    rdtype: str
    dnssec: bool = True
    search: bool = False


@dataclass(frozen=True, slots=True)
class MxRecord:
    preference: int
    exchange: str  # A-label host name without trailing dot; "" for null MX "."


@dataclass(frozen=True, slots=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str  # "" for the null target "."


@dataclass(frozen=True, slots=True)
class AddressRecord:
    address: str  # textual IPv4 or IPv6 address


@dataclass(frozen=True, slots=True)
class TlsaRecord:
    usage: int
    selector: int
    mtype: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CnameRecord:
    """A CNAME record, returned only when CNAME itself was asked for."""

    target: str  # A-label host name without trailing dot


@dataclass(frozen=True, slots=True)
class TxtRecord:
    strings: tuple[bytes, ...]

    @property
    def text(self) -> bytes:
        """The character-strings concatenated (RFC 7208 §3.3, RFC 8461 §3.1)."""
        return b"".join(self.strings)


Record = MxRecord | SrvRecord | AddressRecord | TlsaRecord | TxtRecord | CnameRecord


@dataclass(frozen=True, slots=True)
class Answer:
    """The result of one :class:`Query`.

    Attributes:
        query: what was asked.
        rcode: outcome category.
        records: the records of the asked type (empty unless NOERROR).
        authentic: True when the validating resolver set the AD bit for
            the whole answer (every RRset in the CNAME chain validated).
        canonical_name: the name after CNAME expansion (== query.name when
            there was no CNAME).
        cname_chain: the CNAME targets followed, in order.
        ttl: the smallest TTL seen, in seconds (0 when unknown).
        detail: resolver text for logs (e.g. "Host not found, try again").
    """

    query: Query
    rcode: Rcode
    records: tuple[Record, ...] = ()
    authentic: bool = False
    canonical_name: str = ""
    cname_chain: tuple[str, ...] = field(default=())
    ttl: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.rcode is Rcode.NOERROR and bool(self.records)
