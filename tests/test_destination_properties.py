"""Hypothesis properties for pyfix_smtp.destination."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyfix_smtp.destination import DestinationKind, parse, parse_one
from pyfix_smtp.errors import DestinationError

# Per-test settings (a loaded profile would change other modules' tests too).
moderate = settings(max_examples=150, deadline=None)

labels = st.from_regex(r"[a-z](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(labels, min_size=1, max_size=4).map(".".join)
services = st.sampled_from(
    [("smtp", 25), ("submission", 587), ("submissions", 465), ("smtps", 465), ("lmtp", 24)]
)
ports = st.integers(min_value=1, max_value=65535)


@moderate
@given(hostnames, st.booleans(), st.one_of(st.none(), services, ports))
def test_rendered_host_destination_parses_back(
    host: str, bracketed: bool, service: tuple[str, int] | int | None
) -> None:
    text = f"[{host}]" if bracketed else host
    if isinstance(service, tuple):
        text += f":{service[0]}"
        want_port, want_service = service[1], service[0]
    elif isinstance(service, int):
        text += f":{service}"
        want_port, want_service = service, None
    else:
        want_port, want_service = 25, "smtp"
    d = parse_one(text)
    assert d.kind is DestinationKind.INET
    assert (d.host, d.port, d.service) == (host, want_port, want_service)
    assert d.mx_lookup is not bracketed
    assert d.bracketed is bracketed
    assert d.literal is None
    assert not parse_one(text, disable_dns_lookups=True).mx_lookup
    assert not parse_one(text, protocol="lmtp").mx_lookup


@moderate
@given(st.ip_addresses(), st.one_of(st.none(), ports), st.booleans())
def test_rendered_literal_parses_back(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int | None, tag: bool
) -> None:
    if addr.version == 4 and str(addr).startswith("0.") and str(addr) != "0.0.0.0":
        # Postfix valid_ipv4_hostaddr(): "Allow 0.0.0.0 but not 0.1.2.3"
        with pytest.raises(DestinationError, match="bad initial octet"):
            parse_one(f"[{addr}]")
        return
    text = f"[ipv6:{addr}]" if addr.version == 6 and tag else f"[{addr}]"
    if port is not None:
        text += f":{port}"
    d = parse_one(text)
    assert d.literal == addr
    assert d.host == str(addr)
    assert d.port == (25 if port is None else port)
    assert not d.mx_lookup
    assert not d.srv_lookup


@moderate
@given(
    st.lists(hostnames, min_size=1, max_size=5),
    st.lists(st.sampled_from([",", " ", ", ", "\t"]), min_size=5, max_size=5),
)
def test_list_separators(hosts: list[str], seps: list[str]) -> None:
    text = "".join(h + s for h, s in zip(hosts, seps, strict=False))
    assert [d.host for d in parse(text)] == hosts


@moderate
@given(st.text(max_size=30), st.sampled_from(["smtp", "lmtp"]))
def test_parse_fails_only_with_destination_error(text: str, protocol: str) -> None:
    try:
        result = parse(text, protocol=protocol)
    except DestinationError:
        return
    assert result
    for d in result:
        assert (d.kind is DestinationKind.UNIX) == (d.path is not None)
        if d.kind is DestinationKind.INET:
            assert 1 <= d.port <= 65535
            assert d.host.isascii()
