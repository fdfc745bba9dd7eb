"""Measure one run in a fresh process, and summarise repeated runs.

:func:`measure` starts a child, reaps it with ``os.wait4`` (so the resource
usage is that child's alone, not every child's as ``RUSAGE_CHILDREN`` would
mix them) and returns its wall time, CPU time and peak RSS. Python workers also
print their own timing of the measured section (``perf_counter`` and
``process_time`` around the client's work, without interpreter start-up and
imports); when present, those are used for rates and CPU per message.

Peak RSS: Linux's ``ru_maxrss`` of a child includes the RSS its parent had
when it forked (the kernel carries the old memory's high-water mark across
``exec``), so every child would show the orchestrator's own ~30 MiB. The peak
of the child's own memory is ``VmHWM`` in ``/proc/PID/status``: Python workers
read their own at the end (:func:`own_peak_rss_kib`); for other programs
(smtp-source) :func:`measure` samples it every few milliseconds while the
child runs (it only grows, so the last sample is the peak up to then).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.cpus import on


@dataclass(frozen=True)
class Measured:
    """What the parent saw of one child process."""

    returncode: int
    wall: float  # seconds from spawn to exit
    cpu: float  # user + system seconds of the child (and its own children)
    maxrss_kib: int  # peak resident set size, KiB (VmHWM sampled; ru_maxrss if unavailable)
    stdout: bytes
    stderr: bytes


def peak_rss_kib(pid: int | str) -> int | None:
    """``VmHWM`` of process *pid* (``"self"`` for this one) in KiB, if readable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def own_peak_rss_kib() -> int | None:
    """This process's peak RSS since it started (not inherited from its parent)."""
    return peak_rss_kib("self")


class _PeakSampler(threading.Thread):
    """Samples a child's VmHWM until told to stop."""

    def __init__(self, pid: int, interval: float = 0.003) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak: int | None = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            value = peak_rss_kib(self.pid)
            if value is not None:
                self.peak = max(value, self.peak or 0)
            self.done.wait(self.interval)


def measure(
    argv: Sequence[str],
    *,
    timeout: float = 600.0,
    env: dict[str, str] | None = None,
    cpus: frozenset[int] | None = None,
) -> Measured:
    """Run *argv* (on *cpus*, if given) to completion and return its own resource usage."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        with on(cpus):
            popen = subprocess.Popen(
                list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
            )
        killer = threading.Timer(timeout, popen.kill)  # a hung client must not hang the benchmark
        killer.start()
        sampler = _PeakSampler(popen.pid)
        sampler.start()
        try:
            _, status, usage = os.wait4(popen.pid, 0)
        finally:
            killer.cancel()
            sampler.done.set()
        sampler.join()
        wall = time.perf_counter() - start
        popen.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Measured(
            returncode=popen.returncode,
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            maxrss_kib=sampler.peak if sampler.peak is not None else usage.ru_maxrss,
            stdout=out.read(),
            stderr=err.read(),
        )


def last_json(output: bytes) -> dict[str, object] | None:
    """The last line of *output* that parses as a JSON object, if any."""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith(b"{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


@dataclass(frozen=True)
class Sample:
    """One successful run of one client.

    ``units`` is what the rate counts: messages, MiB, domains or (scenario 9)
    one import.
    """

    wall: float
    cpu: float
    maxrss_kib: int
    units: float
    accepted: int

    @property
    def rate(self) -> float:
        """Units per second of wall time."""
        return self.units / self.wall if self.wall > 0 else float("inf")

    @property
    def cpu_per_unit(self) -> float:
        """Client CPU seconds per unit."""
        return self.cpu / self.units if self.units else 0.0


@dataclass(frozen=True)
class Spread:
    """Median, minimum and maximum of one figure over the runs."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """Summarise *values* (at least one)."""
        if not values:
            raise ValueError("no values to summarise")
        return cls(statistics.median(values), min(values), max(values))

    def to_dict(self) -> dict[str, float]:
        """Plain data for results.json."""
        return {"median": self.median, "min": self.low, "max": self.high}


@dataclass(frozen=True)
class Summary:
    """All runs of one client in one scenario."""

    runs: int
    rate: Spread
    cpu_per_unit: Spread
    rss_mib: Spread
    wall: Spread

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> Summary:
        """Summarise successful samples."""
        return cls(
            runs=len(samples),
            rate=Spread.of([s.rate for s in samples]),
            cpu_per_unit=Spread.of([s.cpu_per_unit for s in samples]),
            rss_mib=Spread.of([s.maxrss_kib / 1024 for s in samples]),
            wall=Spread.of([s.wall for s in samples]),
        )

    def to_dict(self) -> dict[str, object]:
        """Plain data for results.json."""
        return {
            "runs": self.runs,
            "rate": self.rate.to_dict(),
            "cpu_per_unit": self.cpu_per_unit.to_dict(),
            "rss_mib": self.rss_mib.to_dict(),
            "wall": self.wall.to_dict(),
        }
