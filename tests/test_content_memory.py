"""Memory stays flat in message size: the encoder holds one chunk, not the message.

Each test streams a large generated message through the encoder, reusing
the same input chunk objects, and checks the tracemalloc peak (all Python
allocations while encoding) against a small bound independent of the size.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

from pyfix_smtp.protocol.content import ContentEncoder, EncoderOptions, encode_bdat

MiB = 1024 * 1024
CHUNK = 64 * 1024


def repeat(chunk: bytes, total: int) -> Iterator[bytes]:
    for _ in range(total // len(chunk)):
        yield chunk


def peak_while_encoding(chunks: Iterator[bytes], options: EncoderOptions) -> tuple[int, int]:
    """(tracemalloc peak in octets, octets out) for encoding the chunks."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        encoder = ContentEncoder(options)
        size = 0
        for chunk in chunks:
            size += len(encoder.feed(chunk))
        size += len(encoder.finish())
        return tracemalloc.get_traced_memory()[1], size
    finally:
        tracemalloc.stop()


def text_chunk() -> bytes:
    lines = [b"Line %d of some text. .dot\r\n" % i for i in range(5000)]
    lines += [b".\n", b"bare lf\n", b"bare\rcr\r\n"]
    data = b"".join(lines)
    return (data * (CHUNK // len(data) + 1))[:CHUNK]


def test_200_mib_of_text_in_flat_memory() -> None:
    chunk = text_chunk()
    peak, size = peak_while_encoding(repeat(chunk, 200 * MiB), EncoderOptions())
    assert size > 200 * MiB
    assert peak < 1 * MiB, peak


def test_one_200_mib_line_in_flat_memory() -> None:
    chunk = b"x" * CHUNK
    peak, size = peak_while_encoding(repeat(chunk, 200 * MiB), EncoderOptions())
    assert size == 200 * MiB + (200 * MiB - 998) // 997 * 3 + 3 + 2 + 3
    assert peak < 1 * MiB, peak


def test_downgrade_of_one_long_8bit_line_in_flat_memory() -> None:
    header = b"Content-Transfer-Encoding: 8bit\n\n"
    chunk = bytes(range(128, 256)) * (CHUNK // 128)

    def chunks() -> Iterator[bytes]:
        yield header
        yield from repeat(chunk, 8 * MiB)

    peak, size = peak_while_encoding(chunks(), EncoderOptions(downgrade_8bit=True))
    assert size > 3 * 8 * MiB
    assert peak < 1 * MiB, peak


def test_downgrade_of_a_large_attachment_in_flat_memory() -> None:
    head = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: x/y\n\n"
    chunk = b"QUJDRA==" * (76 // 8) + b"\n"
    chunk = chunk * (CHUNK // len(chunk))

    def chunks() -> Iterator[bytes]:
        yield head
        yield from repeat(chunk, 100 * MiB)
        yield b"--b--\n"

    peak, size = peak_while_encoding(chunks(), EncoderOptions(downgrade_8bit=True))
    assert size > 100 * MiB
    assert peak < 1 * MiB, peak


def test_bdat_chunks_are_bounded() -> None:
    chunk = text_chunk()
    tracemalloc.start()
    try:
        biggest = 0
        for piece in encode_bdat(repeat(chunk, 50 * MiB), chunk_size=MiB):
            biggest = max(biggest, len(piece.data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert biggest < MiB + 2 * CHUNK
    assert peak < 4 * MiB, peak
