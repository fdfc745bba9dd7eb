"""Real peer servers for integration tests (see docs/testing.md and PEERS.md).

Each peer lives in its own module (``sink.py``, ``postfix.py``, ``dovecot.py``,
``dns.py`` ...) and exposes a session-scoped pytest fixture. This module holds
what they share: finding binaries, starting a foreground process, waiting for
readiness, stopping it by PID, and the skip-or-fail rule:

* without the peer's binary a test *skips* with a reason;
* with ``PYFIX_REQUIRE_PEERS=1`` (CI) a missing or broken peer *fails*.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

SBIN_DIRS = ("/usr/sbin", "/usr/bin", "/usr/lib/postfix/sbin", "/sbin")


def peers_required() -> bool:
    """True when CI demands that every peer really runs."""
    return os.environ.get("PYFIX_REQUIRE_PEERS", "") not in ("", "0", "no")


def require_peer(reason: str) -> None:
    """Skip the current test (or fail it under PYFIX_REQUIRE_PEERS=1)."""
    if peers_required():
        pytest.fail(f"required peer unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def find_binary(name: str) -> str | None:
    """Locate a peer binary in PATH or the usual sbin directories."""
    found = shutil.which(name)
    if found:
        return found
    for directory in SBIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def binary_or_skip(name: str) -> str:
    """Return the path of *name*, or skip/fail the test when it is missing."""
    path = find_binary(name)
    if path is None:
        require_peer(f"{name} is not installed (run scripts/install-peers.sh as root)")
        raise AssertionError("unreachable")
    return path


def is_root() -> bool:
    return os.geteuid() == 0


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when a TCP connect to host:port succeeds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for ad-hoc servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(
    ready: Callable[[], bool], *, timeout: float, what: str, proc: subprocess.Popen[bytes] | None
) -> None:
    """Poll *ready* until it is true; fail with the process output otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"{what} exited with {proc.returncode} before ready: {out}")
        time.sleep(0.01)
    raise RuntimeError(f"{what} not ready after {timeout} s")


@dataclass
class Process:
    """A foreground peer process started by a fixture."""

    name: str
    popen: subprocess.Popen[bytes]
    pid_file: Path | None = None  # when the real daemon PID differs from popen.pid

    def stop(self, timeout: float = 10.0) -> None:
        """Stop by PID (SIGTERM, then SIGKILL) and reap the Popen child."""
        pid = self.popen.pid
        if self.pid_file is not None:
            with contextlib.suppress(OSError, ValueError):
                pid = int(self.pid_file.read_text().split()[0])
        for target in {pid, self.popen.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=timeout)


def start_process(
    name: str,
    argv: Sequence[str],
    *,
    ready: Callable[[], bool],
    timeout: float = 15.0,
    cwd: Path | None = None,
    pid_file: Path | None = None,
    env: dict[str, str] | None = None,
) -> Process:
    """Start *argv* in the foreground and wait until *ready* says so."""
    popen = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=env,
    )
    proc = Process(name, popen, pid_file)
    try:
        wait_until(ready, timeout=timeout, what=name, proc=popen)
    except Exception:
        proc.stop()
        raise
    return proc


@contextlib.contextmanager
def running(
    name: str, argv: Sequence[str], *, ready: Callable[[], bool], **kwargs: object
) -> Iterator[Process]:
    """Context manager form of :func:`start_process` that always stops the peer."""
    proc = start_process(name, argv, ready=ready, **kwargs)  # type: ignore[arg-type]
    try:
        yield proc
    finally:
        proc.stop()
