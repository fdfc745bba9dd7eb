"""pyfix_smtp runners, plugged in as the library's layers land.

The orchestrator calls four runners through :mod:`benchmarks.worker`, each
``(job: Job) -> int`` returning how many messages (DNS: domains) were accepted,
and each raising :class:`Unavailable` (shown as "n/a") while the API it needs
does not exist yet, or while a pyfix_smtp module it imports is still missing:

=====================  ==============  =========================================
runner                 scenarios       calls
=====================  ==============  =========================================
``run_sync``           1, 3, 4, 6, 7   ``pyfix_smtp.Client(cfg).deliver(...)``
``run_async``          2               ``pyfix_smtp.AsyncClient(cfg).deliver``
``plan_sync``          8, 8b           ``pyfix_smtp.dns.plan_sync``,
                                       ``DnsResolver``
``plan_async``         8, 8b           ``pyfix_smtp.dns.plan_async``,
                                       ``AsyncDnsResolver``
=====================  ==============  =========================================

Everything that touches the delivery API is in :class:`Deliverer`::

    client = pyfix_smtp.Client(cfg)            # AsyncClient for scenario 2
    report = client.deliver(envelope, content, nexthop)   # once per message
    client.close()                             # QUIT the cached connections

One client per run holds the connection cache, so connections are reused
between deliveries (``cache_size=0`` for scenario 3, a new connection per
message); ``smtp_connection_cache_destinations`` (``lmtp_...``) names the
nexthop's address, Postfix's switch for "always cache connections to these". A message
counts as accepted when every outcome of the report has a 2.x.x ``status``.
When the delivery layer changes, adjust :class:`Deliverer` only.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Iterable
from types import ModuleType
from typing import IO, Protocol

from benchmarks.workload import Job, Unavailable

try:
    import pyfix_smtp as _smtp
except ImportError:  # the package is installed in .venv; reported as n/a otherwise
    _smtp = None  # type: ignore[assignment]

# Import what the runners use before the measured section (the worker times
# only the runner call), as the baselines import smtplib or dnspython at the
# top: the delivery API here, the DNS layer in prepare() for the DNS runners
# only (dnspython would otherwise count in the delivery runs' peak RSS).
# Attribute access also triggers lazily imported submodules.
_DELIVERY_MODULES = (
    "pyfix_smtp.transport.client",
    "pyfix_smtp.transport.sync",
    "pyfix_smtp.delivery.core",
)
for _name in ("Client", "AsyncClient", "Envelope", "Config"):
    try:
        getattr(_smtp, _name, None)
    except ImportError:  # reported by the runner that needs it
        pass
for _module in _DELIVERY_MODULES:
    try:
        importlib.import_module(_module)
    except ImportError:  # reported by the runner that needs it
        pass

_dns_error = "not prepared: call prepare('plan_sync') first"
_dns_module: ModuleType | None = None
_destination: ModuleType | None = None


def prepare(runner: str) -> None:
    """Import what *runner* needs beyond the delivery API (the worker calls this)."""
    global _dns_error, _dns_module, _destination
    if runner in ("run_async", "plan_async"):
        importlib.import_module("asyncio")  # not loaded for the sync runners
    if runner == "run_async":
        importlib.import_module("pyfix_smtp.transport.aio")
    if runner not in ("plan_sync", "plan_async"):
        return
    try:
        import pyfix_smtp.dns as dns_module
        from pyfix_smtp import destination
        from pyfix_smtp.dns import resolve as _resolve  # noqa: F401 - imports dnspython now
        from pyfix_smtp.dns import runner as _runner  # noqa: F401
    except Exception as exc:  # the DNS layer is being written in parallel
        _dns_error = f"{type(exc).__name__}: {exc}"
        return
    _dns_module, _destination, _dns_error = dns_module, destination, ""


class _Outcome(Protocol):
    status: str


def _library() -> ModuleType:
    if _smtp is None:
        raise Unavailable("pyfix_smtp is not importable")
    return _smtp


def _require(module: ModuleType, *names: str) -> None:
    missing = [n for n in names if not hasattr(module, n)]
    if missing:
        raise Unavailable(
            f"not available yet: {', '.join(module.__name__ + '.' + n for n in missing)}"
        )


def nexthop(job: Job) -> str:
    """The nexthop for the sink: no MX lookup, the sink's port."""
    if job.protocol == "lmtp":
        return f"inet:[{job.host}]:{job.port}"
    return f"[{job.host}]:{job.port}"


def accepted(report: object) -> int:
    """1 when every recipient got a 2.x.x outcome, else 0."""
    outcomes: Iterable[_Outcome] | None = getattr(report, "outcomes", None)
    if outcomes is None:
        outcomes = getattr(report, "recipients", ())
    items = tuple(outcomes or ())
    return 1 if items and all(str(o.status).startswith("2") for o in items) else 0


class Deliverer:
    """The one place that calls the delivery API."""

    def __init__(self, job: Job, *, asynchronous: bool) -> None:
        smtp = _library()
        _require(smtp, "Envelope", "Config", "AsyncClient" if asynchronous else "Client")
        self.job = job
        self.nexthop = nexthop(job)
        prefix = "lmtp" if job.protocol == "lmtp" else "smtp"
        overrides: dict[str, object] = {"myhostname": job.helo}
        if job.reuse:
            # Postfix: "Permanently enable SMTP connection caching for the
            # specified destinations" (smtp_connection_cache_destinations), a
            # string_list matched against the nexthop's domain: the address
            # (the whole "inet:[...]:port" nexthop would name a table type).
            overrides[f"{prefix}_connection_cache_destinations"] = job.host
        self.config = smtp.Config(protocol=job.protocol, **overrides)
        self.envelope = smtp.Envelope(sender=job.sender, recipients=list(job.recipients))
        kind = smtp.AsyncClient if asynchronous else smtp.Client
        self.client = kind(self.config) if job.reuse else kind(self.config, cache_size=0)
        self.data = None if job.stream else job.load_message()

    def content(self) -> bytes | IO[bytes]:
        """The message: bytes loaded once, or the file opened for streaming."""
        if self.data is not None:
            return self.data
        return open(self.job.message_path, "rb")  # closed by the caller

    def send(self) -> int:
        """Deliver one message synchronously; 1 when accepted."""
        content = self.content()
        try:
            return accepted(self.client.deliver(self.envelope, content, self.nexthop))
        finally:
            if not isinstance(content, bytes):
                content.close()

    async def send_async(self) -> int:
        """Deliver one message with the asyncio client; 1 when accepted."""
        content = self.content()
        try:
            return accepted(await self.client.deliver(self.envelope, content, self.nexthop))
        finally:
            if not isinstance(content, bytes):
                content.close()

    def close(self) -> None:
        """QUIT the cached connections (inside the measured run)."""
        self.client.close()

    async def aclose(self) -> None:
        """QUIT the asyncio client's cached connections."""
        await self.client.aclose()


def _landing(exc: ModuleNotFoundError) -> Unavailable | None:
    """A pyfix_smtp module that is not there yet: the layer is still being landed."""
    if exc.name and exc.name.startswith("pyfix_smtp"):
        return Unavailable(f"not available yet: {exc.name} is missing")
    return None


def run_sync(job: Job) -> int:
    """Scenarios 1, 3, 4, 6, 7: one ``Client.deliver`` per message."""
    if job.connections != 1:
        raise Unavailable("the sync runner uses one connection; scenario 2 uses run_async")
    try:
        sender = Deliverer(job, asynchronous=False)
        try:
            return sum(sender.send() for _ in range(job.messages))
        finally:
            sender.close()
    except ModuleNotFoundError as exc:
        raise _landing(exc) or exc from None


async def run_async(job: Job) -> int:
    """Scenario 2: ``job.connections`` tasks, each delivering its share in turn."""
    try:
        sender = Deliverer(job, asynchronous=True)

        async def task(count: int) -> int:
            return sum([await sender.send_async() for _ in range(count)])

        try:
            counts = [job.share(i) for i in range(job.connections)]
            import asyncio  # loaded by prepare()

            return sum(await asyncio.gather(*(task(n) for n in counts if n)))
        finally:
            await sender.aclose()
    except ModuleNotFoundError as exc:
        raise _landing(exc) or exc from None


def _dns() -> tuple[ModuleType, ModuleType]:
    if _dns_error or _dns_module is None or _destination is None:
        raise Unavailable(f"pyfix_smtp.dns is not importable: {_dns_error}")
    _require(_dns_module, "plan_sync", "plan_async", "PlanOptions", "Family")
    _require(_destination, "parse")
    return _dns_module, _destination


def _plan_options(dns_module: ModuleType) -> object:
    # MX then A only, as the dnspython loop does (no AAAA: IPv4 only).
    family = dns_module.Family
    return dns_module.PlanOptions(inet_protocols=frozenset({family.IPV4}))


def _found(plan: object) -> int:
    return 1 if getattr(plan, "candidates", ()) else 0


def plan_sync(job: Job) -> int:
    """Scenario 8 (sync): ``pyfix_smtp.dns.plan_sync`` for each domain in turn."""
    dns_module, destination = _dns()
    resolver = dns_module.DnsResolver(nameservers=["127.0.0.1"], port=job.dns_port, lifetime=10.0)
    options = _plan_options(dns_module)
    rng = random.Random(8)
    found = 0
    for domain in job.domains:
        plan = dns_module.plan_sync(destination.parse(domain), resolver, options, rng)
        found += _found(plan)
    return found


async def plan_async(job: Job) -> int:
    """Scenario 8 (asyncio): ``plan_async`` for ``job.connections`` domains at a time."""
    dns_module, destination = _dns()
    resolver = dns_module.AsyncDnsResolver(
        nameservers=["127.0.0.1"], port=job.dns_port, lifetime=10.0
    )
    options = _plan_options(dns_module)
    rng = random.Random(8)
    import asyncio  # loaded by prepare()

    gate = asyncio.Semaphore(job.connections)

    async def one(domain: str) -> int:
        async with gate:
            plan = await dns_module.plan_async(destination.parse(domain), resolver, options, rng)
            return _found(plan)

    return sum(await asyncio.gather(*(one(d) for d in job.domains)))
