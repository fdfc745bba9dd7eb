"""Table-driven tests for pyfix_smtp.address (mailboxes, IDNA, xtext, uxtext)."""

from __future__ import annotations

import ipaddress

import pytest

from pyfix_smtp.address import (
    NULL_SENDER,
    Mailbox,
    decode_orcpt,
    encode_orcpt,
    is_ascii,
    is_dot_string,
    needs_smtputf8,
    parse_address_literal,
    quote_local_part,
    to_ascii_domain,
    to_unicode_domain,
    unitext_encode,
    uxtext_decode,
    uxtext_encode,
    xtext_decode,
    xtext_decode_bytes,
    xtext_encode,
)
from pyfix_smtp.errors import AddressError, PyfixError

# ---------------------------------------------------------------------------
# Mailbox.parse: accepted input
# (text, local_part, domain, str(), for_wire(smtputf8=False) or None if it must fail)
VALID = [
    ("user@example.com", "user", "example.com", "user@example.com", "<user@example.com>"),
    ("<user@example.com>", "user", "example.com", "user@example.com", "<user@example.com>"),
    ("first.last@example.com", "first.last", "example.com", None, "<first.last@example.com>"),
    ("a!#$%&'*+/=?^_`{|}~-z@x.org", "a!#$%&'*+/=?^_`{|}~-z", "x.org", None, None),
    ('"john doe"@example.com', "john doe", "example.com", None, '<"john doe"@example.com>'),
    ('"a\\"b"@x.org', 'a"b', "x.org", '"a\\"b"@x.org', '<"a\\"b"@x.org>'),
    ('"a\\\\b"@x.org', "a\\b", "x.org", '"a\\\\b"@x.org', None),
    # a quoted-pair of an ordinary character is just that character
    ('"a\\b"@x.org', "ab", "x.org", "ab@x.org", "<ab@x.org>"),
    # a Quoted-string that is a valid Dot-string is sent unquoted (Postfix does the same)
    ('"abc"@x.org', "abc", "x.org", "abc@x.org", "<abc@x.org>"),
    ('"a..b"@x.org', "a..b", "x.org", '"a..b"@x.org', None),
    ('".a"@x.org', ".a", "x.org", '".a"@x.org', None),
    ('"a."@x.org', "a.", "x.org", '"a."@x.org', None),
    ('"a@b"@x.org', "a@b", "x.org", '"a@b"@x.org', None),
    ('"(comment)"@x.org', "(comment)", "x.org", None, None),
    ('"<>[]:;,"@x.org', "<>[]:;,", "x.org", None, None),
    ('""@x.org', "", "x.org", '""@x.org', '<""@x.org>'),
    ("user@[192.0.2.1]", "user", "[192.0.2.1]", None, "<user@[192.0.2.1]>"),
    ("user@[IPv6:2001:db8::1]", "user", "[IPv6:2001:db8::1]", None, None),
    ("user@[ipv6:::1]", "user", "[ipv6:::1]", None, "<user@[ipv6:::1]>"),
    ("user@[IPv6:::ffff:192.0.2.1]", "user", "[IPv6:::ffff:192.0.2.1]", None, None),
    ("user@localhost", "user", "localhost", None, None),
    ("user@EXAMPLE.Com", "user", "EXAMPLE.Com", None, "<user@EXAMPLE.Com>"),
    ("user@mail_1.example", "user", "mail_1.example", None, None),
    ("user@a-b.c-d.example", "user", "a-b.c-d.example", None, None),
    ("user@1a.example", "user", "1a.example", None, None),
    ("user@123.example", "user", "123.example", None, None),
    ("user@xn--bcher-kva.example", "user", "xn--bcher-kva.example", None, None),
    ("user@bücher.example", "user", "bücher.example", None, "<user@xn--bcher-kva.example>"),
    ("user@Bücher.example", "user", "Bücher.example", None, "<user@xn--bcher-kva.example>"),
    ("user@faß.de", "user", "faß.de", None, "<user@xn--fa-hia.de>"),
    ("user@例え.テスト", "user", "例え.テスト", None, "<user@xn--r8jz45g.xn--zckzah>"),
    ("user@ＥＸ.com", "user", "ＥＸ.com", None, "<user@ex.com>"),
    ("user@bücher。example", "user", "bücher。example", None, "<user@xn--bcher-kva.example>"),
    ("josé@example.com", "josé", "example.com", None, None),
    ("δοκιμή@παράδειγμα.δοκιμή", "δοκιμή", "παράδειγμα.δοκιμή", None, None),
    ('"jo sé"@example.com', "jo sé", "example.com", None, None),
]


@pytest.mark.parametrize(("text", "local", "domain", "as_str", "wire"), VALID)
def test_parse_valid(
    text: str, local: str, domain: str, as_str: str | None, wire: str | None
) -> None:
    m = Mailbox.parse(text)
    assert (m.local_part, m.domain) == (local, domain)
    expected_str = as_str if as_str is not None else text.removeprefix("<").removesuffix(">")
    assert str(m) == expected_str
    assert m.for_wire(smtputf8=True) == f"<{expected_str}>"
    if wire is not None:
        assert m.for_wire() == wire
    if not m.needs_smtputf8:
        assert m.for_wire().isascii()
    assert Mailbox.parse(str(m)) == m


# (text, reason fragment, position)
INVALID = [
    ("", "null address not allowed", 0),
    ("<>", "null address not allowed", 0),
    ("user", "missing '@domain'", 4),
    ("<user>", "missing '@domain'", 5),
    ("user@", "empty domain", 5),
    ("@example.com", "empty local part", 0),
    ("<@example.com>", "empty local part", 1),
    ("<@a.example,@b.example:user@c.example>", "source route", 1),
    ("a..b@x.org", "'..'", 1),
    (".a@x.org", "starts with '.'", 0),
    ("a.@x.org", "ends with '.'", 1),
    ("john doe@x.org", "' '", 4),
    ('ab"c@x.org', "quote", 2),
    ("a(b)@x.org", "'('", 1),
    ("a,b@x.org", "','", 1),
    ("a[b@x.org", "'['", 1),
    ("a\\b@x.org", "'\\\\'", 1),
    ('"abc@x.org', "unterminated quoted string", 0),
    ('"abc\\"@x.org', "unterminated quoted string", 0),
    ('"abc"x@x.org', "'@' expected", 5),
    ('"a\\é"@x.org', "backslash", 2),
    ("<user@x.org", "unbalanced '<'", 0),
    ("<", "unbalanced '<'", 0),
    ("user@x.org>", "unbalanced '>'", 10),
    ("<<user@x.org>>", "'<'", 1),
    (" user@x.org", "' '", 0),
    ("user@x.org ", "' '", 10),
    ("user\r\n@x.org", "U+000D", 4),
    ("user@x.org\r\nRCPT TO:<evil@x>", "U+000D", 10),
    ("us\x00er@x.org", "U+0000", 2),
    ("us\x7fer@x.org", "U+007F", 2),
    ("us\x85er@x.org", "U+0085", 2),
    ('"us\ter"@x.org', "U+0009", 3),
    ("user@x..org", "empty label", 7),
    ("user@.x.org", "empty label", 5),
    ("user@x.org.", "empty label", 11),
    ("user@-x.org", "starts with '-'", 5),
    ("user@x-.org", "ends with '-'", 6),
    ("user@x!.org", "'!'", 6),
    ("user@x y.org", "' '", 6),
    ("user@a@b.org", "'@'", 6),
    ("user@" + "a" * 64 + ".org", "longer than 63", 5 + 63),
    ("user@1.2.3.4", "numeric domain", 5),
    ("user@123", "numeric domain", 5),
    ("user@xn--zz.example", "invalid A-label", 5),
    ("user@[192.0.2.1", "'['", 5),
    ("user@192.0.2.1]", "']'", 14),
    ("user@[1.2.3]", "malformed IPv4", 6),
    ("user@[010.0.0.1]", "malformed IPv4", 6),
    ("user@[256.0.0.1]", "malformed IPv4", 6),
    ("user@[2001:db8::1]", "unsupported address literal", 6),
    ("user@[IPv6:2001:db8::g]", "malformed IPv6", 11),
    ("user@[IPv6:1.2.3.4]", "malformed IPv6", 11),
    ("user@[IPv6:fe80::1%eth0]", "zone index", 18),
    ("user@[]", "malformed IPv4", 6),
    ("user@[x:y]", "unsupported address literal", 6),
    ("user@a\u200db.example", "invalid IDNA label", 5),
    ("user@\u0301a.example", "invalid IDNA label", 5),
    ("user@bücher..example", "empty label", 12),
]


@pytest.mark.parametrize(("text", "reason", "position"), INVALID)
def test_parse_invalid(text: str, reason: str, position: int) -> None:
    with pytest.raises(AddressError) as info:
        Mailbox.parse(text)
    err = info.value
    assert reason in err.reason
    assert err.position == position
    assert err.text == text
    assert isinstance(err, PyfixError)
    assert isinstance(err, ValueError)


def test_parse_null_and_postmaster_flags() -> None:
    assert Mailbox.parse("<>", allow_null=True) is NULL_SENDER
    assert Mailbox.parse("", allow_null=True) is NULL_SENDER
    assert Mailbox.null() is NULL_SENDER
    assert NULL_SENDER.is_null
    assert NULL_SENDER.for_wire() == "<>"
    assert NULL_SENDER.for_wire(smtputf8=True) == "<>"
    assert str(NULL_SENDER) == ""
    assert not NULL_SENDER.needs_smtputf8
    pm = Mailbox.parse("<Postmaster>", allow_postmaster=True)
    assert (pm.local_part, pm.domain, pm.for_wire(), pm.is_null) == (
        "Postmaster",
        "",
        "<Postmaster>",
        False,
    )
    with pytest.raises(AddressError, match="missing '@domain'"):
        Mailbox.parse("<admin>", allow_postmaster=True)
    assert Mailbox.parse("user@x.org", allow_null=True) == Mailbox("user", "x.org")


# ---------------------------------------------------------------------------
# Construction from values, Postfix internal form


def test_constructor_validates() -> None:
    assert Mailbox("john doe", "example.com").quoted_local == '"john doe"'
    with pytest.raises(AddressError, match=r"U\+000A"):
        Mailbox("a\nb", "example.com")
    with pytest.raises(AddressError, match="missing '@domain'"):
        Mailbox("user", "")
    with pytest.raises(AddressError, match="empty label"):
        Mailbox("user", "x..org")
    with pytest.raises(TypeError):
        Mailbox(b"user", "x.org")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("internal", "local", "domain", "wire"),
    [
        ("user@example.com", "user", "example.com", "<user@example.com>"),
        ("john doe@example.com", "john doe", "example.com", '<"john doe"@example.com>'),
        ("a@b@example.com", "a@b", "example.com", '<"a@b"@example.com>'),
        ('a"b@example.com', 'a"b', "example.com", '<"a\\"b"@example.com>'),
        ("postmaster", "postmaster", "", "<postmaster>"),
        ("", "", "", "<>"),
    ],
)
def test_from_unquoted(internal: str, local: str, domain: str, wire: str) -> None:
    m = Mailbox.from_unquoted(internal)
    assert (m.local_part, m.domain, m.for_wire()) == (local, domain, wire)
    assert m.unquoted == internal


def test_equality_and_hash_ignore_derived_fields() -> None:
    a = Mailbox.parse('"abc"@x.org')
    b = Mailbox("abc", "x.org", enforce_limits=False)
    assert a == b
    assert hash(a) == hash(b)
    assert Mailbox("a", "X.org") != Mailbox("a", "x.org")  # domain text as given
    assert len({a, b}) == 1


def test_frozen() -> None:
    m = Mailbox("a", "x.org")
    with pytest.raises(AttributeError):
        m.local_part = "b"  # type: ignore[misc]


# ---------------------------------------------------------------------------
# IDNA forms and SMTPUTF8


@pytest.mark.parametrize(
    ("text", "ascii_domain", "unicode_domain", "needs"),
    [
        ("a@example.com", "example.com", "example.com", False),
        ("a@bücher.example", "xn--bcher-kva.example", "bücher.example", False),
        ("a@xn--bcher-kva.example", "xn--bcher-kva.example", "bücher.example", False),
        ("a@XN--BCHER-KVA.example", "XN--BCHER-KVA.example", "bücher.example", False),
        ("a@BÜCHER.Example", "xn--bcher-kva.Example", "bücher.Example", False),
        ("ü@example.com", "example.com", "example.com", True),
        ("ü@bücher.example", "xn--bcher-kva.example", "bücher.example", True),
        ('"ü x"@example.com', "example.com", "example.com", True),
        ("a@[192.0.2.1]", "[192.0.2.1]", "[192.0.2.1]", False),
    ],
)
def test_domain_forms(text: str, ascii_domain: str, unicode_domain: str, needs: bool) -> None:
    m = Mailbox.parse(text)
    assert m.ascii_domain == ascii_domain
    assert m.unicode_domain == unicode_domain
    assert m.needs_smtputf8 is needs
    assert needs_smtputf8(m) is needs
    if needs:
        with pytest.raises(AddressError, match="requires SMTPUTF8"):
            m.for_wire(smtputf8=False)
    else:
        assert m.for_wire(smtputf8=False) == f"<{m.quoted_local}@{ascii_domain}>"
    assert m.for_wire(smtputf8=True) == f"<{m.quoted_local}@{m.domain}>"


def test_literal_attribute() -> None:
    assert Mailbox.parse("a@[192.0.2.1]").literal == ipaddress.IPv4Address("192.0.2.1")
    assert Mailbox.parse("a@[IPv6:2001:db8::1]").literal == ipaddress.IPv6Address("2001:db8::1")
    assert Mailbox.parse("a@example.com").literal is None


@pytest.mark.parametrize(
    ("domain", "ascii_form"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "Example.COM"),
        ("a_b.example", "a_b.example"),
        ("ab--cd.example", "ab--cd.example"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("BÜCHER.de", "xn--bcher-kva.de"),
        ("münchen.bücher.de", "xn--mnchen-3ya.xn--bcher-kva.de"),
        ("faß.de", "xn--fa-hia.de"),
        ("中国.cn", "xn--fiqs8s.cn"),
        ("ｅｘａｍｐｌｅ.com", "example.com"),
        ("bücher．de", "xn--bcher-kva.de"),
        ("bücher｡de", "xn--bcher-kva.de"),
        ("a" * 63 + ".example", "a" * 63 + ".example"),
        (".".join(["a" * 63] * 4)[:255], ".".join(["a" * 63] * 4)[:255]),
        ("localhost", "localhost"),
    ],
)
def test_to_ascii_domain(domain: str, ascii_form: str) -> None:
    assert to_ascii_domain(domain) == ascii_form
    assert to_ascii_domain(ascii_form) == ascii_form


@pytest.mark.parametrize(
    ("domain", "reason"),
    [
        ("", "empty domain"),
        ("a..b", "empty label"),
        ("a.", "empty label"),
        (".a", "empty label"),
        ("-a.b", "starts with '-'"),
        ("a-.b", "ends with '-'"),
        ("a b.c", "' '"),
        ("a" * 64 + ".b", "longer than 63"),
        (".".join(["a" * 50] * 5) + ".a", "longer than 255"),
        ("1.2.3.4", "numeric"),
        ("xn--zz.example", "invalid A-label"),
        ("xn--a.example", "invalid A-label"),
        ("bü\u200dcher.de", "invalid IDNA label"),
        ("bücher\r.de", "U+000D"),
        ("ü" * 60 + ".de", "too long"),
        ("⒈.com", "invalid international domain"),
    ],
)
def test_to_ascii_domain_rejects(domain: str, reason: str) -> None:
    with pytest.raises(AddressError) as info:
        to_ascii_domain(domain)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("domain", "unicode_form"),
    [
        ("xn--bcher-kva.de", "bücher.de"),
        ("bücher.de", "bücher.de"),
        ("Example.COM", "Example.COM"),
        ("xn--mnchen-3ya.xn--bcher-kva.de", "münchen.bücher.de"),
        ("xn--fiqs8s.cn", "中国.cn"),
    ],
)
def test_to_unicode_domain(domain: str, unicode_form: str) -> None:
    assert to_unicode_domain(domain) == unicode_form


def test_is_ascii() -> None:
    assert is_ascii("user@example.com")
    assert is_ascii("")
    assert not is_ascii("josé")


# ---------------------------------------------------------------------------
# Quoting, as Postfix quote_821_local()


@pytest.mark.parametrize(
    ("local", "quoted"),
    [
        ("user", "user"),
        ("first.last", "first.last"),
        ("a+tag", "a+tag"),
        ("o'brien", "o'brien"),
        ("josé", "josé"),
        ("john doe", '"john doe"'),
        ("", '""'),
        (".a", '".a"'),
        ("a.", '"a."'),
        ("a..b", '"a..b"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("a@b", '"a@b"'),
        ("a<b>", '"a<b>"'),
        ("a(b)", '"a(b)"'),
        ("a[b]", '"a[b]"'),
        ("a,b", '"a,b"'),
        ("a;b", '"a;b"'),
        ("a:b", '"a:b"'),
        ("jo sé", '"jo sé"'),
    ],
)
def test_quote_local_part(local: str, quoted: str) -> None:
    assert quote_local_part(local) == quoted
    assert is_dot_string(local) is (quoted == local)
    assert Mailbox(local, "x.org").quoted_local == quoted


def test_quote_local_part_rejects_controls() -> None:
    with pytest.raises(AddressError) as info:
        quote_local_part("ab\r\ncd")
    assert info.value.position == 2


@pytest.mark.parametrize(
    ("local", "quoted_wire", "unquoted_wire"),
    [
        ("user", "<user@x.org>", "<user@x.org>"),
        ("john doe", '<"john doe"@x.org>', "<john doe@x.org>"),
        ('a"b', '<"a\\"b"@x.org>', '<a"b@x.org>'),
    ],
)
def test_smtp_quote_rfc821_envelope(local: str, quoted_wire: str, unquoted_wire: str) -> None:
    m = Mailbox(local, "x.org")
    assert m.for_wire() == quoted_wire
    assert m.for_wire(quote=False) == unquoted_wire


# ---------------------------------------------------------------------------
# Size limits, RFC 5321 §4.5.3.1


def test_local_part_limit() -> None:
    assert Mailbox.parse("a" * 64 + "@x.org").within_limits
    with pytest.raises(AddressError, match="local part longer than 64 octets"):
        Mailbox.parse("a" * 65 + "@x.org")
    # the quoted form counts: 62 characters + 2 quotes = 64
    Mailbox.parse('"' + " " * 62 + '"@x.org')
    with pytest.raises(AddressError, match="local part longer than 64"):
        Mailbox(" " * 63, "x.org")
    # octets, not characters: 32 two-octet characters = 64 octets
    Mailbox("é" * 32, "x.org")
    with pytest.raises(AddressError, match="local part longer than 64"):
        Mailbox("é" * 33, "x.org")
    long = Mailbox.parse("a" * 100 + "@x.org", enforce_limits=False)
    assert not long.within_limits
    assert long.for_wire() == "<" + "a" * 100 + "@x.org>"


def test_path_limit() -> None:
    domain = ".".join(["b" * 63] * 3) + "." + "c" * 58  # 250 octets
    assert len(domain) == 250
    Mailbox("aaa", domain)  # "<" 3 "@" 250 ">" = 256
    with pytest.raises(AddressError, match="path longer than 256"):
        Mailbox("aaaa", domain)
    assert not Mailbox("aaaa", domain, enforce_limits=False).within_limits


def test_path_limit_counts_a_label_form() -> None:
    # "a中b文c字d" is 13 octets in UTF-8 but 20 as an A-label: the longer
    # A-label form (sent without SMTPUTF8) decides.
    domain = ".".join(["a中b文c字d"] * 10)
    assert len(to_ascii_domain(domain)) == 209
    assert len(domain.encode()) == 139
    Mailbox("a" * 44, domain)  # "<" 44 "@" 209 ">" = 256
    with pytest.raises(AddressError, match="path longer than 256"):
        Mailbox("a" * 45, domain)


def test_domain_limit_always_enforced() -> None:
    too_long = ".".join(["a" * 50] * 5) + ".a"
    with pytest.raises(AddressError, match="longer than 255"):
        Mailbox("a", too_long, enforce_limits=False)


# ---------------------------------------------------------------------------
# Address literals


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("[192.0.2.1]", "192.0.2.1"),
        ("[0.0.0.0]", "0.0.0.0"),
        ("[IPv6:2001:db8::1]", "2001:db8::1"),
        ("[ipv6:2001:DB8::1]", "2001:db8::1"),
        ("[IPV6:::1]", "::1"),
        ("[IPv6:::ffff:192.0.2.1]", "::ffff:192.0.2.1"),
        ("[IPv6:2001:db8:0:0:0:0:0:1]", "2001:db8::1"),
    ],
)
def test_parse_address_literal(text: str, address: str) -> None:
    assert parse_address_literal(text) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "text",
    ["192.0.2.1", "[192.0.2.1", "[1.2.3.4.5]", "[IPv6:1:2]", "[2001:db8::1]", "[x]", "[]"],
)
def test_parse_address_literal_rejects(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address_literal(text)


# ---------------------------------------------------------------------------
# xtext, RFC 3461 §4


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("", ""),
        ("user@example.com", "user@example.com"),
        ("a+b", "a+2Bb"),
        ("a=b", "a+3Db"),
        ("a b", "a+20b"),
        ("a\r\nb", "a+0D+0Ab"),
        ("~!", "~!"),
        ("\x7f", "+7F"),
        ("é", "+C3+A9"),
        ("rfc822;x+y@z", "rfc822;x+2By@z"),
        ("<QQ314159@host.example>", "<QQ314159@host.example>"),
    ],
)
def test_xtext(raw: str, encoded: str) -> None:
    assert xtext_encode(raw) == encoded
    assert xtext_encode(raw.encode()) == encoded
    assert xtext_decode(encoded) == raw


def test_xtext_bytes() -> None:
    assert xtext_encode(b"\x00\xff") == "+00+FF"
    assert xtext_decode_bytes("+00+ff+Ff") == b"\x00\xff\xff"


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("a+", 1, "two hex digits"),
        ("a+2", 1, "two hex digits"),
        ("a+2G", 1, "two hex digits"),
        ("+zz", 0, "two hex digits"),
        ("a b", 1, "' '"),
        ("a=b", 1, "'='"),
        ("ab\r", 2, "'\\r'"),
        ("é", 0, "'é'"),
    ],
)
def test_xtext_decode_rejects(text: str, position: int, reason: str) -> None:
    with pytest.raises(AddressError) as info:
        xtext_decode(text)
    assert info.value.position == position
    assert reason in info.value.reason


def test_xtext_decode_rejects_non_utf8() -> None:
    with pytest.raises(AddressError, match="not UTF-8"):
        xtext_decode("+FF")


# ---------------------------------------------------------------------------
# utf-8-addr-xtext / utf-8-addr-unitext, RFC 6533 §3


@pytest.mark.parametrize(
    ("raw", "xtext_form", "unitext_form"),
    [
        ("user@example.com", "user@example.com", "user@example.com"),
        ("josé@example.com", "jos\\x{E9}@example.com", "josé@example.com"),
        ("a+b=c", "a\\x{2B}b\\x{3D}c", "a\\x{2B}b\\x{3D}c"),
        ("a\\b", "a\\x{5C}b", "a\\x{5C}b"),
        ("a b", "a\\x{20}b", "a\\x{20}b"),
        ("\x01\x7f", "\\x{01}\\x{7F}", "\\x{01}\\x{7F}"),
        ("中", "\\x{4E2D}", "中"),
        ("\U0001f600", "\\x{1F600}", "\U0001f600"),
        ("\U0010ffff", "\\x{10FFFF}", "\U0010ffff"),
        ("\u0100", "\\x{100}", "\u0100"),
        ("\u0080", "\\x{80}", "\\x{80}"),
    ],
)
def test_uxtext(raw: str, xtext_form: str, unitext_form: str) -> None:
    assert uxtext_encode(raw) == xtext_form
    assert unitext_encode(raw) == unitext_form
    assert uxtext_decode(xtext_form) == raw
    assert uxtext_decode(unitext_form) == raw


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("\\x{41}", 0, "invalid escape"),  # 'A' must be written plainly
        ("a\\x{00E9}", 1, "invalid escape"),  # superfluous leading zeros
        ("\\x{0}", 0, "invalid escape"),  # NUL
        ("\\x{D800}", 0, "invalid escape"),  # surrogate
        ("\\x{110000}", 0, "invalid escape"),
        ("\\x{1234567}", 0, "must start"),
        ("\\x{E9", 0, "must start"),
        ("\\x{}", 0, "must start"),
        ("ab\\y", 2, "must start"),
        ("a b", 1, "' '"),
        ("a+b", 1, "'+'"),
        ("a=b", 1, "'='"),
        ("a\x85", 1, "control"),
    ],
)
def test_uxtext_decode_rejects(text: str, position: int, reason: str) -> None:
    with pytest.raises(AddressError) as info:
        uxtext_decode(text)
    assert info.value.position == position
    assert reason in info.value.reason


def test_uxtext_lowercase_hex_accepted() -> None:
    assert uxtext_decode("jos\\x{e9}") == "josé"


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
def test_uxtext_encode_rejects(bad: str) -> None:
    with pytest.raises(AddressError) as info:
        uxtext_encode(bad)
    assert info.value.position == 1
    with pytest.raises(AddressError):
        unitext_encode(bad)


# ---------------------------------------------------------------------------
# ORCPT


@pytest.mark.parametrize(
    ("address", "value"),
    [
        ("user@example.com", "rfc822;user@example.com"),
        ("a+b@example.com", "rfc822;a+2Bb@example.com"),
        ('"a b"@example.com', 'rfc822;"a+20b"@example.com'),
        ("josé@example.com", "utf-8;jos\\x{E9}@example.com"),
        ("user@bücher.de", "utf-8;user@b\\x{FC}cher.de"),
    ],
)
def test_orcpt(address: str, value: str) -> None:
    assert encode_orcpt(address) == value
    assert decode_orcpt(value) == (value.split(";")[0], address)


def test_orcpt_from_mailbox() -> None:
    assert encode_orcpt(Mailbox("john doe", "x.org")) == 'rfc822;"john+20doe"@x.org'


@pytest.mark.parametrize(
    ("value", "type_", "address"),
    [
        ("RFC822;a@b", "rfc822", "a@b"),
        ("UTF-8;jos\\x{E9}@b", "utf-8", "josé@b"),
        ("utf-8;josé@b", "utf-8", "josé@b"),
        ("x-private;a+3Db", "x-private", "a=b"),
    ],
)
def test_decode_orcpt(value: str, type_: str, address: str) -> None:
    assert decode_orcpt(value) == (type_, address)


@pytest.mark.parametrize(
    ("value", "position"),
    [
        ("a@b", None),
        (";a@b", 0),
        ("rfc 822;a@b", 0),
        ("rfc822;", 7),
        ("rfc822;a+zz", 8),
        ("utf-8;a\\x{41}", 7),
    ],
)
def test_decode_orcpt_rejects(value: str, position: int | None) -> None:
    with pytest.raises(AddressError) as info:
        decode_orcpt(value)
    assert info.value.position == position
    assert info.value.text == value


def test_encode_orcpt_rejects_empty() -> None:
    with pytest.raises(AddressError):
        encode_orcpt("")
