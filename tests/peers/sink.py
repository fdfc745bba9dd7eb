"""Postfix smtp-sink: a fast SMTP/LMTP sink with scriptable faults (PEERS.md §1b).

``smtp_sink`` starts one plain sink per test session. ``sink_factory`` starts
extra sinks with their own flags (``-r RCPT``, ``-L``, ``-Q DATA`` ...) and
stops them when the session ends.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.peers import Process, binary_or_skip, free_port, is_root, port_open, start_process

SINK_HOSTNAME = "sink.example.test"


@dataclass
class Sink:
    """A running smtp-sink: where it listens and how it was started."""

    host: str
    port: int
    flags: tuple[str, ...]
    process: Process
    dump_dir: Path | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


@dataclass
class SinkFactory:
    """Starts smtp-sink instances on demand; stops them all at the end."""

    binary: str
    tmp: Path
    started: list[Sink] = field(default_factory=list)
    dump_dirs: list[Path] = field(default_factory=list)

    def start(
        self,
        flags: Sequence[str] = (),
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        dump: bool = False,
        backlog: int = 64,
    ) -> Sink:
        """Start ``smtp-sink [flags] host:port backlog`` and wait until it accepts."""
        port = port if port is not None else free_port(host)
        argv = [self.binary]
        if is_root():
            argv += ["-u", "nobody"]  # as root smtp-sink refuses to run without -u
        argv += ["-h", SINK_HOSTNAME, *flags]
        dump_dir: Path | None = None
        if dump:
            # smtp-sink exits if the -u user cannot write here, and pytest's
            # temporary directories are mode 0700: use a world-writable
            # directory directly under the system temporary directory.
            dump_dir = Path(tempfile.mkdtemp(prefix=f"pyfix-sink-{port}-"))
            dump_dir.chmod(0o777)
            self.dump_dirs.append(dump_dir)
            argv += ["-d", str(dump_dir / "%Y%m%d%H/%M.")]
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        argv += [bind, str(backlog)]
        proc = start_process(
            f"smtp-sink {' '.join(flags)}", argv, ready=lambda: port_open(host, port)
        )
        sink = Sink(host, port, tuple(flags), proc, dump_dir)
        self.started.append(sink)
        return sink

    def stop_all(self) -> None:
        while self.started:
            self.started.pop().process.stop()
        while self.dump_dirs:
            shutil.rmtree(self.dump_dirs.pop(), ignore_errors=True)


@pytest.fixture(scope="session")
def sink_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SinkFactory]:
    """Start smtp-sink instances with custom flags; all stopped at session end."""
    factory = SinkFactory(binary_or_skip("smtp-sink"), tmp_path_factory.mktemp("sink"))
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="session")
def smtp_sink(sink_factory: SinkFactory) -> Sink:
    """One plain smtp-sink (PIPELINING, 8BITMIME, DSN ... all offered)."""
    return sink_factory.start()
