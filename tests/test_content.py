"""Content encoder: line ends, dot-stuffing, line length limit, framing, API.

Expected outputs are written out by hand from the rules (RFC 5321 §4.5.2,
Postfix smtp_proto.c smtp_text_out(), cleanup/sendmail line-end handling);
``test_content_postfix.py`` compares against what real Postfix sent.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from email.message import EmailMessage

import pytest

from pyfix_smtp.config import Config
from pyfix_smtp.errors import ConfigError, LocalProtocolError, PyfixError
from pyfix_smtp.protocol.content import (
    END_OF_DATA,
    MAX_LINE_END_CRS,
    BdatChunk,
    ContentEncoder,
    EncoderOptions,
    Framing,
    declares_8bit,
    downgrade_needed,
    encode_bdat,
    encode_data,
    iter_chunks,
)


def wire(data: bytes, **options: object) -> bytes:
    """Encode in one piece."""
    return b"".join(encode_data(data, EncoderOptions(**options)))  # type: ignore[arg-type]


# (name, input, expected wire output)
LINE_END_CASES = [
    ("empty message", b"", b".\r\n"),
    ("one CRLF line", b"a\r\n", b"a\r\n.\r\n"),
    ("bare LF", b"a\nb\n", b"a\r\nb\r\n.\r\n"),
    ("mixed LF and CRLF", b"a\r\nb\nc\r\n", b"a\r\nb\r\nc\r\n.\r\n"),
    ("last line without line end", b"a\r\nb", b"a\r\nb\r\n.\r\n"),
    ("single octet", b"x", b"x\r\n.\r\n"),
    ("bare CR inside a line", b"a\rb\r\n", b"a b\r\n.\r\n"),
    ("bare CR at line start", b"\rab\n", b" ab\r\n.\r\n"),
    ("CR run before LF is the line end", b"a\r\r\r\nb\r\r\n", b"a\r\nb\r\n.\r\n"),
    ("CR run inside a line", b"a\r\r\rb\n", b"a   b\r\n.\r\n"),
    ("LF CR LF", b"a\n\r\nb\n", b"a\r\n\r\nb\r\n.\r\n"),
    ("CR at the end of input ends the line", b"abc\r", b"abc\r\n.\r\n"),
    ("CRs at the end of input", b"abc\r\r", b"abc\r\n.\r\n"),
    ("only a CR", b"\r", b"\r\n.\r\n"),
    ("only an LF", b"\n", b"\r\n.\r\n"),
    ("empty lines", b"\n\n", b"\r\n\r\n.\r\n"),
    ("NUL and 8bit pass", b"\x00\xff\xe9\n", b"\x00\xff\xe9\r\n.\r\n"),
    ("CR LF CR", b"a\r\n\rb", b"a\r\n b\r\n.\r\n"),
]

DOT_CASES = [
    ("lone dot line", b".\r\n", b"..\r\n.\r\n"),
    ("dot line in the middle", b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
    ("dot at message start", b".a\r\n", b"..a\r\n.\r\n"),
    ("dot-dot line", b"..\r\n", b"...\r\n.\r\n"),
    ("dot not at line start", b"a.\r\n a.b\r\n", b"a.\r\n a.b\r\n.\r\n"),
    ("bare LF dot bare LF", b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
    ("LF dot CRLF", b"a\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
    ("CRLF dot LF", b"a\r\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
    ("CR dot CR", b"a\r.\rb", b"a . b\r\n.\r\n"),
    ("CR dot CR LF", b"a\r.\r\nb", b"a .\r\nb\r\n.\r\n"),
    ("end of data at the end", b"a\r\n.\r\n", b"a\r\n..\r\n.\r\n"),
    ("last line is a dot without line end", b"a\r\n.", b"a\r\n..\r\n.\r\n"),
    ("smuggling payload", b"x\r\n.\r\nMAIL FROM:<e@v>\r\n", b"x\r\n..\r\nMAIL FROM:<e@v>\r\n.\r\n"),
    ("CR before dot line", b"x\r\r\n.\r\n", b"x\r\n..\r\n.\r\n"),
]


@pytest.mark.parametrize(
    ("data", "expected"),
    [pytest.param(d, e, id=n) for n, d, e in LINE_END_CASES + DOT_CASES],
)
def test_line_ends_and_dots(data: bytes, expected: bytes) -> None:
    assert wire(data) == expected


def xs(n: int, char: bytes = b"x") -> bytes:
    return char * n


# (name, line, limit, expected wire lines without the CRLFs)
LENGTH_CASES = [
    ("998 stays whole", xs(998), 998, [xs(998)]),
    ("999 is cut", xs(999), 998, [xs(998), b" x"]),
    ("997 + space + 997", xs(1995), 998, [xs(998), b" " + xs(997)]),
    ("1996", xs(1996), 998, [xs(998), b" " + xs(997), b" x"]),
    (
        "5000: five full lines and the rest",
        xs(5000),
        998,
        [xs(998)] + [b" " + xs(997)] * 4 + [b" " + xs(14)],
    ),
    ("limit 0 is no limit", xs(5000), 0, [xs(5000)]),
    ("small limit", b"abcdefghij", 4, [b"abcd", b" efg", b" hij"]),
    ("limit 2", b"abcd", 2, [b"ab", b" c", b" d"]),
    ("stuffed dot does not count", b"." + xs(997), 998, [b".." + xs(997)]),
    ("dot line cut", b"." + xs(998), 998, [b".." + xs(997), b" x"]),
    ("space is not special", b"a b c d e", 4, [b"a b ", b" c d", b"  e"]),
    ("continuation never dot-stuffed", b"abcd.efg", 4, [b"abcd", b" .ef", b" g"]),
    ("8bit octets cut anywhere", "ééé".encode(), 3, [b"\xc3\xa9\xc3", b" \xa9\xc3", b" \xa9"]),
]


@pytest.mark.parametrize(
    ("line", "limit", "expected"),
    [pytest.param(line, lim, exp, id=name) for name, line, lim, exp in LENGTH_CASES],
)
def test_line_length_limit(line: bytes, limit: int, expected: list[bytes]) -> None:
    for ending in (b"\n", b"\r\n"):
        out = wire(line + ending + b"n\n", line_length_limit=limit)
        assert out == b"\r\n".join([*expected, b"n", b".", b""])
    # As an unterminated last line.
    assert wire(line, line_length_limit=limit) == b"\r\n".join([*expected, b".", b""])


def test_line_length_limit_applies_to_headers_and_body() -> None:
    msg = b"X-Long: " + xs(1000) + b"\r\n\r\n" + xs(1000, b"y") + b"\r\n"
    out = wire(msg).split(b"\r\n")
    assert out[:2] == [b"X-Long: " + xs(990), b" " + xs(10)]
    assert out[3:5] == [xs(998, b"y"), b" yy"]


def test_folded_flag() -> None:
    encoder = ContentEncoder()
    encoder.feed(xs(998) + b"\n")
    assert not encoder.folded
    encoder.feed(xs(999) + b"\n")
    assert encoder.folded


def test_every_line_within_limit_after_folding() -> None:
    data = b"".join(xs(n) + b"\n" for n in range(0, 3000, 7))
    for line in wire(data, line_length_limit=100).split(b"\r\n"):
        assert len(line.removeprefix(b".")) <= 100


def test_long_cr_runs_are_bounded_and_split_independent() -> None:
    # At most MAX_LINE_END_CRS CRs before an LF belong to the line end.
    run = MAX_LINE_END_CRS + 5
    for data, expected in [
        (b"a" + b"\r" * run + b"\nb", b"a" + b" " * 5 + b"\r\nb\r\n.\r\n"),
        (b"a" + b"\r" * run + b"b", b"a" + b" " * run + b"b\r\n.\r\n"),
        (b"a" + b"\r" * run, b"a" + b" " * 5 + b"\r\n.\r\n"),
        (b"a" + b"\r" * MAX_LINE_END_CRS + b"\n", b"a\r\n.\r\n"),
    ]:
        assert wire(data, line_length_limit=0) == expected
        for cut in (1, 2, 3, 500, MAX_LINE_END_CRS, MAX_LINE_END_CRS + 2, run, run + 1):
            for size in (cut, 7):
                encoder = ContentEncoder(EncoderOptions(line_length_limit=0))
                pieces = [data[:cut]] + [data[i : i + size] for i in range(cut, len(data), size)]
                out = b"".join(encoder.feed(p) for p in pieces) + encoder.finish()
                assert out == expected, (cut, size)


def test_a_huge_cr_run_is_streamed() -> None:
    encoder = ContentEncoder(EncoderOptions(line_length_limit=0))
    sizes = [len(encoder.feed(b"\r" * 65536)) for _ in range(20)]
    assert max(sizes) <= 65536
    assert sum(sizes) == 20 * 65536 - MAX_LINE_END_CRS
    assert encoder.feed(b"x") == b" " * MAX_LINE_END_CRS + b"x"


SPLIT_INPUTS = [
    b"",
    b"a\r\n.\r\nb",
    b"a\r.\r\n\r\n.\r\r\n..\n.",
    b"\r\n.\r\n",
    b"x\r\r\r\ny\r\r",
    b".\r.\n.\r\n.",
    b"hello world\nthis is a test\r\n",
    xs(12) + b"\n" + xs(3) + b"\r\n" + xs(10),
]


@pytest.mark.parametrize("data", SPLIT_INPUTS)
@pytest.mark.parametrize("limit", [0, 4, 998])
def test_split_anywhere_gives_the_same_output(data: bytes, limit: int) -> None:
    options = EncoderOptions(line_length_limit=limit)
    whole = b"".join(encode_data(data, options))
    for i in range(len(data) + 1):
        for j in range(i, len(data) + 1):
            encoder = ContentEncoder(options)
            out = encoder.feed(data[:i]) + encoder.feed(data[i:j]) + encoder.feed(data[j:])
            assert out + encoder.finish() == whole, (i, j)
    encoder = ContentEncoder(options)
    out = b"".join(encoder.feed(data[k : k + 1]) for k in range(len(data)))
    assert out + encoder.finish() == whole


def test_input_forms_give_the_same_output(tmp_path: object) -> None:
    data = b"Subject: x\n\n.line\r\nmore\rtext\n" * 50
    expected = wire(data)
    forms: list[object] = [
        data,
        bytearray(data),
        memoryview(data),
        io.BytesIO(data),
        iter([data[:7], b"", data[7:100], data[100:]]),
        [memoryview(data[:3]), bytearray(data[3:])],
    ]
    for form in forms:
        assert b"".join(encode_data(form, read_size=13)) == expected  # type: ignore[arg-type]


def test_email_message_content() -> None:
    msg = EmailMessage()
    msg["Subject"] = "hi"
    msg.set_content(".leading dot\nsecond line\n")
    out = b"".join(encode_data(msg))
    assert out.endswith(b"\r\n..leading dot\r\nsecond line\r\n.\r\n")
    assert b"\n" not in out.replace(b"\r\n", b"")


def test_output_is_streamed_in_chunks() -> None:
    data = b"line\n" * 100_000
    chunks = list(encode_data(data, read_size=4096))
    assert len(chunks) > 100
    assert max(len(c) for c in chunks) < 8192
    assert b"".join(chunks) == b"line\r\n" * 100_000 + END_OF_DATA


def test_file_is_read_in_chunks() -> None:
    class Reader:
        def __init__(self) -> None:
            self.sizes: list[int] = []
            self.left = 10

        def read(self, size: int) -> bytes:
            self.sizes.append(size)
            if not self.left:
                return b""
            self.left -= 1
            return b"a\n"

    reader = Reader()
    assert b"".join(encode_data(reader, read_size=1234)) == b"a\r\n" * 10 + b".\r\n"
    assert set(reader.sizes) == {1234}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text", "must be bytes, not str"),
        ([b"ok", "text"], "chunk 1 must be bytes-like, not str"),
        (io.StringIO("x"), "binary mode"),
        (42, "unsupported message content type int"),
    ],
)
def test_bad_content_types(content: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        list(encode_data(content))  # type: ignore[arg-type]


def test_feed_rejects_text() -> None:
    with pytest.raises(TypeError, match="bytes-like, not str"):
        ContentEncoder().feed("x")  # type: ignore[arg-type]


def test_finish_without_end_of_data() -> None:
    encoder = ContentEncoder()
    out = encoder.feed(b"a\r\nb") + encoder.finish(end_of_data=False)
    assert out == b"a\r\nb\r\n"
    assert encoder.octets_in == 4
    assert encoder.octets_out == len(out)


def test_use_after_finish_is_an_error() -> None:
    encoder = ContentEncoder()
    encoder.finish()
    with pytest.raises(LocalProtocolError, match="after finish"):
        encoder.feed(b"x")
    with pytest.raises(LocalProtocolError, match="after finish"):
        encoder.finish()


@dataclass(frozen=True)
class _Cfg:
    smtp_line_length_limit: int = 500
    disable_mime_output_conversion: bool = False
    mime_nesting_limit: int = 7
    mime_boundary_length_limit: int = 70


def test_options_from_config() -> None:
    options = EncoderOptions.from_config(_Cfg())
    assert options == EncoderOptions(
        line_length_limit=500, mime_nesting_limit=7, mime_boundary_length_limit=70
    )
    assert EncoderOptions.from_config(_Cfg(), server_8bitmime=False).downgrade_8bit
    assert not EncoderOptions.from_config(
        _Cfg(disable_mime_output_conversion=True), server_8bitmime=False
    ).downgrade_8bit
    assert not EncoderOptions.from_config(
        _Cfg(), server_8bitmime=False, encoding="7bit"
    ).downgrade_8bit


def test_options_from_the_real_config() -> None:
    options = EncoderOptions.from_config(Config(smtp_line_length_limit=0), server_8bitmime=False)
    assert options.line_length_limit == 0
    assert options.downgrade_8bit
    lmtp = Config(protocol="lmtp", lmtp_line_length_limit=500)
    assert EncoderOptions.from_config(lmtp).line_length_limit == 500


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"line_length_limit": -1}, "smtp_line_length_limit"),
        ({"line_length_limit": 1}, "smtp_line_length_limit"),
        ({"line_length_limit": True}, "smtp_line_length_limit"),
        ({"mime_nesting_limit": 0}, "mime_nesting_limit"),
        ({"mime_boundary_length_limit": 0}, "mime_boundary_length_limit"),
        ({"header_size_limit": "big"}, "header_size_limit"),
        ({"downgrade_8bit": 1}, "downgrade_8bit"),
    ],
)
def test_option_validation(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        EncoderOptions(**kwargs)  # type: ignore[arg-type]
    assert info.value.parameter == parameter
    assert isinstance(info.value, PyfixError)


# Postfix smtp_proto.c SMTP_MIME_DOWNGRADE()
@pytest.mark.parametrize(
    ("server_8bitmime", "encoding", "disabled", "expected"),
    [
        (False, "8bit", False, True),
        (False, None, False, True),
        (False, "7bit", False, False),
        (True, "8bit", False, False),
        (False, "8bit", True, False),
    ],
)
def test_downgrade_needed(
    server_8bitmime: bool, encoding: str | None, disabled: bool, expected: bool
) -> None:
    assert (
        downgrade_needed(
            server_8bitmime=server_8bitmime,
            encoding=encoding,  # type: ignore[arg-type]
            disable_mime_output_conversion=disabled,
        )
        is expected
    )


# -- BDAT ---------------------------------------------------------------------


def test_bdat_has_no_dot_stuffing_and_no_final_dot() -> None:
    chunks = list(encode_bdat(b"a\n.\nb\r\r\n.", chunk_size=10))
    assert b"".join(c.data for c in chunks) == b"a\r\n.\r\nb\r\n.\r\n"
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]


def test_bdat_empty_message_is_bdat_0_last() -> None:
    assert list(encode_bdat(b"")) == [BdatChunk(b"", last=True)]
    assert BdatChunk(b"", last=True).command == b"BDAT 0 LAST\r\n"
    assert BdatChunk(b"abc", last=False).command == b"BDAT 3\r\n"


def test_bdat_chunk_sizes() -> None:
    data = b"0123456789abcdef\n" * 1000  # 17000 octets in, 18000 out
    chunks = list(encode_bdat(data, chunk_size=4000, read_size=1000))
    assert b"".join(c.data for c in chunks) == data.replace(b"\n", b"\r\n")
    assert all(len(c.data) >= 4000 for c in chunks[:-1])
    assert all(len(c.data) < 4000 + 1100 for c in chunks)
    assert [c.last for c in chunks].count(True) == 1
    assert chunks[-1].last
    assert chunks[-1].data  # no empty trailing chunk when data ended on a boundary


def test_bdat_same_clean_up_as_data() -> None:
    data = b"Subject: x\n\n" + xs(2000) + b"\rtail"
    via_bdat = b"".join(c.data for c in encode_bdat(data))
    assert via_bdat == wire(data)[: -len(END_OF_DATA)]


def test_framing_enum_drives_the_encoder() -> None:
    encoder = ContentEncoder(framing=Framing.BDAT)
    assert encoder.feed(b".x\n") + encoder.finish() == b".x\r\n"


# -- declares_8bit ----------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"Subject: x\n\nbody \xe9\n", False),
        (b"Content-Transfer-Encoding: 8bit\n\nbody\n", True),
        (b"Content-Transfer-Encoding: BINARY\n\nbody\n", True),
        (b"Content-Transfer-Encoding:\n 8bit (folded, with comment)\n\n", True),
        (b"Content-Transfer-Encoding: 7bit\n\nbody\n", False),
        (b"Content-Transfer-Encoding: quoted-printable\n\n", False),
        (b"Subject: x\n\nContent-Transfer-Encoding: 8bit\n", False),  # in the body
        (
            b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
            b"Content-Transfer-Encoding: 8bit\n\nx\n--b--\n",
            True,
        ),
        (
            b"Content-Type: message/rfc822\n\nSubject: inner\n"
            b"Content-Transfer-Encoding: 8bit\n\nx\n",
            True,
        ),
    ],
)
def test_declares_8bit(message: bytes, expected: bool) -> None:
    assert declares_8bit(message) is expected
    assert declares_8bit(message.replace(b"\n", b"\r\n")) is expected


def test_iter_chunks_rejects_bad_read_size() -> None:
    with pytest.raises(ValueError, match="read_size"):
        list(iter_chunks(b"x", 0))
