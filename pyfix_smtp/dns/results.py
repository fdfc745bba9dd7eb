"""What the planner produces: candidates, sites and the plan (pure values).

A :class:`Plan` is a tuple of :class:`Site` values, one per destination
(nexthop or fallback relay) that would be tried; each site holds its
:class:`Candidate` addresses in the order Postfix would connect to them, or
the :class:`~pyfix_smtp.status.Failure` that explains why there are none.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pyfix_smtp.dns.options import Family
from pyfix_smtp.status import Failure

__all__ = ["Candidate", "FinalFailure", "Origin", "Plan", "Site", "Source"]


class Source(enum.Enum):
    """How a site's addresses were found."""

    MX = "mx"  # MX records
    IMPLICIT_MX = "implicit-mx"  # no MX records: the domain's own A/AAAA (RFC 5321 §5.1)
    HOST = "host"  # no MX lookup at all: [host], LMTP, or DNS disabled
    SRV = "srv"  # SRV records (use_srv_lookup)
    UNIX = "unix"  # LMTP unix:/path


class Origin(enum.Enum):
    """Where one candidate address came from."""

    DNS = "dns"  # an A/AAAA record
    NUMERIC = "numeric"  # the host name was an IP address (literal or numeric MX)
    NATIVE = "native"  # the system resolver
    PATH = "path"  # a UNIX-domain socket path


@dataclass(frozen=True, slots=True)
class Candidate:
    """One address to connect to, with how it was found.

    Attributes:
        hostname: the server name for logs, TLS and SASL: the MX/SRV target
            or destination host (Postfix ``SMTP_HNAME``; the CNAME target
            when ``smtp_cname_overrides_servername``).
        address: textual IP address (or the socket path for ``UNIX``).
        port: TCP port (the SRV port, else the destination port; 0 for UNIX).
        family: IPV4, IPV6 or UNIX.
        preference: MX preference or SRV priority (0 without MX/SRV).
        best_mx: preference equals the site's best (Postfix BEST_MX feature).
        from_fallback: the site is a fallback relay.
        mx_authentic: the MX/SRV RRset naming this host was DNSSEC-validated;
            None when there was no MX/SRV lookup.
        address_authentic: the A/AAAA RRset (and its CNAMEs) validated.
        qname: the name whose addresses were looked up.
        rname: the owner of the address record (CNAME target), = qname if none.
        cname_chain: CNAME targets followed for the address lookup.
        origin: DNS record, numeric name, system resolver, or path.
        ttl: the address RRset's TTL in seconds (0 when unknown).
        weight: the SRV weight (0 otherwise).
    """

    hostname: str
    address: str
    port: int
    family: Family
    preference: int = 0
    best_mx: bool = False
    from_fallback: bool = False
    mx_authentic: bool | None = None
    address_authentic: bool = False
    qname: str = ""
    rname: str = ""
    cname_chain: tuple[str, ...] = ()
    origin: Origin = Origin.DNS
    ttl: int = 0
    weight: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        if self.family is not Family.UNIX and self.port == 0:
            raise ValueError(f"a TCP candidate needs a port: {self.address}")

    @property
    def is_ipv6(self) -> bool:
        """True for an IPv6 address."""
        return self.family is Family.IPV6

    @property
    def authentic(self) -> bool:
        """Every DNS step to this address validated (what DANE needs)."""
        return self.address_authentic and self.mx_authentic is not False

    @property
    def endpoint(self) -> str:
        """``host[address]:port`` as Postfix logs it."""
        if self.family is Family.UNIX:
            return f"{self.hostname}[{self.address}]"
        return f"{self.hostname}[{self.address}]:{self.port}"


@dataclass(frozen=True, slots=True)
class Site:
    """One destination (nexthop or fallback relay) and its candidates.

    Attributes:
        nexthop: the destination as written.
        domain: the name that was looked up (A-label form).
        port: the destination's TCP port.
        service: the destination's service name.
        source: how the addresses were found.
        candidates: the addresses to try, in order, at most
            ``smtp_mx_address_limit``.
        spare: further addresses beyond the limit (Postfix does not try
            them; kept for a connection-cache-aware caller).
        failure: why there is no candidate (Postfix's ``why`` after the
            lookup); None when there are candidates.
        is_fallback: a fallback relay.
        final: no later site is tried after this one (last site, we are an
            MX for the destination, or mail loops back to us).
        i_am_mx: this host is an MX for the destination (list truncated at
            our own preference).
        loop_detection: best-MX-is-myself checks applied (SMTP, port 25).
        mx_qname: the MX/SRV name looked up, or None.
        mx_rname: its canonical name after CNAMEs, or None.
        mx_authentic: the MX/SRV RRset validated; None without MX/SRV.
        srv_fallback: the SRV lookup failed and MX/host lookup was used.
        warnings: what Postfix would log with msg_warn/msg_info.
    """

    nexthop: str
    domain: str
    port: int
    service: str = ""
    source: Source = Source.MX
    candidates: tuple[Candidate, ...] = ()
    spare: tuple[Candidate, ...] = ()
    failure: Failure | None = None
    is_fallback: bool = False
    final: bool = False
    i_am_mx: bool = False
    loop_detection: bool = False
    mx_qname: str | None = None
    mx_rname: str | None = None
    mx_authentic: bool | None = None
    srv_fallback: bool = False
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.candidates and self.failure is None:
            raise ValueError(f"site {self.nexthop!r} has neither candidates nor a failure")

    @property
    def loops_back(self) -> bool:
        """The lookup ended in a mail-loop status (x.4.6), Postfix SMTP_HAS_LOOP_DSN."""
        return self.failure is not None and self.failure.status[1:] == ".4.6"


@dataclass(frozen=True, slots=True)
class Plan:
    """The sites to try, in order, and the overall outcome when none has addresses.

    Attributes:
        sites: sites in order, ending with the first *final* one.
        failure: when no site has a candidate, what Postfix reports for the
            delivery (a hard error from a fallback relay or relayhost is
            softened to 4.3.5); None otherwise.
        best_mx_transport: set when mail loops back to myself (5.4.6) and
            ``best_mx_transport`` is configured: Postfix passes the mail to
            that transport instead of bouncing.
        warnings: warnings not tied to one site.
    """

    sites: tuple[Site, ...]
    failure: Failure | None = None
    best_mx_transport: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        """Every site's candidates, in the order they would be tried."""
        return tuple(c for site in self.sites for c in site.candidates)


@dataclass(frozen=True, slots=True)
class FinalFailure:
    """The status Postfix reports once every site has been tried.

    Attributes:
        failure: the failure for the recipients still left.
        best_mx_transport: when set, mail that loops back to myself is passed
            to this transport instead of failing.
        warnings: what Postfix logs with it ("relayhost configuration problem").
    """

    failure: Failure
    best_mx_transport: str | None = None
    warnings: tuple[str, ...] = ()
