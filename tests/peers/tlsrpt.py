"""``tlsrpt-collectd`` (PyPI ``tlsrpt-reporter``): the TLSRPT datagram receiver.

sys4's reporter stores each datagram from libtlsrpt (or from us) in a
sqlite database: table ``finalresults`` (day, domain, tlsrptrecord, policy
JSON without the counters, cntrtotal, cntrfailure) and table ``failures``
(the same plus ``reason``, one failure-details entry as JSON, and cntr).
It lives in its own virtualenv, outside pyfix_smtp's dependencies
(``scripts/install-peers.sh``: ``.peers/tlsrpt-venv``); ``TLSRPT_COLLECTD``
names another binary.

``tlsrpt_collectd`` starts one per test on a temporary socket and database,
commits after every datagram, and stops it by PID (SIGTERM makes it commit
and remove its socket).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers import Process, find_binary, require_peer, start_process

VENV_BINARY = str(Path(__file__).parents[2] / ".peers/tlsrpt-venv/bin/tlsrpt-collectd")


def collectd_binary() -> str | None:
    """``$TLSRPT_COLLECTD``, the install script's venv, or ``tlsrpt-collectd`` in PATH."""
    for candidate in (os.environ.get("TLSRPT_COLLECTD", ""), VENV_BINARY):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return find_binary("tlsrpt-collectd")


@dataclass
class Collectd:
    """A running ``tlsrpt-collectd``: where to send, where it stores."""

    socket: Path
    database: Path
    log: Path
    process: Process

    def rows(self, table: str, want: int, timeout: float = 10.0) -> list[sqlite3.Row]:
        """The rows of ``finalresults`` or ``failures`` once there are *want* (or the timeout)."""
        if table not in ("finalresults", "failures"):
            raise ValueError(table)
        deadline = time.monotonic() + timeout
        rows: list[sqlite3.Row] = []
        while True:
            if self.database.exists():
                with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
                    db.row_factory = sqlite3.Row
                    try:
                        rows = list(db.execute(f"SELECT * FROM {table} ORDER BY rowid"))
                    except sqlite3.OperationalError:
                        rows = []
            if len(rows) >= want or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


@pytest.fixture
def tlsrpt_collectd(tmp_path: Path) -> Iterator[Collectd]:
    """``tlsrpt-collectd`` on a temporary socket and sqlite database."""
    binary = collectd_binary()
    if binary is None:
        require_peer("tlsrpt-collectd is not installed (run scripts/install-peers.sh as root)")
        raise AssertionError("unreachable")
    sock, database, log = tmp_path / "tlsrpt.sock", tmp_path / "collectd.sqlite", tmp_path / "log"
    cfg = tmp_path / "collectd.cfg"
    cfg.write_text("[tlsrpt_collectd]\n")  # an empty file of ours, not /etc/tlsrpt/collectd.cfg
    argv = [
        binary,
        "--config_file",
        str(cfg),
        "--socketname",
        str(sock),
        "--storage",
        f"sqlite://{database}",
        "--max_uncommited_datagrams",
        "1",  # commit each datagram: tests read the database at once
        "--sockettimeout",
        "1",
        "--pidfilename",
        "",
        "--logfilename",
        str(log),
        "--log_level",
        "debug",
    ]
    try:
        proc = start_process("tlsrpt-collectd", argv, ready=sock.exists, timeout=15.0)
    except RuntimeError as exc:
        require_peer(f"tlsrpt-collectd did not start: {exc}")
        raise AssertionError("unreachable") from exc
    try:
        yield Collectd(sock, database, log, proc)
    finally:
        proc.stop()
