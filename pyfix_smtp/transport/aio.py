"""The asyncio driver: executes the delivery core's effects on an event loop.

:class:`AsyncDriver` is :class:`~pyfix_smtp.transport.sync.SyncDriver` for an
event loop: one driver per delivery, any number of deliveries running
concurrently in one loop. ``ResolveMany`` runs its lookups concurrently.
Exceptions are mapped to values with the same functions as the blocking
driver, so both report the same texts.

A connection is a :class:`Connection`, a small ``asyncio.Protocol`` rather
than a StreamReader/StreamWriter pair: a ``Receive`` that finds data already
buffered returns without suspending, and read timeouts cost no timer per
read (one timer per connection is re-armed lazily, as an event loop's I/O
deadlines usually are). ``StartTls`` upgrades the transport in place with
``loop.start_tls()``; a cached TLS session is offered through
:data:`~pyfix_smtp.tls.context.OFFERED_SESSION`, which the context's
``wrap_bio()`` reads (``start_tls()`` has no ``session`` argument).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

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
    Sleep,
    StartTls,
    TlsEstablished,
    TlsFailed,
)
from pyfix_smtp.errors import TlsPolicyError
from pyfix_smtp.tls.context import OFFERED_SESSION, ClientContext
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
from pyfix_smtp.transport.tls_sessions import PendingSession

if TYPE_CHECKING:
    from pyfix_smtp.delivery.effects import Endpoint
    from pyfix_smtp.dns.plan import AsyncResolver
    from pyfix_smtp.tls.options import TlsOptions
    from pyfix_smtp.tls.policy import TlsPolicy

__all__ = ["AsyncDriver", "Connection", "close_connection"]

T = TypeVar("T")

_ERROR = IoFailureKind.ERROR
_EOF = IoFailureKind.EOF
_TIMED_OUT = IoFailure(IoFailureKind.TIMEOUT, "Connection timed out")
_NO_CONNECTION = IoFailure(_ERROR, "no connection")
_MAX_BUFFER = 1 << 20  # stop reading from the socket beyond this much unread data


class Connection(asyncio.Protocol):
    """One client connection: a receive buffer and at most one waiting reader.

    Read deadlines: :meth:`receive` stores its deadline; one timer per
    connection fires no earlier than the oldest deadline and re-arms itself
    for the current one, so a read that completes in time costs no timer.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self._eof = False
        self._lost = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._drained: asyncio.Future[None] | None = None

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer = self._buffer + data if self._buffer else data
        if len(self._buffer) > _MAX_BUFFER and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._eof = True
        self._error = exc
        self._wake()
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    # -- what the driver uses ---------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _check_deadline(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # nobody waits: the next receive() arms a new timer
        if self.loop.time() >= self._deadline:
            waiter.set_exception(TimeoutError())
        else:
            self._timer = self.loop.call_at(self._deadline, self._check_deadline)

    @property
    def buffered(self) -> bool:
        """True when a :meth:`take` would return data at once."""
        return bool(self._buffer)

    def take(self, max_bytes: int) -> bytes:
        """Up to *max_bytes* of what is buffered (``b""`` when nothing is)."""
        data = self._buffer
        if len(data) > max_bytes:
            self._buffer = data[max_bytes:]
            return data[:max_bytes]
        self._buffer = b""
        if self.transport is not None and len(data) > _MAX_BUFFER and not self._lost:
            self.transport.resume_reading()
        return data

    async def receive(self, max_bytes: int, timeout: float) -> bytes | IoFailure:
        """What is buffered (up to *max_bytes*), waiting up to *timeout* for a first byte."""
        if not self._buffer:
            if self._eof:
                return self._eof_result()
            try:
                await self.wait(timeout)
            except TimeoutError:
                return _TIMED_OUT
            finally:
                self._waiter = None
        return self.take_or_eof(max_bytes)

    def wait(self, timeout: float) -> asyncio.Future[None]:
        """A future done when data (or end of file) arrives; its exception is
        ``TimeoutError`` after *timeout* (0: no limit). Clear :attr:`_waiter`
        after awaiting it."""
        waiter = self.loop.create_future()
        self._waiter = waiter
        if timeout > 0:
            self._deadline = self.loop.time() + timeout
            if self._timer is None:
                self._timer = self.loop.call_at(self._deadline, self._check_deadline)
        return waiter

    def take_or_eof(self, max_bytes: int) -> bytes | IoFailure:
        """:meth:`take`, or the end-of-file result when nothing is buffered."""
        if not self._buffer:
            return self._eof_result()
        return self.take(max_bytes)

    def _eof_result(self) -> bytes | IoFailure:
        error = self._error
        if error is None:
            return b""  # a clean close
        return io_failure(error)

    def write(self, data: bytes) -> bool:
        """Queue *data*; True when that is all (else await :meth:`flushed`)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        transport.write(data)
        return not self._paused and not transport.is_closing()

    async def flushed(self, timeout: float) -> IoFailure | None:
        """After :meth:`write`: wait (up to *timeout*) while the transport's buffer
        is full, and report a lost connection."""
        transport = self.transport
        if transport is None:
            return _NO_CONNECTION
        if self._paused and not self._lost and not transport.is_closing():
            drained = self.loop.create_future()
            self._drained = drained
            try:
                async with asyncio.timeout(timeout if timeout > 0 else None):
                    await drained
            except TimeoutError:
                return _TIMED_OUT
        if not transport.is_closing():
            return None
        if not self._lost:
            # A failed write closes the transport at once but reports the
            # error to connection_lost() one loop iteration later.
            await asyncio.sleep(0)
        return self._lost_result()

    async def send(self, data: bytes, timeout: float) -> IoFailure | None:
        """Queue *data*; wait (up to *timeout*) only while the transport's buffer is full."""
        if self.write(data):
            return None
        return await self.flushed(timeout)

    def _lost_result(self) -> IoFailure:
        if self._error is not None:
            return io_failure(self._error)
        return IoFailure(_EOF, "Connection closed")

    def close(self, *, flush: bool = False, polite: bool = False) -> None:
        """Close without waiting.

        ``flush`` sends what is still queued first (after the core's QUIT);
        ``polite`` also queues a ``QUIT``; otherwise the connection is aborted.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        try:
            if polite and not self._lost:
                transport.write(b"QUIT\r\n")
                transport.close()
            elif flush:
                transport.close()
            else:
                transport.abort()
        except (OSError, RuntimeError):  # the loop is closed already
            pass


def close_connection(connection: Connection, polite: bool = False) -> None:
    """Close *connection*: the cache's closer (``polite``: QUIT first)."""
    connection.close(polite=polite)


class AsyncDriver:
    """Executes effects on the running event loop for one delivery at a time.

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
        cache: ConnectionCache[Connection],
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
        self.connection: Connection | None = None
        self._endpoint: Endpoint | None = None  # of the current connection
        self._pending: PendingSession | None = None  # a TLS session to cache at the end

    async def run(self, steps: Generator[Effect, EffectResult, T]) -> T:
        """Drive *steps* to the end and return its value (the report).

        A connection still current when the generator ends, fails or is
        cancelled is aborted.
        """
        handlers = _HANDLERS
        immediate = _IMMEDIATE
        send = steps.send
        result: EffectResult = None
        try:
            while True:
                effect = send(result)
                kind = type(effect)
                # Fast paths: no coroutine when nothing has to wait.
                if kind is Receive:
                    conn = self.connection
                    if conn is not None:
                        if not conn._buffer and not conn._eof:
                            try:
                                await conn.wait(effect.timeout)  # type: ignore[union-attr]
                            except TimeoutError:
                                result = _TIMED_OUT
                                continue
                            finally:
                                conn._waiter = None
                        result = conn.take_or_eof(effect.max_bytes)  # type: ignore[union-attr]
                        continue
                elif kind is Send:
                    conn = self.connection
                    if conn is not None:
                        if conn.write(effect.data):  # type: ignore[union-attr]
                            result = None
                        else:
                            result = await conn.flushed(effect.timeout)  # type: ignore[union-attr]
                        continue
                else:
                    quick = immediate.get(kind)
                    if quick is not None:
                        result = quick(self, effect)
                        continue
                handler = handlers.get(kind)
                if handler is None:
                    raise TypeError(f"not an effect: {effect!r}")
                result = await handler(self, effect)
        except StopIteration as stop:
            value: T = stop.value
            return value
        finally:
            self.release()

    async def execute(self, effect: Effect) -> EffectResult:
        """Execute one effect and return its result."""
        handler = _HANDLERS.get(type(effect))
        if handler is None:
            raise TypeError(f"not an effect: {effect!r}")
        return await handler(self, effect)

    def release(self, *, abort: bool = True) -> None:
        """Close the current connection, if any (abort: drop unsent data)."""
        if self._pending is not None:
            self._finish_tls()
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.close(flush=not abort)

    # -- effects ---------------------------------------------------------

    def _now(self, effect: GetTime) -> float:
        return self.clock()

    async def _get_time(self, effect: GetTime) -> float:
        return self.clock()

    async def _sleep(self, effect: Sleep) -> None:
        # The transport keeps draining what earlier Sends queued meanwhile.
        await asyncio.sleep(effect.seconds)

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
        opened = open_socket(
            effect.endpoint,
            effect.bind_address,
            effect.bind_enforce,
            window_size=effect.window_size,
        )
        if isinstance(opened, IoFailure):
            return opened
        sock, address = opened
        loop = asyncio.get_running_loop()
        try:
            sock.setblocking(False)
            async with asyncio.timeout(effect.timeout if effect.timeout > 0 else None):
                await loop.sock_connect(sock, address)
            local = ""
            if not effect.endpoint.unix:
                # Requests and replies are small; a pipelined batch is one write.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if effect.want_local_address:
                    local = str(sock.getsockname()[0])
            connection = Connection(loop)
            if effect.endpoint.unix:
                await loop.create_unix_connection(lambda: connection, sock=sock)
            else:
                await loop.create_connection(lambda: connection, sock=sock)
        except (OSError, ValueError) as exc:
            sock.close()
            if isinstance(exc, ValueError):  # e.g. an embedded NUL in a path
                return IoFailure(_ERROR, str(exc))
            return connect_failure(exc)
        except BaseException:  # cancelled
            sock.close()
            raise
        self.connection = connection
        self._endpoint = effect.endpoint
        return Connected(local)

    async def _send(self, effect: Send) -> IoFailure | None:
        connection = self.connection
        if connection is None:
            return _NO_CONNECTION
        return await connection.send(effect.data, effect.timeout)

    async def _receive(self, effect: Receive) -> bytes | IoFailure:
        connection = self.connection
        if connection is None:
            return _NO_CONNECTION
        return await connection.receive(effect.max_bytes, effect.timeout)

    async def _start_tls(self, effect: StartTls) -> TlsEstablished | TlsFailed | IoFailure:
        connection = self.connection
        if connection is None or connection.transport is None:
            return _NO_CONNECTION
        policy: TlsPolicy = effect.policy  # type: ignore[assignment]
        options: TlsOptions = effect.options  # type: ignore[assignment]
        try:
            ctx = self.contexts.get(policy, options)
        except TlsPolicyError as exc:
            return TlsFailed(TLS_CONFIG_FAILURE, str(exc))
        if connection.buffered:
            # Plaintext after the 220 would be read as if it came over TLS
            # (response injection); the blocking driver's OpenSSL rejects the
            # same octets as a broken handshake.
            connection.transport.abort()
            return tls_failed(policy, ssl.SSLError("plaintext received after the STARTTLS reply"))
        timeout = effect.timeout if effect.timeout > 0 else None
        loop = connection.loop
        lookup = None
        if options.smtp_tls_session_cache_database and isinstance(ctx, ClientContext):
            lookup = self.contexts.sessions.lookup(
                policy, options, self._endpoint, ctx, self.clock()
            )
        # start_tls() calls ctx.wrap_bio() before it first waits: the
        # ClientContext offers the session set here (task-local).
        offered = OFFERED_SESSION.set(lookup.session) if lookup is not None else None
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    connection.transport,
                    connection,
                    ctx,
                    server_hostname=policy.sni or None,
                    ssl_handshake_timeout=timeout,
                )
        except (OSError, ValueError, RuntimeError) as exc:
            connection.transport.abort()
            if lookup is not None:
                self.contexts.sessions.failed(lookup)
            return tls_failed(policy, exc)
        finally:
            if offered is not None:
                OFFERED_SESSION.reset(offered)
        if transport is None:
            tls = None
            reason = "the connection closed during the handshake"
        else:
            connection.transport = transport
            tls = transport.get_extra_info("ssl_object")
            reason = "no TLS object after the handshake"
        if not isinstance(tls, ssl.SSLObject):
            if lookup is not None:
                self.contexts.sessions.failed(lookup)
            return tls_failed(policy, ssl.SSLError(reason))
        if lookup is None:
            return tls_established(policy, options, tls)
        result = tls_established(policy, options, tls, lookup)
        self._pending = self.contexts.sessions.established(lookup, tls, ctx, result)
        return result

    def _finish_tls(self) -> None:
        """Cache the current connection's TLS session (its ticket has arrived by now)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self.contexts.sessions.finish(pending, self.clock())

    def _close_now(self, effect: Close) -> None:
        self.release(abort=effect.abort)

    def _take(self, effect: CacheTake) -> CachedSession | None:
        found = self.cache.take(effect.labels)
        if found is None:
            return None
        self.release()
        self.connection, session = found
        return session

    def _save(self, effect: CacheSave) -> None:
        if self._pending is not None:
            self._finish_tls()
        connection, self.connection = self.connection, None
        if connection is not None:
            self.cache.save(effect.labels, effect.session, connection)

    async def _close(self, effect: Close) -> None:
        self._close_now(effect)

    async def _cache_take(self, effect: CacheTake) -> CachedSession | None:
        return self._take(effect)

    async def _cache_save(self, effect: CacheSave) -> None:
        self._save(effect)


# Effect type -> handler (called with the driver); one table for all drivers.
_HANDLERS: dict[type, Callable[[AsyncDriver, Any], Awaitable[EffectResult]]] = {
    Send: AsyncDriver._send,
    Receive: AsyncDriver._receive,
    GetTime: AsyncDriver._get_time,
    Resolve: AsyncDriver._resolve,
    ResolveMany: AsyncDriver._resolve_many,
    Connect: AsyncDriver._connect,
    StartTls: AsyncDriver._start_tls,
    Close: AsyncDriver._close,
    FetchStsPolicy: AsyncDriver._fetch_sts,
    CacheTake: AsyncDriver._cache_take,
    CacheSave: AsyncDriver._cache_save,
    Sleep: AsyncDriver._sleep,
}
# Effects that never wait, run without a coroutine by run().
_IMMEDIATE: dict[type, Callable[[AsyncDriver, Any], EffectResult]] = {
    GetTime: AsyncDriver._now,
    CacheTake: AsyncDriver._take,
    CacheSave: AsyncDriver._save,
    Close: AsyncDriver._close_now,
}
