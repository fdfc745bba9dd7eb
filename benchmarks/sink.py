"""Start and stop Postfix ``smtp-sink`` on loopback, and count what it received.

Each measured run gets a fresh sink on a free port, started with ``-c`` so it
prints running counters (``sess=N quit=N mesg=N``, updated at every ``.``); the
last counter after the run says how many messages really arrived, so a client
that only pretends to deliver is caught. As root the sink needs ``-u nobody``
(PEERS.md §1b).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SBIN_DIRS = ("/usr/sbin", "/usr/bin", "/usr/lib/postfix/sbin", "/sbin")
SINK_HOSTNAME = "sink.example.test"
_COUNTERS = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)")


def find_binary(name: str) -> str | None:
    """Locate a program in PATH or the usual sbin directories."""
    found = shutil.which(name)
    if found:
        return found
    for directory in SBIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody listens on right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when a TCP connect to host:port succeeds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except OSError:
            return False
        return True


def stop_process(popen: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process we started (by its PID), then SIGKILL; always reap it."""
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(popen.pid, signal.SIGTERM)
    try:
        popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(popen.pid, signal.SIGKILL)
        popen.wait(timeout=timeout)


@dataclass(frozen=True)
class Counts:
    """smtp-sink's counters at the end of a run."""

    sessions: int
    quits: int
    messages: int


def parse_counts(output: bytes) -> Counts:
    """The last ``sess= quit= mesg=`` counter line of ``smtp-sink -c`` output."""
    found = _COUNTERS.findall(output)
    if not found:
        return Counts(0, 0, 0)
    sess, quit_, mesg = found[-1]
    return Counts(int(sess), int(quit_), int(mesg))


class Sink:
    """One running ``smtp-sink -c`` process (use :func:`running_sink`)."""

    def __init__(
        self,
        binary: str,
        *,
        lmtp: bool = False,
        flags: Sequence[str] = (),
        host: str = "127.0.0.1",
        backlog: int = 256,
        workdir: Path | None = None,
        dump: bool = False,
    ) -> None:
        self.host = host
        self.port = free_port(host)
        self._dir = Path(tempfile.mkdtemp(prefix="sink-", dir=workdir))
        self._out_path = self._dir / "counters.out"
        self.dump_dir: Path | None = None
        argv = [binary]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]  # PEERS.md §1b: as root smtp-sink refuses to run without -u
        argv += ["-4", "-c", "-h", SINK_HOSTNAME]
        if lmtp:
            argv.append("-L")
        if dump:
            # PEERS.md §1b: the sink exits when the -u user cannot write the dump,
            # so the directory must be reachable by nobody: directly under the
            # system temp dir (pytest's and our work dirs are mode 0700).
            self.dump_dir = Path(tempfile.mkdtemp(prefix="sink-dump-"))
            self.dump_dir.chmod(0o777)
            argv += ["-d", f"{self.dump_dir}/%H%M%S."]
        argv += [*flags, f"{host}:{self.port}", str(backlog)]
        self.argv = argv
        self._out = self._out_path.open("wb")
        self.popen = subprocess.Popen(
            argv, stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10.0
        while not port_open(host, self.port):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"smtp-sink did not start: {self.output().decode(errors='replace')}"
                )
            time.sleep(0.005)

    def output(self) -> bytes:
        """Everything the sink printed so far."""
        return self._out_path.read_bytes() if self._out_path.exists() else b""

    def counts(self) -> Counts:
        """The sink's counters now (minus the readiness probe's empty session)."""
        return parse_counts(self.output())

    def wait_for_messages(self, expected: int, timeout: float = 5.0) -> Counts:
        """Wait until the sink counted *expected* messages (or *timeout*); return the counts."""
        deadline = time.monotonic() + timeout
        counts = self.counts()
        while counts.messages < expected and time.monotonic() < deadline:
            time.sleep(0.01)
            counts = self.counts()
        return counts

    def dumps(self) -> list[bytes]:
        """The messages dumped so far (``dump=True``), oldest file name first."""
        if self.dump_dir is None:
            return []
        return [p.read_bytes() for p in sorted(self.dump_dir.rglob("*")) if p.is_file()]

    def stop(self) -> None:
        """Stop the sink and remove its files."""
        stop_process(self.popen)
        self._out.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        if self.dump_dir is not None:
            shutil.rmtree(self.dump_dir, ignore_errors=True)


@contextlib.contextmanager
def running_sink(
    binary: str,
    *,
    lmtp: bool = False,
    flags: Sequence[str] = (),
    workdir: Path | None = None,
    dump: bool = False,
) -> Iterator[Sink]:
    """A fresh smtp-sink for the duration of the ``with`` block."""
    sink = Sink(binary, lmtp=lmtp, flags=flags, workdir=workdir, dump=dump)
    try:
        yield sink
    finally:
        sink.stop()
