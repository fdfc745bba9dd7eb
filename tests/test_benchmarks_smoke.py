"""The benchmark harness must not rot: its pure parts, and a smoke run against real peers.

The smoke runs use Postfix smtp-sink / smtp-source (and NSD + unbound for the
DNS scenario); they skip when those are missing unless PYFIX_REQUIRE_PEERS=1.
They never check speed, only that every baseline really delivers what it
claims: smtp-sink's own counters (the harness checks them after every run)
and, for the Python clients and smtp-source, the messages smtp-sink dumped.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import run as bench_run
from benchmarks.clients import aiosmtplib_client, smtp_source, smtplib_client
from benchmarks.report import evaluate
from benchmarks.scenarios import BY_NUMBER, SCENARIOS, Target
from benchmarks.sink import Sink, parse_counts, running_sink
from benchmarks.stats import Sample, Spread, Summary, measure
from benchmarks.workload import (
    MIB,
    Job,
    message_bytes,
    recipients,
    write_big_message,
    write_messages,
)
from tests.peers import find_binary, require_peer

# ---------------------------------------------------------------------------
# pure parts


def test_message_is_2_kib_with_a_dot_line() -> None:
    data = message_bytes()
    assert len(data) == 2048
    assert b"\r" not in data
    assert b"\n.A line that starts with a dot.\n" in data
    assert data.endswith(b"\n")


@pytest.mark.parametrize("size", [1 * MIB, 3 * MIB + 17])
def test_big_message_has_the_exact_size(tmp_path: Path, size: int) -> None:
    path = write_big_message(tmp_path / "big.eml", size)
    data = path.read_bytes()
    assert len(data) == size
    assert data.endswith(b"\n")
    assert data.count(b"\n.") > size // 8000  # every 100th line needs dot-stuffing
    assert max(len(line) for line in data.split(b"\n")) <= 998


@pytest.mark.parametrize("big", [0, 2 * MIB + 5])
def test_both_forms_of_a_message_agree(tmp_path: Path, big: int) -> None:
    crlf, lf = write_messages(tmp_path, big)
    lf_data, crlf_data = lf.read_bytes(), crlf.read_bytes()
    assert len(lf_data) == (big or 2048)
    assert b"\r" not in lf_data
    assert crlf_data == lf_data.replace(b"\n", b"\r\n")


def test_job_json_round_trip() -> None:
    job = Job(
        scenario="6",
        port=2525,
        messages=7,
        connections=3,
        recipients=recipients(10),
        domains=("a.test", "b.test"),
        kind="dns",
    )
    assert Job.from_json(job.to_json()) == job
    assert [job.share(i) for i in range(3)] == [3, 2, 2]
    assert job.expected == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "ftp"), ("protocol", "esmtp"), ("connections", 0)],
)
def test_job_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        Job(scenario="1", **{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (b"", (0, 0, 0)),
        (b"sess=0 quit=0 mesg=0\r", (0, 0, 0)),
        (b"sess=0 quit=0 mesg=1\rsess=0 quit=0 mesg=2\rsess=1 quit=1 mesg=2\r", (1, 1, 2)),
        (b"warning: x\nsess=3 quit=2 mesg=40\r", (3, 2, 40)),
    ],
)
def test_sink_counters(output: bytes, expected: tuple[int, int, int]) -> None:
    counts = parse_counts(output)
    assert (counts.sessions, counts.quits, counts.messages) == expected


@pytest.mark.parametrize(
    ("job", "flags", "absent"),
    [
        (
            Job("1", port=1, messages=2000),
            ["-d", "-s 1", "-m 2000", "-t rcpt@example.test"],
            ["-L", "-r"],
        ),
        (Job("2", port=1, messages=2000, connections=20), ["-d", "-s 20"], ["-L"]),
        (Job("3", port=1, messages=500, reuse=False), ["-s 1", "-m 500"], ["-d"]),
        (Job("6", port=1, messages=500, recipients=recipients(10)), ["-r 10", "-d"], ["-L"]),
        (Job("7", port=1, messages=2000, protocol="lmtp"), ["-L", "-d"], ["-r"]),
    ],
)
def test_smtp_source_command_line(job: Job, flags: list[str], absent: list[str]) -> None:
    line = " ".join(smtp_source.argv(job, "smtp-source"))
    for flag in flags:
        assert f" {flag}" in line
    for flag in absent:
        assert f" {flag} " not in f"{line} "
    assert line.endswith("127.0.0.1:1")
    assert f"-M {job.helo}" in line
    assert "-F " in line


def test_import_time_parser_takes_the_top_level_line() -> None:
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       120 |        120 |     email.errors\n"
        "import time:      2000 |       5000 |   email\n"
        "import time:       300 |      21000 | smtplib\n"
    )
    assert bench_run.import_time_us(stderr, "smtplib") == 21000
    with pytest.raises(ValueError, match="email"):  # imported, but not at the top level
        bench_run.import_time_us(stderr, "email")


def test_encoder_output_parser() -> None:
    text = (
        "# content encoder benchmark\n\n## CRLF input: 2.0 MiB message, 3 runs each\n\n"
        "client         MiB/s median      min      max  CPU s/MiB    step peak     peak RSS\n"
        "smtplib-str            88.6     69.7     96.4    10.40ms     200.0 MiB      38.5 MiB\n"
        "pyfix-bytes           441.0    440.0    442.0     2.27ms       0.3 MiB      29.1 MiB\n"
        "\n## LF input: 2.0 MiB message, 3 runs each\n\n"
        "pyfix-file            844.0    812.0    859.0     1.18ms       0.3 MiB      29.1 MiB\n"
    )
    rows = bench_run.parse_encoder_output(text)
    assert rows == [
        ("smtplib-str [CRLF]", 88.6, 69.7, 96.4, 10.4, 38.5),
        ("pyfix-bytes [CRLF]", 441.0, 440.0, 442.0, 2.27, 29.1),
        ("pyfix-file [LF]", 844.0, 812.0, 859.0, 1.18, 29.1),
    ]


def _result(**rates: float) -> bench_run.ScenarioResult:
    result = bench_run.ScenarioResult(BY_NUMBER["1"])
    for name, rate in rates.items():
        sample = Sample(wall=1.0, cpu=rate / 1000, maxrss_kib=30 * 1024, units=rate, accepted=1)
        result.clients.append(bench_run.ClientResult(name, [sample]))
    return result


@pytest.mark.parametrize(
    ("target", "rates", "figure", "met"),
    [
        (
            Target("pyfix-sync", "rate", 1.0, "smtp-source"),
            {"pyfix-sync": 300, "smtp-source": 200},
            "1.50x",
            True,
        ),
        (
            Target("pyfix-sync", "rate", 3.0, "smtp-source"),
            {"pyfix-sync": 300, "smtp-source": 200},
            "1.50x",
            False,
        ),
        (
            Target("pyfix-sync", "cpu", 0.5, "smtplib"),
            {"pyfix-sync": 100, "smtplib": 100},
            "1.00x",
            False,
        ),
        (Target("pyfix-sync", "rss", 40.0), {"pyfix-sync": 1}, "30.0 MiB", True),
        (Target("pyfix-sync", "rate", 1.0, "smtplib"), {"smtplib": 1}, "n/a (no result)", None),
    ],
)
def test_targets(target: Target, rates: dict[str, float], figure: str, met: bool | None) -> None:
    assert evaluate(target, _result(**rates)) == (figure, met)


def test_spread_and_summary() -> None:
    samples = [
        Sample(wall=w, cpu=0.5, maxrss_kib=2048, units=100, accepted=100) for w in (1.0, 2.0, 4.0)
    ]
    summary = Summary.of(samples)
    assert summary.rate == Spread(50.0, 25.0, 100.0)
    assert summary.rss_mib == Spread(2.0, 2.0, 2.0)
    assert summary.cpu_per_unit.median == 0.005
    with pytest.raises(ValueError, match="no values"):
        Spread.of([])


def test_measure_reports_the_childs_own_peak_rss() -> None:
    # The child allocates and touches 64 MiB; a plain ru_maxrss would also
    # include whatever the parent had when it forked.
    # Both children live a little while so the VmHWM sampler sees them (a
    # child gone before the first sample falls back to ru_maxrss).
    linger = "import time; time.sleep(0.3)"
    script = f"b = bytearray(64 * 1024 * 1024); b[::4096] = b'x' * (len(b) // 4096); {linger}"
    small = measure([sys.executable, "-c", linger])
    big = measure([sys.executable, "-c", script])
    assert small.returncode == big.returncode == 0
    assert big.maxrss_kib - small.maxrss_kib > 60 * 1024
    assert small.maxrss_kib < 40 * 1024


def test_every_scenario_of_the_issue_is_there() -> None:
    numbers = [s.number for s in SCENARIOS]
    assert numbers == ["1", "2", "3", "4", "5", "6", "7", "8", "8b", "9"]
    for scenario in SCENARIOS:
        assert 0 < scenario.smoke_count <= scenario.count or scenario.kind in ("import", "external")
        for target in scenario.targets:
            assert target.metric in ("rate", "cpu", "rss")


# ---------------------------------------------------------------------------
# real peers


def _need(*names: str) -> None:
    for name in names:
        if find_binary(name) is None:
            require_peer(f"{name} is not installed (run scripts/install-peers.sh as root)")


@pytest.fixture
def dump_sink() -> Iterator[Sink]:
    """A benchmark sink that also dumps every message."""
    binary = find_binary("smtp-sink")
    if binary is None:
        require_peer("smtp-sink is not installed (run scripts/install-peers.sh as root)")
    assert binary is not None
    with running_sink(binary, dump=True) as sink:
        yield sink


def _wait_dumps(sink: Sink, count: int) -> list[bytes]:
    sink.wait_for_messages(count)
    return sink.dumps()


def _body(dump: bytes) -> bytes:
    # smtp-sink's dump: its own X- headers, a three-line Received header, then
    # the message as received, dot-stuffing undone, line ends as LF.
    head, _, rest = dump.partition(b"Received: ")
    assert head.startswith(b"X-Client-Addr: 127.0.0.1\n")
    return rest.split(b"\n", 3)[3]


def _check_dumps(dumps: list[bytes], job: Job, rcpt_args: list[bytes]) -> None:
    assert len(dumps) == job.messages
    original = Path(job.lf_message_path).read_bytes()
    for dump in dumps:
        assert sorted(re.findall(rb"(?m)^X-Rcpt-Args: (.*)$", dump)) == rcpt_args
        # smtp-sink adds an empty line; smtp-source -F one more.
        assert _body(dump).rstrip(b"\n") == original.rstrip(b"\n")
        assert b"\n.A line that starts with a dot.\n" in _body(dump)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """The 2 KiB message in both forms, as Job arguments."""
    crlf, lf = write_messages(tmp_path)
    return {"message_path": str(crlf), "lf_message_path": str(lf)}


@pytest.mark.peers
@pytest.mark.parametrize("reuse", [True, False])
def test_smtplib_client_delivers(dump_sink: Sink, files: dict[str, str], reuse: bool) -> None:
    sink = dump_sink
    job = Job("t", port=sink.port, messages=3, reuse=reuse, recipients=recipients(2), **files)
    assert smtplib_client.run(job) == 3
    _check_dumps(
        _wait_dumps(sink, job.messages), job, [b"<rcpt1@example.test>", b"<rcpt2@example.test>"]
    )


@pytest.mark.peers
def test_aiosmtplib_client_delivers(dump_sink: Sink, files: dict[str, str]) -> None:
    sink = dump_sink
    job = Job("t", port=sink.port, messages=5, connections=2, **files)
    assert asyncio.run(aiosmtplib_client.run_async(job)) == 5
    _check_dumps(_wait_dumps(sink, job.messages), job, [b"<rcpt@example.test>"])


@pytest.mark.peers
def test_smtp_source_delivers_the_same_message(dump_sink: Sink, files: dict[str, str]) -> None:
    _need("smtp-source")
    binary = find_binary("smtp-source")
    assert binary is not None
    sink = dump_sink
    job = Job("t", port=sink.port, messages=3, recipients=recipients(2), **files)
    done = subprocess.run(
        smtp_source.argv(job, binary), capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    # smtp-source 3.7 numbers all recipients but the last: <2rcpt@...>, <rcpt@...>.
    _check_dumps(
        _wait_dumps(sink, job.messages), job, [b"<2rcpt@example.test>", b"<rcpt@example.test>"]
    )


@pytest.mark.peers
def test_harness_catches_a_client_that_delivered_nothing(tmp_path: Path) -> None:
    _need("smtp-sink")
    binary = find_binary("smtp-sink")
    assert binary is not None
    sink = Sink(binary, workdir=tmp_path)
    try:
        job = Job("t", port=sink.port, messages=5)
        lying = Sample(wall=1.0, cpu=0.1, maxrss_kib=1, units=5, accepted=5)
        with pytest.raises(RuntimeError, match="received 0 messages"):
            bench_run._check_sink("liar", sink, job, lying, timeout=0.2)
    finally:
        sink.stop()


def _smoke(tmp_path: Path, scenarios: str) -> dict[str, object]:
    code = bench_run.main(
        ["--smoke", "--scenarios", scenarios, "--output-dir", str(tmp_path), "--no-plot"]
    )
    assert code == 0
    assert (tmp_path / "results.md").read_text().startswith("# pyfix_smtp benchmark results")
    data = json.loads((tmp_path / "results.json").read_text())
    assert isinstance(data, dict)
    return data


def _clients(data: dict[str, object]) -> dict[tuple[str, str], dict[str, object]]:
    scenarios = data["scenarios"]
    assert isinstance(scenarios, list)
    return {(s["number"], c["client"]): c for s in scenarios for c in s["clients"]}


@pytest.mark.peers
def test_smoke_run_of_the_smtp_and_lmtp_baselines(tmp_path: Path) -> None:
    _need("smtp-sink", "smtp-source")
    clients = _clients(_smoke(tmp_path, "1,7,9"))
    for key in [
        ("1", "smtplib"),
        ("1", "smtp-source"),
        ("7", "smtplib"),
        ("7", "smtp-source"),
        ("9", "smtplib"),
    ]:
        assert clients[key]["status"] == "ok", clients[key]
        samples = clients[key]["samples"]
        assert isinstance(samples, list)
        assert len(samples) == 1
    for key in [("1", "pyfix-sync"), ("7", "pyfix-sync"), ("9", "pyfix_smtp")]:
        assert clients[key]["status"] in ("ok", "n/a"), clients[key]


@pytest.mark.peers
def test_smoke_run_of_the_dns_baseline(tmp_path: Path) -> None:
    _need("nsd", "unbound")
    clients = _clients(_smoke(tmp_path, "8"))
    assert clients[("8", "dnspython-loop")]["status"] == "ok"
    assert clients[("8", "dnspython-gather")]["status"] == "ok"
    for name in ("pyfix-dns-sync", "pyfix-dns-async"):
        assert clients[("8", name)]["status"] in ("ok", "n/a"), clients[("8", name)]


def test_import_times_of_several_modules_are_summed() -> None:
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       255 |        592 | site\n"
        "import time:       300 |       1000 | pkg.a\n"
        "import time:       100 |        200 |   pkg.nested\n"
        "import time:       400 |       2500 | pkg.b\n"
    )
    assert bench_run.import_times_us(stderr, ("pkg.a", "pkg.b")) == 3500


def test_core_cpu_tool_runs() -> None:
    # benchmarks/core_cpu.py: the library's CPU per message without a network
    # (it replaces the drivers' sockets, so it runs in its own process).
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.core_cpu", "--messages", "40"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    figures = dict(re.findall(r"^(\w+)\s+([\d.]+) us CPU per message$", done.stdout, re.M))
    assert set(figures) == {"reuse", "new", "async"}
    assert all(float(v) > 0 for v in figures.values())
