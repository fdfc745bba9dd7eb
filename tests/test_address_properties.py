"""Hypothesis round-trip properties for pyfix_smtp.address."""

from __future__ import annotations

import re
from collections.abc import Callable

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pyfix_smtp.address import (
    Mailbox,
    decode_orcpt,
    encode_orcpt,
    is_dot_string,
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
from pyfix_smtp.errors import AddressError

# Per-test settings (a loaded profile would change other modules' tests too).
moderate = settings(max_examples=150, deadline=None)

# Local parts: any printable ASCII (quotable), plus some UTF-8 letters.
local_chars = st.sampled_from([chr(c) for c in range(0x20, 0x7F)] + list("éüßжδ中文😀"))
local_parts = st.text(local_chars, min_size=0, max_size=30)
ascii_local_parts = st.text(st.sampled_from([chr(c) for c in range(0x20, 0x7F)]), max_size=30)

ldh_label = st.from_regex(r"[a-z0-9](?:[a-z0-9_-]{0,10}[a-z0-9])?", fullmatch=True)
idn_label = st.text(st.sampled_from(list("abcäöüéñ")), min_size=1, max_size=8)
cjk_label = st.text(st.sampled_from(list("中文字母表例")), min_size=1, max_size=4)
labels = st.one_of(ldh_label, idn_label, cjk_label)
domains = st.lists(labels, min_size=1, max_size=4).map(".".join)
literals = st.one_of(
    st.ip_addresses(v=4).map(lambda a: f"[{a}]"),
    st.ip_addresses(v=6).map(lambda a: f"[IPv6:{a}]"),
)


def _mailbox(local: str, domain: str) -> Mailbox:
    try:
        return Mailbox(local, domain)
    except AddressError:
        assume(False)
        raise


mailboxes = st.builds(_mailbox, local_parts, st.one_of(domains, literals))

XCHAR_OR_HEX = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*")
QCHAR_OR_ESCAPE = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x5b\x5d-\x7e]|\\x\{[0-9A-F]{2,6}\})*")


@moderate
@given(mailboxes)
def test_mailbox_str_parse_round_trip(m: Mailbox) -> None:
    assert Mailbox.parse(str(m)) == m
    assert Mailbox.parse(m.for_wire(smtputf8=True)) == m


@moderate
@given(mailboxes)
def test_mailbox_wire_without_smtputf8(m: Mailbox) -> None:
    if m.needs_smtputf8:
        assert not m.local_part.isascii()
        return
    wire = m.for_wire(smtputf8=False)
    assert wire.isascii()
    back = Mailbox.parse(wire)
    assert back.local_part == m.local_part
    assert back.domain == m.ascii_domain
    if m.literal is None:
        assert to_ascii_domain(back.domain) == m.ascii_domain
    else:
        assert back.literal == m.literal


@moderate
@given(mailboxes)
def test_mailbox_unquoted_round_trip(m: Mailbox) -> None:
    assert Mailbox.from_unquoted(m.unquoted) == m


@moderate
@given(local_parts)
def test_quote_then_parse_local_part(local: str) -> None:
    quoted = quote_local_part(local)
    assert is_dot_string(local) is (quoted == local)
    m = Mailbox.parse(f"{quoted}@example.com", enforce_limits=False)
    assert m.local_part == local
    assert m.quoted_local == quoted


@moderate
@given(ascii_local_parts)
def test_quoted_local_part_is_ascii_for_ascii_input(local: str) -> None:
    assert quote_local_part(local).isascii()


@moderate
@given(domains)
def test_idna_forms_are_consistent(domain: str) -> None:
    try:
        ascii_form = to_ascii_domain(domain)
    except AddressError:
        assume(False)
        return
    assert ascii_form.isascii()
    assert to_ascii_domain(ascii_form) == ascii_form
    unicode_form = to_unicode_domain(domain)
    assert to_ascii_domain(unicode_form) == ascii_form
    assert to_unicode_domain(ascii_form) == unicode_form


@moderate
@given(st.binary(max_size=60))
def test_xtext_bytes_round_trip(data: bytes) -> None:
    encoded = xtext_encode(data)
    assert XCHAR_OR_HEX.fullmatch(encoded)
    assert xtext_decode_bytes(encoded) == data


@moderate
@given(st.text(max_size=40))
def test_xtext_text_round_trip(text: str) -> None:
    assume(not re.search("[\ud800-\udfff]", text))
    assert xtext_decode(xtext_encode(text)) == text


@moderate
@given(st.binary(max_size=40))
def test_xtext_canonical_encoding_is_stable(data: bytes) -> None:
    encoded = xtext_encode(data)
    assert xtext_encode(xtext_decode_bytes(encoded)) == encoded


@moderate
@given(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40))
def test_uxtext_round_trip(text: str) -> None:
    encoded = uxtext_encode(text)
    assert encoded.isascii()
    assert QCHAR_OR_ESCAPE.fullmatch(encoded)
    assert uxtext_decode(encoded) == text
    uni = unitext_encode(text)
    assert uxtext_decode(uni) == text
    assert not re.search(r"[\x00-\x20+=\x7f-\x9f]", uni)
    assert uxtext_encode(uxtext_decode(encoded)) == encoded


@moderate
@given(mailboxes)
def test_orcpt_round_trip(m: Mailbox) -> None:
    value = encode_orcpt(m)
    assert value.isascii()
    addr_type, address = decode_orcpt(value)
    assert address == str(m)
    assert addr_type == ("rfc822" if str(m).isascii() else "utf-8")


@moderate
@given(st.text(max_size=20))
def test_parse_never_raises_anything_but_address_error(text: str) -> None:
    position = _error_position(lambda: Mailbox.parse(text, allow_null=True, allow_postmaster=True))
    assert position is None or 0 <= position <= len(text)


@moderate
@given(st.text(max_size=20))
def test_decoders_fail_cleanly(text: str) -> None:
    for decoder in (xtext_decode, uxtext_decode, decode_orcpt):
        position = _error_position(lambda: decoder(text))  # noqa: B023
        assert position is None or 0 <= position <= len(text)


def _error_position(call: Callable[[], object]) -> int | None:
    """Run *call*; return the AddressError position (None when it succeeds)."""
    try:
        call()
    except AddressError as exc:
        return exc.position
    return None
