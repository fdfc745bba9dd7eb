"""What one measured run does (:class:`Job`) and the messages it sends.

A :class:`Job` is plain data: the orchestrator builds it, passes it as JSON to a
fresh worker process, and the client module under test runs it.

Every message exists twice, written once per benchmark run by
:func:`write_messages`, with the same bytes on the wire:

* with CRLF line ends (``Job.message_path``), for the Python clients: what
  SMTP wants, so no client does a line-end conversion the others skip
  (smtplib sends bytes unmodified; aiosmtplib and pyfix_smtp normalise);
* with LF line ends (``Job.lf_message_path``), for ``smtp-source -F``, which
  reads lines and appends CRLF itself (a CR in the file would be doubled).

Both need dot-stuffing: some lines start with ".".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

SENDER = "sender@example.test"
HELO_NAME = "client.example.test"
MESSAGE_SIZE = 2048  # the 2 KiB message
MIB = 1024 * 1024


class Unavailable(Exception):
    """The client cannot run this job (yet); the run is reported as n/a, not as a failure."""


def recipients(count: int) -> tuple[str, ...]:
    """*count* distinct recipients at ``example.test``."""
    if count == 1:
        return ("rcpt@example.test",)
    return tuple(f"rcpt{i}@example.test" for i in range(1, count + 1))


@dataclass(frozen=True)
class Job:
    """One measured run of one client.

    Attributes:
        scenario: the scenario number as text (``"1"`` ... ``"9"``).
        kind: ``"smtp"`` (deliver messages) or ``"dns"`` (plan domains).
        host, port: the smtp-sink's address.
        protocol: ``"smtp"`` or ``"lmtp"``.
        messages: messages to deliver in total.
        connections: concurrent connections (for DNS jobs: concurrent lookups).
        reuse: keep a connection for the next message (False: one connection
            per message, closed with QUIT).
        sender, recipients: the envelope of every message.
        message_path: the message file with CRLF line ends (Python clients).
        lf_message_path: the same message with LF line ends (smtp-source).
        stream: read the content from *message_path* for every delivery
            instead of loading it once (scenario 4, the 50 MiB message).
        dns_port: the recursive resolver's port on 127.0.0.1 (DNS jobs).
        domains: the domains to plan (DNS jobs).
    """

    scenario: str
    kind: str = "smtp"
    host: str = "127.0.0.1"
    port: int = 0
    protocol: str = "smtp"
    messages: int = 0
    connections: int = 1
    reuse: bool = True
    sender: str = SENDER
    recipients: tuple[str, ...] = ("rcpt@example.test",)
    message_path: str = ""
    lf_message_path: str = ""
    stream: bool = False
    helo: str = HELO_NAME
    dns_port: int = 0
    domains: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in ("smtp", "dns"):
            raise ValueError(f"job kind must be smtp or dns, not {self.kind!r}")
        if self.protocol not in ("smtp", "lmtp"):
            raise ValueError(f"protocol must be smtp or lmtp, not {self.protocol!r}")
        if self.connections < 1:
            raise ValueError(f"connections must be at least 1, not {self.connections}")

    @property
    def expected(self) -> int:
        """How many messages (or domains) a correct run gets accepted."""
        return len(self.domains) if self.kind == "dns" else self.messages

    def to_json(self) -> str:
        """Serialise for the worker's command line."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        data["recipients"] = tuple(data["recipients"])
        data["domains"] = tuple(data["domains"])
        return cls(**data)

    def load_message(self) -> bytes:
        """The message as bytes (what smtplib and aiosmtplib are given)."""
        return Path(self.message_path).read_bytes()

    def share(self, connection: int) -> int:
        """How many of the messages connection number *connection* sends."""
        base, extra = divmod(self.messages, self.connections)
        return base + (1 if connection < extra else 0)


def _body_line(number: int, width: int) -> bytes:
    text = f"{number:06d} The quick brown fox jumps over the lazy dog; pack my box with jugs "
    return (text * (width // len(text) + 1))[:width].encode("ascii")


def message_bytes(size: int = MESSAGE_SIZE) -> bytes:
    """A plain-text message of exactly *size* bytes with LF line ends.

    One body line starts with ``.`` so dot-stuffing is exercised.
    """
    header = (
        "From: Bench Sender <sender@example.test>\n"
        "To: <rcpt@example.test>\n"
        "Subject: pyfix_smtp benchmark message\n"
        "Date: Mon, 01 Jan 2024 00:00:00 +0000\n"
        "Message-ID: <bench-message@example.test>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
    ).encode("ascii")
    lines = [header, b".A line that starts with a dot.\n"]
    total = sum(len(x) for x in lines)
    number = 0
    while total < size:
        line = _body_line(number, 72) + b"\n"
        lines.append(line)
        total += len(line)
        number += 1
    data = b"".join(lines)[: size - 1] + b"\n"
    if len(data) != size:
        raise ValueError(f"cannot build a {size}-byte message")
    return data


def write_message(path: Path, size: int = MESSAGE_SIZE) -> Path:
    """Write :func:`message_bytes` (LF line ends) to *path*."""
    path.write_bytes(message_bytes(size))
    return path


def write_crlf_copy(source: Path, target: Path) -> Path:
    """Copy the LF file *source* to *target* with CRLF line ends, 1 MiB at a time."""
    with source.open("rb") as src, target.open("wb") as out:
        while chunk := src.read(MIB):
            out.write(chunk.replace(b"\n", b"\r\n"))
    return target


def write_messages(directory: Path, big: int = 0) -> tuple[Path, Path]:
    """Write the 2 KiB message (or, with *big*, a message of *big* bytes with
    LF line ends) in both forms; return (CRLF path, LF path)."""
    if big:
        lf = write_big_message(directory / f"message-{big}.lf.eml", big)
    else:
        lf = write_message(directory / "message-2k.lf.eml")
    return write_crlf_copy(lf, lf.with_name(lf.name.replace(".lf.", ".crlf."))), lf


def write_big_message(path: Path, size: int) -> Path:
    """Write a message of exactly *size* bytes: headers, then 77-byte LF lines.

    Every 100th body line starts with ``.``. Written in 1 MiB blocks, so the
    writer never holds the whole message.
    """
    head = message_bytes(MESSAGE_SIZE)
    block = b"".join(
        (b"." if i % 100 == 0 else b"") + _body_line(i, 76 if i % 100 else 75) + b"\n"
        for i in range(100)
    )
    repeat = block * (MIB // len(block) + 1)
    with path.open("wb") as out:
        out.write(head)
        left = size - len(head)
        while left > 0:
            chunk = repeat[: min(left, len(repeat) - len(repeat) % len(block))]
            out.write(chunk)
            left -= len(chunk)
    # End on a line end, as a mail file does.
    with path.open("r+b") as out:
        out.seek(size - 1)
        out.write(b"\n")
    return path
