"""The asyncio driver: executes the delivery core's effects with asyncio streams.

:class:`AsyncDriver` is :class:`~pyfix_smtp.transport.sync.SyncDriver` for an
event loop: one driver per delivery, any number of deliveries running
concurrently in one loop. Connections are ``(StreamReader, StreamWriter)``
pairs; ``StartTls`` upgrades them in place with ``StreamWriter.start_tls()``
(Python 3.11+); ``ResolveMany`` runs its lookups concurrently. Exceptions
are mapped to values with the same functions as the blocking driver, so both
report the same texts.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from pyfix_smtp.delivery.effects import (
    CachedSession,
    CacheSave,
    CacheTake,
    Close,
    Connect,
    Connected,
    Effect,
    EffectResult,
    FetchStsPolicy,
    GetTime,
    IoFailure,
    IoFailureKind,
    Receive,
    Resolve,
    ResolveMany,
    Send,
    StartTls,
    TlsEstablished,
    TlsFailed,
)
from pyfix_smtp.errors import TlsPolicyError
from pyfix_smtp.transport.cache import ConnectionCache
from pyfix_smtp.transport.sync import (
    TLS_CONFIG_FAILURE,
    StsFetcher,
    TlsContexts,
    connect_failure,
    fetch_sts,
    io_failure,
    open_socket,
    tls_established,
    tls_failed,
)

if TYPE_CHECKING:
    from pyfix_smtp.dns.plan import AsyncResolver
    from pyfix_smtp.tls.options import TlsOptions
    from pyfix_smtp.tls.policy import TlsPolicy

__all__ = ["AsyncDriver", "Stream", "close_stream"]

T = TypeVar("T")

_ERROR = IoFailureKind.ERROR
_READ_LIMIT = 1 << 20  # StreamReader buffer before it pauses the transport


class Stream(NamedTuple):
    """One asyncio connection."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


def close_stream(stream: Stream, polite: bool = False) -> None:
    """Close *stream* without waiting; ``polite`` queues ``QUIT`` first."""
    writer = stream.writer
    transport = writer.transport
    if transport.is_closing():
        return
    try:
        if polite:
            writer.write(b"QUIT\r\n")
            writer.close()  # flushes the buffer, then closes
        else:
            transport.abort()
    except (OSError, RuntimeError):  # the loop is closed already
        pass


class AsyncDriver:
    """Executes effects with asyncio streams for one delivery at a time.

    Args:
        resolver: answers ``Resolve``/``ResolveMany`` (an
            :class:`~pyfix_smtp.dns.resolve.AsyncDnsResolver` or your own).
        cache: where ``CacheSave`` puts idle connections (one per event loop).
        contexts: TLS contexts, shared between drivers of one client.
        sts_fetcher: a blocking MTA-STS fetcher, run in a worker thread.
        clock: the ``GetTime`` clock.

    Timeouts of 0 or less mean "no limit".
    """

    def __init__(
        self,
        resolver: AsyncResolver,
        cache: ConnectionCache[Stream],
        contexts: TlsContexts | None = None,
        *,
        sts_fetcher: StsFetcher = fetch_sts,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.resolver = resolver
        self.cache = cache
        self.contexts = contexts if contexts is not None else TlsContexts()
        self.sts_fetcher = sts_fetcher
        self.clock = clock
        self.stream: Stream | None = None
        self._handlers: dict[type, Callable[[Any], Awaitable[EffectResult]]] = {
            Send: self._send,
            Receive: self._receive,
            GetTime: self._get_time,
            Resolve: self._resolve,
            ResolveMany: self._resolve_many,
            Connect: self._connect,
            StartTls: self._start_tls,
            Close: self._close,
            FetchStsPolicy: self._fetch_sts,
            CacheTake: self._cache_take,
            CacheSave: self._cache_save,
        }

    async def run(self, steps: Generator[Effect, EffectResult, T]) -> T:
        """Drive *steps* to the end and return its value (the report).

        A connection still current when the generator ends, fails or is
        cancelled is aborted.
        """
        handlers = self._handlers
        send = steps.send
        result: EffectResult = None
        try:
            while True:
                effect = send(result)
                handler = handlers.get(type(effect))
                if handler is None:
                    raise TypeError(f"not an effect: {effect!r}")
                result = await handler(effect)
        except StopIteration as stop:
            value: T = stop.value
            return value
        finally:
            self.release()

    async def execute(self, effect: Effect) -> EffectResult:
        """Execute one effect and return its result."""
        handler = self._handlers.get(type(effect))
        if handler is None:
            raise TypeError(f"not an effect: {effect!r}")
        return await handler(effect)

    def release(self) -> None:
        """Abort the current connection, if any."""
        stream, self.stream = self.stream, None
        if stream is not None:
            close_stream(stream)

    # -- effects ---------------------------------------------------------

    async def _get_time(self, effect: GetTime) -> float:
        return self.clock()

    async def _resolve(self, effect: Resolve) -> EffectResult:
        return await self.resolver.lookup(effect.query)

    async def _resolve_many(self, effect: ResolveMany) -> EffectResult:
        lookup = self.resolver.lookup
        return tuple(await asyncio.gather(*(lookup(q) for q in effect.queries)))

    async def _fetch_sts(self, effect: FetchStsPolicy) -> EffectResult:
        # http.client is blocking; a policy fetch is rare (cached for max_age).
        return await asyncio.to_thread(self.sts_fetcher, effect)

    async def _connect(self, effect: Connect) -> Connected | IoFailure:
        self.release()
        opened = open_socket(effect.endpoint, effect.bind_address, effect.bind_enforce)
        if isinstance(opened, IoFailure):
            return opened
        sock, address = opened
        loop = asyncio.get_running_loop()
        try:
            sock.setblocking(False)
            async with asyncio.timeout(effect.timeout if effect.timeout > 0 else None):
                await loop.sock_connect(sock, address)
        except (OSError, ValueError) as exc:
            sock.close()
            if isinstance(exc, ValueError):
                return IoFailure(_ERROR, str(exc))
            return connect_failure(exc)
        except BaseException:  # cancelled
            sock.close()
            raise
        local = ""
        try:
            if effect.endpoint.unix:
                reader, writer = await asyncio.open_unix_connection(sock=sock, limit=_READ_LIMIT)
            else:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                local = str(sock.getsockname()[0])
                reader, writer = await asyncio.open_connection(sock=sock, limit=_READ_LIMIT)
        except OSError as exc:
            sock.close()
            return io_failure(exc)
        self.stream = Stream(reader, writer)
        return Connected(local)

    async def _send(self, effect: Send) -> IoFailure | None:
        stream = self.stream
        if stream is None:
            return IoFailure(_ERROR, "no connection")
        writer = stream.writer
        try:
            writer.write(effect.data)
            if writer.transport.get_write_buffer_size() == 0:
                await writer.drain()  # everything went out; only reports a lost connection
            else:
                async with asyncio.timeout(effect.timeout if effect.timeout > 0 else None):
                    await writer.drain()
        except (OSError, RuntimeError) as exc:
            return io_failure(exc)
        return None

    async def _receive(self, effect: Receive) -> bytes | IoFailure:
        stream = self.stream
        if stream is None:
            return IoFailure(_ERROR, "no connection")
        try:
            async with asyncio.timeout(effect.timeout if effect.timeout > 0 else None):
                return await stream.reader.read(effect.max_bytes)
        except OSError as exc:
            return io_failure(exc)

    async def _start_tls(self, effect: StartTls) -> TlsEstablished | TlsFailed | IoFailure:
        stream = self.stream
        if stream is None:
            return IoFailure(_ERROR, "no connection")
        policy: TlsPolicy = effect.policy  # type: ignore[assignment]
        options: TlsOptions = effect.options  # type: ignore[assignment]
        try:
            ctx = self.contexts.get(policy, options)
        except TlsPolicyError as exc:
            return TlsFailed(TLS_CONFIG_FAILURE, str(exc))
        timeout = effect.timeout if effect.timeout > 0 else None
        try:
            async with asyncio.timeout(timeout):
                await stream.writer.start_tls(
                    ctx, server_hostname=policy.sni or None, ssl_handshake_timeout=timeout
                )
        except (OSError, ValueError, RuntimeError) as exc:
            return tls_failed(policy, exc)
        tls = stream.writer.get_extra_info("ssl_object")
        if not isinstance(tls, ssl.SSLObject):
            return tls_failed(policy, ssl.SSLError("no TLS object after the handshake"))
        return tls_established(policy, tls)

    async def _close(self, effect: Close) -> None:
        self.release()

    async def _cache_take(self, effect: CacheTake) -> CachedSession | None:
        found = self.cache.take(effect.labels)
        if found is None:
            return None
        self.release()
        self.stream, session = found
        return session

    async def _cache_save(self, effect: CacheSave) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            self.cache.save(effect.labels, effect.session, stream)
