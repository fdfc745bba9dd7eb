"""Our own addresses: ``inet_interfaces`` / ``proxy_interfaces`` (standard library only).

Mail-loop detection (Postfix own_inet_addr.c, smtp_addr.c) needs the
addresses this host receives mail on. :func:`plan_options` builds the
planner's :class:`~pyfix_smtp.dns.options.PlanOptions` from a config with
them looked up; :func:`interface_addresses` resolves one
``inet_interfaces``-style list and :func:`local_addresses` lists the
host's interface addresses. Nothing here imports dnspython or asyncio, so
a delivery to a literal address never loads them.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from pathlib import Path

from pyfix_smtp.dns import _config
from pyfix_smtp.dns.options import PlanOptions
from pyfix_smtp.errors import ConfigError

__all__ = ["interface_addresses", "local_addresses", "plan_options"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _proc_ipv4(path: Path) -> set[IPAddress]:
    # /proc/net/fib_trie lists every local address as "|-- A.B.C.D" followed
    # by "/32 host LOCAL" (secondary addresses included).
    found: set[IPAddress] = set()
    last: str | None = None
    for line in path.read_text().splitlines():
        text = line.strip()
        if text.startswith("|--"):
            last = text[3:].strip()
        elif "/32 host LOCAL" in text and last is not None:
            found.add(ipaddress.IPv4Address(last))
    return found


def _proc_ipv6(path: Path) -> set[IPAddress]:
    found: set[IPAddress] = set()
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields and len(fields[0]) == 32:
            found.add(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
    return found


def local_addresses(families: Iterable[str] = ("ipv4", "ipv6")) -> frozenset[IPAddress]:
    """Every address of this host's interfaces (Postfix ``inet_addr_local()``).

    Linux: from ``/proc/net/fib_trie`` and ``/proc/net/if_inet6``. Elsewhere:
    the loopback addresses plus what ``getaddrinfo(gethostname())`` returns.
    """
    wanted = set(families)
    found: set[IPAddress] = set()
    v4 = Path("/proc/net/fib_trie")
    v6 = Path("/proc/net/if_inet6")
    if "ipv4" in wanted:
        if v4.exists():
            found |= _proc_ipv4(v4)
        else:
            found |= _hostname_addresses(socket.AF_INET) | {ipaddress.IPv4Address("127.0.0.1")}
    if "ipv6" in wanted:
        if v6.exists():
            found |= _proc_ipv6(v6)
        elif socket.has_ipv6:
            found |= _hostname_addresses(socket.AF_INET6) | {ipaddress.IPv6Address("::1")}
    return frozenset(found)


def _hostname_addresses(family: int) -> set[IPAddress]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, family, socket.SOCK_STREAM)
    except OSError:
        return set()
    return {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos}


def interface_addresses(
    parameter: str,
    entries: Iterable[str],
    families: Iterable[str] = ("ipv4", "ipv6"),
) -> frozenset[IPAddress]:
    """The addresses of an ``inet_interfaces``-style list (Postfix own_inet_addr.c).

    ``all`` is every local address, ``loopback-only`` the loopback ones;
    other entries are IP addresses (brackets allowed) or host names, looked
    up with getaddrinfo.

    Raises:
        ConfigError: a host name that does not resolve ("host not found").
    """
    wanted = frozenset(families)
    found: set[IPAddress] = set()
    for entry in entries:
        word = entry.strip()
        if word.lower() == "all":
            found |= local_addresses(wanted)
            continue
        if word.lower() == "loopback-only":
            found |= {a for a in local_addresses(wanted) if a.is_loopback}
            continue
        text = word.strip("[]")
        try:
            found.add(ipaddress.ip_address(text))
            continue
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(text, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise ConfigError(parameter, entry, "host not found") from None
        for info in infos:
            found.add(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
    return frozenset(a for a in found if ("ipv6" if a.version == 6 else "ipv4") in wanted)


def plan_options(cfg: object) -> PlanOptions:
    """:meth:`PlanOptions.from_config` with ``inet_interfaces`` and
    ``proxy_interfaces`` turned into addresses by asking the system."""
    families = _config.inet_protocols(_config.get_words(cfg, "inet_protocols", ("all",)))
    own = interface_addresses(
        "inet_interfaces", _config.get_words(cfg, "inet_interfaces", ("all",)), families
    )
    proxy = interface_addresses(
        "proxy_interfaces", _config.get_words(cfg, "proxy_interfaces", ()), families
    )
    return PlanOptions.from_config(cfg, own_addresses=own, proxy_addresses=proxy)
