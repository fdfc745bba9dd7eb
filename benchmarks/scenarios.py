"""The scenarios of issue 8, their clients, sizes (full and smoke) and targets.

Client names: ``smtp-source`` is Postfix's C client run directly; the others
are runners of :mod:`benchmarks.worker` (``smtplib``, ``aiosmtplib``,
``dnspython-loop``, ``dnspython-gather``, ``pyfix-*``); scenario 9 imports a
module by name. Every client whose name starts with ``pyfix`` is compared with
every other client of its scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.workload import MIB


@dataclass(frozen=True)
class Target:
    """A target of the issue: *client* against *peer* on one figure.

    ``metric``: ``"rate"`` (client rate / peer rate >= value), ``"cpu"``
    (client CPU per unit / peer's <= value) or ``"rss"`` (client peak RSS
    in MiB <= value; no peer).
    """

    client: str
    metric: str
    value: float
    peer: str | None = None

    def describe(self) -> str:
        """The target as the issue states it."""
        if self.metric == "rate":
            return f"{self.client} >= {self.value:g}x {self.peer} (rate)"
        if self.metric == "cpu":
            return f"{self.client} CPU/unit <= {self.value:g}x {self.peer}"
        return f"{self.client} peak RSS <= {self.value:g} MiB"


@dataclass(frozen=True)
class Scenario:
    """One scenario: what is sent, by whom, how much (full and smoke)."""

    number: str
    title: str
    kind: str  # "smtp", "dns", "import" or "external"
    clients: tuple[str, ...]
    count: int = 0  # messages (smtp), domains (dns)
    smoke_count: int = 0
    connections: int = 1
    reuse: bool = True
    protocol: str = "smtp"
    recipients: int = 1
    upstream_delay: float = 0.0  # DNS: seconds added between unbound and NSD
    size: int = 0  # bytes of a big streamed message (scenario 4); 0 = the 2 KiB message
    smoke_size: int = 0
    unit: str = "msg"
    targets: tuple[Target, ...] = field(default=())

    def messages(self, smoke: bool) -> int:
        """Messages (or domains) for this mode."""
        return self.smoke_count if smoke else self.count

    def big_size(self, smoke: bool) -> int:
        """Size of the big message for this mode (0: the 2 KiB message)."""
        return self.smoke_size if smoke else self.size


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "1",
        "One connection, 2000 messages in sequence",
        "smtp",
        ("pyfix-sync", "smtplib", "smtp-source"),
        count=2000,
        smoke_count=20,
        targets=(Target("pyfix-sync", "rate", 1.0, "smtp-source"),),
    ),
    Scenario(
        "2",
        "20 concurrent connections, 2000 messages",
        "smtp",
        ("pyfix-async", "aiosmtplib", "smtp-source"),
        count=2000,
        smoke_count=40,
        connections=20,
        targets=(
            Target("pyfix-async", "rate", 3.0, "aiosmtplib"),
            Target("pyfix-async", "rate", 0.6, "smtp-source"),
        ),
    ),
    Scenario(
        "3",
        "New connection per message, 500 messages",
        "smtp",
        ("pyfix-sync", "smtplib", "smtp-source"),
        count=500,
        smoke_count=10,
        reuse=False,
        targets=(Target("pyfix-sync", "rate", 1.2, "smtplib"),),
    ),
    Scenario(
        "4",
        "One 50 MiB message streamed from a file",
        "smtp",
        ("pyfix-sync", "smtplib", "smtp-source"),
        count=1,
        smoke_count=1,
        size=50 * MIB,
        smoke_size=1 * MIB,
        unit="MiB",
        targets=(
            Target("pyfix-sync", "cpu", 0.5, "smtplib"),
            Target("pyfix-sync", "rss", 40.0),
        ),
    ),
    Scenario(
        "5",
        "Content encoder alone on 50 MiB (benchmarks/bench_encoder.py)",
        "external",
        (),
        unit="MiB",
        targets=(
            Target("pyfix-bytes [LF]", "rate", 2.0, "smtplib-str [LF]"),
            Target("pyfix-bytes [CRLF]", "rate", 2.0, "smtplib-str [CRLF]"),
        ),
    ),
    Scenario(
        "6",
        "10 recipients per message, 500 messages",
        "smtp",
        ("pyfix-sync", "smtplib", "smtp-source"),
        count=500,
        smoke_count=10,
        recipients=10,
    ),
    Scenario(
        "7",
        "LMTP, 2000 messages",
        "smtp",
        ("pyfix-sync", "smtplib", "smtp-source"),
        count=2000,
        smoke_count=20,
        protocol="lmtp",
    ),
    Scenario(
        "8",
        "DNS planning for 1000 domains (MX, then A) via local unbound",
        "dns",
        ("pyfix-dns-sync", "pyfix-dns-async", "dnspython-loop", "dnspython-gather"),
        count=1000,
        smoke_count=20,
        connections=100,
        unit="domain",
        targets=(Target("pyfix-dns-async", "rate", 5.0, "dnspython-loop"),),
    ),
    Scenario(
        "8b",
        "Scenario 8 with 2 ms between unbound and the authoritative server",
        "dns",
        ("pyfix-dns-sync", "pyfix-dns-async", "dnspython-loop", "dnspython-gather"),
        count=1000,
        smoke_count=20,
        connections=100,
        unit="domain",
        upstream_delay=0.002,
        targets=(Target("pyfix-dns-async", "rate", 5.0, "dnspython-loop"),),
    ),
    Scenario(
        "9",
        "Import time (python -X importtime)",
        "import",
        ("pyfix_smtp", "pyfix_smtp-deliver", "smtplib", "aiosmtplib"),
        unit="import",
    ),
)

BY_NUMBER = {s.number: s for s in SCENARIOS}


def is_pyfix(client: str) -> bool:
    """True for the clients under test (compared with every other client)."""
    return client.startswith("pyfix")
