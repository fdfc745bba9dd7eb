"""Config values: Postfix text, Python values, errors, LMTP mirroring, replace/get."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from pyfix_smtp.config import Config
from pyfix_smtp.errors import ConfigError, LookupTableError
from pyfix_smtp.maps import Table, TableList

# (parameter, Postfix text, parsed value)
TEXT_VALUES = [
    ("smtp_connect_timeout", "30s", 30.0),
    ("smtp_connect_timeout", "5m", 300.0),
    ("smtp_connect_timeout", "1h", 3600.0),
    ("smtp_connect_timeout", "1d", 86400.0),
    ("smtp_connect_timeout", "1w", 604800.0),
    ("smtp_connect_timeout", "45", 45.0),  # bare number: the default's unit, s
    ("smtp_connect_timeout", "0", 0.0),
    ("smtp_sasl_auth_cache_time", "2", 172800.0),  # default 90d: bare number is days
    ("smtp_tls_session_cache_timeout", "100d", 8640000.0),
    ("smtp_always_send_ehlo", "YES", True),
    ("smtp_always_send_ehlo", "No", False),
    ("smtp_mx_address_limit", "10", 10),
    ("smtp_mx_address_limit", "+3", 3),
    ("smtp_line_length_limit", "0", 0),
    ("smtp_host_lookup", "dns, native", ("dns", "native")),
    ("smtp_host_lookup", "native", ("native",)),
    ("inet_protocols", "ipv4 ipv6", ("ipv4", "ipv6")),
    ("smtp_pix_workarounds", "DELAY_DOTCRLF", ("delay_dotcrlf",)),
    ("smtp_tls_security_level", "DANE-only", "dane-only"),
    ("smtp_tls_security_level", "", ""),
    ("smtp_address_preference", "IPv6", "ipv6"),
    ("smtp_tls_protocols", ">=TLSv1.2:<=TLSv1.3", (">=TLSv1.2", "<=TLSv1.3")),
    ("smtp_tls_mandatory_protocols", "!SSLv2, !SSLv3 !TLSv1", ("!SSLv2", "!SSLv3", "!TLSv1")),
    ("smtp_tls_fingerprint_cert_match", "AB:CD, EF:01", ("AB:CD", "EF:01")),
    ("smtp_tls_secure_cert_match", "nexthop:dot-nexthop", ("nexthop", "dot-nexthop")),
    ("known_tcp_ports", "smtp=25, a=b=26", (("smtp", 25), ("a", 26), ("b", 26))),
    ("smtp_bind_address", "192.0.2.1", "192.0.2.1"),
    ("smtp_bind_address6", "2001:db8::1", "2001:db8::1"),
    ("compatibility_level", "3.6.1", "3.6.1"),
    ("smtp_requiretls_policy", "disable", ("disable",)),
    ("smtp_sasl_password_result_delimiter", ";", ";"),
    ("smtp_helo_name", "mx.example.org", "mx.example.org"),
    ("smtp_fallback_relay", "[relay1]:587, relay2", ("[relay1]:587", "relay2")),
    ("smtp_dns_support_level", "DNSSEC", "dnssec"),
]


@pytest.mark.parametrize(("name", "text", "value"), TEXT_VALUES)
def test_text_values(name: str, text: str, value: object) -> None:
    assert Config(**{name: text}).get(name) == value
    assert Config.from_postconf(f"{name} = {text}\n").get(name) == value


# (parameter, bad Postfix text, fragment of the reason)
TEXT_ERRORS = [
    ("smtp_connect_timeout", "abc", "bad time value"),
    ("smtp_connect_timeout", "10x", "bad time value"),
    ("smtp_connect_timeout", "10sx", "bad time value"),
    ("smtp_connect_timeout", "1.5s", "bad time value"),
    ("smtp_connect_timeout", "-5s", "bad time value"),
    ("smtp_connect_timeout", "10S", "bad time value"),
    ("smtp_connect_timeout", "", "bad time value"),
    ("smtp_connect_timeout", "99999999999s", "too large"),
    ("smtp_connect_timeout", "4000w", "too large"),
    ("smtp_helo_timeout", "0s", "at least 1s"),
    ("smtp_tls_session_cache_timeout", "101d", "at most 8640000s"),
    ("smtp_tls_security_level", "sometimes", "expected one of"),
    ("smtp_always_send_ehlo", "true", "bad boolean"),
    ("smtp_always_send_ehlo", "", "bad boolean"),
    ("smtp_mx_address_limit", "-1", "at least 0"),
    ("smtp_mx_address_limit", "ten", "bad numerical value"),
    ("smtp_mx_address_limit", "1 0", "bad numerical value"),
    ("smtp_mx_address_limit", "2147483648", "at most 2147483647"),
    ("smtp_min_data_rate", "0", "at least 1"),
    ("delay_logging_resolution_limit", "7", "at most 6"),
    ("smtp_host_lookup", "", "must not be empty"),
    ("smtp_host_lookup", "dns, ldap", "unknown item 'ldap'"),
    ("smtp_host_lookup", "DNS", "unknown item 'DNS'"),  # name_mask() is case-sensitive
    ("inet_protocols", "ipv5", "unknown item"),
    ("smtp_pix_workarounds", "disable_esmtp, fix_everything", "unknown item"),
    ("smtp_address_preference", "both", "expected one of"),
    ("smtp_dns_support_level", "on", "expected one of"),
    ("smtp_tls_dane_insecure_mx_policy", "verify", "expected one of"),
    ("smtp_sasl_password_result_delimiter", "::", "at most 1 characters"),
    ("smtp_sasl_password_result_delimiter", "", "must not be empty"),
    ("smtp_helo_name", "", "must not be empty"),
    ("smtp_bind_address", "2001:db8::1", "not an IPv4 address"),
    ("smtp_bind_address", "host.example", "not an IPv4 address"),
    ("smtp_bind_address6", "192.0.2.1", "not an IPv6 address"),
    ("compatibility_level", "3.x", "bad compatibility level"),
    ("compatibility_level", "3.1024", "bad compatibility level"),
    ("known_tcp_ports", "smtp", "is not name=port"),
    ("known_tcp_ports", "smtp=0", "out of range"),
    ("known_tcp_ports", "25=smtp", "bad port"),
    ("known_tcp_ports", "smtp=25, smtp=26", "duplicate service name"),
    ("smtp_requiretls_policy", "sometimes", "unknown policy action"),
    ("smtp_tls_policy_maps", "hash:/etc/postfix/tls_policy", "texthash"),
    ("smtp_tls_policy_maps", "notatable", 'expecting "type:name"'),
    ("smtp_reply_filter", "inline:{a=b}, inline:{c=d}", "at most 1 table"),
]


@pytest.mark.parametrize(("name", "text", "fragment"), TEXT_ERRORS)
def test_text_errors_name_parameter_and_value(name: str, text: str, fragment: str) -> None:
    for build in (lambda: Config(**{name: text}), lambda: Config.from_postconf(f"{name}={text}")):
        with pytest.raises(ConfigError) as info:
            build()
        assert fragment in info.value.reason
        assert info.value.parameter == name
        assert name in str(info.value)


def test_table_errors_are_lookup_table_errors() -> None:
    with pytest.raises(LookupTableError) as info:
        Config(smtp_tls_policy_maps="texthash:/nonexistent/policy")
    assert info.value.parameter == "smtp_tls_policy_maps"


# (parameter, Python value, stored value)
PYTHON_VALUES: list[tuple[str, object, object]] = [
    ("smtp_connect_timeout", 10, 10.0),
    ("smtp_connect_timeout", 2.5, 2.5),
    ("smtp_connect_timeout", timedelta(minutes=2), 120.0),
    ("smtp_always_send_ehlo", False, False),
    ("smtp_mx_address_limit", 7, 7),
    ("smtp_host_lookup", ["native", "dns"], ("native", "dns")),
    ("smtp_host_lookup", ("dns",), ("dns",)),
    ("known_tcp_ports", {"smtp": 25, "lmtp": 24}, (("smtp", 25), ("lmtp", 24))),
    ("known_tcp_ports", [("smtp", 25)], (("smtp", 25),)),
]


@pytest.mark.parametrize(("name", "value", "stored"), PYTHON_VALUES)
def test_python_values(name: str, value: object, stored: object) -> None:
    assert Config(**{name: value}).get(name) == stored


PYTHON_ERRORS: list[tuple[str, object, str]] = [
    ("smtp_connect_timeout", True, "expected seconds"),
    ("smtp_connect_timeout", -1, "between 0 and"),
    ("smtp_connect_timeout", math.nan, "between 0 and"),
    ("smtp_connect_timeout", math.inf, "between 0 and"),
    ("smtp_helo_timeout", 0.5, "at least 1s"),
    ("smtp_mx_address_limit", True, "expected an int"),
    ("smtp_mx_address_limit", 3.0, "expected an int"),
    ("smtp_mx_address_limit", -3, "at least 0"),
    ("smtp_always_send_ehlo", 1, "expected a bool"),
    ("smtp_host_lookup", ["dns native"], "not a single item"),
    ("smtp_host_lookup", [], "must not be empty"),
    ("smtp_host_lookup", [1], "list of str"),
    ("smtp_tls_security_level", 3, "expected Postfix text"),
    ("smtp_tls_policy_maps", 123, "expected a table reference"),
    ("known_tcp_ports", {"smtp": "25"}, "service names (str) and ports (int)"),
    ("smtp_requiretls_policy", ["sometimes"], "unknown policy action"),
    ("smtp_requiretls_policy", "enforce", ""),  # text is fine: sanity row
]


@pytest.mark.parametrize(("name", "value", "fragment"), PYTHON_ERRORS)
def test_python_value_errors(name: str, value: object, fragment: str) -> None:
    if not fragment:
        Config(**{name: value})
        return
    with pytest.raises(ConfigError) as info:
        Config(**{name: value})
    assert fragment in info.value.reason
    assert info.value.parameter == name


def test_tables_from_python_objects() -> None:
    def policy(key: str) -> str | None:
        return "dane" if key.endswith(".test") else None

    cfg = Config(smtp_tls_policy_maps={"Example.COM": "secure"})
    assert isinstance(cfg.smtp_tls_policy_maps, TableList)
    assert cfg.smtp_tls_policy_maps.lookup("example.com") == "secure"
    cfg = Config(smtp_tls_policy_maps=[policy, "inline:{a.example=may}"])
    assert cfg.smtp_tls_policy_maps.lookup("x.test") == "dane"
    assert cfg.smtp_tls_policy_maps.lookup("a.example") == "may"
    tables = TableList.parse("static:encrypt")
    assert Config(smtp_tls_policy_maps=tables).smtp_tls_policy_maps is tables
    assert not Config().smtp_tls_policy_maps
    policy_items = Config(
        smtp_requiretls_policy=["opportunistic", {"a": "b"}]
    ).smtp_requiretls_policy
    assert policy_items[0] == "opportunistic"
    assert isinstance(policy_items[1], Table)


def test_unknown_keyword_is_an_error_with_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        Config(smtp_conect_timeout=5)
    assert info.value.parameter == "smtp_conect_timeout"
    assert "did you mean 'smtp_connect_timeout'" in info.value.reason


def test_bad_protocol() -> None:
    with pytest.raises(ConfigError, match="protocol"):
        Config(protocol="esmtp")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="protocol"):
        Config.from_postconf("", protocol="http")  # type: ignore[arg-type]


def test_string_values_are_postfix_text() -> None:
    cfg = Config(myhostname="mx.example.org", smtp_helo_name="helo.$mydomain")
    assert cfg.smtp_helo_name == "helo.example.org"
    assert Config(smtp_helo_name="  spaced  ").smtp_helo_name == "spaced"
    assert Config(smtp_helo_name="cost$$5").smtp_helo_name == "cost$5"
    # A newline followed by whitespace is a main.cf continuation.
    assert Config(smtp_host_lookup="dns,\n    native").smtp_host_lookup == ("dns", "native")
    for bad in ("a\nb", "a\rb", "a\0b"):
        with pytest.raises(ConfigError):
            Config(smtp_helo_name=bad)


def test_defaults_referring_to_other_parameters_follow_them() -> None:
    cfg = Config(
        myhostname="mx.example.org",
        smtp_sasl_security_options="noanonymous",
        fallback_relay="[backup.example.org]",
        default_destination_recipient_limit=10,
        smtp_tls_cert_file="/etc/cert.pem",
    )
    assert cfg.smtp_helo_name == "mx.example.org"
    assert cfg.mydomain == "example.org"
    assert cfg.smtp_sasl_tls_security_options == ("noanonymous",)
    assert cfg.smtp_sasl_tls_verified_security_options == ("noanonymous",)
    assert cfg.smtp_fallback_relay == ("[backup.example.org]",)
    assert cfg.smtp_destination_recipient_limit == 10
    assert cfg.get("transport_destination_recipient_limit") == 10
    assert cfg.smtp_tls_key_file == "/etc/cert.pem"
    assert cfg.smtp_per_request_deadline is False
    assert Config(smtp_per_record_deadline=True).smtp_per_request_deadline is True


def test_myhostname_without_dot_gets_mydomain() -> None:
    cfg = Config(myhostname="mx", mydomain="example.net")
    assert cfg.myhostname == "mx"  # explicit values are taken as given
    assert cfg.mydomain == "example.net"
    computed = Config(mydomain="example.net").myhostname
    assert computed.endswith(".example.net") or "." in computed


def test_requiretls_default_uses_mydomain_in_ascii() -> None:
    policy = Config(mydomain="bücher.example").smtp_requiretls_policy
    first = policy[0]
    assert isinstance(first, Table)
    assert first.lookup("xn--bcher-kva.example") == "opportunistic"
    assert first.lookup(".xn--bcher-kva.example") == "opportunistic"
    assert policy[-1] == "enforce"


def test_lmtp_mirrors_smtp_attributes() -> None:
    text = (
        "smtp_connect_timeout = 1m\n"
        "lmtp_connect_timeout = 2m\n"
        "smtp_helo_name = smtp.example\n"
        "lmtp_lhlo_name = lmtp.example\n"
        "smtp_always_send_ehlo = no\n"
    )
    smtp = Config.from_postconf(text)
    lmtp = Config.from_postconf(text, protocol="lmtp")
    assert (smtp.protocol, lmtp.protocol) == ("smtp", "lmtp")
    assert smtp.smtp_connect_timeout == 60.0
    assert lmtp.smtp_connect_timeout == 120.0
    assert smtp.smtp_helo_name == "smtp.example"
    assert lmtp.smtp_helo_name == "lmtp.example"
    assert lmtp.get("lmtp_lhlo_name") == "lmtp.example"
    # No LMTP twin: the smtp_* name applies to both.
    assert smtp.smtp_always_send_ehlo is lmtp.smtp_always_send_ehlo is False
    # The other protocol's names are neither applied nor "unknown".
    assert smtp.unknown == {}
    assert lmtp.unknown == {}


def test_lmtp_ignores_smtp_names_for_mirrored_parameters() -> None:
    lmtp = Config.from_postconf("smtp_tcp_port = 2525\nsmtp_connect_timeout = abc\n", "lmtp")
    assert lmtp.smtp_tcp_port == "24"
    assert lmtp.smtp_connect_timeout == 0.0  # the bad smtp_* value is never parsed


def test_lmtp_keyword_names() -> None:
    assert Config(protocol="lmtp", lmtp_connect_timeout=5).smtp_connect_timeout == 5.0
    assert Config(protocol="lmtp", smtp_connect_timeout=5).smtp_connect_timeout == 5.0
    with pytest.raises(ConfigError, match="LMTP client") as info:
        Config(lmtp_connect_timeout=5)
    assert info.value.parameter == "lmtp_connect_timeout"
    with pytest.raises(ConfigError, match="also given"):
        Config(protocol="lmtp", smtp_connect_timeout=5, lmtp_connect_timeout=6)
    # In an LMTP Config the smtp_* attribute name reads the lmtp_* value.
    assert Config(protocol="lmtp").get("smtp_connect_timeout") == 0.0


def test_lmtp_error_names_the_lmtp_parameter() -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_postconf("lmtp_connect_timeout = soon", protocol="lmtp")
    assert info.value.parameter == "lmtp_connect_timeout"


def test_get_by_name() -> None:
    cfg = Config.from_postconf("custom_thing = 42\n")
    assert cfg.get("smtp_connect_timeout") == 30.0
    assert cfg.get("transport_destination_concurrency_limit") == 20
    assert cfg.get("custom_thing") == "42"
    with pytest.raises(ConfigError, match="LMTP client"):
        cfg.get("lmtp_lhlo_name")
    with pytest.raises(ConfigError, match="unknown parameter"):
        cfg.get("no_such_parameter")


def test_replace_recomputes_dependent_defaults() -> None:
    base = Config(myhostname="a.example.org", smtp_connect_timeout="10s")
    changed = base.replace(myhostname="b.example.net")
    assert changed.smtp_helo_name == "b.example.net"
    assert changed.mydomain == "example.net"
    assert changed.smtp_connect_timeout == 10.0
    assert base.smtp_helo_name == "a.example.org"  # frozen original untouched
    explicit = base.replace(smtp_helo_name="fixed.example").replace(myhostname="c.example")
    assert explicit.smtp_helo_name == "fixed.example"
    # A later Python value replaces an earlier text value and vice versa.
    assert base.replace(smtp_connect_timeout=3).smtp_connect_timeout == 3.0
    assert (
        base.replace(smtp_connect_timeout=3)
        .replace(smtp_connect_timeout="1m")
        .get("smtp_connect_timeout")
        == 60.0
    )
    with pytest.raises(ConfigError):
        base.replace(smtp_connect_timeout="never")
    lmtp = Config(protocol="lmtp").replace(lmtp_lhlo_name="x.example")
    assert lmtp.smtp_helo_name == "x.example"
    assert lmtp.protocol == "lmtp"


def test_replace_keeps_unknown_names() -> None:
    cfg = Config.from_postconf("mynetworks = 127.0.0.0/8\n").replace(smtp_connect_timeout=1)
    assert cfg.unknown == {"mynetworks": "127.0.0.0/8"}


def test_config_is_frozen_hashable_and_compares_by_value() -> None:
    a = Config(smtp_connect_timeout="1m")
    b = Config(smtp_connect_timeout=60)
    assert a == b
    assert hash(a) == hash(b)
    assert a != Config(protocol="lmtp")
    with pytest.raises(AttributeError):
        a.smtp_connect_timeout = 5  # type: ignore[misc]
    assert "smtp_connect_timeout='1m'" in repr(a)
    assert repr(Config()) == "Config(protocol='smtp')"


def test_explicit_shows_settings_by_postfix_name() -> None:
    cfg = Config(protocol="lmtp", smtp_connect_timeout=5, smtp_helo_name="x.example")
    assert dict(cfg.explicit) == {"lmtp_connect_timeout": 5.0, "lmtp_lhlo_name": "x.example"}


def test_config_pickles_and_copies() -> None:
    import copy
    import pickle

    cfg = Config.from_postconf("smtp_tls_policy_maps = inline:{a=b}\nfoo = 1\n", "lmtp")
    for clone in (pickle.loads(pickle.dumps(cfg)), copy.copy(cfg), copy.deepcopy(cfg)):
        assert clone == cfg
        assert clone.unknown == {"foo": "1"}
        assert clone.replace(smtp_connect_timeout=3).smtp_connect_timeout == 3.0
