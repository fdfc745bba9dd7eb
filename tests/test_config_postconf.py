"""main.cf syntax: parsing, $name expansion, round trips (also against postconf(1))."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyfix_smtp.config import PARAMETERS, Config, parse_main_cf
from pyfix_smtp.config.postconf import write_main_cf
from pyfix_smtp.config.values import (
    Bool,
    CompatLevel,
    Enum,
    HostAddress,
    Int,
    Kind,
    List,
    Ports,
    RequireTlsPolicy,
    Str,
    Tables,
    Time,
)
from pyfix_smtp.errors import ConfigError
from pyfix_smtp.maps.syntax import COMMA_SPACE, split_tokens
from tests.peers import binary_or_skip

MAIN_CF = """\
# A comment line
   # an indented comment line
myhostname = mx.example.org

smtp_helo_name=helo.$mydomain
smtp_host_lookup = dns,
    native
# a comment between continuation lines does not end the value
  #   (nor does an indented one)
smtp_tls_policy_maps = inline:{ example.com=secure,
   { .example.com = verify ciphers=high } }
smtp_tls_cert_file = /etc/cert#not-a-comment
smtp_connect_timeout = 10s
smtp_connect_timeout = 20s
custom_name = $myhostname and more
empty_value =
"""


def test_main_cf_syntax() -> None:
    assignments = parse_main_cf(MAIN_CF)
    assert assignments["smtp_host_lookup"] == "dns,    native"
    assert assignments["smtp_tls_cert_file"] == "/etc/cert#not-a-comment"
    assert assignments["smtp_connect_timeout"] == "20s"  # last assignment wins
    assert assignments["empty_value"] == ""
    assert assignments["custom_name"] == "$myhostname and more"  # kept unexpanded
    cfg = Config.from_postconf(MAIN_CF)
    assert cfg.smtp_helo_name == "helo.example.org"
    assert cfg.smtp_host_lookup == ("dns", "native")
    assert cfg.smtp_tls_policy_maps.lookup_with_parents("a.example.com") == "verify ciphers=high"
    assert cfg.smtp_connect_timeout == 20.0
    assert cfg.unknown == {"custom_name": "$myhostname and more", "empty_value": ""}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("  indented_first = 1\n", "line 1: logical line must not start with whitespace"),
        ("a = 1\nno equals sign\n", "line 2: missing '=' after attribute name"),
        ("a = 1\n= 2\n", "line 2: missing attribute name"),
        ("a = 1\nb = x\0y\n", "line 2: NUL"),
    ],
)
def test_main_cf_errors_carry_line_numbers(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_postconf(text)
    assert fragment in str(info.value)


# (main.cf lines defining helper names, expression for smtp_tls_cert_file, result)
EXPANSIONS = [
    ("foo = bar", "$foo", "bar"),
    ("foo = bar", "${foo}", "bar"),
    ("foo = bar", "$(foo)", "bar"),
    ("foo = bar", "$foo.baz", "bar.baz"),
    ("foo = bar", "$$foo", "$foo"),
    ("foo = bar", "a$$$foo", "a$bar"),
    ("", "$undefined-x", "-x"),
    ("foo = bar", "${foo?yes}", "yes"),
    ("foo =", "${foo?yes}", ""),
    ("", "${foo?yes}", ""),
    ("foo =", "${foo:fallback}", "fallback"),
    ("foo = bar", "${foo:fallback}", ""),
    ("foo = bar", "${foo?{yes $foo}:{no}}", "yes bar"),
    ("foo =", "${foo?{yes}:{no $foo}}", "no "),
    ("foo = bar", "${foo ? text with: colon}", "text with: colon"),
    ("foo = a\nbar = $foo$foo", "${bar}", "aa"),
    ("inner = x\nouter = ${inner?{[$inner]}}", "$outer", "[x]"),
    ("foo = bar", "${{$foo} == {bar} ? {eq} : {ne}}", "eq"),
    ("foo = bar", "${{$foo} != {bar} ? {ne} : {eq}}", "eq"),
    ("", "${{10} < {9} ? {lt} : {ge}}", "ge"),  # numeric when both are digits
    ("", "${{abc} < {abd} ? {lt} : {ge}}", "lt"),
    ("", "${{10} <= {10}?yes}", "yes"),
    ("", "${{10} > {9}}", "true"),
    ("", "${{10} >= {11}}", ""),
    ("", "${{3.10} >level {3.9} ? {newer} : {older}}", "newer"),
    ("", "${{3.6} <=level {3.6.0} ? {same}}", "same"),
    ("", "${domain_to_ascii{bücher.example}}", "xn--bcher-kva.example"),
    ("", "${domain_to_ascii{plain.example}}", "plain.example"),
    ("", "${domain_to_utf8{xn--bcher-kva.example}}", "bücher.example"),
]


@pytest.mark.parametrize(("defs", "expr", "result"), EXPANSIONS)
def test_expansion(defs: str, expr: str, result: str) -> None:
    cfg = Config.from_postconf(f"{defs}\nsmtp_tls_cert_file = {expr}\n")
    assert cfg.smtp_tls_cert_file == result


EXPANSION_ERRORS = [
    ("a = $b\nb = $a\nsmtp_tls_cert_file = $a", "expansion loop: a -> b -> a"),
    ("smtp_tls_cert_file = x$smtp_tls_cert_file", "smtp_tls_cert_file -> smtp_tls_cert_file"),
    ("smtp_tls_cert_file = $smtp_tls_key_file", "smtp_tls_key_file -> smtp_tls_cert_file"),
    ("smtp_tls_cert_file = cost$", "empty macro name"),
    ("smtp_tls_cert_file = ${foo", "truncated macro reference"),
    ("smtp_tls_cert_file = ${{a} ~= {b}}", "expected at"),
    ("smtp_tls_cert_file = ${{a} == b}", "{expression}"),
    ("smtp_tls_cert_file = ${{a} == {b} x}", '"?" or ":" expected'),
    ("smtp_tls_cert_file = ${foo?{a}x}", '":" expected'),
    ("smtp_tls_cert_file = ${foo:{a}x}", "unexpected input"),
    ("smtp_tls_cert_file = ${no_such_fn{x}}", 'unknown function "no_such_fn"'),
    ("smtp_tls_cert_file = ${{x} <level {3.6}}", "bad compatibility level"),
    ("smtp_tls_cert_file = ${{a} ==bogus {b}}", "bad operator suffix"),
    ("smtp_tls_cert_file = ${a-b}", "attribute name syntax error"),
    ("smtp_tls_cert_file = ${domain_to_ascii{ü-.example}}", "bad domain argument"),
]


@pytest.mark.parametrize(("text", "fragment"), EXPANSION_ERRORS)
def test_expansion_errors(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_postconf(text)
    assert fragment in str(info.value)


def test_loop_through_a_default_is_detected() -> None:
    # smtp_tls_key_file defaults to $smtp_tls_cert_file.
    with pytest.raises(ConfigError, match="smtp_tls_cert_file -> smtp_tls_key_file"):
        Config(smtp_tls_cert_file="$smtp_tls_key_file")


def test_unknown_names_are_kept_not_expanded_eagerly() -> None:
    cfg = Config.from_postconf("mynetworks = 127.0.0.0/8\nbroken = $broken\n")
    assert cfg.unknown == {"mynetworks": "127.0.0.0/8", "broken": "$broken"}


def test_python_values_are_literal_in_expansion() -> None:
    cfg = Config(smtp_tls_cert_file="$smtp_tls_dcert_file", smtp_tls_dcert_file="/a$b")
    assert cfg.smtp_tls_cert_file == "/a"  # text: $b is expanded (undefined)
    cfg = Config(smtp_host_lookup=["dns"], smtp_tls_cert_file="x-$smtp_host_lookup")
    assert cfg.smtp_tls_cert_file == "x-dns"


def test_to_postconf_round_trip_and_escaping() -> None:
    cfg = Config(
        smtp_connect_timeout=90,
        smtp_host_lookup=["native"],
        smtp_tls_policy_maps="inline:{a.example=secure}",
        smtp_helo_name="$myhostname",
        myhostname="mx.example.org",
        smtp_fallback_relay=["[relay$1]"],
    )
    text = cfg.to_postconf()
    assert "smtp_connect_timeout = 90s\n" in text
    assert "smtp_helo_name = $myhostname\n" in text  # text settings stay symbolic
    assert "smtp_fallback_relay = [relay$$1]\n" in text  # Python values are escaped
    again = Config.from_postconf(text)
    assert again == cfg
    assert again.smtp_fallback_relay == ("[relay$1]",)


def test_to_postconf_include_defaults_round_trip() -> None:
    for protocol in ("smtp", "lmtp"):
        cfg = Config(protocol=protocol, myhostname="mx.example.org")  # type: ignore[arg-type]
        full = cfg.to_postconf(include_defaults=True)
        assert len(full.splitlines()) == len(PARAMETERS)
        assert Config.from_postconf(full, protocol) == cfg  # type: ignore[arg-type]
    assert "lmtp_lhlo_name = mx.example.org" in Config(
        protocol="lmtp", myhostname="mx.example.org"
    ).to_postconf(include_defaults=True)


def test_to_postconf_keeps_unknown_and_other_protocol_names() -> None:
    text = "relayhost = [smart]\nlmtp_tcp_port = 2424\n"
    assert Config.from_postconf(text).to_postconf() == text


def test_to_postconf_refuses_values_without_main_cf_spelling() -> None:
    with pytest.raises(ConfigError, match="fractional"):
        Config(smtp_connect_timeout=1.5).to_postconf()
    with pytest.raises(ConfigError, match=r"no main\.cf text form"):
        Config(smtp_tls_policy_maps={"a": "b"}).to_postconf()


# ---- hypothesis properties ------------------------------------------------

_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-/@[]>=!", min_size=1, max_size=12)


@given(st.lists(_WORD, max_size=8), st.lists(st.sampled_from([",", " ", ", ", "\t", " ,\n "])))
@settings(max_examples=80)
def test_list_splitting_round_trip(tokens: list[str], seps: list[str]) -> None:
    joined = ""
    for i, token in enumerate(tokens):
        sep = seps[i % len(seps)] if seps else ", "
        joined += (sep if i else "") + token
    assert split_tokens(joined, COMMA_SPACE) == tokens


@given(st.lists(_WORD, max_size=5), st.lists(_WORD, max_size=5))
@settings(max_examples=50)
def test_braces_keep_separators(inner: list[str], outer: list[str]) -> None:
    group = "{ " + ", ".join(inner) + " }"
    assert split_tokens(", ".join([*outer, group, *outer]), COMMA_SPACE) == [*outer, group, *outer]


_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
_VALUE = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\n\r\0\t\v\f "), max_size=20
).map(lambda v: v.replace("#", "x"))
_LINE_VALUE = st.lists(_VALUE.filter(bool), max_size=4).map(" ".join)


@given(st.dictionaries(_NAME, _LINE_VALUE, max_size=8), st.randoms(use_true_random=False))
@settings(max_examples=80)
def test_main_cf_parse_write_round_trip(values: dict[str, str], rnd: object) -> None:
    import random

    assert isinstance(rnd, random.Random)
    lines = []
    for name, value in values.items():
        if rnd.random() < 0.3:
            lines.append("# comment " + name)
        words = value.split(" ")
        if len(words) > 1 and rnd.random() < 0.5:
            lines.append(f"{name} = {words[0]}")
            lines.extend(" " + word for word in words[1:])
        else:
            lines.append(f"{name} = {value}")
    assert parse_main_cf("\n".join(lines) + "\n") == values
    assert parse_main_cf(write_main_cf(values.items())) == values


def _host() -> st.SearchStrategy[str]:
    label = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
    return st.lists(label, min_size=2, max_size=4).map(".".join)


def _text_for(kind: Kind) -> st.SearchStrategy[str]:
    """Valid Postfix text for a parameter of this kind."""
    if isinstance(kind, Bool):
        return st.sampled_from(["yes", "no", "YES", "No"])
    if isinstance(kind, Time):
        low = max(kind.min, 0)
        return st.tuples(st.integers(low, 500), st.sampled_from(["", "s", "m", "h"])).map(
            lambda t: f"{t[0]}{t[1]}"
        )
    if isinstance(kind, Int):
        return st.integers(kind.min, min(kind.max, 100000)).map(str)
    if isinstance(kind, Enum):
        return st.sampled_from(kind.choices).map(lambda c: c if kind.case_sensitive else c.upper())
    if isinstance(kind, List):
        if kind.choices:
            items = st.lists(st.sampled_from(kind.choices), min_size=max(kind.min_items, 1))
        else:
            items = st.lists(_WORD.filter(lambda w: ":" not in w), max_size=4)
        return items.map(", ".join)
    if isinstance(kind, Str):
        if kind.max_length == 1:
            return st.sampled_from([":", ";", "|"])
        return _host() if kind.min_length else st.one_of(st.just(""), _host(), st.just("a$$b"))
    if isinstance(kind, Tables):
        return st.sampled_from(["", "inline:{a=b}", "static:{x y}", "cidr:{{10.0.0.0/8 ten}}"])
    if isinstance(kind, RequireTlsPolicy):
        return st.sampled_from(["enforce", "inline:{a=disable}, opportunistic", "disable"])
    if isinstance(kind, Ports):
        return st.sampled_from(["smtp=25", "a=b=2525, c=26"])
    if isinstance(kind, CompatLevel):
        return st.sampled_from(["0", "1", "2", "3.6", "3.11", "3.11.1"])
    if isinstance(kind, HostAddress):
        return st.sampled_from(["", "192.0.2.1" if kind.version == 4 else "2001:db8::1"])
    raise AssertionError(kind)


_SKIP = {"myhostname", "mydomain"}  # set below from a host-name strategy
_SETTABLE = [p for p in PARAMETERS if p.name not in _SKIP]


@st.composite
def _settings(draw: st.DrawFn) -> dict[str, str]:
    chosen = draw(st.lists(st.sampled_from(_SETTABLE), max_size=12, unique_by=lambda p: p.name))
    values = {p.name: draw(_text_for(p.kind)) for p in chosen}
    values["myhostname"] = draw(_host())
    return values


@given(_settings(), st.sampled_from(["smtp", "lmtp"]))
@settings(max_examples=60, deadline=None)
def test_config_round_trips_through_main_cf(values: dict[str, str], protocol: str) -> None:
    cfg = Config(protocol=protocol, **values)  # type: ignore[arg-type]
    text = cfg.to_postconf()
    again = Config.from_postconf(text, protocol)  # type: ignore[arg-type]
    assert again == cfg
    assert again.to_postconf() == text


@given(_settings())
@settings(max_examples=40, deadline=None)
def test_python_values_round_trip(values: dict[str, str]) -> None:
    typed = Config(**values)
    as_objects = {
        name: typed.get(name)
        for name in values
        if not isinstance(typed.get(name), str)
        and name not in ("smtp_requiretls_policy",)
        and not name.endswith(("_maps", "_checks", "_filter"))
    }
    cfg = Config(**{**values, **as_objects})
    assert cfg == typed
    assert Config.from_postconf(cfg.to_postconf()) == cfg


# ---- the same expressions through Postfix's own postconf(1) ----------------

POSTCONF_CASES = {
    "smtp_helo_name": "${foo?{yes-$foo}:{no}} ${empty:fallback} ${empty?x} $(foo)-$$-${foo}",
    "smtp_tls_cert_file": "${{$foo} == {bar} ? {eq} : {ne}} ${{10} < {9}} ${{abc} < {abd}?lt}",
    "smtp_tls_key_file": "${ {$foo} != {x} ? {spaced} } ${foo ? text with: colon}",
    "smtp_tls_dcert_file": "${{3.10} >level {3.9}?gt} ${{3.6} <=level {3.6.0}?le}",
    "smtp_tls_eccert_file": "a\n  # comment inside\n    b\n#c\n c $myhostname",
    "smtp_tls_CAfile": "$undefined_name.x ${mydomain}",
}


@pytest.mark.peers
def test_expansion_agrees_with_postconf(tmp_path: Path) -> None:
    postconf = binary_or_skip("postconf")
    text = "compatibility_level = 3.6\nmyhostname = mx.example.org\nfoo = bar\nempty =\n"
    text += "".join(f"{name} = {value}\n" for name, value in POSTCONF_CASES.items())
    (tmp_path / "main.cf").write_text(text)
    (tmp_path / "master.cf").write_text("")
    done = subprocess.run(
        [postconf, "-c", str(tmp_path), "-xh", *POSTCONF_CASES],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    theirs = done.stdout.splitlines()
    cfg = Config.from_postconf(text)
    ours = [str(cfg.get(name)) for name in POSTCONF_CASES]
    # postconf(1) prints values with whitespace runs collapsed.
    assert [" ".join(v.split()) for v in ours] == theirs


def test_conditional_tests_raw_explicit_text_but_expanded_defaults() -> None:
    # An explicit setting is tested as written (Postfix keeps main.cf text raw) ...
    cfg = Config.from_postconf("empty =\nref = $empty\nsmtp_tls_cert_file = ${ref?set}")
    assert cfg.smtp_tls_cert_file == "set"
    # ... a default as its value: at compatibility_level 3.10 the default
    # smtp_tls_security_level expression evaluates to empty.
    text = "compatibility_level = 3.10\nsmtp_tls_cert_file = ${smtp_tls_security_level?x:y}"
    assert Config.from_postconf(text).smtp_tls_cert_file == ""
    text = "compatibility_level = 3.10\nsmtp_tls_cert_file = ${smtp_tls_security_level:empty}"
    assert Config.from_postconf(text).smtp_tls_cert_file == "empty"
