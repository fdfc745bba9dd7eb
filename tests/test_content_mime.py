"""MIME 8bit -> quoted-printable downgrade (Postfix global/mime_state.c).

Expected outputs follow Postfix's rules; ``test_content_postfix.py`` holds
the cases checked byte for byte against a real Postfix.
"""

from __future__ import annotations

import quopri

import pytest

from pyfix_smtp.errors import ContentError, LocalProtocolError
from pyfix_smtp.protocol.content import ContentEncoder, EncoderOptions, encode_data
from pyfix_smtp.protocol.mime_downgrade import MimeProcessor


def down(message: bytes, **options: object) -> bytes:
    """Downgrade, return the text with LF line ends and without the final dot."""
    opts = EncoderOptions(downgrade_8bit=True, **options)  # type: ignore[arg-type]
    out = b"".join(encode_data(message, opts))
    assert out.endswith(b"\r\n.\r\n") or out == b".\r\n"
    return out[:-3].replace(b"\r\n", b"\n")


QP = b"Content-Transfer-Encoding: quoted-printable\n"
SEVEN = b"Content-Transfer-Encoding: 7bit\n"

# (name, message with LF line ends, expected output)
CASES = [
    (
        "single 8bit part",
        b"Subject: s\nContent-Transfer-Encoding: 8bit\n\ncaf\xc3\xa9\n",
        b"Subject: s\n" + QP + b"\ncaf=C3=A9\n",
    ),
    (
        "binary is 8bit too",
        b"Content-Transfer-Encoding: binary\n\n\xff\n",
        QP + b"\n=FF\n",
    ),
    (
        "new header goes at the end of the block",
        b"Content-Transfer-Encoding: 8bit\nContent-Type: text/plain\nX-A: 1\n\n\xe9\n",
        b"Content-Type: text/plain\nX-A: 1\n" + QP + b"\n=E9\n",
    ),
    (
        "folded CTE header is dropped whole",
        b"Content-Transfer-Encoding:\n  8bit\nX-B: 2\n\n\xe9\n",
        b"X-B: 2\n" + QP + b"\n=E9\n",
    ),
    (
        "no MIME headers: sent unchanged",
        b"Subject: s\n\ncaf\xc3\xa9 = x \n",
        b"Subject: s\n\ncaf\xc3\xa9 = x \n",
    ),
    (
        "7bit declared with 8bit octets: unchanged",
        b"Content-Transfer-Encoding: 7bit\n\n\xe9\n",
        b"Content-Transfer-Encoding: 7bit\n\n\xe9\n",
    ),
    (
        "base64 part untouched",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
        b"Content-Transfer-Encoding: base64\n\nAAAA=\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
        b"Content-Transfer-Encoding: base64\n\nAAAA=\n--b--\n",
    ),
    (
        "multipart with mixed parts; preamble and epilogue untouched",
        b"Content-Type: multipart/mixed; boundary=b\nContent-Transfer-Encoding: 8bit\n\n"
        b"pre \xe9\n--b\nContent-Transfer-Encoding: 8bit\n\none \xe9\n"
        b"--b\n\ntwo \xe9 (7bit by default)\n--b--\npost \xe9\n",
        b"Content-Type: multipart/mixed; boundary=b\n" + SEVEN + b"\n"
        b"pre \xe9\n--b\n" + QP + b"\none =E9\n"
        b"--b\n\ntwo \xe9 (7bit by default)\n--b--\npost \xe9\n",
    ),
    (
        "nested message/rfc822 with its own 8bit body",
        b"Content-Type: message/rfc822\nContent-Transfer-Encoding: 8bit\n\n"
        b"Subject: inner\nContent-Transfer-Encoding: 8bit\n\ninner \xe9\n",
        b"Content-Type: message/rfc822\n" + SEVEN + b"\nSubject: inner\n" + QP + b"\ninner =E9\n",
    ),
    (
        "message/rfc822 part inside a multipart",
        b"Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: message/rfc822\n\n"
        b"Content-Type: multipart/alternative; boundary=i\n\n--i\n"
        b"Content-Transfer-Encoding: 8bit\n\ndeep \xe9\n--i--\n--o--\n",
        b"Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: message/rfc822\n\n"
        b"Content-Type: multipart/alternative; boundary=i\n\n--i\n" + QP + b"\n"
        b"deep =E9\n--i--\n--o--\n",
    ),
    (
        "outer boundary closes inner parts",
        b"Content-Type: multipart/mixed; boundary=o\n\n--o\n"
        b"Content-Type: multipart/mixed; boundary=i\n\n--i\n"
        b"Content-Transfer-Encoding: 8bit\n\na\xe9\n--o\n"
        b"Content-Transfer-Encoding: 8bit\n\nb\xe9\n--o--\n",
        b"Content-Type: multipart/mixed; boundary=o\n\n--o\n"
        b"Content-Type: multipart/mixed; boundary=i\n\n--i\n"
        + QP
        + b"\na=E9\n--o\n"
        + QP
        + b"\nb=E9\n--o--\n",
    ),
    (
        "quoted-printable rules",
        b"Content-Transfer-Encoding: 8bit\n\na=b \nc\t\n.d\xe9\n\n\x01\x7f~\n",
        QP + b"\na=3Db=20\nc=09\n..d=E9\n\n=01=7F~\n",
    ),
    (
        "headers only, no body",
        b"Subject: s\nContent-Transfer-Encoding: 8bit\n",
        b"Subject: s\n" + QP,
    ),
    ("empty message", b"", b""),
    (
        "last line without line end",
        b"Content-Transfer-Encoding: 8bit\n\nend \xe9 ",
        QP + b"\nend =E9=20\n",
    ),
]


@pytest.mark.parametrize(
    ("message", "expected"),
    [pytest.param(m, e, id=n) for n, m, e in CASES],
)
def test_downgrade(message: bytes, expected: bytes) -> None:
    assert down(message) == expected
    assert down(message.replace(b"\n", b"\r\n")) == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [pytest.param(m, e, id=n) for n, m, e in CASES if len(m) < 200],
)
def test_downgrade_split_at_every_offset(message: bytes, expected: bytes) -> None:
    options = EncoderOptions(downgrade_8bit=True)
    whole = b"".join(encode_data(message, options))
    for i in range(len(message) + 1):
        encoder = ContentEncoder(options)
        out = encoder.feed(message[:i]) + encoder.feed(message[i:]) + encoder.finish()
        assert out == whole, i


def test_without_downgrade_8bit_passes_unchanged() -> None:
    message = b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9\r\n"
    assert b"".join(encode_data(message)) == message + b".\r\n"


def test_quoted_printable_soft_breaks_and_round_trip() -> None:
    body = b"".join(
        bytes([(i * 7 + j) % 256 for j in range(i)]).replace(b"\n", b"n").replace(b"\r", b"r")
        + b"\n"
        for i in range(0, 400, 3)
    )
    out = down(b"Content-Transfer-Encoding: 8bit\n\n" + body)
    encoded = out.split(b"\n\n", 1)[1]
    for line in encoded.split(b"\n"):
        assert len(line) <= 76  # RFC 2045 §6.7 rule 5
        assert all(32 <= c <= 126 or c == 9 for c in line)
        assert not line.endswith((b" ", b"\t"))
    assert quopri.decodestring(encoded) == body


def test_soft_break_threshold_is_postfix_73() -> None:
    # mime_state_downgrade(): flush before adding a character once > 72 are held.
    out = down(b"Content-Transfer-Encoding: 8bit\n\n" + b"a" * 73 + b"\n" + b"b" * 74 + b"\n")
    body = out.split(b"\n\n", 1)[1]
    assert body == b"a" * 73 + b"\n" + b"b" * 73 + b"=\nb\n"


def test_encoded_unit_is_never_split() -> None:
    out = down(b"Content-Transfer-Encoding: 8bit\n\n" + b"a" * 72 + b"\xe9\xe9\n")
    assert out.split(b"\n\n", 1)[1] == b"a" * 72 + b"=E9=\n=E9\n"


def test_downgrade_output_is_dot_stuffed_and_folded() -> None:
    message = b"X-Long: " + b"h" * 1000 + b"\nContent-Transfer-Encoding: 8bit\n\n.\xe9\n"
    out = b"".join(encode_data(message, EncoderOptions(downgrade_8bit=True)))
    assert out.startswith(b"X-Long: " + b"h" * 990 + b"\r\n hhhhhhhhhh\r\n")
    assert out.endswith(b"\r\n\r\n..=E9\r\n.\r\n")


def nested_multiparts(depth: int) -> bytes:
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(depth)
    )
    tail = b"".join(b"--b%d--\n" % i for i in reversed(range(depth)))
    return head + b"Content-Transfer-Encoding: 8bit\n\nx\xe9\n" + tail


def test_nesting_limit_matches_postfix() -> None:
    # Checked against Postfix 3.7 with mime_nesting_limit = 3: 5 levels are
    # delivered, 6 bounce with 5.6.0 "MIME nesting exceeds safety limit".
    assert b"x=E9" in down(nested_multiparts(5), mime_nesting_limit=3)
    with pytest.raises(ContentError) as info:
        down(nested_multiparts(6), mime_nesting_limit=3)
    assert info.value.status == "5.6.0"
    assert "MIME nesting exceeds safety limit" in info.value.reason
    assert info.value.line == 16


def test_nesting_beyond_limit_is_ignored_without_downgrade() -> None:
    # Without MIME_OPT_REPORT_NESTING Postfix just stops tracking boundaries.
    message = nested_multiparts(8)
    assert b"".join(encode_data(message, EncoderOptions(mime_nesting_limit=3))) == (
        message.replace(b"\n", b"\r\n") + b".\r\n"
    )


def test_encoder_is_unusable_after_an_error() -> None:
    encoder = ContentEncoder(EncoderOptions(downgrade_8bit=True, mime_nesting_limit=1))
    with pytest.raises(ContentError):
        encoder.feed(nested_multiparts(4))
    with pytest.raises(LocalProtocolError, match="after an error"):
        encoder.feed(b"more")


def test_boundary_length_limit_truncates_the_compared_prefix() -> None:
    message = (
        b"Content-Type: multipart/mixed; boundary=abcdefgh\n\n--abcdeXXX\n"
        b"Content-Transfer-Encoding: 8bit\n\nx\xe9\n--abcdefgh--\nepi \xe9\n"
    )
    out = down(message, mime_boundary_length_limit=5)
    assert b"\n" + QP + b"\nx=E9\n" in out
    # The full boundary never matches "--abcdeXXX", so nothing is converted.
    assert b"x\xe9" in down(message)


def test_held_content_type_header_limit() -> None:
    long_type = b"Content-Type: text/plain; x=" + b"y" * 500 + b"\n"
    message = long_type + b"Content-Transfer-Encoding: 8bit\n\n\xe9\n"
    assert down(message, header_size_limit=100) == long_type + QP + b"\n=E9\n"


def test_held_cte_header_limit_is_an_error() -> None:
    message = b"Content-Transfer-Encoding: 8bit;" + b" " * 200 + b"\n\n\xe9\n"
    with pytest.raises(ContentError, match="header_size_limit"):
        down(message, header_size_limit=100)


def test_other_headers_are_streamed_whatever_their_size() -> None:
    message = b"X-Big: " + b"z" * 300_000 + b"\n\tmore\nContent-Transfer-Encoding: 8bit\n\n\xe9\n"
    out = down(message, header_size_limit=100, line_length_limit=0)
    assert out == message.replace(b"Content-Transfer-Encoding: 8bit\n", QP).replace(b"\xe9", b"=E9")


@pytest.mark.parametrize(
    ("ctype", "expected_cte", "converted_body"),
    [
        (b"message/rfc822", SEVEN, False),  # nested headers follow, 7bit by default
        (b"message/global", QP, True),  # RFC 6532: may be encoded
        (b"message/partial; id=x", SEVEN, True),  # Postfix converts the body anyway
        (b"multipart/mixed; boundary=q", SEVEN, False),  # body is the 7bit preamble
        (b"application/octet-stream", QP, True),
        (b"text/html", QP, True),
    ],
)
def test_new_encoding_depends_on_the_type(
    ctype: bytes, expected_cte: bytes, converted_body: bool
) -> None:
    message = b"Content-Type: " + ctype + b"\nContent-Transfer-Encoding: 8bit\n\nb\xe9\n"
    out = down(message)
    assert out.startswith(b"Content-Type: " + ctype + b"\n" + expected_cte + b"\n")
    assert out.endswith(b"b=E9\n" if converted_body else b"b\xe9\n")


def test_processor_without_downgrade_is_transparent() -> None:
    processor = MimeProcessor(downgrade=False)
    text = nested_multiparts(3) + b"Content-Transfer-Encoding: 8bit\n"
    out = b"".join(processor.feed(text[i : i + 5]) for i in range(0, len(text), 5))
    assert out + processor.finish() == text
    assert processor.saw_8bit
    assert not processor.converted


def test_downgraded_flag() -> None:
    encoder = ContentEncoder(EncoderOptions(downgrade_8bit=True))
    encoder.feed(b"Subject: x\n\n\xe9\n")
    encoder.finish()
    assert not encoder.downgraded
    encoder = ContentEncoder(EncoderOptions(downgrade_8bit=True))
    encoder.feed(b"Content-Transfer-Encoding: 8bit\n\n\xe9\n")
    encoder.finish()
    assert encoder.downgraded
