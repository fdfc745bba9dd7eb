"""Child process for one measured run of a Python client.

``python -m benchmarks.worker CLIENT JOB_JSON`` imports the client's module
(outside the measured section, like an application that has already imported
its mail library), calls the module's ``prepare(runner_name)`` when it has
one (imports only that runner needs, so a delivery run does not carry the
DNS runners' dnspython in its peak RSS), then times exactly one call of its runner with
``time.perf_counter()`` and ``time.process_time()`` and prints one JSON line:

``{"status": "ok", "wall": s, "cpu": s, "accepted": n, "peak_rss_kib": n}`` or
``{"status": "unavailable", "reason": "..."}``. ``peak_rss_kib`` is this
process's own ``VmHWM`` (see :mod:`benchmarks.stats`).
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import time
from collections.abc import Callable
from typing import cast

from benchmarks.stats import own_peak_rss_kib
from benchmarks.workload import Job, Unavailable

#: client name -> (module, runner); a coroutine runner is run with asyncio.run().
RUNNERS: dict[str, tuple[str, str]] = {
    "smtplib": ("benchmarks.clients.smtplib_client", "run"),
    "aiosmtplib": ("benchmarks.clients.aiosmtplib_client", "run_async"),
    "pyfix-sync": ("benchmarks.clients.pyfix_client", "run_sync"),
    "pyfix-async": ("benchmarks.clients.pyfix_client", "run_async"),
    "dnspython-loop": ("benchmarks.clients.dnspython_client", "run"),
    "dnspython-gather": ("benchmarks.clients.dnspython_client", "run_async"),
    "pyfix-dns-sync": ("benchmarks.clients.pyfix_client", "plan_sync"),
    "pyfix-dns-async": ("benchmarks.clients.pyfix_client", "plan_async"),
}


_HINT = "pip install -e '.[bench]'"


def run(client: str, job: Job) -> dict[str, object]:
    """Run *job* with *client* once and return the result record."""
    module_name, function = RUNNERS[client]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.startswith("benchmarks"):
            raise
        if exc.name.startswith("pyfix_smtp"):
            return {"status": "unavailable", "reason": f"not available yet: {exc.name} is missing"}
        return {"status": "unavailable", "reason": f"{exc.name} is not installed: {_HINT}"}
    try:
        prepare = getattr(module, "prepare", None)
        if callable(prepare):
            prepare(function)
        runner = cast("Callable[[Job], object]", getattr(module, function))
        if inspect.iscoroutinefunction(runner):
            import asyncio  # only for coroutine runners: it is not part of a sync run's RSS

            wall0, cpu0 = time.perf_counter(), time.process_time()
            accepted = asyncio.run(runner(job))  # type: ignore[arg-type, unused-ignore]
        else:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            accepted = runner(job)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    except Unavailable as exc:
        return {"status": "unavailable", "reason": str(exc)}
    record: dict[str, object] = {"status": "ok", "wall": wall, "cpu": cpu, "accepted": accepted}
    record["peak_rss_kib"] = own_peak_rss_kib()
    return record


def main(argv: list[str]) -> int:
    """Entry point: ``CLIENT JOB_JSON``."""
    if len(argv) != 2 or argv[0] not in RUNNERS:
        print(
            f"usage: python -m benchmarks.worker {{{','.join(RUNNERS)}}} JOB_JSON", file=sys.stderr
        )
        return 2
    record = run(argv[0], Job.from_json(argv[1]))
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
