"""pyfix_smtp.dns.interfaces: our own addresses without dnspython."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

from pyfix_smtp.config import Config
from pyfix_smtp.dns import interfaces, resolve


def test_the_resolver_module_re_exports_the_same_functions() -> None:
    assert resolve.plan_options is interfaces.plan_options
    assert resolve.interface_addresses is interfaces.interface_addresses
    assert resolve.local_addresses is interfaces.local_addresses


def test_importing_it_loads_no_dnspython_or_asyncio() -> None:
    code = (
        "import sys\n"
        "from pyfix_smtp.dns.interfaces import plan_options\n"
        "print([m for m in ('dns', 'asyncio', 'pyfix_smtp.dns.resolve') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_loopback_only_and_literal_entries() -> None:
    found = interfaces.interface_addresses("inet_interfaces", ["loopback-only"], ["ipv4"])
    assert ipaddress.ip_address("127.0.0.1") in found
    assert all(a.is_loopback for a in found)
    assert interfaces.interface_addresses(
        "proxy_interfaces", ["[192.0.2.7]", "2001:db8::1"], ["ipv4", "ipv6"]
    ) == {ipaddress.ip_address("192.0.2.7"), ipaddress.ip_address("2001:db8::1")}


def test_plan_options_from_a_config() -> None:
    options = interfaces.plan_options(
        Config(inet_interfaces="127.0.0.1", proxy_interfaces="192.0.2.9", inet_protocols="ipv4")
    )
    assert options.own_addresses == {ipaddress.ip_address("127.0.0.1")}
    assert options.proxy_addresses == {ipaddress.ip_address("192.0.2.9")}
