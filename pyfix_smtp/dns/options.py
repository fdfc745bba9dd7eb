"""Planner options: the Postfix parameters that shape an address plan (pure).

:class:`PlanOptions` holds them by their Postfix names, already parsed and
checked; :meth:`PlanOptions.from_config` reads them from a
:class:`pyfix_smtp.config.Config` (or anything with the same attributes).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass, field

from pyfix_smtp.dns.lookup import ReplyFilter
from pyfix_smtp.dns.ordering import AddressPreference
from pyfix_smtp.errors import ConfigError

__all__ = [
    "AddressPreference",
    "DnsSupport",
    "Family",
    "HostLookup",
    "PlanOptions",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Family(enum.Enum):
    """Address family of a candidate."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"
    UNIX = "unix"  # LMTP over a UNIX-domain socket


class DnsSupport(enum.Enum):
    """``smtp_dns_support_level``."""

    DISABLED = "disabled"  # no DNS at all: native host lookups only
    ENABLED = "enabled"  # DNS without DNSSEC
    DNSSEC = "dnssec"  # DNS with DNSSEC validation status


class HostLookup(enum.Enum):
    """One mechanism of ``smtp_host_lookup``."""

    DNS = "dns"
    NATIVE = "native"  # the system resolver (getaddrinfo, /etc/hosts)


_INSECURE_MX_POLICIES = frozenset({"may", "encrypt", "dane"})
_RESOLVER_OPTIONS = frozenset({"res_defnames", "res_dnsrch"})


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """The parameters that shape a plan, by their Postfix names.

    In an LMTP configuration the ``smtp_*`` fields hold the ``lmtp_*``
    parameter values (Postfix binds one variable to both names).

    Attributes:
        protocol: ``"smtp"`` or ``"lmtp"``. LMTP never looks up MX records
            and never checks for mail loops.
        smtp_mx_address_limit: addresses tried per site (0 = no limit).
        smtp_randomize_addresses: shuffle equal-preference addresses.
        smtp_address_preference: family tried first at equal preference.
        inet_protocols: enabled address families (empty = all disabled).
        smtp_balance_inet_protocols: keep both families within the limit.
        smtp_defer_if_no_mx_address_found: defer (4.x.x) instead of bounce
            when no MX host has an address.
        ignore_mx_lookup_error: on an MX lookup error other than "not
            found", use the domain's own addresses.
        smtp_dns_support_level: DNS use and DNSSEC (``disable_dns_lookups``
            folded in: an empty level with ``disable_dns_lookups = yes`` is
            ``DISABLED``).
        smtp_host_lookup: mechanisms for host addresses (DNS, then native
            when DNS says "not found"); native only when DNS is disabled.
        allow_srv_lookup_fallback: SRV not found or failed -> MX/host lookup
            (which destinations use SRV is decided by ``use_srv_lookup``
            when parsing them, :attr:`pyfix_smtp.destination.Destination.srv_lookup`).
        ignore_srv_lookup_error: SRV lookup error -> MX/host lookup.
        own_addresses: the addresses of ``inet_interfaces``.
        proxy_addresses: the addresses of ``proxy_interfaces``.
        best_mx_transport: where mail that loops back to myself goes
            (reported in :attr:`Plan.best_mx_transport`).
        smtp_dns_reply_filter: filter table for DNS records, or None.
        smtp_dns_resolver_options: ``res_defnames``/``res_dnsrch``: use the
            resolver search list for host address lookups.
        smtp_cname_overrides_servername: name a server by its CNAME target.
        smtp_tls_dane_insecure_mx_policy: with ``may``, the addresses of
            MX hosts from an unvalidated MX RRset are looked up without
            DNSSEC (Postfix ``smtp_addr_list()``), so never authentic.
        relayhost: ``relayhost`` as written, for the 4.3.5 rule.
        myhostname: the name shown for an LMTP ``unix:`` destination.
        unique_addresses: try each address:port once per site (pyfix
            extension; Postfix tries a repeated address again).
    """

    protocol: str = "smtp"
    smtp_mx_address_limit: int = 5
    smtp_randomize_addresses: bool = True
    smtp_address_preference: AddressPreference = AddressPreference.ANY
    inet_protocols: frozenset[Family] = frozenset({Family.IPV4, Family.IPV6})
    smtp_balance_inet_protocols: bool = True
    smtp_defer_if_no_mx_address_found: bool = False
    ignore_mx_lookup_error: bool = False
    smtp_dns_support_level: DnsSupport = DnsSupport.ENABLED
    smtp_host_lookup: frozenset[HostLookup] = frozenset({HostLookup.DNS})
    allow_srv_lookup_fallback: bool = False
    ignore_srv_lookup_error: bool = False
    own_addresses: frozenset[IPAddress] = frozenset()
    proxy_addresses: frozenset[IPAddress] = frozenset()
    best_mx_transport: str = ""
    smtp_dns_reply_filter: ReplyFilter | Callable[[str], str | None] | None = field(
        default=None, compare=False
    )
    smtp_dns_resolver_options: frozenset[str] = frozenset()
    smtp_cname_overrides_servername: bool = False
    smtp_tls_dane_insecure_mx_policy: str = "dane"
    relayhost: str = ""
    myhostname: str = "localhost"
    unique_addresses: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in ("smtp", "lmtp"):
            raise ConfigError("protocol", self.protocol, 'must be "smtp" or "lmtp"')
        if self.smtp_mx_address_limit < 0:
            raise ConfigError(
                "smtp_mx_address_limit", self.smtp_mx_address_limit, "must be 0 or more"
            )
        if Family.UNIX in self.inet_protocols:
            raise ConfigError("inet_protocols", "unix", "not an internet protocol")
        if not self.smtp_host_lookup:
            raise ConfigError("smtp_host_lookup", "", "needs dns, native or both")
        bad = self.smtp_dns_resolver_options - _RESOLVER_OPTIONS
        if bad:
            raise ConfigError(
                "smtp_dns_resolver_options", sorted(bad)[0], "expected res_defnames or res_dnsrch"
            )
        if self.smtp_tls_dane_insecure_mx_policy not in _INSECURE_MX_POLICIES:
            raise ConfigError(
                "smtp_tls_dane_insecure_mx_policy",
                self.smtp_tls_dane_insecure_mx_policy,
                "expected may, encrypt or dane",
            )

    @property
    def host_lookup(self) -> frozenset[HostLookup]:
        """The effective mechanisms: native only when DNS is disabled (Postfix post_init())."""
        if self.smtp_dns_support_level is DnsSupport.DISABLED:
            return frozenset({HostLookup.NATIVE})
        return self.smtp_host_lookup

    @classmethod
    def from_config(
        cls,
        cfg: object,
        *,
        own_addresses: Iterable[str | IPAddress] | None = None,
        proxy_addresses: Iterable[str | IPAddress] | None = None,
    ) -> PlanOptions:
        """Build options from a :class:`pyfix_smtp.config.Config`.

        ``inet_interfaces`` and ``proxy_interfaces`` must be turned into
        addresses: numeric entries are used as they are; ``all``,
        ``loopback-only`` and host names need the system, so pass
        *own_addresses* / *proxy_addresses*, or call
        :func:`pyfix_smtp.dns.resolve.plan_options` which does that. An
        unresolved entry raises :class:`~pyfix_smtp.errors.ConfigError`
        rather than silently disabling mail-loop detection. LMTP needs no
        addresses (it never checks for loops).
        """
        from pyfix_smtp.dns import _config as c

        protocol = c.get_str(cfg, "protocol", "smtp")
        families = frozenset(
            Family(name) for name in c.inet_protocols(c.get_words(cfg, "inet_protocols", ("all",)))
        )
        level_text = c.get_str(cfg, "smtp_dns_support_level", "")
        if level_text:
            level = c.choice(cfg, "smtp_dns_support_level", DnsSupport)
        else:  # Postfix smtp.c post_init(): backwards-compatible empty setting
            disabled = c.get_bool(cfg, "disable_dns_lookups", False)
            level = DnsSupport.DISABLED if disabled else DnsSupport.ENABLED
        lookups = frozenset(
            c.parse_choice("smtp_host_lookup", word, HostLookup)
            for word in c.get_words(cfg, "smtp_host_lookup", ("dns",))
        )
        if protocol == "lmtp":
            # No best-MX check for LMTP; inet_interfaces still picks the source
            # address of TCP connections (smtp_connect_addr()) when it is known.
            own: frozenset[IPAddress] = (
                frozenset()
                if own_addresses is None
                else c.interface_addresses(
                    "inet_interfaces",
                    c.get_words(cfg, "inet_interfaces", ("all",)),
                    own_addresses,
                )
            )
            proxy: frozenset[IPAddress] = frozenset()
        else:
            own = c.interface_addresses(
                "inet_interfaces", c.get_words(cfg, "inet_interfaces", ("all",)), own_addresses
            )
            proxy = c.interface_addresses(
                "proxy_interfaces", c.get_words(cfg, "proxy_interfaces", ()), proxy_addresses
            )
        reply_filter = getattr(cfg, "smtp_dns_reply_filter", None)
        if not (reply_filter is None or hasattr(reply_filter, "lookup") or callable(reply_filter)):
            raise ConfigError("smtp_dns_reply_filter", reply_filter, "expected a lookup table")
        if isinstance(reply_filter, Sized) and len(reply_filter) == 0:
            reply_filter = None  # an empty TableList: no filter
        return cls(
            protocol=protocol,
            smtp_mx_address_limit=c.get_int(cfg, "smtp_mx_address_limit", 5),
            smtp_randomize_addresses=c.get_bool(cfg, "smtp_randomize_addresses", True),
            smtp_address_preference=c.choice(
                cfg, "smtp_address_preference", AddressPreference, "any"
            ),
            inet_protocols=families,
            smtp_balance_inet_protocols=c.get_bool(cfg, "smtp_balance_inet_protocols", True),
            smtp_defer_if_no_mx_address_found=c.get_bool(
                cfg, "smtp_defer_if_no_mx_address_found", False
            ),
            ignore_mx_lookup_error=c.get_bool(cfg, "ignore_mx_lookup_error", False),
            smtp_dns_support_level=level,
            smtp_host_lookup=lookups,
            allow_srv_lookup_fallback=c.get_bool(cfg, "allow_srv_lookup_fallback", False),
            ignore_srv_lookup_error=c.get_bool(cfg, "ignore_srv_lookup_error", False),
            own_addresses=own,
            proxy_addresses=proxy,
            best_mx_transport=c.get_str(cfg, "best_mx_transport", ""),
            smtp_dns_reply_filter=reply_filter,
            smtp_dns_resolver_options=frozenset(
                w.lower() for w in c.get_words(cfg, "smtp_dns_resolver_options", ())
            ),
            smtp_cname_overrides_servername=c.get_bool(
                cfg, "smtp_cname_overrides_servername", False
            ),
            smtp_tls_dane_insecure_mx_policy=c.get_str(
                cfg, "smtp_tls_dane_insecure_mx_policy", "dane"
            ).lower(),
            relayhost=c.get_str(cfg, "relayhost", ""),
            myhostname=c.get_str(cfg, "myhostname", "localhost"),
        )
