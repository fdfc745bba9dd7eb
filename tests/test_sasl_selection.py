"""Mechanism filter, security options and mechanism choice (Postfix + Cyrus rules)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyfix_smtp.errors import ConfigError, SaslMechanismError
from pyfix_smtp.sasl.selection import (
    MECHANISM_PROPERTIES,
    PREFERENCE,
    ConnectionSecurity,
    MechanismFilter,
    SecurityOption,
    choose_mechanism,
    parse_security_options,
)

ALL = ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "XOAUTH2")
DEFAULT = parse_security_options("noplaintext, noanonymous")


class DictTable:
    """A dict-backed stand-in for a Postfix lookup table."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data
        self.keys: list[str] = []

    def lookup(self, key: str) -> str | None:
        self.keys.append(key)
        return self.data.get(key)


# --- security options ----------------------------------------------------------


def test_parse_security_options() -> None:
    assert parse_security_options("noplaintext, noanonymous") == {
        SecurityOption.NOPLAINTEXT,
        SecurityOption.NOANONYMOUS,
    }
    assert parse_security_options(("noactive", "mutual_auth,nodictionary")) == {
        SecurityOption.NOACTIVE,
        SecurityOption.MUTUAL_AUTH,
        SecurityOption.NODICTIONARY,
    }
    assert parse_security_options("") == frozenset()


@pytest.mark.parametrize("value", ["noplaintext, bogus", "NoPlainText"])
def test_unknown_security_option_names_the_parameter(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_security_options(value, "smtp_sasl_tls_security_options")
    assert info.value.parameter == "smtp_sasl_tls_security_options"
    assert "unknown SASL security option" in str(info.value)


@pytest.mark.parametrize(
    ("offered", "options", "expected"),
    [
        # Everything offered: the strongest mechanism wins whenever it qualifies.
        (ALL, "", "SCRAM-SHA-256"),
        (ALL, "noplaintext, noanonymous", "SCRAM-SHA-256"),
        (ALL, "noactive", "SCRAM-SHA-256"),
        (ALL, "mutual_auth", "SCRAM-SHA-256"),
        # Without SCRAM, CRAM-MD5 is the only non-plaintext mechanism.
        (("PLAIN", "LOGIN", "CRAM-MD5"), "noplaintext, noanonymous", "CRAM-MD5"),
        (("PLAIN", "LOGIN", "CRAM-MD5"), "noanonymous", "CRAM-MD5"),
        (("SCRAM-SHA-1", "CRAM-MD5"), "mutual_auth", "SCRAM-SHA-1"),
        # Plaintext mechanisms when the options allow them; PLAIN before LOGIN.
        (("LOGIN", "PLAIN"), "noanonymous", "PLAIN"),
        (("LOGIN", "XOAUTH2"), "", "LOGIN"),
        (("XOAUTH2",), "noanonymous", "XOAUTH2"),
        # The server's case does not matter (Cyrus compares case-insensitively).
        (("login", "plain"), "", "PLAIN"),
        # Unknown mechanisms are ignored.
        (("GSSAPI", "NTLM", "PLAIN"), "", "PLAIN"),
    ],
)
def test_choose_mechanism(offered: tuple[str, ...], options: str, expected: str) -> None:
    assert choose_mechanism(offered, security_options=parse_security_options(options)) == expected


@pytest.mark.parametrize(
    ("offered", "options", "excluded"),
    [
        (
            ("PLAIN", "LOGIN"),
            "noplaintext, noanonymous",
            "PLAIN (noplaintext), LOGIN (noplaintext)",
        ),
        (("CRAM-MD5", "PLAIN"), "noactive", "CRAM-MD5 (noactive), PLAIN (noactive)"),
        (("CRAM-MD5",), "mutual_auth", "CRAM-MD5 (mutual_auth)"),
        (ALL, "nodictionary", "SCRAM-SHA-256 (nodictionary)"),
        (ALL, "forward_secrecy", "XOAUTH2 (forward_secrecy)"),
    ],
)
def test_security_options_exclude_everything(
    offered: tuple[str, ...], options: str, excluded: str
) -> None:
    with pytest.raises(SaslMechanismError) as info:
        choose_mechanism(
            offered,
            security_options=parse_security_options(options),
            security=ConnectionSecurity.TLS,
            server="mx.example[192.0.2.1]",
        )
    err = info.value
    assert err.parameter == "smtp_sasl_tls_security_options"
    assert err.status == "4.7.0"
    assert err.reason == (
        "SASL authentication failed; cannot authenticate to server mx.example[192.0.2.1]: "
        "no mechanism available"
    )
    assert excluded in str(err)
    assert err.offered == offered


def test_default_options_over_plaintext_explain_tls() -> None:
    with pytest.raises(SaslMechanismError) as info:
        choose_mechanism(("PLAIN", "LOGIN"), security_options=DEFAULT, server="mx[192.0.2.1]")
    assert str(info.value) == (
        "no SASL mechanism left: server mx[192.0.2.1] offers PLAIN LOGIN; "
        "smtp_sasl_security_options = noplaintext, noanonymous excludes "
        "PLAIN (noplaintext), LOGIN (noplaintext); to allow them over TLS, require TLS "
        "(smtp_tls_security_level = encrypt) and set smtp_sasl_tls_security_options = noanonymous"
    )
    assert info.value.parameter == "smtp_sasl_security_options"


@pytest.mark.parametrize(
    ("security", "parameter"),
    [
        (ConnectionSecurity.TLS, "smtp_sasl_tls_security_options"),
        (ConnectionSecurity.TLS_VERIFIED, "smtp_sasl_tls_verified_security_options"),
    ],
)
def test_noplaintext_applies_over_tls_too(security: ConnectionSecurity, parameter: str) -> None:
    # Postfix never tells Cyrus about TLS: noplaintext still excludes PLAIN.
    with pytest.raises(SaslMechanismError) as info:
        choose_mechanism(("PLAIN",), security_options=DEFAULT, security=security)
    assert info.value.parameter == parameter
    assert str(info.value).endswith(f"; set {parameter} = noanonymous to allow them")


def test_relaxing_to_nothing_says_empty() -> None:
    with pytest.raises(SaslMechanismError, match=r"set smtp_sasl_tls_security_options = \(empty\)"):
        choose_mechanism(
            ("PLAIN",),
            security_options=parse_security_options("noplaintext"),
            security=ConnectionSecurity.TLS,
        )


def test_server_offers_nothing_we_implement() -> None:
    with pytest.raises(SaslMechanismError) as info:
        choose_mechanism(("GSSAPI", "NTLM"), security_options=frozenset(), server="s[1.2.3.4]")
    assert info.value.parameter is None
    assert "pyfix_smtp implements SCRAM-SHA-256" in str(info.value)
    assert info.value.reason.endswith("no mechanism available")


def test_empty_auth_list() -> None:
    with pytest.raises(SaslMechanismError) as info:
        choose_mechanism((), security_options=frozenset(), server="s[1.2.3.4]")
    assert info.value.reason == (
        "SASL authentication failed: server s[1.2.3.4] offered no compatible "
        "authentication mechanisms for this type of connection security"
    )


def test_available_limits_and_orders_our_mechanisms() -> None:
    offered = ("PLAIN", "SCRAM-SHA-256")
    assert choose_mechanism(offered, security_options=frozenset(), available=("PLAIN",)) == "PLAIN"


@settings(max_examples=200, deadline=None)
@given(
    offered=st.lists(st.sampled_from((*ALL, "GSSAPI")), unique=True),
    options=st.frozensets(st.sampled_from(list(SecurityOption))),
)
def test_choice_is_the_best_acceptable(
    offered: list[str], options: frozenset[SecurityOption]
) -> None:
    acceptable = [
        mech for mech in PREFERENCE if mech in offered and options <= MECHANISM_PROPERTIES[mech]
    ]
    if acceptable:
        assert choose_mechanism(offered, security_options=options) == acceptable[0]
    else:
        with pytest.raises(SaslMechanismError):
            choose_mechanism(offered, security_options=options)


def test_every_option_combination_against_every_mechanism() -> None:
    # Cyrus: a mechanism is allowed iff it has every demanded property.
    for size in range(len(SecurityOption) + 1):
        for combo in itertools.combinations(SecurityOption, size):
            options = frozenset(combo)
            for mech in PREFERENCE:
                allowed = options <= MECHANISM_PROPERTIES[mech]
                if allowed:
                    assert choose_mechanism([mech], security_options=options) == mech
                else:
                    with pytest.raises(SaslMechanismError):
                        choose_mechanism([mech], security_options=options)


def test_cyrus_properties_of_the_plaintext_mechanisms() -> None:
    for mech in ("PLAIN", "LOGIN", "XOAUTH2"):
        assert SecurityOption.NOPLAINTEXT not in MECHANISM_PROPERTIES[mech]
    assert SecurityOption.NOPLAINTEXT in MECHANISM_PROPERTIES["CRAM-MD5"]
    assert SecurityOption.NOACTIVE not in MECHANISM_PROPERTIES["CRAM-MD5"]


# --- mechanism filter ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "offered", "kept"),
    [
        ("", ("PLAIN", "LOGIN"), ("PLAIN", "LOGIN")),
        ("plain, login", ("CRAM-MD5", "PLAIN", "LOGIN"), ("PLAIN", "LOGIN")),
        ("PLAIN", ("plain", "login"), ("plain",)),  # server order and case kept
        ("!plain, login", ("CRAM-MD5", "PLAIN", "LOGIN"), ("LOGIN",)),
        ("!!plain", ("PLAIN", "LOGIN"), ("PLAIN",)),
        ("login plain", ("XOAUTH2",), ()),
    ],
)
def test_mechanism_filter(value: str, offered: tuple[str, ...], kept: tuple[str, ...]) -> None:
    assert MechanismFilter.parse(value).apply(offered) == kept


def test_mechanism_filter_with_tables() -> None:
    table = DictTable({"cram-md5": "ok", "plain": "ok"})
    opened: list[str] = []

    def opener(ref: str) -> DictTable:
        opened.append(ref)
        return table

    flt = MechanismFilter.parse("!login, hash:/etc/postfix/mechs", open_table=opener)
    assert opened == ["hash:/etc/postfix/mechs"]
    assert flt.apply(["CRAM-MD5", "LOGIN", "PLAIN", "SCRAM-SHA-256"]) == ("CRAM-MD5", "PLAIN")
    assert table.keys == ["cram-md5", "plain", "scram-sha-256"]  # keys casefolded; LOGIN decided


def test_mechanism_filter_from_file(tmp_path: Path) -> None:
    path = tmp_path / "mechs"
    path.write_text("# allowed\nplain\n  login, cram-md5\n\n")
    assert MechanismFilter.parse(f"!{path}").apply(["PLAIN", "SCRAM-SHA-1"]) == ()
    assert MechanismFilter.parse(str(path)).apply(["CRAM-MD5", "XOAUTH2"]) == ("CRAM-MD5",)


def test_mechanism_filter_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no pattern after '!'"):
        MechanismFilter.parse("plain, !")
    with pytest.raises(ConfigError, match="cannot read"):
        MechanismFilter.parse(str(tmp_path / "missing"))


def test_filter_that_removes_everything_names_the_parameter() -> None:
    with pytest.raises(SaslMechanismError) as info:
        choose_mechanism(
            ("PLAIN", "LOGIN"),
            security_options=frozenset(),
            mechanism_filter=MechanismFilter.parse("cram-md5"),
            server="mx[192.0.2.1]",
        )
    assert info.value.parameter == "smtp_sasl_mechanism_filter"
    assert str(info.value) == (
        "no SASL mechanism left: server mx[192.0.2.1] offers PLAIN LOGIN; "
        "smtp_sasl_mechanism_filter = cram-md5 removes them all"
    )
    assert "offered no compatible authentication mechanisms" in info.value.reason


def test_filter_then_security_options() -> None:
    flt = MechanismFilter.parse("plain, login, cram-md5")
    offered = ("SCRAM-SHA-256", "CRAM-MD5", "PLAIN")
    assert choose_mechanism(offered, security_options=DEFAULT, mechanism_filter=flt) == "CRAM-MD5"
    assert (
        choose_mechanism(offered, security_options=frozenset(), mechanism_filter=flt) == "CRAM-MD5"
    )


def test_mechanism_filter_with_inline_table() -> None:
    flt = MechanismFilter.parse("!login, inline:{ PLAIN=yes, cram-md5=yes }")
    assert flt.apply(["LOGIN", "PLAIN", "CRAM-MD5", "SCRAM-SHA-256"]) == ("PLAIN", "CRAM-MD5")


def test_mechanism_filter_bad_table_names_the_parameter() -> None:
    with pytest.raises(ConfigError) as info:
        MechanismFilter.parse("hash:/etc/postfix/mechs")
    assert info.value.parameter == "smtp_sasl_mechanism_filter"
