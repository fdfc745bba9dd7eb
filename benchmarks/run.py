"""Run the benchmarks: ``python -m benchmarks.run [--smoke] [--scenarios 1,2,...]``.

For every scenario, every client runs ``--runs`` times (interleaved: run 1 of
every client, then run 2 ..., so a change in background load hits all
clients alike), each time in a fresh process against a fresh smtp-sink (or a
freshly started unbound for scenario 8). After each run the sink's counters
must show every message; a client that falls short fails the benchmark
(exit status 1). Speed never fails it.

Writes ``results.md``, ``results.json`` and ``results.png`` to
``--output-dir`` (default ``benchmarks/``; with ``--smoke`` a temporary
directory unless given).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from benchmarks import cpus, report
from benchmarks.clients import smtp_source
from benchmarks.cpus import Placement
from benchmarks.dnslab import running_lab
from benchmarks.scenarios import BY_NUMBER, SCENARIOS, Scenario
from benchmarks.sink import Sink, find_binary, running_sink
from benchmarks.stats import Sample, Summary, last_json, measure
from benchmarks.workload import (
    MIB,
    Job,
    recipients,
    write_messages,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass
class ClientResult:
    """All runs of one client in one scenario."""

    client: str
    samples: list[Sample] = field(default_factory=list)
    status: str = "ok"  # "ok", "n/a" (not available yet) or "failed"
    note: str = ""

    @property
    def summary(self) -> Summary | None:
        """Median/min/max over the successful runs, if any."""
        if self.status != "ok" or not self.samples:
            return None
        return Summary.of(self.samples)


@dataclass
class ScenarioResult:
    """One scenario's outcome."""

    scenario: Scenario
    clients: list[ClientResult] = field(default_factory=list)
    setup: str = ""  # what exactly ran (counts, sizes)
    note: str = ""
    raw: str = ""  # verbatim output of an external benchmark (scenario 5)

    def client(self, name: str) -> ClientResult | None:
        """The result of client *name*, if it ran."""
        return next((c for c in self.clients if c.client == name), None)


@dataclass
class Context:
    """What every scenario needs."""

    smoke: bool
    runs: int
    workdir: Path
    python: str = sys.executable
    sink_binary: str | None = None
    source_binary: str | None = None
    placement: Placement = field(default_factory=Placement)

    def say(self, text: str) -> None:
        """Progress on stderr (the table goes to stdout)."""
        print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# one run


def _worker_argv(ctx: Context, client: str, job: Job) -> list[str]:
    return [ctx.python, "-m", "benchmarks.worker", client, job.to_json()]


def _run_worker(ctx: Context, client: str, job: Job, units: float) -> Sample | str:
    """A Sample, or the reason the client is not available."""
    measured = measure(_worker_argv(ctx, client, job), timeout=900, cpus=ctx.placement.client)
    record = last_json(measured.stdout)
    if measured.returncode != 0 or record is None:
        raise RuntimeError(
            f"{client} exited with {measured.returncode}: "
            f"{measured.stderr.decode(errors='replace')[-3000:]}"
        )
    if record.get("status") == "unavailable":
        return str(record.get("reason", "not available"))
    wall, cpu, accepted = record["wall"], record["cpu"], record["accepted"]
    if not (isinstance(wall, float) and isinstance(cpu, float) and isinstance(accepted, int)):
        raise RuntimeError(f"{client}: malformed worker record {record!r}")
    peak = record.get("peak_rss_kib")
    rss = peak if isinstance(peak, int) else measured.maxrss_kib
    return Sample(wall=wall, cpu=cpu, maxrss_kib=rss, units=units, accepted=accepted)


def _run_source(ctx: Context, job: Job, units: float) -> Sample:
    assert ctx.source_binary is not None
    measured = measure(
        smtp_source.argv(job, ctx.source_binary), timeout=900, cpus=ctx.placement.client
    )
    if measured.returncode != 0:
        raise RuntimeError(
            f"smtp-source exited with {measured.returncode}: "
            f"{(measured.stderr + measured.stdout).decode(errors='replace')[-3000:]}"
        )
    # smtp-source aborts on any unexpected reply, so exit 0 means all accepted;
    # the sink's counters check it independently.
    return Sample(
        wall=measured.wall,
        cpu=measured.cpu,
        maxrss_kib=measured.maxrss_kib,
        units=units,
        accepted=job.messages,
    )


def _check_sink(client: str, sink: Sink, job: Job, sample: Sample, timeout: float = 5.0) -> None:
    counts = sink.wait_for_messages(job.messages, timeout)
    if counts.messages != job.messages or sample.accepted != job.messages:
        raise RuntimeError(
            f"{client}: smtp-sink received {counts.messages} messages and the client "
            f"reported {sample.accepted} accepted; expected {job.messages}"
        )


# --------------------------------------------------------------------------
# scenarios


def _repeat(ctx: Context, result: ScenarioResult, one_run: object) -> None:
    """Run every client ``ctx.runs`` times, interleaved; record outcomes."""
    assert callable(one_run)
    for number in range(ctx.runs):
        for entry in result.clients:
            if entry.status != "ok":
                continue
            try:
                outcome = one_run(entry.client)
            except Exception as exc:
                entry.status, entry.note = "failed", str(exc)
                ctx.say(f"  {entry.client}: FAILED: {exc}")
                continue
            if isinstance(outcome, str):
                entry.status, entry.note = "n/a", outcome
                ctx.say(f"  {entry.client}: n/a ({outcome})")
                continue
            entry.samples.append(outcome)
            ctx.say(
                f"  run {number + 1}/{ctx.runs} {entry.client}: "
                f"{outcome.rate:,.1f} {result.scenario.unit}/s, wall {outcome.wall:.3f} s"
            )


def run_smtp(ctx: Context, scenario: Scenario) -> ScenarioResult:
    """Scenarios 1-4, 6, 7: deliver to smtp-sink."""
    result = ScenarioResult(scenario, [ClientResult(c) for c in scenario.clients])
    if ctx.sink_binary is None:
        result.note = "skipped: smtp-sink is not installed (scripts/install-peers.sh)"
        return result
    big = scenario.big_size(ctx.smoke)
    path, lf_path = write_messages(ctx.workdir, big)
    if big:
        units = path.stat().st_size / MIB  # the CRLF size: the bytes on the wire
        what = f"one {units:.1f} MiB message ({big / MIB:g} MiB with LF line ends)"
    else:
        units = float(scenario.messages(ctx.smoke))
        what = f"{scenario.messages(ctx.smoke)} messages of 2 KiB"
    template = Job(
        scenario=scenario.number,
        protocol=scenario.protocol,
        messages=scenario.messages(ctx.smoke),
        connections=scenario.connections,
        reuse=scenario.reuse,
        recipients=recipients(scenario.recipients),
        message_path=str(path),
        lf_message_path=str(lf_path),
        stream=bool(big),
    )
    result.setup = (
        f"{what}, {scenario.recipients} recipient(s) each, "
        f"{scenario.connections} connection(s), "
        f"{'connections reused' if scenario.reuse else 'new connection per message'}, "
        f"{scenario.protocol.upper()} to smtp-sink on 127.0.0.1"
    )
    if ctx.source_binary is None:
        entry = result.client("smtp-source")
        if entry is not None:
            entry.status, entry.note = "n/a", "smtp-source is not installed"

    def one_run(client: str) -> Sample | str:
        assert ctx.sink_binary is not None
        with (
            cpus.on(ctx.placement.server),
            running_sink(
                ctx.sink_binary, lmtp=scenario.protocol == "lmtp", workdir=ctx.workdir
            ) as sink,
        ):
            job = replace(template, host=sink.host, port=sink.port)
            if client == "smtp-source":
                sample: Sample | str = _run_source(ctx, job, units)
            else:
                sample = _run_worker(ctx, client, job, units)
            if isinstance(sample, Sample):
                _check_sink(client, sink, job, sample)
            return sample

    _repeat(ctx, result, one_run)
    return result


def run_dns(ctx: Context, scenario: Scenario) -> ScenarioResult:
    """Scenario 8: plan many domains through a freshly started unbound."""
    result = ScenarioResult(scenario, [ClientResult(c) for c in scenario.clients])
    count = scenario.messages(ctx.smoke)
    if find_binary("nsd") is None or find_binary("unbound") is None:
        result.note = "skipped: nsd and unbound are not installed (scripts/install-peers.sh)"
        return result
    delay = (
        f"; every query from unbound to NSD held {scenario.upstream_delay * 1000:g} ms "
        "(benchmarks/dnsdelay.py)"
        if scenario.upstream_delay
        else ""
    )
    result.setup = (
        f"{count} domains, each MX 10 mx.<domain> + A 127.0.0.1 (unsigned zone on NSD), "
        f"queried through unbound restarted with an empty cache before every run; "
        f"concurrent clients keep {scenario.connections} domains in flight{delay}"
    )
    with (
        cpus.on(ctx.placement.server),
        running_lab(count, ctx.workdir, scenario.upstream_delay) as lab,
    ):

        def one_run(client: str) -> Sample | str:
            port = lab.fresh_resolver()
            job = Job(
                scenario=scenario.number,
                kind="dns",
                connections=scenario.connections,
                dns_port=port,
                domains=lab.domains,
            )
            sample = _run_worker(ctx, client, job, float(count))
            if isinstance(sample, Sample) and sample.accepted != count:
                raise RuntimeError(f"{client} planned {sample.accepted} of {count} domains")
            return sample

        _repeat(ctx, result, one_run)
    return result


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")

#: What each scenario-9 client imports. "pyfix_smtp" is the package as an
#: application imports it (Config and the delivery API load on first use);
#: "pyfix_smtp-deliver" adds what the first deliver() loads (the core, the
#: sync driver, TLS policy), comparable with smtplib, which imports
#: everything it needs at once.
IMPORTS = {
    "pyfix_smtp-deliver": (
        "pyfix_smtp.transport.client",
        "pyfix_smtp.delivery.core",
        "pyfix_smtp.transport.sync",
    ),
}


def import_time_us(stderr: str, module: str) -> int:
    """The cumulative microseconds of the top-level *module* in ``-X importtime`` output."""
    for line in stderr.splitlines():
        found = _IMPORT_LINE.match(line)
        if found and found.group(4) == module and len(found.group(3)) == 1:
            return int(found.group(2))
    raise ValueError(f"no top-level import of {module} in -X importtime output")


def import_times_us(stderr: str, modules: tuple[str, ...]) -> int:
    """The sum of the cumulative microseconds of the top-level *modules*."""
    return sum(import_time_us(stderr, module) for module in modules)


def run_imports(ctx: Context, scenario: Scenario) -> ScenarioResult:
    """Scenario 9: ``python -X importtime -c "import X"`` in fresh processes.

    Bytecode is compiled once before the measured runs, into a temporary
    ``-X pycache_prefix`` (the environment may say PYTHONDONTWRITEBYTECODE
    and the checkout has no ``__pycache__``), so every client is measured as
    an installed, compiled package; without it pyfix_smtp's import would
    include compiling its source.
    """
    result = ScenarioResult(scenario, [ClientResult(c) for c in scenario.clients])
    result.setup = (
        "cumulative time of the top-level import in `python -X importtime -c 'import X'` "
        "(the interpreter's own start-up excluded; bytecode compiled beforehand, as for an "
        "installed package); pyfix_smtp-deliver imports what the first delivery loads "
        f"({', '.join(IMPORTS['pyfix_smtp-deliver'])}); RSS is the whole process after the import"
    )
    cache = Path(tempfile.mkdtemp(prefix="pyfix-bench-pycache-"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def argv(client: str) -> list[str]:
        modules = IMPORTS.get(client, (client,))
        return [ctx.python, "-X", f"pycache_prefix={cache}", "-X", "importtime", "-c",
                f"import {', '.join(modules)}"]  # fmt: skip

    def one_run(client: str) -> Sample | str:
        measured = measure(argv(client), cpus=ctx.placement.client, env=env)
        if measured.returncode != 0:
            return f"import {client} failed: {measured.stderr.decode(errors='replace')[-300:]}"
        text = measured.stderr.decode(errors="replace")
        micros = import_times_us(text, IMPORTS.get(client, (client,)))
        return Sample(
            wall=micros / 1e6,
            cpu=micros / 1e6,
            maxrss_kib=measured.maxrss_kib,
            units=1.0,
            accepted=1,
        )

    try:
        for client in scenario.clients:  # compile (not measured)
            subprocess.run(argv(client), env=env, capture_output=True, check=False)
        _repeat(ctx, result, one_run)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return result


_ENCODER_ROW = re.compile(
    r"^(?P<client>[\w-]+)\s+(?P<median>[\d.]+)\s+(?P<low>[\d.]+)\s+(?P<high>[\d.]+)\s+"
    r"(?P<cpu>[\d.]+)ms\s+(?P<peak>[\d.]+) MiB\s+(?P<rss>[\d.]+) MiB\s*$"
)


def parse_encoder_output(text: str) -> list[tuple[str, float, float, float, float, float]]:
    """Rows of bench_encoder.py's tables: (client [input], MiB/s median, min, max,
    CPU ms/MiB, peak RSS MiB). Empty when its format is not recognised."""
    rows = []
    section = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = "LF" if "LF input" in line and "CRLF" not in line else "CRLF"
            continue
        found = _ENCODER_ROW.match(line.strip())
        if found and section:
            rows.append(
                (
                    f"{found['client']} [{section}]",
                    float(found["median"]),
                    float(found["low"]),
                    float(found["high"]),
                    float(found["cpu"]),
                    float(found["rss"]),
                )
            )
    return rows


def run_external_encoder(ctx: Context, scenario: Scenario) -> ScenarioResult:
    """Scenario 5: the content helper's benchmarks/bench_encoder.py, output kept verbatim."""
    result = ScenarioResult(scenario)
    script = HERE / "bench_encoder.py"
    if not script.exists():
        result.note = "skipped: benchmarks/bench_encoder.py is not there yet"
        return result
    argv = [ctx.python, str(script)] + (["--smoke"] if ctx.smoke else [])
    shown = " ".join(["python benchmarks/bench_encoder.py", *argv[2:]])
    result.setup = f"`{shown}` (its own runs, each in a fresh process)"
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=1800, check=False)
    result.raw = done.stdout
    if done.returncode != 0:
        result.note = f"bench_encoder.py exited with {done.returncode}: {done.stderr[-2000:]}"
        return result
    for name, median, low, high, cpu_ms, rss in parse_encoder_output(done.stdout):
        # bench_encoder reports median/min/max itself; keep them as three samples
        # whose median, min and max are the same figures.
        samples = [
            Sample(wall=1 / r, cpu=cpu_ms / 1000, maxrss_kib=int(rss * 1024), units=1.0, accepted=1)
            for r in (low, median, high)
        ]
        result.clients.append(ClientResult(name, samples))
    if not result.clients:
        result.note = "bench_encoder.py output not recognised; shown verbatim"
    return result


RUNNERS = {
    "smtp": run_smtp,
    "dns": run_dns,
    "import": run_imports,
    "external": run_external_encoder,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny counts, one run: checks the harness, not speed"
    )
    parser.add_argument(
        "--scenarios", default="", help="comma-separated scenario numbers (default: all)"
    )
    parser.add_argument("--runs", type=int, default=0, help="runs per client (default 5; smoke 1)")
    parser.add_argument(
        "--output-dir", type=Path, default=None, help="where results.md/.json/.png go"
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin servers and clients to separate CPUs"
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib)")
    args = parser.parse_args(argv)
    if args.runs < 0:
        parser.error("--runs must be positive")
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in BY_NUMBER]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(BY_NUMBER)}")
    args.wanted = wanted
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios, print the table, write the result files."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runs = args.runs or (1 if args.smoke else 5)
    scenarios = [BY_NUMBER[n] for n in args.wanted] if args.wanted else list(SCENARIOS)
    with tempfile.TemporaryDirectory(prefix="pyfix-bench-") as tmp:
        ctx = Context(
            smoke=args.smoke,
            runs=runs,
            workdir=Path(tmp),
            sink_binary=find_binary("smtp-sink"),
            source_binary=find_binary("smtp-source"),
            placement=Placement() if args.no_pin else Placement.split(),
        )
        facts = report.machine_facts()
        facts["CPU placement"] = ctx.placement.describe()
        started = time.monotonic()
        results = []
        for scenario in scenarios:
            ctx.say(f"scenario {scenario.number}: {scenario.title}")
            result = RUNNERS[scenario.kind](ctx, scenario)
            if result.note:
                ctx.say(f"  {result.note}")
            results.append(result)
        facts["Duration"] = f"{time.monotonic() - started:.0f} s"
        facts["Mode"] = f"{'smoke' if args.smoke else 'full'}, {runs} run(s) per client"
        out_dir = args.output_dir
        if out_dir is None:
            out_dir = Path(tempfile.mkdtemp(prefix="pyfix-bench-smoke-")) if args.smoke else HERE
        out_dir.mkdir(parents=True, exist_ok=True)
        print(report.terminal(results, facts))
        report.write(results, facts, out_dir, plot=not args.no_plot)
        ctx.say(f"results written to {out_dir}")
    failed = [
        f"scenario {r.scenario.number} {c.client}"
        for r in results
        for c in r.clients
        if c.status == "failed"
    ]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
