"""Nexthop destinations, parsed the way Postfix smtp(8)/lmtp(8) parse them.

A nexthop such as ``example.com``, ``[mail.example.com]:587`` or
``inet:[::1]:24`` becomes one or more :class:`Destination` values that say
where to connect and how to find the servers (MX, SRV or plain address
lookup). Nothing here touches the network.

The syntax (Postfix smtp_connect.c ``smtp_connect_inet()`` /
``smtp_parse_destination()``, util/host_port.c ``host_port()``):

* a list separated by commas and/or whitespace (Postfix 3.5 and later);
* ``domain``, ``domain:service``, ``domain:port``: MX lookup for SMTP (unless
  DNS lookups are disabled), SRV lookup when ``use_srv_lookup`` names the
  symbolic service, address lookup otherwise and for LMTP;
* ``[host]``, ``[host]:service``, ``[address]``, ``[ipv6:address]:port``: no
  MX or SRV lookup;
* LMTP only: ``unix:/path`` (the whole nexthop), ``inet:`` before any element;
* the default service is ``smtp_tcp_port`` (``smtp``) or ``lmtp_tcp_port``
  (``24``); symbolic services come from ``known_tcp_ports``
  (``lmtp=24, smtp=25, smtps=submissions=465, submission=587``), then from a
  built-in table of the IANA mail services instead of /etc/services.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from pyfix_smtp.address import to_ascii_domain
from pyfix_smtp.errors import AddressError, ConfigError, DestinationError

__all__ = [
    "DEFAULT_KNOWN_TCP_PORTS",
    "Destination",
    "DestinationKind",
    "parse",
    "parse_known_tcp_ports",
    "parse_one",
    "sites",
]

Protocol = Literal["smtp", "lmtp"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_KNOWN_TCP_PORTS: Final = "lmtp=24, smtp=25, smtps=submissions=465, submission=587"
"""Postfix's default ``known_tcp_ports`` (mail_params.h DEF_KNOWN_TCP_PORTS)."""

# Postfix mail_params.h DEF_SMTP_TCP_PORT / DEF_LMTP_TCP_PORT
_DEFAULT_SERVICE: Final[Mapping[str, str]] = {"smtp": "smtp", "lmtp": "24"}

# Postfix sys_defs.h CHARS_COMMA_SP is ", \t\r\n"; we split on ", \t" and
# reject CR/LF like every other control character.
_LIST_SEP_RE: Final = re.compile(r"[,\s]+")
_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_IPV4_LIKE_RE: Final = re.compile(r"[0-9.]+")


class DestinationKind(enum.Enum):
    """How to reach a destination."""

    INET = "inet"
    """TCP to a host name or address."""
    UNIX = "unix"
    """A UNIX-domain socket (LMTP ``unix:/path`` only)."""


@dataclass(frozen=True, slots=True)
class Destination:
    """One parsed nexthop element.

    Attributes:
        text: the element as written (``[mx.example.com]:587``).
        kind: :attr:`DestinationKind.INET` or :attr:`DestinationKind.UNIX`.
        host: for INET, the host or domain name in A-label form, or the IP
            address (compressed text form) of a literal; "" for UNIX.
        port: the TCP port; 0 for UNIX (Postfix ``NO_PORT``).
        service: the symbolic service name (``smtp``, ``submission``) when the
            port came from one, else None.
        mx_lookup: look up MX records for :attr:`host` (SMTP, not bracketed,
            DNS enabled). With :attr:`srv_lookup` too, MX is what SRV falls back
            to (smtp_connect.c ``SMTP_MISC_FLAG_FALLBACK_SRV_TO_MX``); without
            either, look up the host's addresses.
        srv_lookup: look up ``_service._tcp.host`` SRV records first
            (``use_srv_lookup`` names the service; not bracketed; DNS enabled).
        literal: the IP address when the host is numeric, else None.
        path: the socket path for UNIX, else None.
        is_fallback: True for a ``smtp_fallback_relay`` entry.
        bracketed: True when written as ``[host]``.
    """

    text: str
    kind: DestinationKind
    host: str = ""
    port: int = 0
    service: str | None = None
    mx_lookup: bool = False
    srv_lookup: bool = False
    literal: IPAddress | None = None
    path: str | None = None
    is_fallback: bool = False
    bracketed: bool = False

    def __post_init__(self) -> None:
        if self.kind is DestinationKind.UNIX:
            if not self.path or self.host or self.port or self.mx_lookup or self.srv_lookup:
                raise DestinationError(self.text, "a unix destination has only a path")
            return
        if not self.host:
            raise DestinationError(self.text, "empty host")
        if self.path is not None:
            raise DestinationError(self.text, "an inet destination has no path")
        if not 1 <= self.port <= 65535:
            raise DestinationError(self.text, f"bad network port: {self.port}")
        if self.literal is not None and (self.mx_lookup or self.srv_lookup):
            raise DestinationError(self.text, "an address is never looked up in DNS")
        if self.srv_lookup and self.service is None:
            raise DestinationError(self.text, "SRV lookup needs a symbolic service")

    @property
    def srv_service(self) -> str | None:
        """The service to use in the SRV query name, or None without SRV lookup."""
        return self.service if self.srv_lookup else None

    @property
    def literal_address(self) -> IPAddress | None:
        """Alias of :attr:`literal`."""
        return self.literal

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------------
# known_tcp_ports


def parse_known_tcp_ports(text: str, *, parameter: str = "known_tcp_ports") -> dict[str, int]:
    """Parse ``known_tcp_ports`` syntax: ``name = name2 = port, ...``.

    Rules of Postfix global/config_known_tcp_ports.c and util/known_tcp_ports.c:
    associations separated by commas, each one or more names and a port
    joined by ``=``; names are not numeric and not duplicated; the port is 0 to
    65535. Where Postfix logs a warning and skips the association, we raise.

    Raises:
        ConfigError: naming *parameter* and the bad association.
    """
    ports: dict[str, int] = {}
    for assoc in text.split(","):
        if not assoc.strip():
            continue  # Postfix: empty association ignored
        parts = [p.strip() for p in assoc.split("=")]
        if len(parts) < 2:
            raise ConfigError(parameter, text, f'"{assoc.strip()}" is not in "name = value" form')
        port_text = parts[-1]
        if not port_text:
            raise ConfigError(parameter, text, f'missing port value after "=" in "{assoc.strip()}"')
        if any(c.isspace() for c in port_text):
            raise ConfigError(parameter, text, f'whitespace in port number "{port_text}"')
        if not (port_text.isascii() and port_text.isdigit()):
            raise ConfigError(parameter, text, f'non-numerical service port "{port_text}"')
        if len(port_text) > 5 or int(port_text) > 65535:
            raise ConfigError(parameter, text, f'port number out of range "{port_text}"')
        for name in parts[:-1]:
            if not name:
                raise ConfigError(
                    parameter, text, f'missing service name before "=" in "{assoc.strip()}"'
                )
            if any(c.isspace() for c in name):
                raise ConfigError(parameter, text, f'whitespace in service name "{name}"')
            if name.isdigit():
                raise ConfigError(parameter, text, f'numerical service name "{name}"')
            if name in ports:
                raise ConfigError(parameter, text, f'duplicate service name "{name}"')
            ports[name] = int(port_text)
    return ports


_DEFAULT_PORTS: Final = parse_known_tcp_ports(DEFAULT_KNOWN_TCP_PORTS)

# Stands in for services(5), which Postfix consults for names missing from
# known_tcp_ports (smtp_parse_destination() getservbyname()): the IANA
# registered mail services, so a custom known_tcp_ports cannot lose "smtp".
_SERVICES_FALLBACK: Final[Mapping[str, int]] = {
    "smtp": 25,
    "submission": 587,
    "submissions": 465,
    "smtps": 465,
    "lmtp": 24,
}


def _ports_table(known_tcp_ports: str | Mapping[str, int] | None) -> Mapping[str, int]:
    if known_tcp_ports is None:
        return _DEFAULT_PORTS
    table = (
        parse_known_tcp_ports(known_tcp_ports)
        if isinstance(known_tcp_ports, str)
        else dict(known_tcp_ports)
    )
    return {**_SERVICES_FALLBACK, **table}


# ---------------------------------------------------------------------------
# use_srv_lookup


def _srv_matcher(use_srv_lookup: str | Iterable[str]) -> tuple[tuple[str, bool], ...]:
    """Parse a Postfix string list into (name, negated) pairs, lowercased."""
    items = (
        _LIST_SEP_RE.split(use_srv_lookup)
        if isinstance(use_srv_lookup, str)
        else [p for item in use_srv_lookup for p in _LIST_SEP_RE.split(item)]
    )
    out: list[tuple[str, bool]] = []
    for item in items:
        if not item:
            continue
        negated = item.startswith("!")
        name = item[1:] if negated else item
        if not name or ":" in name or name.startswith("/"):
            # Postfix match_list: "type:table" and "/file" patterns
            raise ConfigError(
                "use_srv_lookup", item, "only service names are supported (no tables or files)"
            )
        out.append((name.lower(), negated))
    return tuple(out)


def _srv_enabled(matcher: tuple[tuple[str, bool], ...], service: str) -> bool:
    # Postfix util/match_list.c: first match wins, "!" negates; match_string()
    # compares case-insensitively.
    key = service.lower()
    for name, negated in matcher:
        if name == key:
            return not negated
    return False


# ---------------------------------------------------------------------------
# Parsing


@dataclass(frozen=True, slots=True)
class _Options:
    protocol: Protocol
    default_service: str
    ports: Mapping[str, int]
    srv: tuple[tuple[str, bool], ...]
    dns: bool


def _options(
    protocol: str,
    use_srv_lookup: str | Iterable[str],
    disable_dns_lookups: bool,
    known_tcp_ports: str | Mapping[str, int] | None,
    default_service: str | int | None,
) -> _Options:
    if protocol not in ("smtp", "lmtp"):
        raise ValueError(f"protocol must be 'smtp' or 'lmtp', not {protocol!r}")
    proto: Protocol = "smtp" if protocol == "smtp" else "lmtp"
    ports = _ports_table(known_tcp_ports)
    service = _DEFAULT_SERVICE[proto] if default_service is None else str(default_service)
    try:
        _resolve_service(service, ports, service)
    except DestinationError as exc:
        raise ConfigError(f"{proto}_tcp_port", service, exc.reason) from None
    return _Options(proto, service, ports, _srv_matcher(use_srv_lookup), not disable_dns_lookups)


def _resolve_service(text: str, ports: Mapping[str, int], element: str) -> tuple[int, str | None]:
    """Service text -> (port, symbolic name or None), as smtp_parse_destination()."""
    if text[:1].isdigit():
        if not (text.isascii() and text.isdigit()):  # host_port.c
            raise DestinationError(element, f"garbage after numerical service: {text!r}")
        port = int(text)
        if port == 0 or port >= 65536:  # smtp_connect.c smtp_parse_destination()
            raise DestinationError(element, f"bad network port: {text}")
        return port, None
    port_or_none = ports.get(text)  # known_tcp_ports.c filter_known_tcp_port()
    if port_or_none is None:
        known = ", ".join(sorted(ports)) or "none"
        raise DestinationError(
            element, f"unknown service: {text}/tcp (known_tcp_ports has: {known})"
        )
    if port_or_none == 0:
        raise DestinationError(element, f"bad network port: 0 for service {text}")
    return port_or_none, text


def _parse_ip(text: str, element: str, *, v6: bool) -> IPAddress:
    if "%" in text:  # Postfix valid_ipv6_hostaddr() allows no zone index
        raise DestinationError(element, "zone index not allowed in an address")
    try:
        addr: IPAddress = ipaddress.IPv6Address(text) if v6 else ipaddress.IPv4Address(text)
    except ValueError:
        if v6:
            raise DestinationError(element, f"malformed IPv6 address: {text!r}") from None
        # host_port.c: not valid_utf8_hostname() (all-numeric) nor valid_hostaddr()
        raise DestinationError(
            element, f"valid hostname or network address required: {text!r}"
        ) from None
    if not v6 and text.startswith("0") and text != "0.0.0.0":
        # Postfix valid_ipv4_hostaddr(): "Allow 0.0.0.0 but not 0.1.2.3"
        raise DestinationError(element, f"bad initial octet value: {text!r}")
    return addr


def _parse_host(host: str, element: str) -> str:
    try:
        return to_ascii_domain(host)
    except AddressError as exc:
        raise DestinationError(element, f"invalid host name {host!r}: {exc.reason}") from None


def _parse_inet(element: str, opts: _Options, *, is_fallback: bool) -> Destination:
    body = element
    if opts.protocol == "lmtp" and body[:5].lower() == "inet:":
        body = body[5:]  # smtp_connect.c smtp_connect(): "inet:" prefix is optional
    literal: IPAddress | None = None
    if body.startswith("["):
        # host_port.c: [host]:port, [host]:, [host], [ipv6:addr]:port
        close = body.find("]")
        if close < 0:
            raise DestinationError(element, 'missing "]"')
        inner = body[1:close]
        rest = body[close + 1 :]
        if rest and rest[0] != ":":
            raise DestinationError(element, 'garbage after "]"')
        service_text = rest[1:]
        if inner[:5].lower() == "ipv6:":  # RFC 5321 IPv6 tag, case-insensitive
            literal = _parse_ip(inner[5:], element, v6=True)
        elif not inner:
            raise DestinationError(element, "empty host in [ ]")
        elif ":" in inner:  # Postfix valid_hostaddr(): bare IPv6 is accepted in [ ]
            literal = _parse_ip(inner, element, v6=True)
        elif _IPV4_LIKE_RE.fullmatch(inner):
            literal = _parse_ip(inner, element, v6=False)
        host = str(literal) if literal is not None else _parse_host(inner, element)
        bracketed = True
    else:
        # host_port.c: host:port, host:, host (split at the last ":")
        colon = body.rfind(":")
        host_text = body if colon < 0 else body[:colon]
        service_text = "" if colon < 0 else body[colon + 1 :]
        if not host_text:
            raise DestinationError(element, "missing host information")
        if ":" in host_text:
            raise DestinationError(element, "an IPv6 address must be written as [ipv6:address]")
        if "]" in host_text or "[" in host_text:
            raise DestinationError(element, 'misplaced "[" or "]"')
        if _IPV4_LIKE_RE.fullmatch(host_text):
            # Postfix accepts a bare address (host_port.c "sloppy") and its DNS
            # layer refuses to look it up as a domain (dns_lookup.c), so the
            # address is used directly, as if bracketed.
            literal = _parse_ip(host_text, element, v6=False)
            host = str(literal)
        else:
            host = _parse_host(host_text, element)
        bracketed = False
    try:
        port, service = _resolve_service(service_text or opts.default_service, opts.ports, element)
    except DestinationError as exc:
        if opts.protocol == "smtp" and element[:5].lower() in ("unix:", "inet:"):
            raise DestinationError(
                element, exc.reason + " (unix: and inet: prefixes are for LMTP only)"
            ) from None
        raise
    # smtp_connect.c smtp_connect_inet(): non_dns_or_literal = DNS disabled or "["
    dns_name = opts.dns and not bracketed and literal is None
    srv = dns_name and service is not None and _srv_enabled(opts.srv, service)
    return Destination(
        text=element,
        kind=DestinationKind.INET,
        host=host,
        port=port,
        service=service,
        mx_lookup=dns_name and opts.protocol == "smtp",
        srv_lookup=srv,
        literal=literal,
        is_fallback=is_fallback,
        bracketed=bracketed,
    )


def _parse_unix(text: str) -> Destination:
    path = text[5:]
    if not path:
        raise DestinationError(text, "empty unix-domain socket path")
    if any(c.isspace() for c in path):
        raise DestinationError(text, "whitespace in unix-domain socket path")
    # A relative path is allowed: Postfix resolves it against the queue
    # directory (e.g. unix:private/dovecot-lmtp); we against the current one.
    return Destination(text=text, kind=DestinationKind.UNIX, path=path)


def _check_text(text: str, what: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str")
    m = _CONTROL_RE.search(text)
    if m is not None:
        raise DestinationError(
            text, f"control character U+{ord(m.group()):04X} at position {m.start()}"
        )


def _parse_list(text: str, opts: _Options, *, is_fallback: bool) -> list[Destination]:
    _check_text(text, "destination")
    stripped = text.strip(", \t")
    if opts.protocol == "lmtp" and stripped[:5].lower() == "unix:":
        # smtp_connect.c smtp_connect(): the rest of the nexthop is one path
        if is_fallback:
            raise DestinationError(stripped, "a fallback relay cannot be a unix: destination")
        return [_parse_unix(stripped)]
    out: list[Destination] = []
    for element in _LIST_SEP_RE.split(stripped):
        if not element:
            continue
        if element[:5].lower() == "unix:" and opts.protocol == "lmtp":
            raise DestinationError(element, "a unix: destination cannot be part of a list")
        out.append(_parse_inet(element, opts, is_fallback=is_fallback))
    return out


def parse(
    text: str,
    *,
    protocol: str = "smtp",
    use_srv_lookup: str | Iterable[str] = (),
    disable_dns_lookups: bool = False,
    known_tcp_ports: str | Mapping[str, int] | None = None,
    smtp_tcp_port: str | int | None = None,
) -> tuple[Destination, ...]:
    """Parse a nexthop (one destination or a list) into destinations.

    Args:
        text: the nexthop, e.g. ``"example.com"``, ``"[192.0.2.1]:587"``,
            ``"mx1.example.com, [mx2.example.com]"``, ``"unix:/run/lmtp"``.
        protocol: ``"smtp"`` or ``"lmtp"`` (LMTP: no MX lookup; ``unix:`` and
            ``inet:`` prefixes).
        use_srv_lookup: Postfix ``use_srv_lookup``: services (list or
            comma/space separated text, ``!name`` to exclude) whose
            destinations are found with SRV records.
        disable_dns_lookups: Postfix ``disable_dns_lookups`` (or
            ``smtp_dns_support_level = disabled``): no MX or SRV lookups.
        known_tcp_ports: Postfix ``known_tcp_ports`` text, or a name-to-port
            mapping; default ``lmtp=24, smtp=25, smtps=submissions=465,
            submission=587``. Names it lacks fall back to the same five IANA
            mail services (Postfix falls back to /etc/services).
        smtp_tcp_port: the default service, Postfix ``smtp_tcp_port`` (or
            ``lmtp_tcp_port`` for LMTP); default ``smtp`` / ``24``.

    Raises:
        DestinationError: bad syntax, empty host, bad port, unknown service,
            control characters; the error names the offending text.
        ConfigError: a bad ``known_tcp_ports``, ``use_srv_lookup`` or default
            service.
    """
    opts = _options(protocol, use_srv_lookup, disable_dns_lookups, known_tcp_ports, smtp_tcp_port)
    out = _parse_list(text, opts, is_fallback=False)
    if not out:
        raise DestinationError(text, "empty destination")  # smtp_connect.c "null destination"
    return tuple(out)


def parse_one(
    text: str,
    *,
    protocol: str = "smtp",
    use_srv_lookup: str | Iterable[str] = (),
    disable_dns_lookups: bool = False,
    known_tcp_ports: str | Mapping[str, int] | None = None,
    smtp_tcp_port: str | int | None = None,
) -> Destination:
    """Parse exactly one destination (see :func:`parse`).

    Raises:
        DestinationError: as :func:`parse`, or when *text* is a list.
    """
    result = parse(
        text,
        protocol=protocol,
        use_srv_lookup=use_srv_lookup,
        disable_dns_lookups=disable_dns_lookups,
        known_tcp_ports=known_tcp_ports,
        smtp_tcp_port=smtp_tcp_port,
    )
    if len(result) != 1:
        raise DestinationError(text, f"expected one destination, got {len(result)}")
    return result[0]


def sites(
    nexthop: str,
    fallback_relays: str | Iterable[str] = (),
    *,
    protocol: str = "smtp",
    use_srv_lookup: str | Iterable[str] = (),
    disable_dns_lookups: bool = False,
    known_tcp_ports: str | Mapping[str, int] | None = None,
    smtp_tcp_port: str | int | None = None,
) -> tuple[Destination, ...]:
    """The destinations to try, in order: the nexthop's, then the fallback relays.

    Fallback relays (Postfix ``smtp_fallback_relay`` / ``lmtp_fallback_relay``)
    are parsed like the nexthop and flagged :attr:`Destination.is_fallback`
    (smtp_connect.c ``smtp_connect_inet()`` appends them to the site list).
    A ``unix:`` nexthop has no fallback relays: Postfix ignores the setting
    there (with a warning), and so does this function; the caller may warn.

    Raises:
        DestinationError: as :func:`parse`, for the nexthop or a relay.
        ConfigError: as :func:`parse`.
    """
    opts = _options(protocol, use_srv_lookup, disable_dns_lookups, known_tcp_ports, smtp_tcp_port)
    main = _parse_list(nexthop, opts, is_fallback=False)
    if not main:
        raise DestinationError(nexthop, "empty destination")
    if main[0].kind is DestinationKind.UNIX:
        return tuple(main)  # smtp_connect.c smtp_connect_local(): fallback relays ignored
    relays = [fallback_relays] if isinstance(fallback_relays, str) else list(fallback_relays)
    for relay in relays:
        main.extend(_parse_list(relay, opts, is_fallback=True))
    return tuple(main)
