"""smtp_generic_maps: lookup order, extensions, results, envelope and header rewriting.

Rules from Postfix 3.11 ``global/mail_addr_find.c`` (``mail_addr_find_opt()``),
``mail_addr_map.c``, ``mail_addr_crunch.c``, ``strip_addr.c``,
``split_addr.c``, ``smtp/smtp_map11.c`` and ``smtp_proto.c``
(``smtp_header_rewrite()``), and the tok822 parser/printer
(``global/tok822_parse.c``). Postfix 3.7's own output for the same tables is
in ``test_header_checks_postfix.py``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyfix_smtp.address import Mailbox
from pyfix_smtp.address_rewrite import GenericMaps, tokens
from pyfix_smtp.config import Config
from pyfix_smtp.errors import ConfigError, LookupTableError
from pyfix_smtp.maps import Table, TableList
from pyfix_smtp.protocol.envelope import Envelope, Notify, OriginalRecipient, Recipient
from pyfix_smtp.protocol.header_checks import ContentChecks
from tests.test_header_checks import run

DATA = Path(__file__).parent / "data" / "checks"


class Asked(Table):
    """A table that answers nothing and records the keys it was asked."""

    __slots__ = ("fixed", "keys", "ref")

    def __init__(self, *, fixed: bool) -> None:
        self.fixed = fixed
        self.ref = f"python:asked-{fixed}"
        self.keys: list[str] = []

    def lookup(self, key: str) -> str | None:
        self.keys.append(key)
        return None


def _maps(*tables: Table | dict[str, str] | str, **options: object) -> GenericMaps:
    defaults: dict[str, object] = {
        "recipient_delimiter": "+",
        "myorigin": "local.test",
        "local_domains": frozenset({"other-local.test"}),
    }
    defaults.update(options)
    return GenericMaps(TableList(tables), **defaults)  # type: ignore[arg-type]


# (address, delimiter, keys asked of a fixed-key table)
LOOKUP_ORDER = [
    (
        "user+ext@local.test",
        "+",
        ["user+ext@local.test", "user@local.test", "user+ext", "user", "@local.test"],
    ),
    ("user+ext@remote.test", "+", ["user+ext@remote.test", "user@remote.test", "@remote.test"]),
    ("user@local.test", "+", ["user@local.test", "user", "@local.test"]),
    ("user+ext@local.test", "", ["user+ext@local.test", "user+ext", "@local.test"]),
    ("user+ext@Other-Local.test", "+", ["user+ext@Other-Local.test", "user@Other-Local.test",
                                        "user+ext", "user", "@Other-Local.test"]),
    ("user@local.test.", "+", ["user@local.test.", "user", "@local.test."]),
    ("a-b+c@remote.test", "+-", ["a-b+c@remote.test", "a@remote.test", "@remote.test"]),
    ("postmaster+x@remote.test", "+", ["postmaster+x@remote.test", "postmaster@remote.test",
                                       "@remote.test"]),
    ("MAILER-DAEMON@remote.test", "-", ["MAILER-DAEMON@remote.test", "@remote.test"]),
    ("double-bounce@remote.test", "-", ["double-bounce@remote.test", "@remote.test"]),
    ("a-b@remote.test", "-", ["a-b@remote.test", "a@remote.test", "@remote.test"]),
    ("owner-list@remote.test", "-", ["owner-list@remote.test", "@remote.test"]),
    ("list-request@remote.test", "-", ["list-request@remote.test", "@remote.test"]),
    ("list-request@remote.test", "+", ["list-request@remote.test", "@remote.test"]),
    ("+ext@remote.test", "+", ["+ext@remote.test", "@remote.test"]),
    ("john doe@remote.test", "+", ['"john doe"@remote.test', "@remote.test"]),
    ("a.b.@local.test", "+", ['"a.b."@local.test', '"a.b."', "@local.test"]),
    ("postmaster", "+", ["postmaster"]),
    ("u@[192.0.2.1]", "+", ["u@[192.0.2.1]", "u", "@[192.0.2.1]"]),
    ("u@[IPv6:2001:db8::1]", "+", ["u@[IPv6:2001:db8::1]", "u", "@[IPv6:2001:db8::1]"]),
    ("u@[192.0.2.9]", "+", ["u@[192.0.2.9]", "@[192.0.2.9]"]),
]  # fmt: skip


@pytest.mark.parametrize(("address", "delimiter", "keys"), LOOKUP_ORDER)
def test_lookup_order_of_a_fixed_table(address: str, delimiter: str, keys: list[str]) -> None:
    table = Asked(fixed=True)
    local = frozenset({ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("2001:db8::1")})
    maps = _maps(table, recipient_delimiter=delimiter, local_addresses=local)
    assert maps.map_address(address) is None
    assert table.keys == keys


def test_owner_request_special_off_splits_owner_addresses() -> None:
    table = Asked(fixed=True)
    maps = _maps(table, recipient_delimiter="-", owner_request_special=False)
    assert maps.map_address("owner-list@remote.test") is None
    assert table.keys == ["owner-list@remote.test", "owner@remote.test", "@remote.test"]


def test_pattern_tables_only_see_the_whole_address() -> None:
    pattern, fixed = Asked(fixed=False), Asked(fixed=True)
    assert _maps(pattern, fixed).map_address("user+ext@local.test") is None
    assert pattern.keys == ["user+ext@local.test"]
    # Each key goes to every table before the next key is tried.
    assert fixed.keys == [
        "user+ext@local.test",
        "user@local.test",
        "user+ext",
        "user",
        "@local.test",
    ]


def test_each_key_is_offered_to_every_table_first() -> None:
    first = {"@local.test": "first-domain@example.com"}
    second = {"user@local.test": "second-user@example.com"}
    assert _maps(first, second).map_address("user@local.test").address == (  # type: ignore[union-attr]
        "second-user@example.com"
    )


# (table, address, propagate, result)
RESULTS = [
    ({"user@remote.test": "new@example.com"}, "user@remote.test", False, "new@example.com"),
    ({"user@remote.test": "new@example.com"}, "user+x@remote.test", False, "new@example.com"),
    ({"user@remote.test": "new@example.com"}, "user+x@remote.test", True, "new+x@example.com"),
    ({"user+x@remote.test": "new@example.com"}, "user+x@remote.test", True, "new@example.com"),
    ({"user": "new@example.com"}, "user+x@local.test", True, "new+x@example.com"),
    ({"user+x": "new@example.com"}, "user+x@local.test", True, "new@example.com"),
    ({"@remote.test": "@new.test"}, "user+x@remote.test", True, "user+x@new.test"),
    ({"@remote.test": "@new.test"}, "user+x@remote.test", False, "user+x@new.test"),
    ({"user@remote.test": "@new.test"}, "user+x@remote.test", False, "user@new.test"),
    ({"user@remote.test": "@new.test"}, "user+x@remote.test", True, "user+x@new.test"),
    ({"user@remote.test": "dave"}, "user@remote.test", False, "dave@local.test"),
    ({"user@remote.test": "dave"}, "user+x@remote.test", True, "dave+x@local.test"),
    ({"user@remote.test": '"john doe"@x.test'}, "user@remote.test", False, "john doe@x.test"),
    ({"john doe@remote.test": "jd@example.com"}, "john doe@remote.test", False, None),
    ({'"john doe"@remote.test': "jd@example.com"}, "john doe@remote.test", False, "jd@example.com"),
    ({"user@remote.test": "Name <n@example.com>"}, "user@remote.test", False, "n@example.com"),
    ({"user@remote.test": "n@example.com."}, "user@remote.test", False, "n@example.com"),
    ({"user@remote.test": "n@example.com.."}, "user@remote.test", False, "n@example.com.."),
    ({"user@remote.test": '"n."@x.test'}, "user@remote.test", False, "n.@x.test"),
    ({"user@remote.test": "n."}, "user@remote.test", False, "n.@local.test"),
    ({"user@remote.test": "<@a.test:n@example.com>"}, "user@remote.test", False, "n@example.com"),
    # A result that starts with "@" is "@otherdomain", even with a route after it.
    ({"user@remote.test": "@a.test:n@x.test"}, "user@remote.test", False, "user@a.test:n@x.test"),
    ({"USER@REMOTE.TEST": "n@example.com"}, "User@Remote.Test", False, "n@example.com"),
]  # fmt: skip


@pytest.mark.parametrize(("table", "address", "propagate", "result"), RESULTS)
def test_results(table: dict[str, str], address: str, propagate: bool, result: str | None) -> None:
    mapping = _maps(table, propagate_extensions=propagate).map_address(address)
    assert (mapping and mapping.address) == result


def test_multi_valued_result_uses_the_first_and_warns() -> None:
    mapping = _maps({"carol@local.test": "c1@example.com, c2@example.com"}).map_address(
        "carol@local.test"
    )
    assert mapping is not None
    assert mapping.address == "c1@example.com"
    assert mapping.results == ("c1@example.com", "c2@example.com")
    assert mapping.warning == "multi-valued smtp_generic_maps result for carol@local.test"


@pytest.mark.parametrize("result", ["(just a comment)", ","])
def test_non_address_result_is_a_lookup_error(result: str) -> None:
    with pytest.raises(LookupTableError, match="returns non-address result"):
        _maps({"a@remote.test": result}).map_address("a@remote.test")


def test_empty_address_is_never_looked_up() -> None:
    table = Asked(fixed=True)
    assert _maps(table).map_address("") is None
    assert table.keys == []


def test_real_table_files() -> None:
    maps = GenericMaps(
        TableList.parse(f"texthash:{DATA / 'generic.texthash'}, regexp:{DATA / 'generic.regexp'}"),
        recipient_delimiter="+",
        myorigin="pyfix.test",
    )
    found = {
        a: maps.map_address(a) for a in ("alice+x@pyfix.test", "frank@pyfix.test", "z@old.test")
    }
    assert {a: m.address for a, m in found.items() if m} == {
        "alice+x@pyfix.test": "alice.smith@example.com",
        "frank@pyfix.test": "frank.real@example.com",
        # The whole address goes to every table before "@old.test" is tried.
        "z@old.test": "z@regexp.test",
    }


# -- envelope ---------------------------------------------------------------------


def test_envelope_sender_and_recipients_are_rewritten_orcpt_is_not() -> None:
    maps = _maps({"a@local.test": "a@example.com", "b@local.test": "b@example.com"})
    envelope = Envelope(
        "a+tag@local.test",
        [
            Recipient("b@local.test", orcpt="b@local.test", notify=Notify.FAILURE),
            Recipient("c@remote.test"),
        ],
        envid="id1",
    )
    rewritten, mappings = maps.rewrite_envelope(envelope)
    assert str(rewritten.sender) == "a@example.com"
    assert [str(r.address) for r in rewritten.recipients] == ["b@example.com", "c@remote.test"]
    assert rewritten.recipients[0].orcpt == OriginalRecipient("rfc822", "b@local.test")
    assert rewritten.recipients[0].notify == Notify.FAILURE
    assert rewritten.recipients[1] is envelope.recipients[1]
    assert rewritten.envid == "id1"
    assert [m.original for m in mappings] == ["a+tag@local.test", "b@local.test"]


def test_null_sender_and_unmatched_envelope_stay_as_they_are() -> None:
    table = Asked(fixed=True)
    envelope = Envelope("<>", ["x@remote.test"])
    rewritten, mappings = _maps(table).rewrite_envelope(envelope)
    assert rewritten is envelope
    assert mappings == ()
    assert table.keys == ["x@remote.test", "@remote.test"]  # the null sender was not asked


def test_quoted_local_part_result_on_the_wire() -> None:
    new, mapping = _maps({"q@local.test": '"john doe"@example.com'}).rewrite_mailbox(
        Mailbox.parse("q@local.test")
    )
    assert mapping is not None
    assert new.for_wire() == '<"john doe"@example.com>'


def test_result_that_is_no_envelope_address_is_a_lookup_error() -> None:
    maps = _maps({"a@remote.test": "dave"}, myorigin="")
    with pytest.raises(LookupTableError, match="not a valid address"):
        maps.rewrite_mailbox(Mailbox.parse("a@remote.test"))


# -- configuration ----------------------------------------------------------------


def test_from_config() -> None:
    path = DATA / "generic.texthash"
    cfg = Config(
        smtp_generic_maps=f"texthash:{path}",
        propagate_unmatched_extensions="canonical, generic",
        myhostname="mx.example.org",
        mydomain="example.org",
        inet_interfaces="127.0.0.1, loopback-only, all",
        proxy_interfaces="192.0.2.7",
    )
    maps = GenericMaps.from_config(cfg, recipient_delimiter="+")
    assert maps is not None
    assert maps.parameter == "smtp_generic_maps"
    assert maps.tables.refs == (f"texthash:{path}",)
    assert maps.propagate_extensions
    assert maps.myorigin == "mx.example.org"
    assert maps.is_local("MX.example.org")
    assert maps.is_local("localhost.example.org")
    assert maps.is_local("localhost")
    assert not maps.is_local("example.org")
    assert maps.is_local("[192.0.2.7]")
    assert maps.is_local("[IPv6:::1]")
    assert not maps.is_local("[192.0.2.8]")
    assert not GenericMaps.from_config(
        cfg.replace(propagate_unmatched_extensions="canonical")
    ).propagate_extensions  # type: ignore[union-attr]


def test_from_config_lmtp_and_explicit_names() -> None:
    cfg = Config(protocol="lmtp", lmtp_generic_maps="inline:{ a@b.test=c@d.test }")
    maps = GenericMaps.from_config(cfg, myorigin="origin.test", mydestination=["dest.test"])
    assert maps is not None
    assert maps.parameter == "lmtp_generic_maps"
    assert maps.is_local("origin.test")
    assert maps.is_local("dest.test")
    assert not maps.is_local(cfg.myhostname)
    assert maps.recipient_delimiter == ""


@dataclass(frozen=True)
class FutureConfig:
    """A Config that also has the parameters the lead is to add (see the report)."""

    protocol: str = "smtp"
    smtp_generic_maps: TableList = field(
        default_factory=lambda: TableList([{"a@b.test": "c@d.test"}])
    )
    smtp_header_checks: TableList = field(default_factory=TableList)
    smtp_mime_header_checks: TableList = field(default_factory=TableList)
    smtp_nested_header_checks: TableList = field(default_factory=TableList)
    smtp_body_checks: TableList = field(default_factory=lambda: TableList([lambda key: None]))
    propagate_unmatched_extensions: tuple[str, ...] = ("canonical", "virtual")
    myhostname: str = "host.test"
    mydomain: str = "test"
    inet_interfaces: tuple[str, ...] = ("all",)
    proxy_interfaces: tuple[str, ...] = ()
    recipient_delimiter: str = "+-"
    myorigin: str = "origin.test"
    mydestination: tuple[str, ...] = ("dest.test", "hash:/etc/postfix/dest")
    owner_request_special: bool = False
    double_bounce_sender: str = "bounces"
    line_length_limit: int = 1000


def test_from_config_reads_parameters_config_may_gain() -> None:
    cfg = FutureConfig()
    maps = GenericMaps.from_config(cfg)
    assert maps is not None
    assert maps.recipient_delimiter == "+-"
    assert maps.myorigin == "origin.test"
    assert maps.local_domains == frozenset({"dest.test"})  # tables are not looked into
    assert not maps.is_local("host.test")
    assert maps.owner_request_special is False
    assert maps.double_bounce_sender == "bounces"
    checks = ContentChecks.from_config(cfg, generic=maps)
    assert checks is not None
    assert checks.body_piece == 1000
    assert checks.generic is maps


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"recipient_delimiter": "@"}, "recipient_delimiter"),
        ({"recipient_delimiter": 1}, "recipient_delimiter"),
        ({"myorigin": None}, "myorigin"),
    ],
)
def test_bad_options(options: dict[str, object], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        GenericMaps(TableList(), **options)  # type: ignore[arg-type]
    assert info.value.parameter == parameter


def test_tables_must_be_a_table_list() -> None:
    with pytest.raises(ConfigError):
        GenericMaps({"a": "b"})  # type: ignore[arg-type]


# -- header rewriting -------------------------------------------------------------

MAPS = _maps(
    {
        "alice@local.test": "alice.smith@example.com",
        "bob@local.test": "bob@example.com",
        "same@local.test": "same@local.test",
        "@old.test": "@new.test",
        "q@local.test": '"quoted name"@example.com',
    }
)

# (header, rewritten header or None when nothing matched)
HEADERS = [
    ("From: alice@local.test", "From: alice.smith@example.com"),
    ("From: Alice <alice@local.test>", "From: Alice <alice.smith@example.com>"),
    ('From: "Alice A." <alice@local.test>', 'From: "Alice A." <alice.smith@example.com>'),
    ("From: alice@local.test (Alice)", "From: alice.smith@example.com (Alice)"),
    ("From: (Alice) alice@local.test", "From: alice.smith@example.com (Alice)"),
    ("FROM:alice@local.test", "FROM: alice.smith@example.com"),
    ("From :  alice@local.test", "From: alice.smith@example.com"),
    ("To: nobody@remote.test", None),
    ("To: same@local.test  ,  x@remote.test", "To: same@local.test, x@remote.test"),
    ("To: g:alice@local.test,bob@local.test;", "To: g: alice.smith@example.com, bob@example.com;"),
    ("To: undisclosed:;, alice@local.test", "To: undisclosed: ;, alice.smith@example.com"),
    ("To: alice@local.test bob@local.test", "To: alice.smith@example.com, bob@example.com"),
    # The route stays part of the keys (cleanup(8) removed routes before Postfix's smtp(8)).
    ("Cc: <@relay.test:alice@local.test>", None),
    # "@new.test" keeps the user part, route included; canonical form drops the route.
    ("Cc: <@relay.test:x@old.test>", "Cc: <x@new.test>"),
    ("Cc: q@local.test", 'Cc: "quoted name"@example.com'),
    ("Cc: x@old.test, <>", "Cc: x@new.test, <>"),
    (
        "To: alice@local.test, bob@local.test, alice@local.test, bob@local.test, x@old.test",
        "To: alice.smith@example.com, bob@example.com,\n\talice.smith@example.com, bob@example.com,"
        " x@new.test",
    ),
    ("To: alice@local.test,\n  bob@local.test", "To: alice.smith@example.com, bob@example.com"),
    # A comment keeps its line break, which the joining then turns into a space.
    ("To: (multi\n line) alice@local.test", "To: alice.smith@example.com (multi  line)"),
]  # fmt: skip


@pytest.mark.parametrize(("header", "rewritten"), HEADERS)
def test_header_rewriting(header: str, rewritten: str | None) -> None:
    result = MAPS.rewrite_header(header)
    assert (result and result.text) == rewritten


def test_too_much_text_around_an_address_is_cut_to_the_address() -> None:
    """tok822_externalize(): more than 250 octets of comments/phrase per address."""
    header = "To: " + '"' + "n" * 300 + '" <alice@local.test>, bob@local.test'
    result = MAPS.rewrite_header(header)
    assert result is not None
    assert result.text == "To: <alice.smith@example.com>, bob@example.com"
    assert result.stripped == ('"' + "n" * 300 + '" <alice.smith@example.com>',)


@pytest.mark.parametrize(
    "name", ["From", "to", "Reply-To", "Resent-Sender", "Return-Path", "Errors-To"]
)
def test_address_headers(name: str) -> None:
    assert GenericMaps.is_address_header(name)


@pytest.mark.parametrize(
    "name", ["Subject", "X-Original-To", "Delivered-To", "Message-Id", "Received"]
)
def test_not_address_headers(name: str) -> None:
    assert not GenericMaps.is_address_header(name)


def test_only_primary_address_headers_in_the_content() -> None:
    message = (
        b"From: alice@local.test\nX-From: alice@local.test\nContent-Type: message/rfc822\n\n"
        b"From: alice@local.test\n\nbody alice@local.test\n"
    )
    out, notes = run(message, ContentChecks(generic=MAPS))
    assert out == message.replace(
        b"From: alice@local.test\nX-", b"From: alice.smith@example.com\nX-", 1
    )
    assert notes == []


def test_header_replaced_by_checks_is_rewritten_by_its_new_name() -> None:
    checks = ContentChecks(
        header_checks=TableList(["regexp:{ {/^X-Sender:(.*)/ REPLACE Sender:$1} }"]), generic=MAPS
    )
    out, _ = run(b"X-Sender: bob@local.test\n\nb\n", checks)
    assert out == b"Sender: bob@example.com\n\nb\n"


def test_multi_valued_warning_is_a_note() -> None:
    maps = _maps({"c@local.test": "c1@example.com, c2@example.com"})
    _, notes = run(b"To: c@local.test\n\nb\n", ContentChecks(generic=maps))
    assert [(n.severity, n.message) for n in notes] == [
        ("warning", "multi-valued smtp_generic_maps result for c@local.test")
    ]


# -- tokens -----------------------------------------------------------------------

# (header value, printed on one line, internal forms of the addresses)
TOKENS = [
    ("a@b", "a@b", ["a@b"]),
    ("  Name  <a@b>  ", "Name <a@b>", ["a@b"]),
    ("a b c", "a, b, c", ["a", "b", "c"]),
    ('"x y"@b', '"x y"@b', ["x y@b"]),
    ('"a\\"q" <a@b>', '"a\\"q" <a@b>', ["a@b"]),
    ("a\\ b@c", '"a b"@c', ["a b@c"]),
    ("x@[1.2.3.4]", "x@[1.2.3.4]", ["x@[1.2.3.4]"]),
    ("g: a@b, c@d;", "g: a@b, c@d;", ["a@b", "c@d"]),
    ("<>", "<>", []),
    ("a@b (c (nested) d)", "a@b (c (nested) d)", ["a@b"]),
    ("(c) a@b", "a@b (c)", ["a@b"]),
    ("<a@b (in)>", "<a@b (in)>", ["a@b"]),
    ("x <a@b> y", "x <a@b>, y", ["a@b", "y"]),
    ("a.b.@c", '"a.b."@c', ["a.b.@c"]),
    ("", "", []),
    ("(only)", "(only)", []),
]  # fmt: skip


@pytest.mark.parametrize(("value", "printed", "internal"), TOKENS)
def test_parse_and_print(value: str, printed: str, internal: list[str]) -> None:
    tree = tokens.parse(value)
    assert tokens.externalize(tree).text == printed
    assert [tokens.internalize(a.children) for a in tokens.addresses(tree)] == internal


@pytest.mark.parametrize(
    ("internal", "external"),
    [
        ("a@b", "a@b"),
        ("a b@c", '"a b"@c'),
        ('a"b@c', '"a\\"b"@c'),
        ("a\\b@c", '"a\\\\b"@c'),
        ("@r1,@r2:a b@c", '@r1,@r2:"a b"@c'),
        ("", '""'),
        ("é@c", "é@c"),
        (".a@c", '".a"@c'),
        ("a..b@c", '"a..b"@c'),
    ],
)
def test_quote_local(internal: str, external: str) -> None:
    assert tokens.quote_local(internal) == external
    assert tokens.unquote_local(external) == internal or internal == ""


_LOCAL = st.text(
    st.characters(min_codepoint=1, max_codepoint=0x2FF, exclude_characters="\r"), max_size=20
)
_DOMAIN = st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9]{1,8}){0,2}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(local=_LOCAL, domain=_DOMAIN)
def test_quote_round_trip(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    assert tokens.unquote_local(tokens.quote_local(address)) == address


_ATOM = st.from_regex(r"[a-z][a-z0-9.-]{0,8}[a-z0-9]", fullmatch=True).filter(
    lambda s: ".." not in s
)


@settings(max_examples=200, deadline=None)
@given(
    entries=st.lists(
        st.tuples(
            st.none() | st.from_regex(r"[A-Za-z]{1,8}( [A-Za-z]{1,8})?", fullmatch=True),
            _ATOM,
            _DOMAIN,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_address_lists_parse_back_to_their_addresses(
    entries: list[tuple[str | None, str, str]],
) -> None:
    value = ", ".join(
        f"{name} <{local}@{domain}>" if name else f"{local}@{domain}"
        for name, local, domain in entries
    )
    tree = tokens.parse(value)
    assert [tokens.internalize(a.children) for a in tokens.addresses(tree)] == [
        f"{local}@{domain}" for _, local, domain in entries
    ]
    assert tokens.externalize(tree).text == value
