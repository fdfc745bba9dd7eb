"""Benchmark: the content encoder against smtplib's equivalent step (issue 8, scenario 5).

What is measured, on the same generated message (default 50 MiB of text
lines of 0-120 octets, some starting with "."), each run in a fresh process:

* ``smtplib-str``: what ``smtplib.SMTP.sendmail()`` does to a ``str``
  message before sending: ``_fix_eols()`` (line ends to CRLF),
  ``.encode("ascii")``, ``_quote_periods()`` and the ``CRLF . CRLF`` end.
  This is smtplib's CRLF fix + dot quoting, the baseline of the target.
* ``smtplib-bytes``: smtplib's path for a ``bytes`` message: only
  ``_quote_periods()`` and the end. It does no line-end clean-up at all
  (bare LF and CR reach the wire), so it does less work than the encoder.
* ``pyfix-bytes``: ``encode_data(message_bytes)`` consumed chunk by chunk
  (line ends, stray CRs, 998-octet cuts, dot-stuffing, end).
* ``pyfix-file``: the same, streamed from the file in 64 KiB reads.

Each figure is the median, min and max of ``--runs`` runs. Memory: the
peak of Python allocations during the step (tracemalloc, measured in a
separate pass because tracing slows allocation-heavy code) and the child's
peak RSS (``ru_maxrss``, which includes the input when it is held in memory).

Usage::

    python benchmarks/bench_encoder.py               # 50 MiB, 5 runs, CRLF and LF input
    python benchmarks/bench_encoder.py --smoke       # 2 MiB, 3 runs (CI)
    python benchmarks/bench_encoder.py --profile     # where pyfix-bytes spends its time
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import resource
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyfix_smtp.protocol.content import encode_data

MiB = 1024 * 1024
CLIENTS = ("smtplib-str", "smtplib-bytes", "pyfix-bytes", "pyfix-file")
WORDS = [b"lorem", b"ipsum", b"dolor", b"sit", b"amet,", b"consectetur", b"adipiscing", b"elit."]


def generate(path: Path, size: int, line_end: bytes) -> None:
    """Write a deterministic text message of about ``size`` octets."""
    rng = random.Random(5321)
    lines = [b"From: bench@example.org", b"To: sink@example.net", b"Subject: encoder", b""]
    for _ in range(20000):
        words = rng.randint(0, 18)
        line = b" ".join(rng.choice(WORDS) for _ in range(words))
        if rng.random() < 0.02:
            line = b"." + line  # needs dot-stuffing
        lines.append(line)
    block = line_end.join(lines[4:]) + line_end
    head = line_end.join(lines[:4]) + line_end
    with path.open("wb") as f:
        f.write(head)
        written = len(head)
        while written < size:
            piece = block[: size - written]
            f.write(piece)
            written += len(piece)
    if not block.endswith(line_end):
        with path.open("ab") as f:
            f.write(line_end)


def smtplib_str_step(text: str) -> int:
    """smtplib.SMTP.sendmail() + data() for a str message (Python 3.11)."""
    msg = smtplib._fix_eols(text).encode("ascii")  # type: ignore[attr-defined]
    q = smtplib._quote_periods(msg)  # type: ignore[attr-defined]
    if q[-2:] != smtplib.bCRLF:
        q = q + smtplib.bCRLF
    q = q + b"." + smtplib.bCRLF
    return len(q)


def smtplib_bytes_step(data: bytes) -> int:
    """smtplib.SMTP.data() for a bytes message."""
    q = smtplib._quote_periods(data)  # type: ignore[attr-defined]
    if q[-2:] != smtplib.bCRLF:
        q = q + smtplib.bCRLF
    q = q + b"." + smtplib.bCRLF
    return len(q)


def pyfix_step(content: object) -> int:
    size = 0
    for chunk in encode_data(content):  # type: ignore[arg-type]
        size += len(chunk)
    return size


def child(client: str, path: Path) -> dict[str, float]:
    """One run in this (fresh) process: time, then traced peak, then RSS."""
    step: Callable[[], int]
    if client == "smtplib-str":
        text = path.read_bytes().decode("ascii")
        step = lambda: smtplib_str_step(text)  # noqa: E731
    elif client == "smtplib-bytes":
        data = path.read_bytes()
        step = lambda: smtplib_bytes_step(data)  # noqa: E731
    elif client == "pyfix-bytes":
        data = path.read_bytes()
        step = lambda: pyfix_step(data)  # noqa: E731
    elif client == "pyfix-file":

        def step() -> int:
            with path.open("rb") as f:
                return pyfix_step(f)

    else:
        raise SystemExit(f"unknown client {client}")
    started = time.perf_counter()
    cpu_started = time.process_time()
    out = step()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    tracemalloc.start()
    step()
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "cpu": cpu, "out": out, "traced_peak": traced_peak, "rss": rss}


def run_child(client: str, path: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", client, "--file", str(path)]
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def fmt_mib(octets: float) -> str:
    return f"{octets / MiB:7.1f} MiB"


def bench(path: Path, runs: int, label: str) -> dict[str, float]:
    size = path.stat().st_size
    print(f"\n## {label}: {size / MiB:.1f} MiB message, {runs} runs each (fresh processes)\n")
    print(
        f"{'client':14} {'MiB/s median':>12} {'min':>8} {'max':>8} "
        f"{'CPU s/MiB':>10} {'step peak':>12} {'peak RSS':>12}"
    )
    medians: dict[str, float] = {}
    for client in CLIENTS:
        results = [run_child(client, path) for _ in range(runs)]
        speeds = [size / MiB / r["seconds"] for r in results]
        cpu_per_mib = statistics.median(r["cpu"] for r in results) / (size / MiB)
        medians[client] = statistics.median(speeds)
        print(
            f"{client:14} {statistics.median(speeds):12.1f} {min(speeds):8.1f} {max(speeds):8.1f} "
            f"{cpu_per_mib * 1000:8.2f}ms "
            f"{fmt_mib(max(r['traced_peak'] for r in results)):>12} "
            f"{fmt_mib(max(r['rss'] for r in results)):>12}"
        )
    base = medians["smtplib-str"]
    ratio = medians["pyfix-bytes"] / base
    print(f"\nratio pyfix-bytes / smtplib-str   = {ratio:5.2f}x (target >= 2x)")
    print(f"ratio pyfix-file  / smtplib-str   = {medians['pyfix-file'] / base:5.2f}x")
    print(
        f"ratio pyfix-bytes / smtplib-bytes = "
        f"{medians['pyfix-bytes'] / medians['smtplib-bytes']:5.2f}x "
        "(smtplib-bytes skips the line-end clean-up)"
    )
    return medians


def profile(path: Path) -> None:
    data = path.read_bytes()
    profiler = cProfile.Profile()
    profiler.enable()
    pyfix_step(data)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=50, help="message size in MiB")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="2 MiB, 3 runs")
    parser.add_argument("--line-end", choices=["crlf", "lf", "both"], default="both")
    parser.add_argument("--profile", action="store_true", help="cProfile one pyfix-bytes run")
    parser.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.file)))
        return
    if args.smoke:
        args.size, args.runs = 2, 3
    print(f"# content encoder benchmark (Python {sys.version.split()[0]}, {os.uname().machine})")
    ends = {"crlf": [b"\r\n"], "lf": [b"\n"], "both": [b"\r\n", b"\n"]}[args.line_end]
    with tempfile.TemporaryDirectory() as tmp:
        for end in ends:
            label = "CRLF input" if end == b"\r\n" else "LF input"
            path = Path(tmp) / ("message-crlf.eml" if end == b"\r\n" else "message-lf.eml")
            generate(path, int(args.size * MiB), end)
            if args.profile:
                print(f"\n## profile, {label}")
                profile(path)
            else:
                bench(path, args.runs, label)


if __name__ == "__main__":
    main()
