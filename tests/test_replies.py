"""ReplyParser: Postfix smtp_chat_resp() tolerance, splitting, bounded memory."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyfix_smtp.protocol import replies as replies_module
from pyfix_smtp.protocol.replies import ReplyParser, enhanced_status_length, printable
from pyfix_smtp.status import Reply


def parse_all(data: bytes, *, chunks: list[int] | None = None, eof: bool = False) -> list[Reply]:
    """Feed *data* (whole, or cut at the given chunk sizes) and collect replies."""
    parser = ReplyParser()
    replies: list[Reply] = []
    pos = 0
    for size in chunks or [len(data)]:
        parser.feed(data[pos : pos + size])
        pos += size
        replies.extend(parser)
    parser.feed(data[pos:])
    if eof:
        parser.feed_eof()
    replies.extend(parser)
    return replies


def summary(reply: Reply) -> tuple[int, str, tuple[str, ...], bool]:
    return (reply.code, reply.status, reply.lines, reply.malformed)


# (wire bytes, [(code, status, lines, malformed), ...])
CASES: list[tuple[bytes, list[tuple[int, str, tuple[str, ...], bool]]]] = [
    (b"250 2.1.0 Ok\r\n", [(250, "2.1.0", ("2.1.0 Ok",), False)]),
    (b"250 Ok\r\n", [(250, "2.0.0", ("Ok",), False)]),
    (b"250\r\n", [(250, "2.0.0", ("",), False)]),
    (b"250-\r\n250 \r\n", [(250, "2.0.0", ("", ""), False)]),
    (
        b"354 End data with <CR><LF>.<CR><LF>\r\n",
        [(354, "5.5.0", ("End data with <CR><LF>.<CR><LF>",), False)],
    ),
    # bare LF line ends (smtp_stream.c accepts them)
    (b"250-a\n250 b\n", [(250, "2.0.0", ("a", "b"), False)]),
    # every trailing CR is stripped; a CR inside a line is non-printable
    (b"250 a\r\r\r\n", [(250, "2.0.0", ("a",), False)]),
    (b"250 a\rb\r\n", [(250, "2.0.0", ("a?b",), False)]),
    # the last line wins when codes disagree
    (b"250-first\r\n451 4.3.0 second\r\n", [(451, "4.3.0", ("first", "4.3.0 second"), False)]),
    # class-mismatched enhanced code becomes <class>.0.0
    (b"250 5.1.1 mismatch\r\n", [(250, "2.0.0", ("5.1.1 mismatch",), False)]),
    (b"550 2.1.1 mismatch\r\n", [(550, "5.0.0", ("2.1.1 mismatch",), False)]),
    (b"450 4.2.1 busy\r\n", [(450, "4.2.1", ("4.2.1 busy",), False)]),
    # codes outside 2/4/5 get the protocol-error status 5.5.0
    (b"600 2.0.0 odd\r\n", [(600, "5.5.0", ("2.0.0 odd",), False)]),
    (b"199 ok\r\n", [(199, "5.5.0", ("ok",), False)]),
    (b"000 zero\r\n", [(0, "5.5.0", ("zero",), False)]),
    # garbage lines are skipped (kept in the text) and mark the reply
    (b"hello\r\n250 ok\r\n", [(250, "2.0.0", ("hello", "ok"), True)]),
    (b"2500 x\r\n250 ok\r\n", [(250, "2.0.0", ("2500 x", "ok"), True)]),
    (b"250x\r\n250 ok\r\n", [(250, "2.0.0", ("250x", "ok"), True)]),
    (b"25 x\r\n250 ok\r\n", [(250, "2.0.0", ("25 x", "ok"), True)]),
    (b"\r\n250 ok\r\n", [(250, "2.0.0", ("", "ok"), True)]),
    # only the last line's status counts; spaces before it are skipped
    (b"250-2.1.0 a\r\n250    2.1.5 b\r\n", [(250, "2.1.5", ("2.1.0 a", "   2.1.5 b"), False)]),
    # malformed enhanced codes (dsn_valid)
    (b"250 2.1.0ok\r\n", [(250, "2.0.0", ("2.1.0ok",), False)]),
    (b"250 2.1000.0 x\r\n", [(250, "2.0.0", ("2.1000.0 x",), False)]),
    (b"250 2..0 x\r\n", [(250, "2.0.0", ("2..0 x",), False)]),
    (b"550 5.7.1\r\n", [(550, "5.7.1", ("5.7.1",), False)]),
    # two replies in one chunk
    (b"250 a\r\n251 b\r\n", [(250, "2.0.0", ("a",), False), (251, "2.0.0", ("b",), False)]),
    # NUL ends the line like a C string: "250\0-x" is a final "250" line
    (b"250\x00-x\r\n", [(250, "2.0.0", ("",), False)]),
    # non-printable bytes become "?", UTF-8 is kept
    (b"250 caf\xc3\xa9 \x01\xff\r\n", [(250, "2.0.0", ("caf\u00e9 ??",), False)]),
    (b"250 tab\there\r\n", [(250, "2.0.0", ("tab?here",), False)]),
]


@pytest.mark.parametrize(("wire", "expected"), CASES)
def test_reply_table_whole(
    wire: bytes, expected: list[tuple[int, str, tuple[str, ...], bool]]
) -> None:
    assert [summary(r) for r in parse_all(wire)] == expected


@pytest.mark.parametrize(("wire", "expected"), CASES)
def test_reply_table_byte_by_byte(
    wire: bytes, expected: list[tuple[int, str, tuple[str, ...], bool]]
) -> None:
    assert [summary(r) for r in parse_all(wire, chunks=[1] * len(wire))] == expected


def test_multiline_split_at_every_offset() -> None:
    wire = b"450-4.2.1 first line\r\n450-4.2.1 second\n450 4.2.1 last\r\n250 2.0.0 next\r\n"
    whole = parse_all(wire)
    assert [str(r) for r in whole] == [
        "450-4.2.1 first line 450-4.2.1 second 450 4.2.1 last",
        "250 2.0.0 next",
    ]
    for cut in range(len(wire) + 1):
        assert parse_all(wire, chunks=[cut]) == whole, cut
        for cut2 in range(cut, len(wire) + 1, 7):
            assert parse_all(wire, chunks=[cut, cut2 - cut]) == whole, (cut, cut2)


def test_wire_lines_keep_every_line_for_reports() -> None:
    [reply] = parse_all(b"550-5.1.1 <a@b>: no such user\r\n550 5.1.1 try later\r\n")
    assert reply.wire_lines == ("550-5.1.1 <a@b>: no such user", "550 5.1.1 try later")
    assert str(reply) == "550-5.1.1 <a@b>: no such user 550 5.1.1 try later"
    assert reply.text == "5.1.1 <a@b>: no such user 5.1.1 try later"


def test_partial_reply_at_eof_is_never_used() -> None:
    parser = ReplyParser()
    parser.feed(b"250-a\r\n250 complete but no newline")
    parser.feed_eof()
    assert parser.next_reply() is None
    assert parser.at_eof


def test_complete_reply_before_eof_is_delivered() -> None:
    parser = ReplyParser()
    parser.feed(b"221 bye\r\n")
    parser.feed_eof()
    assert not parser.at_eof
    reply = parser.next_reply()
    assert reply is not None
    assert reply.code == 221
    assert parser.next_reply() is None
    assert parser.at_eof


def test_long_line_is_truncated_and_reading_continues() -> None:
    parser = ReplyParser()
    parser.feed(b"250 " + b"x" * 3000 + b"\r\n250 after\r\n")
    first = parser.next_reply()
    assert first is not None
    assert len(first.wire_lines[0]) == 2048
    assert any("response longer than 2048" in w for w in parser.warnings)
    second = parser.next_reply()
    assert second is not None
    assert second.lines == ("after",)


def test_long_line_split_in_chunks_is_bounded() -> None:
    parser = ReplyParser()
    parser.feed(b"250 ")
    for _ in range(3):
        parser.feed(b"y" * 1000)
        assert parser.next_reply() is None
        assert parser.buffered <= 2048
    parser.feed(b"\r\n")
    reply = parser.next_reply()
    assert reply is not None
    assert reply.code == 250
    assert len(reply.wire_lines[0]) == 2048


@pytest.mark.parametrize("chunk", [1, 100, 5000, 100000])
def test_line_twice_the_limit_disables_input(chunk: int) -> None:
    # smtp_stream.c: "disabling input" after limit more bytes without LF;
    # the truncated line is still used, then the stream is at EOF.
    data = b"250 " + b"z" * 6000 + b"\r\n250 never seen\r\n"
    parser = ReplyParser()
    replies = []
    for pos in range(0, len(data), chunk):
        parser.feed(data[pos : pos + chunk])
        replies.extend(parser)
    assert [r.code for r in replies] == [250]
    assert len(replies[0].wire_lines[0]) == 2048
    assert parser.input_disabled
    assert parser.at_eof
    assert parser.buffered == 0


def test_line_just_under_twice_the_limit_is_not_disabling() -> None:
    data = b"250 " + b"z" * (2048 - 4) + b"z" * 2047 + b"\n250 seen\r\n"
    replies = parse_all(data)
    assert [r.lines[-1] for r in replies][-1] == "seen"


def test_multiline_text_is_bounded_but_read_to_the_end() -> None:
    body = b"".join(b"250-line %04d " % i + b"a" * 100 + b"\r\n" for i in range(500))
    parser = ReplyParser()
    parser.feed(body + b"554 5.7.1 final\r\n")
    reply = parser.next_reply()
    assert reply is not None
    assert reply.code == 554
    assert reply.status == "5.7.1"
    kept = sum(len(line) for line in reply.wire_lines) + len(reply.wire_lines) - 1
    assert kept < 2 * 2048 + 1
    assert any("multi-line response longer than" in w for w in parser.warnings)
    assert parser.next_reply() is None


def test_discard_buffered_counts_injected_bytes() -> None:
    parser = ReplyParser()
    parser.feed(b"220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 x")
    reply = parser.next_reply()
    assert reply is not None
    assert reply.code == 220
    assert parser.discard_buffered() == len(b"250-injected\r\n250 x")
    assert parser.next_reply() is None
    assert parser.buffered == 0


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("2.0.0", 5),
        ("5.7.1 text", 5),
        ("4.123.456", 9),
        ("4.1234.5", 0),
        ("4.1.2345", 0),
        ("3.0.0", 0),
        ("2.0", 0),
        ("2.0.0x", 0),
        ("2.0.0\tx", 5),
        ("", 0),
        ("2.a.0", 0),
    ],
)
def test_enhanced_status_length_is_dsn_valid(text: str, length: int) -> None:
    assert enhanced_status_length(text) == length


def test_printable_without_utf8() -> None:
    assert printable(b"caf\xc3\xa9", utf8=False) == "caf??"
    assert printable(b"plain") == "plain"
    assert printable(b"\xe2\x82") == "??"


# -- properties ----------------------------------------------------------

reply_lines = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.builds(
            lambda code, sep, text: code + sep + text,
            st.sampled_from([b"250", b"421", b"550", b"354", b"199", b"600", b"25"]),
            st.sampled_from([b" ", b"-", b"", b"x"]),
            st.binary(max_size=30),
        ),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(
    lines=reply_lines,
    ends=st.lists(st.sampled_from([b"\r\n", b"\n", b"\r\r\n"]), min_size=1),
    seed=st.integers(0, 2**32),
)
def test_any_split_gives_the_same_replies(lines: list[bytes], ends: list[bytes], seed: int) -> None:
    data = b"".join(line + ends[i % len(ends)] for i, line in enumerate(lines))
    rng = random.Random(seed)
    whole = parse_all(data)
    cuts = []
    left = len(data)
    while left > 0:
        n = rng.randint(1, max(1, left))
        cuts.append(n)
        left -= n
    assert parse_all(data, chunks=cuts) == whole
    assert [r.wire_lines for r in parse_all(data, chunks=cuts)] == [r.wire_lines for r in whole]


@settings(max_examples=100, deadline=None)
@given(chunks=st.lists(st.binary(max_size=3000), max_size=20))
def test_random_bytes_never_raise_and_memory_is_bounded(chunks: list[bytes]) -> None:
    parser = ReplyParser(line_length_limit=512)
    for chunk in chunks:
        parser.feed(chunk)
        for reply in parser:
            assert 0 <= reply.code <= 999
            assert reply.status[0] in "245"
            kept = sum(len(line.encode()) for line in reply.wire_lines)
            assert kept <= 3 * 512 * 4  # UTF-8 expansion of "?" is 1, of kept chars <= 4
        # after draining, only an incomplete line (bounded) may remain
        assert parser.buffered <= 512
    parser.feed_eof()
    list(parser)
    assert parser.at_eof


def test_reply_filter_replaces_lines_before_parsing() -> None:
    # smtp_reply_filter: fault injection / working around broken servers
    def table(line: str) -> str | None:
        return "450 4.7.1 rewritten" if line.startswith("250 2.0.0 Ok: queued") else None

    parser = ReplyParser(reply_filter=table)
    parser.feed(b"250 2.0.0 Ok: queued as X\r\n250 other\r\n")
    first = parser.next_reply()
    assert first is not None
    assert (first.code, first.status, first.wire_lines) == (450, "4.7.1", ("450 4.7.1 rewritten",))
    second = parser.next_reply()
    assert second is not None
    assert second.code == 250
    assert parser.warnings == [
        'replacing server reply "250 2.0.0 Ok: queued as X" with "450 4.7.1 rewritten"'
    ]


def _parse_with(parser: ReplyParser, data: bytes) -> tuple[list[tuple[object, ...]], list[str]]:
    parser.feed(data)
    replies = [(*summary(r), r.wire_lines) for r in parser]
    return replies, list(parser.warnings)


@settings(max_examples=100, deadline=None)
@given(lines=reply_lines, utf8=st.booleans())
def test_replies_seen_before_parse_as_the_first_time(lines: list[bytes], utf8: bool) -> None:
    # Single-line replies are remembered across parsers (the fast path); a
    # parser that meets them again must give the same replies and warnings.
    data = b"".join(line + b"\r\n" for line in lines)
    replies_module._MEMO.clear()
    first = _parse_with(ReplyParser(utf8=utf8), data)
    again = _parse_with(ReplyParser(utf8=utf8), data)
    assert again == first
    short = _parse_with(ReplyParser(utf8=utf8, line_length_limit=8), data)
    assert short == _parse_with(ReplyParser(utf8=utf8, line_length_limit=8), data)


def test_a_remembered_reply_still_passes_the_reply_filter() -> None:
    plain = ReplyParser()
    plain.feed(b"250 2.0.0 Ok\r\n")
    assert plain.next_reply() == Reply(250, "2.0.0", ("2.0.0 Ok",))
    filtered = ReplyParser(reply_filter=lambda line: "451 4.3.0 rewritten")
    filtered.feed(b"250 2.0.0 Ok\r\n")
    reply = filtered.next_reply()
    assert reply is not None
    assert (reply.code, reply.status) == (451, "4.3.0")
    assert filtered.warnings == ['replacing server reply "250 2.0.0 Ok" with "451 4.3.0 rewritten"']


def test_utf8_setting_is_part_of_what_is_remembered() -> None:
    line = b"250 2.0.0 caf\xc3\xa9\r\n"
    with_utf8, without = ReplyParser(utf8=True), ReplyParser(utf8=False)
    with_utf8.feed(line)
    without.feed(line)
    first, second = with_utf8.next_reply(), without.next_reply()
    assert first is not None
    assert second is not None
    assert first.lines == ("2.0.0 café",)
    assert second.lines == ("2.0.0 caf??",)
