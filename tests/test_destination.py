"""Table-driven tests for pyfix_smtp.destination (Postfix nexthop syntax)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from pyfix_smtp import destination
from pyfix_smtp.destination import (
    DEFAULT_KNOWN_TCP_PORTS,
    Destination,
    DestinationKind,
    parse,
    parse_known_tcp_ports,
    parse_one,
    sites,
)
from pyfix_smtp.errors import ConfigError, DestinationError, PyfixError

INET = DestinationKind.INET
UNIX = DestinationKind.UNIX

# (text, options, expected fields of the single destination)
# fields: host, port, service, mx_lookup, srv_lookup, literal, bracketed
ONE = [
    # SMTP: domain forms -> MX lookup, default service smtp (port 25)
    ("example.com", {}, ("example.com", 25, "smtp", True, False, None, False)),
    ("Example.COM", {}, ("Example.COM", 25, "smtp", True, False, None, False)),
    ("example.com:587", {}, ("example.com", 587, None, True, False, None, False)),
    ("example.com:submission", {}, ("example.com", 587, "submission", True, False, None, False)),
    ("example.com:submissions", {}, ("example.com", 465, "submissions", True, False, None, False)),
    ("example.com:smtps", {}, ("example.com", 465, "smtps", True, False, None, False)),
    ("example.com:lmtp", {}, ("example.com", 24, "lmtp", True, False, None, False)),
    ("example.com:smtp", {}, ("example.com", 25, "smtp", True, False, None, False)),
    ("example.com:", {}, ("example.com", 25, "smtp", True, False, None, False)),
    ("example.com:00025", {}, ("example.com", 25, None, True, False, None, False)),
    ("example.com:65535", {}, ("example.com", 65535, None, True, False, None, False)),
    ("mail_relay.example", {}, ("mail_relay.example", 25, "smtp", True, False, None, False)),
    ("localhost", {}, ("localhost", 25, "smtp", True, False, None, False)),
    # U-labels become A-labels
    ("bücher.example", {}, ("xn--bcher-kva.example", 25, "smtp", True, False, None, False)),
    ("[bücher.example]:26", {}, ("xn--bcher-kva.example", 26, None, False, False, None, True)),
    # [host]: no MX lookup
    ("[mail.example.com]", {}, ("mail.example.com", 25, "smtp", False, False, None, True)),
    ("[mail.example.com]:", {}, ("mail.example.com", 25, "smtp", False, False, None, True)),
    ("[mail.example.com]:587", {}, ("mail.example.com", 587, None, False, False, None, True)),
    (
        "[mail.example.com]:submission",
        {},
        ("mail.example.com", 587, "submission", False, False, None, True),
    ),
    # address literals
    ("[192.0.2.1]", {}, ("192.0.2.1", 25, "smtp", False, False, "192.0.2.1", True)),
    ("[192.0.2.1]:2525", {}, ("192.0.2.1", 2525, None, False, False, "192.0.2.1", True)),
    ("[0.0.0.0]", {}, ("0.0.0.0", 25, "smtp", False, False, "0.0.0.0", True)),
    ("[ipv6:2001:db8::1]", {}, ("2001:db8::1", 25, "smtp", False, False, "2001:db8::1", True)),
    ("[IPv6:2001:DB8::1]:26", {}, ("2001:db8::1", 26, None, False, False, "2001:db8::1", True)),
    ("[IPV6:::1]:smtps", {}, ("::1", 465, "smtps", False, False, "::1", True)),
    (
        "[ipv6:::ffff:192.0.2.1]",
        {},
        ("::ffff:c000:201", 25, "smtp", False, False, "::ffff:192.0.2.1", True),
    ),
    # Postfix host_port(): valid_hostaddr() accepts IPv6 in [] without the ipv6: tag
    ("[2001:db8::1]", {}, ("2001:db8::1", 25, "smtp", False, False, "2001:db8::1", True)),
    ("[::1]:24", {}, ("::1", 24, None, False, False, "::1", True)),
    # a bare IPv4 address is used directly (Postfix: no DNS lookup of numeric names)
    ("192.0.2.1", {}, ("192.0.2.1", 25, "smtp", False, False, "192.0.2.1", False)),
    ("192.0.2.1:26", {}, ("192.0.2.1", 26, None, False, False, "192.0.2.1", False)),
    # DNS disabled: never MX or SRV
    (
        "example.com",
        {"disable_dns_lookups": True},
        ("example.com", 25, "smtp", False, False, None, False),
    ),
    (
        "example.com:submission",
        {"disable_dns_lookups": True, "use_srv_lookup": "submission"},
        ("example.com", 587, "submission", False, False, None, False),
    ),
    # SRV lookup when use_srv_lookup names the symbolic service; MX stays the fallback
    (
        "example.com:submission",
        {"use_srv_lookup": "submission"},
        ("example.com", 587, "submission", True, True, None, False),
    ),
    (
        "example.com:submission",
        {"use_srv_lookup": ["SUBMISSION"]},
        ("example.com", 587, "submission", True, True, None, False),
    ),
    (
        "example.com:submission",
        {"use_srv_lookup": "smtp, submission"},
        ("example.com", 587, "submission", True, True, None, False),
    ),
    (
        "example.com:submission",
        {"use_srv_lookup": "!submission submission"},
        ("example.com", 587, "submission", True, False, None, False),
    ),
    (
        "example.com",
        {"use_srv_lookup": "submission"},
        ("example.com", 25, "smtp", True, False, None, False),
    ),
    (
        "example.com",
        {"use_srv_lookup": "smtp"},
        ("example.com", 25, "smtp", True, True, None, False),
    ),
    (
        "example.com:587",
        {"use_srv_lookup": "submission"},
        ("example.com", 587, None, True, False, None, False),
    ),
    (
        "example.com:587",
        {"use_srv_lookup": "587"},
        ("example.com", 587, None, True, False, None, False),
    ),
    (
        "[example.com]:submission",
        {"use_srv_lookup": "submission"},
        ("example.com", 587, "submission", False, False, None, True),
    ),
    (
        "[192.0.2.1]:submission",
        {"use_srv_lookup": "submission"},
        ("192.0.2.1", 587, "submission", False, False, "192.0.2.1", True),
    ),
    # smtp_tcp_port and known_tcp_ports
    (
        "example.com",
        {"smtp_tcp_port": "submission"},
        ("example.com", 587, "submission", True, False, None, False),
    ),
    ("example.com", {"smtp_tcp_port": 2525}, ("example.com", 2525, None, True, False, None, False)),
    (
        "example.com:mail",
        {"known_tcp_ports": "mail=2525"},
        ("example.com", 2525, "mail", True, False, None, False),
    ),
    (
        "example.com:mail",
        {"known_tcp_ports": {"mail": 26}},
        ("example.com", 26, "mail", True, False, None, False),
    ),
    # LMTP: no MX; default port 24; optional inet: prefix
    ("mail.example", {"protocol": "lmtp"}, ("mail.example", 24, None, False, False, None, False)),
    (
        "inet:mail.example",
        {"protocol": "lmtp"},
        ("mail.example", 24, None, False, False, None, False),
    ),
    (
        "INET:mail.example:lmtp",
        {"protocol": "lmtp"},
        ("mail.example", 24, "lmtp", False, False, None, False),
    ),
    (
        "inet:mail.example:2424",
        {"protocol": "lmtp"},
        ("mail.example", 2424, None, False, False, None, False),
    ),
    (
        "inet:127.0.0.1:24",
        {"protocol": "lmtp"},
        ("127.0.0.1", 24, None, False, False, "127.0.0.1", False),
    ),
    ("inet:[::1]:10024", {"protocol": "lmtp"}, ("::1", 10024, None, False, False, "::1", True)),
    ("inet:[ipv6:::1]", {"protocol": "lmtp"}, ("::1", 24, None, False, False, "::1", True)),
    (
        "inet:[mail.example]",
        {"protocol": "lmtp"},
        ("mail.example", 24, None, False, False, None, True),
    ),
    # LMTP with SRV: the service must be written (lmtp_tcp_port's default is "24")
    (
        "inet:example.com:lmtp",
        {"protocol": "lmtp", "use_srv_lookup": "lmtp"},
        ("example.com", 24, "lmtp", False, True, None, False),
    ),
    (
        "inet:example.com",
        {"protocol": "lmtp", "use_srv_lookup": "lmtp"},
        ("example.com", 24, None, False, False, None, False),
    ),
    (
        "inet:example.com",
        {"protocol": "lmtp", "smtp_tcp_port": "lmtp", "use_srv_lookup": "lmtp"},
        ("example.com", 24, "lmtp", False, True, None, False),
    ),
    # in SMTP, "inet" is just a host name (Postfix keeps compatibility)
    ("inet:smtp", {}, ("inet", 25, "smtp", True, False, None, False)),
]


@pytest.mark.parametrize(("text", "options", "expected"), ONE)
def test_parse_one(text: str, options: dict[str, Any], expected: tuple[Any, ...]) -> None:
    d = parse_one(text, **options)
    host, port, service, mx, srv, literal, bracketed = expected
    assert d.text == text
    assert d.kind is INET
    assert d.host == host
    assert d.port == port
    assert d.service == service
    assert d.mx_lookup is mx
    assert d.srv_lookup is srv
    assert d.srv_service == (service if srv else None)
    assert d.literal == (None if literal is None else ipaddress.ip_address(literal))
    assert d.literal_address == d.literal
    assert d.bracketed is bracketed
    assert d.path is None
    assert d.is_fallback is False
    assert str(d) == text


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("unix:/var/run/dovecot/lmtp", "/var/run/dovecot/lmtp"),
        ("unix:private/dovecot-lmtp", "private/dovecot-lmtp"),  # relative: Postfix queue dir
        ("UNIX:/x", "/x"),
        (" unix:/x ", "/x"),
        ("unix:/a,b", "/a,b"),  # Postfix: the rest of the nexthop is the path
    ],
)
def test_lmtp_unix(text: str, path: str) -> None:
    (d,) = parse(text, protocol="lmtp")
    assert d.kind is UNIX
    assert d.path == path
    assert (d.host, d.port, d.mx_lookup, d.srv_lookup, d.literal) == ("", 0, False, False, None)


LISTS = [
    ("a.example,b.example", {}, ["a.example", "b.example"]),
    ("a.example b.example", {}, ["a.example", "b.example"]),
    ("a.example,\tb.example ,, [c.example]:26 ", {}, ["a.example", "b.example", "[c.example]:26"]),
    (" ,a.example, ", {}, ["a.example"]),
    ("inet:a.example, b.example:2424", {"protocol": "lmtp"}, ["inet:a.example", "b.example:2424"]),
    ("inet:a.example inet:b.example", {"protocol": "lmtp"}, ["inet:a.example", "inet:b.example"]),
]


@pytest.mark.parametrize(("text", "options", "elements"), LISTS)
def test_lists(text: str, options: dict[str, Any], elements: list[str]) -> None:
    result = parse(text, **options)
    assert isinstance(result, tuple)
    assert [d.text for d in result] == elements


# (text, options, reason fragment, offending text)
ERRORS = [
    ("", {}, "empty destination", ""),
    (" ,, ", {}, "empty destination", " ,, "),
    ("[", {}, 'missing "]"', "["),
    ("[mail.example.com", {}, 'missing "]"', "[mail.example.com"),
    ("[]", {}, "empty host", "[]"),
    ("[]:25", {}, "empty host", "[]:25"),
    ("[mail.example.com]x", {}, 'garbage after "]"', "[mail.example.com]x"),
    ("[mail.example.com]]", {}, 'garbage after "]"', "[mail.example.com]]"),
    ("mail.example.com]", {}, 'misplaced "["', "mail.example.com]"),
    (":25", {}, "missing host", ":25"),
    ("example.com:0", {}, "bad network port: 0", "example.com:0"),
    ("example.com:65536", {}, "bad network port: 65536", "example.com:65536"),
    ("example.com:99999999999", {}, "bad network port", "example.com:99999999999"),
    ("[192.0.2.1]:0", {}, "bad network port", "[192.0.2.1]:0"),
    ("example.com:25x", {}, "garbage after numerical service", "example.com:25x"),
    ("hhh:1pp", {}, "garbage after numerical service", "hhh:1pp"),
    ("example.com:foo", {}, "unknown service: foo/tcp", "example.com:foo"),
    ("example.com:SMTP", {}, "unknown service: SMTP/tcp", "example.com:SMTP"),
    ("example.com:-25", {}, "unknown service", "example.com:-25"),
    ("unix:/var/run/lmtp", {}, "LMTP only", "unix:/var/run/lmtp"),
    ("2001:db8::1", {}, "[ipv6:address]", "2001:db8::1"),
    ("::1:25", {}, "[ipv6:address]", "::1:25"),
    ("[ipv6:1.2.3.4]", {}, "malformed IPv6", "[ipv6:1.2.3.4]"),
    ("[ipv6:example.com]", {}, "malformed IPv6", "[ipv6:example.com]"),
    ("[ipv6:]", {}, "malformed IPv6", "[ipv6:]"),
    ("[2001:db8::g]", {}, "malformed IPv6", "[2001:db8::g]"),
    ("[fe80::1%eth0]", {}, "zone index", "[fe80::1%eth0]"),
    ("[1.2.3]", {}, "valid hostname or network address required", "[1.2.3]"),
    ("999", {}, "valid hostname or network address required", "999"),
    ("256.1.1.1", {}, "valid hostname or network address required", "256.1.1.1"),
    ("010.1.1.1", {}, "valid hostname or network address required", "010.1.1.1"),
    ("0.1.2.3", {}, "bad initial octet", "0.1.2.3"),
    ("hh.", {}, "empty label", "hh."),
    ("[hh.]", {}, "empty label", "[hh.]"),
    (".example.com", {}, "empty label", ".example.com"),
    ("-x.example", {}, "starts with '-'", "-x.example"),
    ("a!b.example", {}, "invalid character", "a!b.example"),
    ("a" * 64 + ".example", {}, "longer than 63", "a" * 64 + ".example"),
    ("xn--zz.example", {}, "invalid A-label", "xn--zz.example"),
    ("a\u200db.example", {}, "invalid IDNA", "a\u200db.example"),
    ("a.example\nb.example", {}, "U+000A", "a.example\nb.example"),
    ("a.example\r\n", {}, "U+000D", "a.example\r\n"),
    ("a.exa\x00mple", {}, "U+0000", "a.exa\x00mple"),
    ("unix:", {"protocol": "lmtp"}, "empty unix-domain socket path", "unix:"),
    ("unix:/a b", {"protocol": "lmtp"}, "whitespace", "unix:/a b"),
    ("unix:/a\tb", {"protocol": "lmtp"}, "whitespace", "unix:/a\tb"),
    ("inet:a.example unix:/b", {"protocol": "lmtp"}, "cannot be part of a list", "unix:/b"),
    ("inet:", {"protocol": "lmtp"}, "missing host", "inet:"),
    ("inet:[]", {"protocol": "lmtp"}, "empty host", "inet:[]"),
    ("a.example, b.example:0", {}, "bad network port", "b.example:0"),
]


@pytest.mark.parametrize(("text", "options", "reason", "offending"), ERRORS)
def test_errors(text: str, options: dict[str, Any], reason: str, offending: str) -> None:
    with pytest.raises(DestinationError) as info:
        parse(text, **options)
    assert reason in info.value.reason
    assert info.value.text == offending
    assert isinstance(info.value, PyfixError)


def test_parse_one_rejects_lists() -> None:
    with pytest.raises(DestinationError, match="expected one destination, got 2"):
        parse_one("a.example b.example")


def test_protocol_must_be_known() -> None:
    with pytest.raises(ValueError, match="protocol"):
        parse("a.example", protocol="esmtp")


def test_non_str_rejected() -> None:
    with pytest.raises(TypeError):
        parse(b"example.com")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# sites(): nexthop then fallback relays


def test_sites_appends_fallback_relays() -> None:
    result = sites("example.com", "[relay1.example]:587, relay2.example")
    assert [(d.text, d.is_fallback, d.mx_lookup) for d in result] == [
        ("example.com", False, True),
        ("[relay1.example]:587", True, False),
        ("relay2.example", True, True),
    ]


def test_sites_accepts_relay_sequence() -> None:
    result = sites("a.example b.example", ("r1.example", "[r2.example] r3.example:26"))
    assert [(d.text, d.is_fallback) for d in result] == [
        ("a.example", False),
        ("b.example", False),
        ("r1.example", True),
        ("[r2.example]", True),
        ("r3.example:26", True),
    ]


def test_sites_without_relays() -> None:
    assert sites("example.com") == parse("example.com")
    assert sites("example.com", "") == parse("example.com")


def test_sites_lmtp_inet_relays() -> None:
    result = sites("inet:[::1]", "inet:127.0.0.1:2424", protocol="lmtp")
    assert [(d.host, d.port, d.is_fallback) for d in result] == [
        ("::1", 24, False),
        ("127.0.0.1", 2424, True),
    ]


def test_sites_unix_ignores_relays() -> None:
    # Postfix smtp_connect_local() warns and ignores lmtp_fallback_relay
    result = sites("unix:/run/lmtp", "relay.example", protocol="lmtp")
    assert [(d.kind, d.path) for d in result] == [(UNIX, "/run/lmtp")]


def test_sites_relay_options_apply() -> None:
    result = sites(
        "example.com:submission",
        "relay.example:submission",
        use_srv_lookup="submission",
        disable_dns_lookups=False,
    )
    assert [d.srv_lookup for d in result] == [True, True]


@pytest.mark.parametrize(
    ("nexthop", "relays", "options", "reason"),
    [
        ("example.com", "relay.example:0", {}, "bad network port"),
        ("", "relay.example", {}, "empty destination"),
        ("inet:a.example", "unix:/x", {"protocol": "lmtp"}, "fallback relay cannot be a unix"),
    ],
)
def test_sites_errors(nexthop: str, relays: str, options: dict[str, Any], reason: str) -> None:
    with pytest.raises(DestinationError, match=reason):
        sites(nexthop, relays, **options)


# ---------------------------------------------------------------------------
# known_tcp_ports (Postfix global/config_known_tcp_ports_test.c cases)


@pytest.mark.parametrize(
    ("text", "table"),
    [
        (
            DEFAULT_KNOWN_TCP_PORTS,
            {"lmtp": 24, "smtp": 25, "smtps": 465, "submissions": 465, "submission": 587},
        ),
        (
            "smtp = 25, smtps = submissions = 465, lmtp = 24",
            {"smtp": 25, "smtps": 465, "submissions": 465, "lmtp": 24},
        ),
        ("", {}),
        (" , ,", {}),
        ("x=0", {"x": 0}),
        ("x=65535", {"x": 65535}),
    ],
)
def test_known_tcp_ports(text: str, table: dict[str, int]) -> None:
    assert parse_known_tcp_ports(text) == table


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("smtp = 25, smtps == submissions = 465", 'missing service name before "="'),
        ("smtps = submission =", 'missing port value after "="'),
        ("smtps = submission = 4 65", "whitespace in port number"),
        ("lmtp = 24, smtps = submission = foo", "non-numerical service port"),
        ("smtps = sub mission = 465", "whitespace in service name"),
        ("lmtp = 24, smtps = 1234 = submissions = 465", "numerical service name"),
        ("smtp", 'not in "name = value" form'),
        ("x = 65536", "out of range"),
        ("x = 123456", "out of range"),
        ("smtp = 25, smtp = 26", "duplicate service name"),
    ],
)
def test_known_tcp_ports_errors(text: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_known_tcp_ports(text)
    assert reason in info.value.reason
    assert info.value.parameter == "known_tcp_ports"
    assert info.value.value == text


def test_known_tcp_ports_port_zero_rejected_on_use() -> None:
    with pytest.raises(DestinationError, match="bad network port: 0"):
        parse("example.com:x", known_tcp_ports="x=0")


def test_custom_known_tcp_ports_keep_mail_services() -> None:
    # Postfix would find "smtp" in /etc/services; we have a built-in stand-in.
    assert parse_one("example.com", known_tcp_ports="x=1").port == 25
    assert parse_one("example.com:submission", known_tcp_ports="").port == 587
    # ... but the configured table wins
    assert parse_one("example.com", known_tcp_ports="smtp=2525").port == 2525
    assert parse_one("example.com", known_tcp_ports={"smtp": 26}).port == 26
    with pytest.raises(DestinationError, match="unknown service: imap"):
        parse("example.com:imap", known_tcp_ports="x=1")


def test_bad_options_raise_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse("example.com", known_tcp_ports="smtp==")
    assert info.value.parameter == "known_tcp_ports"
    with pytest.raises(ConfigError) as info:
        parse("example.com", use_srv_lookup="hash:/etc/postfix/srv")
    assert info.value.parameter == "use_srv_lookup"
    with pytest.raises(ConfigError) as info:
        parse("example.com", smtp_tcp_port="0")
    assert info.value.parameter == "smtp_tcp_port"
    with pytest.raises(ConfigError) as info:
        parse("example.com", protocol="lmtp", smtp_tcp_port="nosuch")
    assert info.value.parameter == "lmtp_tcp_port"


# ---------------------------------------------------------------------------
# Destination invariants


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"kind": INET, "host": "", "port": 25}, "empty host"),
        ({"kind": INET, "host": "x", "port": 0}, "bad network port"),
        ({"kind": INET, "host": "x", "port": 70000}, "bad network port"),
        ({"kind": INET, "host": "x", "port": 25, "path": "/x"}, "no path"),
        (
            {
                "kind": INET,
                "host": "192.0.2.1",
                "port": 25,
                "literal": ipaddress.ip_address("192.0.2.1"),
                "mx_lookup": True,
            },
            "never looked up",
        ),
        ({"kind": INET, "host": "x", "port": 25, "srv_lookup": True}, "symbolic service"),
        ({"kind": UNIX, "path": ""}, "only a path"),
        ({"kind": UNIX, "path": "/x", "port": 24}, "only a path"),
    ],
)
def test_destination_invariants(kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(DestinationError, match=reason):
        Destination(text="t", **kwargs)


def test_destination_is_frozen_and_hashable() -> None:
    d = parse_one("[192.0.2.1]:26")
    with pytest.raises(AttributeError):
        d.port = 25  # type: ignore[misc]
    assert {d, parse_one("[192.0.2.1]:26")} == {d}


def test_public_names() -> None:
    assert set(destination.__all__) >= {"Destination", "parse", "parse_one", "sites"}
