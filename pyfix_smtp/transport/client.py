"""The public delivery API: :func:`deliver`, :func:`deliver_async`, :class:`Client`.

A client holds what outlives one delivery: the configuration-derived facts
(our interface addresses for mail-loop detection, computed once per
:class:`~pyfix_smtp.config.Config`), the resolver, the connection cache, TLS
contexts, and the MTA-STS and SASL failure caches. Each delivery builds a
:class:`~pyfix_smtp.delivery.request.DeliveryRequest`, runs the sans-IO core
(:func:`pyfix_smtp.delivery.core.deliver_steps`) with a driver, and returns
the :class:`~pyfix_smtp.delivery.report.DeliveryReport`.

:func:`deliver` and :func:`deliver_async` use a default client: one per
thread for :func:`deliver` (a client is not thread-safe), one per event loop
for :func:`deliver_async` (asyncio connections belong to their loop).
:func:`close_connections` closes the current thread's and loop's cached
connections; an explicit ``with Client() as client`` / ``async with
AsyncClient() as client`` closes its own on exit.
"""

from __future__ import annotations

import random
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pyfix_smtp.config import Config
from pyfix_smtp.transport.cache import DEFAULT_MAX_SIZE, ConnectionCache

if TYPE_CHECKING:
    import asyncio
    import socket

    from pyfix_smtp.delivery.report import DeliveryReport
    from pyfix_smtp.delivery.request import DeliveryRequest
    from pyfix_smtp.dns.options import PlanOptions
    from pyfix_smtp.dns.plan import AsyncResolver, Resolver
    from pyfix_smtp.dns.probe import DnssecProbe
    from pyfix_smtp.dns.records import Answer, Query
    from pyfix_smtp.protocol.envelope import Envelope
    from pyfix_smtp.sasl.cache import AuthFailureCache
    from pyfix_smtp.tls.mtasts import StsCache
    from pyfix_smtp.transport.aio import AsyncDriver, Connection
    from pyfix_smtp.transport.sync import StsFetcher

__all__ = [
    "AsyncClient",
    "Client",
    "close_connections",
    "deliver",
    "deliver_async",
]


class _Core:
    """The delivery layer's entry points, imported on the first delivery (not per call)."""

    __slots__ = ("AsyncDriver", "build_request", "deliver_steps", "prepare_content")

    def __init__(self) -> None:
        from pyfix_smtp.delivery.core import deliver_steps
        from pyfix_smtp.delivery.request import build_request
        from pyfix_smtp.transport.content import prepare_content

        self.deliver_steps = deliver_steps
        self.build_request = build_request
        self.prepare_content = prepare_content
        self.AsyncDriver: type[AsyncDriver] | None = None  # imported by the first asyncio delivery


_CORE: _Core | None = None


def _core() -> _Core:
    global _CORE
    if _CORE is None:
        _CORE = _Core()
    return _CORE


class _ClientBase:
    """What sync and asyncio clients share: configuration and caches."""

    def __init__(
        self,
        config: Config | None,
        *,
        rng: random.Random | None,
        cache_size: int,
        sts_cache: StsCache | None,
        sasl_cache: AuthFailureCache | None,
        mta_sts: bool,
        own_addresses: Iterable[str] | None,
        proxy_addresses: Iterable[str] | None,
        sts_fetcher: StsFetcher | None,
    ) -> None:
        from pyfix_smtp.transport.sync import TlsContexts, fetch_sts

        self.config = config if config is not None else Config()
        self.rng = rng if rng is not None else random.Random()
        self.cache_size = cache_size
        self.mta_sts = mta_sts
        self.sts_cache = sts_cache
        self.sasl_cache = sasl_cache
        self.sts_fetcher: StsFetcher = sts_fetcher if sts_fetcher is not None else fetch_sts
        self.contexts = TlsContexts()
        self._own = tuple(own_addresses) if own_addresses is not None else None
        self._proxy = tuple(proxy_addresses) if proxy_addresses is not None else None
        # id(config) -> (config, planner options, SASL cache): hashing a Config
        # hashes every parameter, so look it up by identity.
        self._per_config: dict[int, tuple[Config, PlanOptions, AuthFailureCache | None]] = {}
        #: DNSSEC availability and the one dnssec_probe (Postfix dns_sec.c keeps
        #: it per process); made by the first delivery at smtp_dns_support_level = dnssec.
        self.dnssec_probe: DnssecProbe | None = None

    def _config_state(self, cfg: Config) -> tuple[Config, PlanOptions, AuthFailureCache | None]:
        """What *cfg* implies for this client, computed once per Config object."""
        state = self._per_config.get(id(cfg))
        if state is not None and state[0] is cfg:
            return state
        if self._own is not None:
            from pyfix_smtp.delivery.request import plan_options_for

            opts = plan_options_for(cfg, self._own, self._proxy or ())
        else:
            from pyfix_smtp.dns.interfaces import plan_options

            opts = plan_options(cfg)  # our interface addresses: asks the system
        sasl = self.sasl_cache
        if sasl is None:
            from pyfix_smtp.sasl.cache import open_auth_cache

            sasl = open_auth_cache(cfg.smtp_sasl_auth_cache_name, cfg.smtp_sasl_auth_cache_time)
        if cfg.smtp_dns_support_level == "dnssec":
            from pyfix_smtp.dns.probe import parse_probe

            parse_probe(cfg.dnssec_probe)  # a malformed value: ConfigError, nothing sent
        if len(self._per_config) >= 16:
            self._per_config.clear()
        state = (cfg, opts, sasl)
        self._per_config[id(cfg)] = state
        return state

    def _want_dnssec_probe(self, text: str) -> None:
        """Lookups now ask for DNSSEC validation: probe with *text* if none validates."""
        probe = self.dnssec_probe
        if probe is None:
            from pyfix_smtp.dns.probe import DnssecProbe

            self.dnssec_probe = DnssecProbe(text)
        elif not probe.settled:
            probe.configure(text)

    def _request(
        self,
        envelope: Envelope,
        content: object,
        nexthop: str,
        config: Config | None,
        options: dict[str, Any],
    ) -> tuple[DeliveryRequest, Any]:
        """Build the request; the second value is a spool file to close afterwards."""
        build_request, prepare_content = _core().build_request, _core().prepare_content
        cfg = config if config is not None else self.config
        _, plan_options, sasl_cache = self._config_state(cfg)
        if cfg.smtp_dns_support_level == "dnssec":
            self._want_dnssec_probe(cfg.dnssec_probe)
        if self.sts_cache is None and (self.mta_sts or cfg.smtp_mta_sts_enable):
            from pyfix_smtp.tls.stscache import MemoryStsCache

            self.sts_cache = MemoryStsCache()
        source, spooled = prepare_content(content, smtputf8=envelope.smtputf8)
        try:
            request = build_request(
                envelope,
                source,
                nexthop=nexthop,
                config=cfg,
                rng=self.rng,
                plan_options=plan_options,
                connection_cache=self.cache_size > 0,
                mta_sts=self.mta_sts,
                sts_cache=self.sts_cache,
                sasl_cache=sasl_cache,
                **options,
            )
        except BaseException:
            if spooled is not None:
                spooled.close()
            raise
        return request, spooled


def _request_options(
    arrival: float | None,
    queue_id: str,
    verify_probe: bool,
    tls_required_no: bool,
    nexthop_is_relayhost: bool,
) -> dict[str, Any]:
    return {
        "arrival": arrival,
        "queue_id": queue_id,
        "verify_probe": verify_probe,
        "tls_required_no": tls_required_no,
        "nexthop_is_relayhost": nexthop_is_relayhost,
    }


class _SyncLookup:
    """The client's resolver, looked up when a query comes (created on demand)."""

    __slots__ = ("client",)

    def __init__(self, client: Client) -> None:
        self.client = client

    def lookup(self, query: Query) -> Answer:
        client = self.client
        answer = client.resolver.lookup(query)
        probe = client.dnssec_probe
        if probe is not None and not probe.settled:
            ask = probe.observe(answer, query)
            if ask is not None:  # Postfix dns_lookup_x(): dns_sec_probe()
                _log_probe(probe.verdict(client.resolver.lookup(ask)))
        return answer


class _AsyncLookup:
    """:class:`_SyncLookup` for :class:`AsyncClient`."""

    __slots__ = ("client",)

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def lookup(self, query: Query) -> Answer:
        client = self.client
        answer = await client.resolver.lookup(query)
        probe = client.dnssec_probe
        if probe is not None and not probe.settled:
            ask = probe.observe(answer, query)  # marks the probe sent: concurrent lookups skip it
            if ask is not None:
                _log_probe(probe.verdict(await client.resolver.lookup(ask)))
        return answer


def _send_tlsrpt(config: Config, report: DeliveryReport) -> None:
    """Hand the delivery's TLSRPT results to ``smtp_tlsrpt_socket_name`` (after the delivery)."""
    from pyfix_smtp.transport.tlsrpt import send_results

    send_results(config.smtp_tlsrpt_socket_name, report.tlsrpt)


def _log_probe(warnings: list[str]) -> None:
    """Log the DNSSEC probe's warnings as Postfix dns_sec_probe() does (msg_warn)."""
    if warnings:
        import logging

        log = logging.getLogger("pyfix_smtp.dns")
        for line in warnings:
            log.warning("%s", line)


class Client(_ClientBase):
    """Delivers messages with blocking sockets, reusing connections between deliveries.

    Args:
        config: the default :class:`~pyfix_smtp.config.Config` (each
            :meth:`deliver` may pass another).
        resolver: answers DNS queries (default: a
            :class:`~pyfix_smtp.dns.resolve.DnsResolver` with the system's
            resolver configuration).
        rng: randomness for MX shuffling (default: a private ``random.Random``).
        cache_size: the most idle connections kept (0: no connection cache).
        mta_sts: look up MTA-STS policies (beyond Postfix) even when the
            Config's ``smtp_mta_sts_enable`` is off.
        sts_cache: the MTA-STS policy cache (default: in memory, created
            when MTA-STS is first used).
        sasl_cache: the SASL failure cache (default: what
            ``smtp_sasl_auth_cache_name`` names, or none).
        own_addresses: our ``inet_interfaces`` addresses for best-MX loop
            detection (default: asked from the system once per Config).
        proxy_addresses: our ``proxy_interfaces`` addresses, likewise.
        sts_fetcher: fetches MTA-STS policy files (tests point it elsewhere).

    Not thread-safe: use one client per thread.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        resolver: Resolver | None = None,
        rng: random.Random | None = None,
        cache_size: int = DEFAULT_MAX_SIZE,
        sts_cache: StsCache | None = None,
        sasl_cache: AuthFailureCache | None = None,
        mta_sts: bool = False,
        own_addresses: Iterable[str] | None = None,
        proxy_addresses: Iterable[str] | None = None,
        sts_fetcher: StsFetcher | None = None,
    ) -> None:
        super().__init__(
            config,
            rng=rng,
            cache_size=cache_size,
            sts_cache=sts_cache,
            sasl_cache=sasl_cache,
            mta_sts=mta_sts,
            own_addresses=own_addresses,
            proxy_addresses=proxy_addresses,
            sts_fetcher=sts_fetcher,
        )
        from pyfix_smtp.transport.sync import SyncDriver, close_socket

        self._resolver = resolver
        self.cache: ConnectionCache[socket.socket] = ConnectionCache(
            close_socket, max_size=cache_size
        )
        self._driver = SyncDriver(
            _SyncLookup(self), self.cache, self.contexts, sts_fetcher=self.sts_fetcher
        )

    @property
    def resolver(self) -> Resolver:
        """The resolver (the default one is created, and dnspython imported, on first use)."""
        if self._resolver is None:
            from pyfix_smtp.dns.resolve import DnsResolver

            self._resolver = DnsResolver()
        return self._resolver

    def deliver(
        self,
        envelope: Envelope,
        content: object,
        nexthop: str,
        config: Config | None = None,
        *,
        arrival: float | None = None,
        queue_id: str = "",
        verify_probe: bool = False,
        tls_required_no: bool = False,
        nexthop_is_relayhost: bool = False,
    ) -> DeliveryReport:
        """Deliver one message to its recipients via *nexthop*; see :func:`deliver`."""
        deliver_steps = _core().deliver_steps
        options = _request_options(
            arrival, queue_id, verify_probe, tls_required_no, nexthop_is_relayhost
        )
        request, spooled = self._request(envelope, content, nexthop, config, options)
        try:
            report = self._driver.run(deliver_steps(request))
        finally:
            if spooled is not None:
                spooled.close()
        if report.tlsrpt:
            _send_tlsrpt(request.config, report)
        return report

    def close(self) -> None:
        """Close every cached connection (``QUIT`` without waiting for the reply)."""
        self.cache.close_all()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_ClientBase):
    """:class:`Client` for asyncio: run many :meth:`deliver` calls concurrently.

    Arguments as for :class:`Client`; *resolver* is an asyncio resolver
    (default :class:`~pyfix_smtp.dns.resolve.AsyncDnsResolver`). A client
    belongs to the event loop it first delivers in. Cached connections are
    closed when they expire (a timer on the loop), by :meth:`aclose`, or on
    leaving ``async with``.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        resolver: AsyncResolver | None = None,
        rng: random.Random | None = None,
        cache_size: int = DEFAULT_MAX_SIZE,
        sts_cache: StsCache | None = None,
        sasl_cache: AuthFailureCache | None = None,
        mta_sts: bool = False,
        own_addresses: Iterable[str] | None = None,
        proxy_addresses: Iterable[str] | None = None,
        sts_fetcher: StsFetcher | None = None,
    ) -> None:
        super().__init__(
            config,
            rng=rng,
            cache_size=cache_size,
            sts_cache=sts_cache,
            sasl_cache=sasl_cache,
            mta_sts=mta_sts,
            own_addresses=own_addresses,
            proxy_addresses=proxy_addresses,
            sts_fetcher=sts_fetcher,
        )
        from pyfix_smtp.transport.aio import close_connection

        self._resolver = resolver
        self.cache: ConnectionCache[Connection] = ConnectionCache(
            close_connection, max_size=cache_size
        )
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_at = float("inf")

    @property
    def resolver(self) -> AsyncResolver:
        """The resolver (the default one is created, and dnspython imported, on first use)."""
        if self._resolver is None:
            from pyfix_smtp.dns.resolve import AsyncDnsResolver

            self._resolver = AsyncDnsResolver()
        return self._resolver

    async def deliver(
        self,
        envelope: Envelope,
        content: object,
        nexthop: str,
        config: Config | None = None,
        *,
        arrival: float | None = None,
        queue_id: str = "",
        verify_probe: bool = False,
        tls_required_no: bool = False,
        nexthop_is_relayhost: bool = False,
    ) -> DeliveryReport:
        """Deliver one message to its recipients via *nexthop*; see :func:`deliver_async`."""
        core = _core()
        deliver_steps = core.deliver_steps
        if core.AsyncDriver is None:
            from pyfix_smtp.transport.aio import AsyncDriver

            core.AsyncDriver = AsyncDriver
        options = _request_options(
            arrival, queue_id, verify_probe, tls_required_no, nexthop_is_relayhost
        )
        request, spooled = self._request(envelope, content, nexthop, config, options)
        driver = core.AsyncDriver(
            _AsyncLookup(self), self.cache, self.contexts, sts_fetcher=self.sts_fetcher
        )
        try:
            report = await driver.run(deliver_steps(request))
        finally:
            if spooled is not None:
                spooled.close()
            self._schedule_sweep()
        if report.tlsrpt:
            _send_tlsrpt(request.config, report)  # non-blocking sendto(): no await needed
        return report

    def _schedule_sweep(self) -> None:
        """Close expired cached connections on time, even when no delivery follows.

        The timer is set for a lower bound of the earliest expiry (found
        without a pass over the cache); when it fires, the sweep finds the
        exact time and sets the next one.
        """
        when = self.cache.expiry_bound
        if when is None or when >= self._sweep_at:
            return
        if self._sweeper is not None:
            self._sweeper.cancel()
        import asyncio

        loop = asyncio.get_running_loop()
        self._sweep_at = when
        self._sweeper = loop.call_later(max(0.0, when - time.time()) + 0.01, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        self._sweep_at = float("inf")
        self.cache.sweep()
        self._schedule_sweep()

    def close(self) -> None:
        """Close every cached connection (``QUIT`` queued, not awaited)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
            self._sweep_at = float("inf")
        self.cache.close_all()

    async def aclose(self) -> None:
        """:meth:`close`, then let the event loop flush and close the transports."""
        import asyncio

        self.close()
        await asyncio.sleep(0)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# -- module-level API with default clients ------------------------------------------

_thread_clients = threading.local()
_loop_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def default_client() -> Client:
    """This thread's default :class:`Client` (created on first use)."""
    client: Client | None = getattr(_thread_clients, "client", None)
    if client is None:
        client = Client()
        _thread_clients.client = client
    return client


def default_async_client() -> AsyncClient:
    """The running event loop's default :class:`AsyncClient` (created on first use)."""
    import asyncio

    loop = asyncio.get_running_loop()
    client = _loop_clients.get(loop)
    if client is None:
        client = AsyncClient()
        _loop_clients[loop] = client
    return client


def deliver(
    envelope: Envelope,
    content: object,
    nexthop: str,
    config: Config | None = None,
    *,
    client: Client | None = None,
    arrival: float | None = None,
    queue_id: str = "",
    verify_probe: bool = False,
    tls_required_no: bool = False,
    nexthop_is_relayhost: bool = False,
) -> DeliveryReport:
    """Deliver one message to its recipients via *nexthop*, as Postfix's smtp(8)/lmtp(8).

    Args:
        envelope: sender, recipients and DSN/SMTPUTF8/REQUIRETLS requests.
        content: the message: ``bytes``, an ``email.message.Message``, a
            binary file (streamed, never loaded whole) or an iterable of
            bytes chunks (spooled to a temporary file so it can be resent).
        nexthop: Postfix nexthop syntax: ``example.com`` (MX lookup),
            ``[mx.example.com]:587``, ``example.com:submission``; LMTP
            (``Config(protocol="lmtp")``): ``inet:host:port``, ``unix:/path``.
        config: the Postfix parameters (default ``Config()``; the client's).
        client: the client whose caches to use (default: this thread's).
        arrival: when the message entered the system (Postfix
            ``incoming_arrival``): for ``delay=``, the plaintext-fallback
            rule and the PIX delay threshold; None: now (a first attempt).
        queue_id: the queue id to prefix log lines with.
        verify_probe: an address-verification probe.
        tls_required_no: the message has ``TLS-Required: no`` (RFC 8689).
        nexthop_is_relayhost: *nexthop* is the ``relayhost`` (4.3.5 rule).

    Returns:
        one outcome per recipient, in order; the Postfix-format log lines
        also go to the ``pyfix_smtp.delivery`` logger at INFO.

    Raises:
        DestinationError, ConfigError, TypeError: bad input (nothing was
            sent). Network trouble is never raised: it is in the report.
    """
    return (client if client is not None else default_client()).deliver(
        envelope,
        content,
        nexthop,
        config,
        arrival=arrival,
        queue_id=queue_id,
        verify_probe=verify_probe,
        tls_required_no=tls_required_no,
        nexthop_is_relayhost=nexthop_is_relayhost,
    )


async def deliver_async(
    envelope: Envelope,
    content: object,
    nexthop: str,
    config: Config | None = None,
    *,
    client: AsyncClient | None = None,
    arrival: float | None = None,
    queue_id: str = "",
    verify_probe: bool = False,
    tls_required_no: bool = False,
    nexthop_is_relayhost: bool = False,
) -> DeliveryReport:
    """:func:`deliver` for asyncio; any number may run concurrently in one event loop."""
    return await (client if client is not None else default_async_client()).deliver(
        envelope,
        content,
        nexthop,
        config,
        arrival=arrival,
        queue_id=queue_id,
        verify_probe=verify_probe,
        tls_required_no=tls_required_no,
        nexthop_is_relayhost=nexthop_is_relayhost,
    )


def close_connections() -> None:
    """Close the cached connections of this thread's and the running loop's default clients."""
    client: Client | None = getattr(_thread_clients, "client", None)
    if client is not None:
        client.close()
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:  # no event loop can be running
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    aclient = _loop_clients.get(loop)
    if aclient is not None:
        aclient.close()
