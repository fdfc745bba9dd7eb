"""SMTP smuggling (CVE-2023-51766 class): one end-of-data sequence, at the end.

A strict RFC 5321 server-side reader (written here, independent of the
encoder) reads the DATA stream: lines end only in CRLF, a line "." ends the
data, a leading "." is removed (§4.5.2). For any input, split anywhere, the
reader must find the end of data exactly at the end of the output and
recover exactly the normalised input, computed by a slow reference model.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyfix_smtp.protocol.content import (
    MAX_LINE_END_CRS,
    ContentEncoder,
    EncoderOptions,
    Framing,
)

EOD = b"\r\n.\r\n"


class StrictReaderError(AssertionError):
    """The DATA stream breaks RFC 5321 §2.3.8 / §4.5.2."""


def strict_read(stream: bytes) -> tuple[list[bytes], int]:
    """Read DATA content as a strict server: (lines, octets up to and incl. the end).

    The stream starts right after the server's 354 reply, i.e. after the
    CRLF of the DATA command, so it starts at a line start.
    """
    lines: list[bytes] = []
    pos = 0
    while True:
        end = stream.find(b"\r\n", pos)
        if end < 0:
            raise StrictReaderError(f"no end of data; unterminated text at {pos}")
        line = stream[pos:end]
        if b"\r" in line or b"\n" in line:
            raise StrictReaderError(f"bare CR or LF in line at {pos}: {line!r}")
        pos = end + 2
        if line == b".":
            return lines, pos
        lines.append(line[1:] if line.startswith(b".") else line)


def reference_lines(data: bytes, limit: int) -> list[bytes]:
    """The normalised message as lines, one simple rule at a time."""
    if not data:
        return []
    raw = data.split(b"\n")
    last = raw.pop()
    if last:
        raw.append(last)  # an unterminated last line (CRs at its end end it)
    lines = []
    for line in raw:
        run = len(line) - len(line.rstrip(b"\r"))
        text = line[: len(line) - min(run, MAX_LINE_END_CRS)].replace(b"\r", b" ")
        if limit and len(text) > limit:
            pieces = [text[:limit]]
            rest = text[limit:]
            while rest:
                pieces.append(b" " + rest[: limit - 1])
                rest = rest[limit - 1 :]
            lines.extend(pieces)
        else:
            lines.append(text)
    return lines


def encode_split(data: bytes, cuts: list[int], options: EncoderOptions, framing: Framing) -> bytes:
    encoder = ContentEncoder(options, framing=framing)
    out = []
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        out.append(encoder.feed(data[start:cut]))
        start = cut
    out.append(encoder.feed(data[start:]))
    out.append(encoder.finish())
    return b"".join(out)


# Pieces that make line ends, dots and end-of-data look-alikes likely.
PIECES = st.sampled_from(
    [
        b"\r",
        b"\n",
        b".",
        b"\r\n",
        b"\r\n.\r\n",
        b"\n.\n",
        b"\r.\r",
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r\r\n",
        b"..",
        b" ",
        b"x",
        b"yz",
        b"\xe9",
        b"\x00",
        b"MAIL FROM:<evil@example>",
        b"\r" * (MAX_LINE_END_CRS + 3),
    ]
)
MESSAGES = st.lists(PIECES | st.binary(max_size=6), max_size=40).map(b"".join)
CUTS = st.lists(st.integers(min_value=0, max_value=3000), max_size=6)
LIMITS = st.sampled_from([0, 2, 3, 5, 998])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=MESSAGES, cuts=CUTS, limit=LIMITS)
def test_one_end_of_data_and_exact_content(data: bytes, cuts: list[int], limit: int) -> None:
    options = EncoderOptions(line_length_limit=limit)
    out = encode_split(data, cuts, options, Framing.DATA)
    lines, consumed = strict_read(out)
    assert consumed == len(out), "end of data before the end of the output"
    assert lines == reference_lines(data, limit)
    # The DATA command's CRLF precedes the content: exactly one CRLF.CRLF.
    assert (b"\r\n" + out).count(EOD) == 1
    assert out.count(b"\r") == out.count(b"\n") == out.count(b"\r\n")
    if limit:
        assert all(len(line) <= limit for line in lines)


@settings(max_examples=200, deadline=None)
@given(data=MESSAGES, cuts=CUTS, limit=LIMITS)
def test_bdat_content_is_the_same_text_without_stuffing(
    data: bytes, cuts: list[int], limit: int
) -> None:
    options = EncoderOptions(line_length_limit=limit)
    out = encode_split(data, cuts, options, Framing.BDAT)
    expected = reference_lines(data, limit)
    assert out == b"".join(line + b"\r\n" for line in expected)


MIME_PIECES = st.sampled_from(
    [
        b"Content-Type: multipart/mixed; boundary=b\n",
        b"Content-Type: message/rfc822\n",
        b"Content-Transfer-Encoding: 8bit\n",
        b"Content-Transfer-Encoding: 8bit\r\n",
        b"--b\n",
        b"--b--\n",
        b"\n",
        b"\r\n.\r\n",
        b".\n",
        b"\r",
        b" =\t\n",
        b"\xe9\xe9\xe9",
        b"x" * 80,
        b"Subject: s\n",
        b" folded\n",
    ]
)
MIME_MESSAGES = st.lists(MIME_PIECES | st.binary(max_size=4), max_size=30).map(b"".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=MIME_MESSAGES, cuts=CUTS, limit=LIMITS)
def test_downgrade_keeps_one_end_of_data_and_split_independence(
    data: bytes, cuts: list[int], limit: int
) -> None:
    options = EncoderOptions(line_length_limit=limit, downgrade_8bit=True)
    out = encode_split(data, cuts, options, Framing.DATA)
    assert out == encode_split(data, [], options, Framing.DATA)
    lines, consumed = strict_read(out)
    assert consumed == len(out)
    assert (b"\r\n" + out).count(EOD) == 1
    if limit:
        assert all(len(line) <= limit for line in lines)
