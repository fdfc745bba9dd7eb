"""Tables, target checks, machine facts and the plot for a benchmark run.

Ratios are always "pyfix client's rate / peer's rate" (above 1 means pyfix_smtp
is faster; for import time, the peer's time / pyfix_smtp's time), except
the CPU target of scenario 4 (pyfix CPU per MiB / peer's; below 1 is better).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.scenarios import Target, is_pyfix
from benchmarks.sink import find_binary
from benchmarks.stats import Summary

if TYPE_CHECKING:
    from benchmarks.run import ClientResult, ScenarioResult

#: unit -> (rate heading, CPU heading, CPU scale from seconds)
UNITS = {
    "msg": ("msg/s", "CPU µs/msg", 1e6),
    "MiB": ("MiB/s", "CPU ms/MiB", 1e3),
    "domain": ("domains/s", "CPU µs/domain", 1e6),
    "import": ("import ms", "", 0.0),
}


# --------------------------------------------------------------------------
# machine facts


def _command_output(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return ""
    return (done.stdout or done.stderr).strip()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts() -> dict[str, str]:
    """What the figures were taken on."""
    facts = {
        "Date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": f"{_cpu_model()}, {os.cpu_count()} logical cores",
        "Kernel": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "Libraries": ", ".join(
            f"{name} {_version(name)}"
            for name in ("pyfix_smtp", "aiosmtplib", "dnspython", "matplotlib")
        ),
    }
    postconf = find_binary("postconf")
    if postconf:
        facts["Postfix"] = _command_output([postconf, "-d", "mail_version"]).split("=")[-1].strip()
    unbound, nsd = find_binary("unbound"), find_binary("nsd")
    if unbound and nsd:
        facts["DNS"] = (
            f"unbound {_command_output([unbound, '-V']).splitlines()[0].split()[-1]}, "
            f"NSD {_command_output([nsd, '-v']).splitlines()[0].split()[-1]}"
        )
    commit = _command_output(
        ["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"]
    )
    if commit:
        facts["Commit"] = commit
    try:
        facts["Load average at start"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        pass
    return facts


# --------------------------------------------------------------------------
# figures


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def rate_cells(unit: str, summary: Summary) -> tuple[str, str, str]:
    """(median, min, max) of the rate column, formatted."""
    if unit == "import":  # show the time itself: smaller is better
        wall = summary.wall
        return _num(wall.median * 1e3), _num(wall.low * 1e3), _num(wall.high * 1e3)
    rate = summary.rate
    return _num(rate.median), _num(rate.low), _num(rate.high)


def cpu_cell(unit: str, summary: Summary) -> str:
    """Median CPU per unit in the unit's scale."""
    scale = UNITS[unit][2]
    return _num(summary.cpu_per_unit.median * scale) if scale else ""


def ratio(client: ClientResult, peer: ClientResult) -> float | None:
    """pyfix rate / peer rate (medians), when both ran."""
    mine, theirs = client.summary, peer.summary
    if mine is None or theirs is None or theirs.rate.median == 0:
        return None
    return mine.rate.median / theirs.rate.median


def peers(result: ScenarioResult) -> list[ClientResult]:
    """The clients pyfix_smtp is compared with."""
    return [c for c in result.clients if not is_pyfix(c.client)]


def evaluate(target: Target, result: ScenarioResult) -> tuple[str, bool | None]:
    """The measured figure for *target* and whether it is met (None: not measurable yet)."""
    client = result.client(target.client)
    peer = result.client(target.peer) if target.peer else None
    mine = client.summary if client else None
    if mine is None:
        why = client.note if client and client.note else "no result"
        return f"n/a ({why})", None
    if target.metric == "rss":
        value = mine.rss_mib.median
        return f"{value:.1f} MiB", value <= target.value
    theirs = peer.summary if peer else None
    if theirs is None:
        return "n/a (peer has no result)", None
    if target.metric == "cpu":
        value = mine.cpu_per_unit.median / theirs.cpu_per_unit.median
        return f"{value:.2f}x", value <= target.value
    value = mine.rate.median / theirs.rate.median
    return f"{value:.2f}x", value >= target.value


def _met(flag: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "n/a"}[flag]


# --------------------------------------------------------------------------
# tables


def _rows(result: ScenarioResult) -> tuple[list[str], list[list[str]]]:
    unit = result.scenario.unit
    rate_head, cpu_head, _ = UNITS[unit]
    others = peers(result)
    head = [
        "client",
        f"{rate_head} median",
        "min",
        "max",
        *([cpu_head] if cpu_head else []),
        "peak RSS MiB",
        "runs",
    ]
    head += [f"vs {p.client}" for p in others]
    rows = []
    for entry in result.clients:
        summary = entry.summary
        if summary is None:
            label = "n/a" if entry.status == "n/a" else entry.status.upper()
            row = [entry.client, f"{label}: {entry.note}"] + [""] * (len(head) - 2)
            rows.append(row)
            continue
        row = [entry.client, *rate_cells(unit, summary)]
        if cpu_head:
            row.append(cpu_cell(unit, summary))
        row += [f"{summary.rss_mib.median:.1f}", str(summary.runs)]
        for peer in others:
            value = ratio(entry, peer) if is_pyfix(entry.client) else None
            row.append(
                f"{value:.2f}x" if value is not None else ("n/a" if is_pyfix(entry.client) else "")
            )
        rows.append(row)
    return head, rows


def _plain(head: list[str], rows: list[list[str]]) -> str:
    clipped = [[cell if len(cell) <= 70 else cell[:67] + "..." for cell in row] for row in rows]
    full = [head] + [r for r in clipped if not r[1].startswith(("n/a:", "FAILED:"))]
    widths = [max(len(r[i]) for r in full) for i in range(len(head))]
    widths[0] = max(len(r[0]) for r in [head, *clipped])
    lines = ["  " + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    for row in clipped:
        if row[1].startswith(("n/a:", "FAILED:")):
            lines.append(f"  {row[0].ljust(widths[0])}  {row[1]}")
            continue
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def terminal(results: Sequence[ScenarioResult], facts: dict[str, str]) -> str:
    """The table printed at the end of a run."""
    out = ["", "pyfix_smtp benchmarks", *(f"  {k}: {v}" for k, v in facts.items())]
    for result in results:
        scenario = result.scenario
        out += ["", f"Scenario {scenario.number}: {scenario.title}"]
        if result.setup:
            out.append(f"  ({result.setup})")
        if result.note:
            out.append(f"  {result.note}")
        if result.clients:
            out.append(_plain(*_rows(result)))
        for target in scenario.targets:
            figure, met = evaluate(target, result)
            out.append(f"  target: {target.describe()}: {figure} -> {_met(met)}")
    return "\n".join(out) + "\n"


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines)


def markdown(results: Sequence[ScenarioResult], facts: dict[str, str], plot: str | None) -> str:
    """results.md: machine, versions, date, every figure, ratios and targets."""
    out = [
        "# pyfix_smtp benchmark results",
        "",
        "Generated by `python -m benchmarks.run` (see `benchmarks/README.md` for what each "
        "scenario measures). Each figure: median, min and max over runs in fresh "
        "processes; CPU is the client's own CPU time per unit (Python clients: the "
        "measured section only; smtp-source: the whole process); peak RSS is the client "
        "process's own peak (`VmHWM`). Ratios are pyfix_smtp's rate divided by the "
        "peer's (above 1 = pyfix_smtp faster; for import time, the peer's time divided "
        "by pyfix_smtp's). Figures taken while other work shares the CPUs are noisy: "
        "compare ratios from one run, not figures across runs.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in facts.items()),
    ]
    if plot:
        out += ["", f"![messages per second per client and scenario]({plot})"]
    targets = [(r, t) for r in results for t in r.scenario.targets]
    if targets:
        out += [
            "",
            "## Targets",
            "",
            "| scenario | target | measured | status |",
            "|---|---|---|---|",
        ]
        for result, target in targets:
            figure, met = evaluate(target, result)
            out.append(
                f"| {result.scenario.number} | {target.describe()} | {figure} | {_met(met)} |"
            )
    for result in results:
        scenario = result.scenario
        out += ["", f"## Scenario {scenario.number}: {scenario.title}", ""]
        if result.setup:
            out += [result.setup, ""]
        if result.note:
            out += [f"*{result.note}*", ""]
        if result.clients:
            out.append(_md_table(*_rows(result)))
        if result.raw:
            out += [
                "",
                "<details><summary>bench_encoder.py output</summary>",
                "",
                "```",
                result.raw.strip(),
                "```",
                "",
                "</details>",
            ]
    return "\n".join(out) + "\n"


def to_json(results: Sequence[ScenarioResult], facts: dict[str, str]) -> str:
    """Every sample, for later analysis."""
    data = {
        "facts": facts,
        "scenarios": [
            {
                "number": r.scenario.number,
                "title": r.scenario.title,
                "unit": r.scenario.unit,
                "setup": r.setup,
                "note": r.note,
                "clients": [
                    {
                        "client": c.client,
                        "status": c.status,
                        "note": c.note,
                        "summary": c.summary.to_dict() if c.summary else None,
                        "samples": [
                            {
                                "wall": s.wall,
                                "cpu": s.cpu,
                                "maxrss_kib": s.maxrss_kib,
                                "units": s.units,
                            }
                            for s in c.samples
                        ],
                    }
                    for c in r.clients
                ],
            }
            for r in results
        ],
    }
    return json.dumps(data, indent=2) + "\n"


# --------------------------------------------------------------------------
# plot


def draw_plot(results: Sequence[ScenarioResult], path: Path) -> bool:
    """A PNG with one panel per scenario: rate median per client, min-max whiskers."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    shown = [r for r in results if r.clients]
    if not shown:
        return False
    columns = 3 if len(shown) > 2 else len(shown)
    rows = (len(shown) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.0 * rows), squeeze=False)
    for ax in axes.flat[len(shown) :]:
        ax.axis("off")
    for ax, result in zip(axes.flat, shown, strict=False):
        unit = result.scenario.unit
        names, values, lows, highs, colors = [], [], [], [], []
        for entry in result.clients:
            summary = entry.summary
            names.append(entry.client if summary else f"{entry.client} (n/a)")
            if summary is None:
                values.append(0.0)
                lows.append(0.0)
                highs.append(0.0)
            elif unit == "import":
                values.append(summary.wall.median * 1e3)
                lows.append(summary.wall.median * 1e3 - summary.wall.low * 1e3)
                highs.append(summary.wall.high * 1e3 - summary.wall.median * 1e3)
            else:
                values.append(summary.rate.median)
                lows.append(summary.rate.median - summary.rate.low)
                highs.append(summary.rate.high - summary.rate.median)
            colors.append("tab:orange" if is_pyfix(entry.client) else "tab:blue")
        positions = list(range(len(names)))
        ax.barh(positions, values, xerr=[lows, highs], color=colors, capsize=3)
        ax.set_yticks(positions, names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(
            UNITS[unit][0] + (" (lower is better)" if unit == "import" else ""), fontsize=8
        )
        title = f"{result.scenario.number}. {result.scenario.title}"
        ax.set_title(textwrap.fill(title, 48), fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(
    results: Sequence[ScenarioResult], facts: dict[str, str], out_dir: Path, *, plot: bool = True
) -> None:
    """Write results.md, results.json and (with matplotlib) results.png to *out_dir*."""
    png = out_dir / "results.png"
    made = draw_plot(results, png) if plot else False
    (out_dir / "results.md").write_text(markdown(results, facts, png.name if made else None))
    (out_dir / "results.json").write_text(to_json(results, facts))
