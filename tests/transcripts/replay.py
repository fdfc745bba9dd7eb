"""Replay a transcript of (direction, bytes) steps against ``ClientConnection``.

A transcript alternates ``S`` steps (what the server sent in one go) and
``C`` steps (what the client wrote before it needed the next server bytes).
:func:`replay` feeds each ``S`` step whole, byte by byte or in random
chunks, lets a *driver* react to events the way a real caller would, and
checks that every ``C`` step is exactly what the client produced in between.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pyfix_smtp.protocol.connection import ClientConnection
from pyfix_smtp.protocol.events import NEED_DATA, Closed, Event

Step = tuple[str, bytes]


class Hangup:
    """Returned by a driver that closes the connection now (no QUIT)."""


HANGUP = Hangup()
Driver = Callable[[ClientConnection, Event], "bytes | Hangup | None"]

POSTFIX_DIR = Path(__file__).resolve().parent / "postfix"


@dataclass
class Replayed:
    """What happened during a replay."""

    events: list[Event] = field(default_factory=list)
    groups: list[bytes] = field(default_factory=list)  # client output per C step
    leftover: bytes = b""  # client output after the last C step

    def of(self, kind: type[Event]) -> list[Event]:
        """The events of one type, in order."""
        return [e for e in self.events if isinstance(e, kind)]


def split_pieces(data: bytes, split: str | int, rng: random.Random) -> Iterator[bytes]:
    """Cut *data*: ``"whole"``, ``"bytes"`` (one octet each) or random chunks."""
    if split == "whole" or not data:
        yield data
        return
    if split == "bytes":
        for i in range(len(data)):
            yield data[i : i + 1]
        return
    pos = 0
    while pos < len(data):
        n = rng.randint(1, max(1, len(data) - pos))
        yield data[pos : pos + n]
        pos += n


def replay(
    steps: list[Step],
    conn: ClientConnection,
    driver: Driver,
    *,
    split: str | int = "whole",
    seed: int = 0,
    eof_at_end: bool = True,
    max_events: int = 10000,
) -> Replayed:
    """Run *conn* against the server side of *steps*; assert the client side.

    Raises:
        AssertionError: the client wrote something else than a ``C`` step
            says, wrote too little, or left steps unused.
    """
    rng = random.Random(seed)
    result = Replayed()
    out = bytearray()
    index = 0
    pieces: Iterator[bytes] = iter(())

    def check_c_step() -> None:
        nonlocal index
        if index < len(steps) and steps[index][0] == "C":
            expected = steps[index][1]
            assert bytes(out) == expected, (
                f"client step {index} differs:\n got:      {bytes(out)!r}\n expected: {expected!r}"
            )
            result.groups.append(bytes(out))
            out.clear()
            index += 1

    for _ in range(max_events):
        event = conn.next_event()
        if event is NEED_DATA:
            out += conn.data_to_send()
            piece = next(pieces, None)
            if piece is not None:
                conn.receive_data(piece)
                continue
            check_c_step()
            if index < len(steps):
                direction, data = steps[index]
                assert direction == "S", f"step {index}: client was expected to write {data!r}"
                index += 1
                pieces = split_pieces(data, split, rng)
                continue
            if eof_at_end:
                conn.receive_data(b"")
                eof_at_end = False
                continue
            break
        result.events.append(event)
        if isinstance(event, Closed):
            out += conn.data_to_send()
            break
        written = driver(conn, event)
        if isinstance(written, Hangup):
            out += conn.data_to_send()
            break
        if written:
            out += written
    else:  # pragma: no cover - runaway loop
        raise AssertionError("too many events")
    check_c_step()
    assert index == len(steps) or all(d == "S" for d, _ in steps[index:]), (
        f"unused client steps from {index}: {steps[index:]!r}"
    )
    result.leftover = bytes(out)
    return result


def load_postfix(name: str) -> dict[str, object]:
    """Load a captured Postfix transcript (see capture_postfix.py)."""
    data: dict[str, object] = json.loads((POSTFIX_DIR / f"{name}.json").read_text())
    return data


def postfix_steps(record: dict[str, object]) -> list[Step]:
    """The steps of a captured transcript as bytes."""
    raw = record["steps"]
    assert isinstance(raw, list)
    return [(d, t.encode("utf-8", "surrogateescape")) for d, t in raw]
