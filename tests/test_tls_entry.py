"""smtp_tls_policy_maps entry syntax (Postfix tls_policy_lookup_one())."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyfix_smtp.errors import TlsPolicyError
from pyfix_smtp.tls.entry import parse_entry, postfix_tokens, split_nameval, valid_hostname
from pyfix_smtp.tls.levels import TlsLevel


def test_level_only() -> None:
    entry = parse_entry("secure")
    assert entry.level is TlsLevel.SECURE
    assert entry.match is None
    assert entry.ciphers is None
    assert entry.tafile == ()


def test_attributes_and_separators() -> None:
    entry = parse_entry(
        "verify, match=hostname:nexthop  ciphers=high protocols=!SSLv2:!SSLv3"
        "\texclude=aNULL:MD5 servername=hostname connection_reuse=yes"
    )
    assert entry.level is TlsLevel.VERIFY
    assert entry.match == ("hostname", "nexthop")
    assert entry.ciphers == "high"
    assert entry.protocols == "!SSLv2:!SSLv3"
    assert entry.exclude == "aNULL:MD5"
    assert entry.servername == "hostname"
    assert entry.connection_reuse is True


def test_match_instances_accumulate_and_empty_parts_vanish() -> None:
    entry = parse_entry("secure match=.example.com::example.com match=mx.example.net")
    assert entry.match == (".example.com", "example.com", "mx.example.net")


def test_fingerprint_match_uses_bar_separator() -> None:
    fp1 = "AA:BB:CC:DD"
    fp2 = "11:22:33:44"
    entry = parse_entry(f"fingerprint match={fp1}|{fp2} match=5566")
    assert entry.match == (fp1, fp2, "5566")


def test_braced_attribute_keeps_whitespace_and_normalises_it() -> None:
    entry = parse_entry("secure { match = a.example:b.example } {ciphers=\thigh }")
    assert entry.match == ("a.example", "b.example")
    assert entry.ciphers == "high"


def test_level_is_case_insensitive_and_attribute_names_too() -> None:
    entry = parse_entry("SECURE MATCH=nexthop Ciphers=high")
    assert entry.level is TlsLevel.SECURE
    assert entry.match == ("nexthop",)
    assert entry.ciphers == "high"


def test_none_ignores_even_malformed_attributes() -> None:
    entry = parse_entry("none ciphers= bogus {unbalanced")
    assert entry.level is TlsLevel.NONE
    assert entry.ignored == ("ciphers=", "bogus", "{unbalanced")


def test_last_connection_reuse_wins() -> None:
    assert parse_entry("may connection_reuse=yes connection_reuse=NO").connection_reuse is False


def test_tafile_may_repeat_at_verify() -> None:
    assert parse_entry("verify tafile=/a.pem tafile=/b.pem").tafile == ("/a.pem", "/b.pem")


def test_sts_plugin_attributes() -> None:
    entry = parse_entry(
        "secure match=mx1.example.com:*.example.net servername=hostname policy_type=sts"
        " policy_domain=example.com mx_host_pattern=mx1.example.com"
        " mx_host_pattern=*.example.net policy_ttl=86400 {policy_string=version: STSv1}"
        " policy_string=mode:enforce policy_failure=sts-policy-invalid"
    )
    assert entry.sts
    assert entry.mx_host_pattern == ("mx1.example.com", "*.example.net")
    assert entry.policy_ttl == 86400
    assert entry.policy_string == ("version: STSv1", "mode:enforce")
    assert entry.policy_domain == "example.com"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "invalid empty policy"),
        ("  , ", "invalid empty policy"),
        ("halfdane", 'invalid security level "halfdane"'),
        ("must", 'invalid security level "must"'),
        ("secure match", "missing '=' after attribute name"),
        ("secure =x", "missing attribute name"),
        ("secure bogus=1", 'invalid attribute name: "bogus"'),
        ("secure ciphers=", 'attribute "ciphers" has empty value'),
        ("secure ciphers=high ciphers=medium", '"ciphers" is specified multiple times'),
        ("may protocols=x protocols=y", '"protocols" is specified multiple times'),
        ("may exclude=a exclude=b", '"exclude" is specified multiple times'),
        ("may servername=a servername=b", '"servername" is specified multiple times'),
        ("may servername=bad_-.", "specifies an invalid hostname"),
        ("may servername=1.2.3.4", "specifies an invalid hostname"),
        ("secure match=", 'attribute "match" has empty value'),
        ("may match=nexthop", 'attribute "match" invalid at security level "may"'),
        ("encrypt match=nexthop", 'attribute "match" invalid at security level "encrypt"'),
        ("dane match=nexthop", 'attribute "match" invalid at security level "dane"'),
        ("dane-only match=x", 'invalid at security level "dane-only"'),
        ("encrypt tafile=/x", 'attribute "tafile" invalid at security level "encrypt"'),
        ("fingerprint tafile=/x", 'invalid at security level "fingerprint"'),
        ("dane tafile=/x", 'invalid at security level "dane"'),
        ("verify tafile=", 'attribute "tafile" has empty value'),
        ("may connection_reuse=maybe", '"connection_reuse" has bad value: "maybe"'),
        ("may enable_rpk=1", '"enable_rpk" has bad value: "1"'),
        ("secure {match=a", "missing '}'"),
        ("secure {match=a}x", "syntax error after '}'"),
        ("secure policy_ttl=12x policy_type=sts", '"policy_ttl" has a malformed value'),
        ("secure policy_type=dane", '"policy_type" has an unexpected value'),
        ("secure policy_type=sts policy_type=sts", '"policy_type" is specified multiple times'),
        ("secure policy_type=sts policy_domain=-bad", '"policy_domain" has a malformed value'),
        ("secure policy_type=sts policy_failure=oops", '"policy_failure" has an unexpected value'),
        ("secure mx_host_pattern=*.example.com", "built-in policy has unexpected attribute"),
        ("secure policy_ttl=5", "built-in policy has unexpected attribute"),
    ],
)
def test_invalid_entries_name_the_problem(text: str, reason: str) -> None:
    with pytest.raises(TlsPolicyError) as info:
        parse_entry(text)
    assert reason in info.value.reason
    assert info.value.policy == text


def test_tokens_keep_braced_groups_together() -> None:
    assert postfix_tokens("a, {b c, d} e\t{f {g} h}") == ["a", "{b c, d}", "e", "{f {g} h}"]
    assert postfix_tokens("x {unbalanced y z") == ["x", "{unbalanced y z"]


@pytest.mark.parametrize(
    ("token", "pair"),
    [("a=b", ("a", "b")), (" a = b c ", ("a", "b c")), ("a==", ("a", "=")), ("a=", ("a", ""))],
)
def test_split_nameval(token: str, pair: tuple[str, str]) -> None:
    assert split_nameval(token) == pair


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("mx.example.com", True),
        ("a_b.example", True),
        ("x", True),
        ("1.2.3.4", False),
        ("123", False),
        ("-a.example", False),
        ("a-.example", False),
        ("a..example", False),
        ("example.com.", False),
        ("a" * 64 + ".example", False),
        ("[mx.example.com]", False),
        ("mx.example.com:25", False),
        ("", False),
    ],
)
def test_valid_hostname_as_postfix(name: str, ok: bool) -> None:
    assert valid_hostname(name) is ok


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="{}=,: \tabcdemnoprstuvwxyz.-|", max_size=40))
def test_parse_entry_never_fails_untyped(text: str) -> None:
    """Any text either parses or raises TlsPolicyError naming the entry."""
    error: TlsPolicyError | None = None
    try:
        entry = parse_entry(text)
    except TlsPolicyError as exc:
        error = exc
    if error is not None:
        assert error.policy == text
    else:
        assert entry.level.tls_enabled or entry.level is TlsLevel.NONE
