"""Lookup tables: every type with real files, checked against Postfix's postmap."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pyfix_smtp.errors import ConfigError, LookupTableError
from pyfix_smtp.maps import (
    CallableTable,
    MappingTable,
    StaticTable,
    Table,
    TableList,
    open_table,
    parent_keys,
    valid_hostname,
)
from tests.peers import binary_or_skip

DATA = Path(__file__).parent / "data" / "maps"


def ref(kind: str, name: str) -> str:
    return f"{kind}:{DATA / name}"


TEXTHASH = ref("texthash", "tls_policy.texthash")
REGEXP = ref("regexp", "header_checks.regexp")
PCRE = ref("pcre", "client.pcre")
CIDR = ref("cidr", "networks.cidr")
POSIX = ref("regexp", "posix.regexp")

# (table, key, expected result) -- the regexp/cidr/texthash rows are also
# replayed against postmap(1) below, so they are Postfix's answers.
LOOKUPS = [
    (TEXTHASH, "example.com", "secure match=.example.com"),
    (TEXTHASH, "EXAMPLE.COM", "secure match=.example.com"),
    (TEXTHASH, ".example.com", "verify"),
    (TEXTHASH, "[mx.example.net]:587", "encrypt    protocols=>=TLSv1.2"),
    (TEXTHASH, '"quoted key"', "may"),
    (TEXTHASH, "quoted key", None),
    (TEXTHASH, "mixed.case.org", "dane"),
    (TEXTHASH, "nope", None),
    (REGEXP, "Subject: cheap VIAGRA now", "REJECT spam subject"),
    (REGEXP, "X-Mailer: Foo 1.0", "WARN mailer is Foo 1.0"),
    (REGEXP, "X-Case: Exact", "PREPEND X-Seen: exact case"),
    (REGEXP, "X-Case: exact", None),
    (REGEXP, "From: a@test.org", "FILTER smtp:[relay.test.org]"),
    (REGEXP, "Received: from localhost by x", "IGNORE local hop via localhost"),
    (REGEXP, "Received: from a by mx.b", None),
    (REGEXP, "Received: from a by other", "WARN received not by mx"),
    (REGEXP, "X-Price: $42", "WARN price $42"),
    (REGEXP, "X-Path: /usr/bin/x", "WARN path delimiter"),
    (REGEXP, "X-Multi: first\n\tsecond", "WARN dot matches newline"),
    (REGEXP, "X-Tail: end\n", None),
    (REGEXP, "X-Tail: end", "WARN dollar at end only"),
    (REGEXP, "X-A: a", "WARN a without b"),
    (REGEXP, "X-A: ab", None),
    (REGEXP, "X-Basic: abab", "WARN basic ab"),
    (REGEXP, "X-Basic: ab", None),
    (REGEXP, "X-Empty: y", "WARN empty group []"),
    (REGEXP, "nothing", None),
    (POSIX, "a\nb", "multiline-b"),
    (POSIX, "a\nc", None),
    (POSIX, "q\nr", "negclass-nom"),
    (POSIX, "the word is", "wordbound"),
    (POSIX, "words", None),
    (POSIX, "abab", "backref"),
    (POSIX, "*star", "bre-literal-star"),
    (POSIX, "star", None),
    (POSIX, "]bracket", "close-bracket-first"),
    (POSIX, "-dash", "dash-last"),
    (POSIX, "\\backslash", "backslash-in-class"),
    (POSIX, "xxy", "interval"),
    (POSIX, "xy", None),
    (POSIX, "zz\n", None),
    (POSIX, "tab\tsep", "posix-space"),
    (POSIX, "XYZ", "upper-toggled-icase"),
    (POSIX, "xyz", None),
    (CIDR, "192.168.1.1", "exact-host"),
    (CIDR, "192.168.2.3", "private-192"),
    (CIDR, "10.9.9.9", "private-10"),
    (CIDR, "2001:db8::1", "documentation-v6"),
    (CIDR, "2001:DB8::1", "documentation-v6"),
    (CIDR, "8.8.8.8", "not-loopback-v4"),
    (CIDR, "127.0.0.1", None),
    (CIDR, "172.16.5.9", "inner-block"),
    (CIDR, "172.17.0.1", "not-loopback-v4"),
    (CIDR, "::1", "any-v6"),
    (CIDR, "::ffff:10.0.0.1", "any-v6"),
    (CIDR, "garbage", None),
    (CIDR, "01.2.3.4", None),
    ("inline:{ foo=XX, { bAr = lotsa stuff } }", "BAR", "lotsa stuff"),
    ("inline:{ foo=XX, { bAr = lotsa stuff } }", "foo", "XX"),
    ("inline:{ foo=XX, { bAr = lotsa stuff } }", "baz", None),
    ("inline:{a=b,c=d e=f}", "e", "f"),
    ("static:fooxx", "anything", "fooxx"),
    ("static:{ foo xx }", "bar", "foo xx"),
    ("regexp:{{/foo/ got foo}, {/(b)(a)r/ $2$1}}", "BAR", "AB"),
    ("cidr:{{1.2.3.4 got 1.2.3.4}, {1.2.3.0/24 net}}", "1.2.3.5", "net"),
    # pcre: is Python re with PCRE's defaults (case-insensitive, dot-all).
    (PCRE, "10.20.30.40", "dotted 40.30.20.10"),
    (PCRE, "Subject: Great offer", "WARN offer Great"),
    (PCRE, "EXACT", None),
    (PCRE, "exact", "case matched"),
    (PCRE, "joe@EXAMPLE.com", "user joe"),
    (PCRE, "skipme@example.com", None),
    (PCRE, "xx anchored", None),
    (PCRE, "anchored here", "anchored hit"),
    (PCRE, "first line\nsecond", "multiline"),
]


@pytest.mark.parametrize(("spec", "key", "expected"), LOOKUPS)
def test_lookup(spec: str, key: str, expected: str | None) -> None:
    assert open_table(spec).lookup(key) == expected


@pytest.fixture(scope="module")
def postmap(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    binary = binary_or_skip("postmap")
    confdir = tmp_path_factory.mktemp("postfix-conf")
    (confdir / "main.cf").write_text("compatibility_level = 3.6\n")
    return [binary, "-c", str(confdir)]


@pytest.mark.peers
@pytest.mark.parametrize(
    ("spec", "key", "expected"),
    [row for row in LOOKUPS if not row[0].startswith("pcre:")],
)
def test_lookup_agrees_with_postmap(
    postmap: list[str], spec: str, key: str, expected: str | None
) -> None:
    done = subprocess.run(
        [*postmap, "-q", key, spec], capture_output=True, text=True, check=False, timeout=30
    )
    assert done.returncode in (0, 1), done.stderr
    theirs = done.stdout.removesuffix("\n") if done.returncode == 0 else None
    assert theirs == expected
    assert open_table(spec).lookup(key) == theirs


# (table reference, expected message fragment, expected line number)
BROKEN = [
    (ref("texthash", "duplicate.texthash"), "duplicate entry", 3),
    (ref("texthash", "missing_value.texthash"), "key whitespace value", 2),
    (ref("texthash", "unbalanced_quote.texthash"), "unbalanced", 1),
    (ref("regexp", "missing_endif.regexp"), "IF has no matching ENDIF", 1),
    (ref("regexp", "bad_group.regexp"), "out of range replacement index", 1),
    (ref("regexp", "negative_group.regexp"), "negative match", 1),
    (ref("regexp", "bad_flag.regexp"), "unknown regexp option", 1),
    (ref("regexp", "no_result.regexp"), "no replacement text", 1),
    (ref("cidr", "host_bits.cidr"), "non-null host address bits", 1),
    (ref("cidr", "stray_endif.cidr"), "ENDIF without IF", 2),
    ("regexp:{{/a/ x}, {endif}}", "ENDIF without matching IF", 2),
    ("regexp:{{if /a/ extra}, {endif}}", "extra text after IF", 1),
    ("regexp:{{/(/ x}}", "error in regex", 1),
    ("regexp:{{/a/ $x}}", "non-numeric replacement index", 1),
    ("regexp:{{/a/ $}}", "empty name", 1),
    ("regexp:{{/a/ ${1}}}", "out of range replacement index", 1),
    ("regexp:{{/a}}", "no closing regexp delimiter", 1),
    ("regexp:{{what is this}}", "unrecognized request", 1),
    ("regexp:{{/a(?i)/ x}}", "not POSIX", 1),
    ("pcre:{{/a/U x}}", "not supported", 1),
    ("pcre:{{/a/!/b/ x}}", "unknown regexp option", 1),
    ("cidr:{{10.0.0.0/33 x}}", "bad mask length", 1),
    ("cidr:{{10.0.0.0/x x}}", "bad mask value", 1),
    ("cidr:{{10.0.0.0/8}}", "no lookup result", 1),
    ("cidr:{{300.0.0.0 x}}", "bad address pattern", 1),
    ("cidr:{{[10.0.0.0 x}}", "missing ']'", 1),
    ("cidr:{{if 10.0.0.0/8}}", "IF has no matching ENDIF", 1),
]


@pytest.mark.parametrize(("spec", "fragment", "line"), BROKEN)
def test_malformed_table_reports_line(spec: str, fragment: str, line: int) -> None:
    with pytest.raises(LookupTableError) as info:
        open_table(spec, parameter="smtp_header_checks")
    assert fragment in info.value.reason
    assert info.value.line == line
    assert info.value.parameter == "smtp_header_checks"
    assert isinstance(info.value, ConfigError)


BAD_SPECS = [
    ("inline:{ }", "empty table"),
    ("inline:{ foo = xx }", "missing '='"),
    ("inline:{ foo=xx }x", "bad syntax"),
    ("inline:{ foo=xx x", "bad syntax"),
    ("inline:{ foo=xx {x=y}x}", "syntax error after '}'"),
    ("inline:{a=1, A=2}", "duplicate key"),
    ("inline:foo=bar", "bad syntax"),
    ("static:{ foo xx ", "missing '}'"),
    ("static:{ foo xx }x", "syntax error after '}'"),
    ("regexp:{{/a/ x}, /b/ y}", "no '{'"),
    ("nocolon", 'expecting "type:name"'),
    ("texthash:", 'expecting "type:name"'),
    ("bogus:/etc/x", 'unknown table type "bogus"'),
    ("texthash:/nonexistent/table", "cannot open /nonexistent/table"),
]


@pytest.mark.parametrize(("spec", "fragment"), BAD_SPECS)
def test_bad_table_reference(spec: str, fragment: str) -> None:
    with pytest.raises(LookupTableError) as info:
        open_table(spec)
    assert fragment in info.value.reason


@pytest.mark.parametrize(
    "kind", ["hash", "btree", "lmdb", "cdb", "dbm", "mysql", "pgsql", "ldap", "proxy"]
)
def test_unsupported_types_point_to_texthash(kind: str) -> None:
    with pytest.raises(LookupTableError) as info:
        TableList.parse(f"{kind}:/etc/postfix/some_map", parameter="smtp_tls_policy_maps")
    assert "texthash" in info.value.reason
    assert "callable" in info.value.reason
    assert info.value.parameter == "smtp_tls_policy_maps"


def test_undecodable_file_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.texthash"
    path.write_bytes(b"a b\nc d\n\xe9t\xe9 e\n")
    with pytest.raises(LookupTableError) as info:
        open_table(f"texthash:{path}")
    assert info.value.line == 3


def test_nul_in_table_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "nul.texthash"
    path.write_bytes(b"a b\nc\0 d\n")
    with pytest.raises(LookupTableError, match="NUL"):
        open_table(f"texthash:{path}")


def test_continuation_at_start_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cont.texthash"
    path.write_text("  leading value\nkey value\n")
    with pytest.raises(LookupTableError, match="must not start with whitespace"):
        open_table(f"texthash:{path}")


def test_tablelist_parse_splits_outside_braces() -> None:
    tables = TableList.parse(
        "inline:{ {a = x y}, b=c }, static:{ s t }  cidr:{{10.0.0.0/8 ten}}", parameter="p"
    )
    assert [t.ref.split(":", 1)[0] for t in tables] == ["inline", "static", "cidr"]
    assert tables.lookup("a") == "x y"
    assert tables.lookup("zzz") == "s t"  # static answers everything after inline missed


def test_tablelist_first_hit_wins_and_empty_key() -> None:
    tables = TableList([{"k": "first"}, {"k": "second", "j": "only-second"}])
    assert tables.lookup("K") == "first"
    assert tables.lookup("j") == "only-second"
    assert tables.lookup("") is None
    assert tables.lookup("missing") is None
    assert not TableList()
    assert len(tables) == 2


def test_empty_result_is_a_configuration_error() -> None:
    tables = TableList([lambda key: ""])
    with pytest.raises(LookupTableError, match="empty string"):
        tables.lookup("anything")


def test_fixed_only_skips_pattern_tables() -> None:
    tables = TableList(["regexp:{{/./ pattern}}", {"@example.com": "fixed"}])
    assert tables.lookup("@example.com") == "pattern"
    assert tables.lookup("@example.com", fixed_only=True) == "fixed"
    assert tables.lookup("@other.org", fixed_only=True) is None


def test_python_objects_as_tables() -> None:
    seen: list[str] = []

    def lookup(key: str) -> str | None:
        seen.append(key)
        return "yes" if key.lower().endswith(".test") else None

    mapping = MappingTable({"Example.COM": "secure"}, ref="python:dict")
    tables = TableList([mapping, lookup])
    assert tables.lookup("EXAMPLE.com") == "secure"
    assert tables.lookup("Host.TEST") == "yes"
    assert seen == ["Host.TEST"]  # callables see the key unfolded
    assert isinstance(tables.tables[1], CallableTable)
    assert tables == TableList([{"example.com": "secure"}, lookup])


def test_callable_must_return_text() -> None:
    tables = TableList([lambda key: 42])  # type: ignore[list-item]
    with pytest.raises(LookupTableError, match="returned int"):
        tables.lookup("x")


def test_mapping_keys_colliding_after_folding() -> None:
    with pytest.raises(LookupTableError, match="duplicate"):
        open_table({"A": "1", "a": "2"})


def test_fold_can_be_disabled() -> None:
    table = open_table("inline:{Key=v}", fold=False)
    assert table.lookup("Key") == "v"
    assert table.lookup("key") is None


def test_unicode_keys_are_casefolded() -> None:
    table = open_table({"STRASSE.example": "x", "ÉCOLE.example": "y"})
    assert table.lookup("straße.example") == "x"
    assert table.lookup("école.EXAMPLE") == "y"


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("mail.example.com", ("mail.example.com", ".example.com", ".com")),
        ("example.com", ("example.com", ".com")),
        ("localhost", ("localhost",)),
        ("[mail.example.com]:587", ("[mail.example.com]:587",)),
        ("192.0.2.1", ("192.0.2.1",)),
        ("bad..name", ("bad..name",)),
        ("-bad.example", ("-bad.example",)),
        ("bücher.example", ("bücher.example", ".example")),
    ],
)
def test_parent_keys(name: str, keys: tuple[str, ...]) -> None:
    """smtp_tls_policy.c tls_policy_lookup(): name, then .parent, .grandparent."""
    assert parent_keys(name) == keys


def test_lookup_with_parents_asks_all_tables_per_key() -> None:
    tables = TableList(["inline:{.example.com=parent-in-first}", "inline:{mx.example.com=exact}"])
    # Every table is asked for the full name before any is asked for .parent.
    assert tables.lookup_with_parents("mx.example.com") == "exact"
    assert tables.lookup_with_parents("other.example.com") == "parent-in-first"
    assert tables.lookup_with_parents("example.org") is None


def test_lookup_address_uses_canonical_form() -> None:
    tables = TableList([{"2001:db8::1": "v6", "192.0.2.1": "v4"}])
    assert tables.lookup_address("2001:0DB8:0:0:0:0:0:1") == "v6"
    assert tables.lookup_address("192.0.2.1") == "v4"
    from ipaddress import ip_address

    assert tables.lookup_address(ip_address("2001:db8::1")) == "v6"


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("example.com", True),
        ("a_b.example", True),
        ("x" * 63 + ".example", True),
        ("x" * 64 + ".example", False),
        ("1.2.3.4", False),
        ("123", False),
        ("a-.example", False),
        ("", False),
        ("trailing.", False),
        ("sp ace.example", False),
        ("münchen.example", True),
    ],
)
def test_valid_hostname(name: str, valid: bool) -> None:
    assert valid_hostname(name) is valid


def test_table_equality_and_text() -> None:
    spec = "inline:{a=b}, static:{x y}"
    assert TableList.parse(spec) == TableList.parse(spec)
    assert hash(TableList.parse(spec)) == hash(TableList.parse(spec))
    assert TableList.parse(spec).to_text() == "inline:{a=b}, static:{x y}"
    assert isinstance(TableList.parse(spec).tables[1], StaticTable)
    with pytest.raises(LookupTableError, match=r"no main\.cf text form"):
        TableList([{"a": "b"}]).to_text()
    assert all(isinstance(t, Table) for t in TableList.parse(spec))
