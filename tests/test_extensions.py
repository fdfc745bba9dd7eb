"""EHLO keyword parsing (Postfix smtp_helo()) and the discard list."""

from __future__ import annotations

import pytest

from pyfix_smtp.protocol.extensions import (
    EhloDiscard,
    Extensions,
    greeting_announces_esmtp,
    is_pix_greeting,
    parse_ehlo,
)
from pyfix_smtp.protocol.replies import ReplyParser
from pyfix_smtp.status import Reply


def reply(wire: bytes) -> Reply:
    parser = ReplyParser()
    parser.feed(wire)
    result = parser.next_reply()
    assert result is not None
    return result


POSTFIX_EHLO = (
    b"250-mx.example.net\r\n"
    b"250-PIPELINING\r\n"
    b"250-SIZE 10240000\r\n"
    b"250-VRFY\r\n"
    b"250-ETRN\r\n"
    b"250-STARTTLS\r\n"
    b"250-AUTH PLAIN LOGIN\r\n"
    b"250-AUTH=PLAIN LOGIN\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n"
    b"250-8BITMIME\r\n"
    b"250-DSN\r\n"
    b"250-SMTPUTF8\r\n"
    b"250-CHUNKING\r\n"
    b"250-REQUIRETLS\r\n"
    b"250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT\r\n"
    b"250 LIMITS RCPTMAX=100 MAILMAX=5 RCPTDOMAINMAX=10\r\n"
)


def test_full_postfix_style_reply() -> None:
    ext = parse_ehlo(reply(POSTFIX_EHLO), tls_active=True)
    assert ext.server_name == "mx.example.net"
    assert ext.esmtp
    assert ext.pipelining
    assert ext.size
    assert ext.size_limit == 10240000
    assert ext.starttls
    assert ext.auth
    assert ext.auth_mechanisms == ("PLAIN", "LOGIN")
    assert ext.enhancedstatuscodes
    assert ext.eightbitmime
    assert ext.dsn
    assert ext.smtputf8
    assert ext.chunking
    assert ext.requiretls
    assert ext.xforward == frozenset({"NAME", "ADDR", "PROTO", "HELO", "SOURCE", "PORT", "IDENT"})
    assert (ext.rcptmax, ext.mailmax) == (100, 5)
    assert ext.has("vrfy")
    assert ext.params("size") == "10240000"
    assert ext.warnings == ()


def test_requiretls_counts_only_over_tls() -> None:
    # smtp_proto.c: REQUIRETLS is recognised only in SMTP_MISC_FLAG_IN_STARTTLS
    assert not parse_ehlo(reply(POSTFIX_EHLO)).requiretls


@pytest.mark.parametrize(
    ("line", "size", "limit", "warned"),
    [
        (b"250 SIZE\r\n", True, 0, False),
        (b"250 SIZE 0\r\n", True, 0, False),
        (b"250 SIZE 52428800\r\n", True, 52428800, False),
        (b"250 SIZE 12M\r\n", True, 0, True),
        (b"250 SIZE -5\r\n", True, 0, True),
        # a TAB is non-printable, so Postfix sees the keyword "size?1000"
        (b"250 size\t1000\r\n", False, 0, False),
        (b"250 size 1000\r\n", True, 1000, False),
        (b"250 SIZE=2000\r\n", True, 2000, False),
    ],
)
def test_size_values(line: bytes, size: bool, limit: int, warned: bool) -> None:
    ext = parse_ehlo(reply(b"250-host\r\n" + line))
    assert (ext.size, ext.size_limit, bool(ext.warnings)) == (size, limit, warned)


def test_old_auth_equals_form_and_union_of_lines() -> None:
    ext = parse_ehlo(reply(b"250-h\r\n250-AUTH=LOGIN\r\n250 AUTH PLAIN login CRAM-MD5\r\n"))
    assert ext.auth_mechanisms == ("LOGIN", "PLAIN", "CRAM-MD5")


def test_null_auth_list_is_announced_with_warning() -> None:
    ext = parse_ehlo(reply(b"250-h\r\n250 AUTH\r\n"))
    assert ext.auth
    assert ext.auth_mechanisms == ()
    assert ext.warnings == ("offered null AUTH mechanism list",)


def test_smtputf8_without_8bitmime_implies_8bitmime() -> None:
    # smtp_proto.c "Fix 20140706"
    ext = parse_ehlo(reply(b"250-h\r\n250 SMTPUTF8\r\n"))
    assert ext.eightbitmime
    assert "host offers SMTPUTF8 support, but not 8BITMIME" in ext.warnings


def test_discarded_keywords_are_ignored_and_reported() -> None:
    discard = EhloDiscard.parse("pipelining, Dsn silent-discard unknownword")
    assert discard == EhloDiscard(frozenset({"PIPELINING", "DSN"}), silent=True)
    ext = parse_ehlo(reply(POSTFIX_EHLO), discard=discard)
    assert not ext.pipelining
    assert not ext.dsn
    assert not ext.has("PIPELINING")
    assert ext.discarded == ("PIPELINING", "DSN")
    assert ext.silent


def test_discard_smtputf8_but_not_8bitmime_and_vice_versa() -> None:
    ext = parse_ehlo(
        reply(b"250-h\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"),
        discard=EhloDiscard.parse(["8bitmime"]),
    )
    # Postfix forces 8BITMIME back on when SMTPUTF8 stays.
    assert ext.eightbitmime
    assert ext.smtputf8


def test_discard_list_validates_programmatic_use() -> None:
    with pytest.raises(ValueError, match="unknown"):
        EhloDiscard(frozenset({"pipelining"}))


def test_first_line_without_words_does_not_name_the_server() -> None:
    # Postfix counts only lines that have a keyword token.
    ext = parse_ehlo(reply(b"250-\r\n250-sink.example.test\r\n250-PIPELINING\r\n250 \r\n"))
    assert ext.server_name == "sink.example.test"
    assert ext.pipelining


def test_xforward_unknown_attributes_ignored_case_insensitive() -> None:
    ext = parse_ehlo(reply(b"250-h\r\n250 XFORWARD name addr FOO\r\n"))
    assert ext.xforward == frozenset({"NAME", "ADDR"})


def test_limits_bad_values_warn() -> None:
    ext = parse_ehlo(reply(b"250-h\r\n250 LIMITS RCPTMAX=0 MAILMAX=x FOO=1\r\n"))
    assert ext.rcptmax is None
    assert ext.mailmax is None
    assert len(ext.warnings) == 2


def test_lhlo_and_bad_command() -> None:
    assert parse_ehlo(reply(b"250 h\r\n"), command="LHLO").command == "LHLO"
    with pytest.raises(ValueError, match="EHLO or LHLO"):
        parse_ehlo(reply(b"250 h\r\n"), command="HELO")


def test_helo_fallback_value_has_no_extensions() -> None:
    ext = Extensions("HELO", reply(b"250 h\r\n"))
    assert not ext.esmtp
    assert not ext.pipelining
    assert ext.without_starttls().starttls is False


def test_hand_built_reply_falls_back_to_lines() -> None:
    ext = parse_ehlo(Reply(250, "2.0.0", ("host", "PIPELINING", "8BITMIME")))
    assert ext.server_name == "host"
    assert ext.pipelining
    assert ext.eightbitmime


@pytest.mark.parametrize(
    ("banner", "myhostname", "esmtp"),
    [
        (b"220 mx.example.net ESMTP Postfix\r\n", None, True),
        (b"220 mx.example.net Microsoft SMTP\r\n", None, False),
        (b"220-mx.example.net\r\n220 esmtp ready\r\n", None, True),
        (b"220 ESMTP\r\n", "esmtp", False),
        (b"220 ESMTP\r\n", None, True),
        (b"220 ****\r\n", None, False),
    ],
)
def test_greeting_esmtp_word(banner: bytes, myhostname: str | None, esmtp: bool) -> None:
    assert greeting_announces_esmtp(reply(banner), myhostname=myhostname) is esmtp


@pytest.mark.parametrize(
    ("banner", "pix"),
    [
        (b"220 ********************************\r\n", True),
        (b"220 2002 *** 0\r\n", True),
        (b"220 mx ESMTP\r\n", False),
    ],
)
def test_pix_greeting(banner: bytes, pix: bool) -> None:
    assert is_pix_greeting(reply(banner)) is pix


def test_a_reply_parsed_again_gives_the_same_extensions_with_its_own_reply() -> None:
    # Results are remembered per (command, lines, discard list, TLS state).
    first = reply(POSTFIX_EHLO)
    again = Reply(first.code, first.status, first.lines, first.wire_lines)
    assert again is not first
    one, two = parse_ehlo(first), parse_ehlo(again)
    assert two == one
    assert one.reply is first
    assert two.reply is again
    assert parse_ehlo(again, tls_active=True).requiretls
    assert not parse_ehlo(again).requiretls
    discarded = parse_ehlo(again, discard=EhloDiscard.parse("pipelining"))
    assert not discarded.pipelining
    assert one.pipelining
    assert parse_ehlo(again, command="LHLO").command == "LHLO"


def test_a_multiline_reply_parsed_again_is_the_same_reply() -> None:
    # The reply parser remembers whole multi-line replies it parsed cleanly.
    first = reply(POSTFIX_EHLO)
    parser = ReplyParser()
    parser.feed(POSTFIX_EHLO + b"250 2.1.0 Ok\r\n")
    again = parser.next_reply()
    assert again == first
    assert again is not None
    assert again.wire_lines == first.wire_lines
    assert parser.next_reply() == Reply(250, "2.1.0", ("2.1.0 Ok",))
    short = ReplyParser(line_length_limit=40)  # longer than the limit: not taken whole
    short.feed(POSTFIX_EHLO)
    cut = short.next_reply()
    assert cut is not None
    assert cut.wire_lines != first.wire_lines
    assert short.warnings


@pytest.mark.parametrize(
    ("banner", "pix"),
    [(b"220 ****\r\n", True), (b"220 2002 **\r\n", True), (b"220\r\n", True),
     (b"220 mx ESMTP\r\n", False), (b"220-**\r\n220 ok\r\n", False)],
)  # fmt: skip
def test_pix_banner_is_only_2_0_space_star(banner: bytes, pix: bool) -> None:
    assert is_pix_greeting(reply(banner)) is pix
