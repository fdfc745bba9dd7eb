"""The blocking driver: executes the delivery core's effects with socket and ssl.

:class:`SyncDriver` runs one delivery at a time. It holds at most one current
connection (a ``socket.socket``, an ``ssl.SSLSocket`` after ``StartTls``),
answers DNS effects with a blocking resolver, keeps idle connections in a
:class:`~pyfix_smtp.transport.cache.ConnectionCache` and builds TLS contexts
through :class:`TlsContexts`. It makes no delivery decision: every failure
comes back to the core as a value (:class:`~pyfix_smtp.delivery.effects.IoFailure`,
:class:`~pyfix_smtp.delivery.effects.TlsFailed`).

The helpers shared with the asyncio driver live here too: mapping OS and
ssl exceptions to ``IoFailure`` values with the system's texts, creating
(and binding) a socket for an endpoint, and the TLS context cache.
"""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import logging
import os
import select
import socket
import ssl
import time
from collections.abc import Callable, Generator
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
    Endpoint,
    FetchedPolicy,
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
from pyfix_smtp.status import Failure
from pyfix_smtp.transport.cache import ConnectionCache
from pyfix_smtp.transport.tls_sessions import PendingSession, SessionLookup, TlsSessionCache

if TYPE_CHECKING:
    from pyfix_smtp.dns.plan import Resolver
    from pyfix_smtp.tls.options import TlsOptions
    from pyfix_smtp.tls.policy import TlsPolicy

__all__ = [
    "TLS_CONFIG_FAILURE",
    "StsFetcher",
    "SyncDriver",
    "TlsContexts",
    "close_socket",
    "connect_failure",
    "fetch_sts",
    "io_failure",
    "open_socket",
    "set_window_size",
    "tls_established",
]

log = logging.getLogger("pyfix_smtp.transport")

T = TypeVar("T")

# Postfix tls_client.c / smtp_proto.c: a TLS engine that cannot be set up.
TLS_CONFIG_FAILURE = Failure("4.7.5", "client TLS configuration problem")

_EOF = IoFailureKind.EOF
_TIMEOUT = IoFailureKind.TIMEOUT
_ERROR = IoFailureKind.ERROR
_REFUSED = IoFailureKind.REFUSED
_BIND = IoFailureKind.BIND

# connect() errors that mean "nobody there" rather than a local problem.
_NO_PEER = frozenset(
    getattr(errno, name)
    for name in ("ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "ENETDOWN")
    if hasattr(errno, name)
)


def _strerror(exc: OSError, default: str) -> str:
    # The system's text for errno, as Postfix's %m (asyncio puts its own words
    # into strerror: "Connect call failed ...").
    if isinstance(exc.errno, int) and exc.errno > 0:
        return os.strerror(exc.errno)
    return exc.strerror or default


def io_failure(exc: BaseException) -> IoFailure:
    """Map an exception from send/receive to an :class:`IoFailure` value.

    Timeouts are ``TIMEOUT``; a connection the server closed or reset (EOF
    inside TLS, ``ECONNRESET``, ``EPIPE``) is ``EOF``, as Postfix's
    smtp_stream.c treats read and write errors ("lost connection");
    everything else is ``ERROR`` with the system's text.
    """
    if isinstance(exc, TimeoutError):  # socket.timeout, asyncio timeouts, ETIMEDOUT
        return IoFailure(_TIMEOUT, _strerror(exc, "Connection timed out"))
    if isinstance(exc, ssl.SSLZeroReturnError | ssl.SSLEOFError):
        return IoFailure(_EOF, "TLS connection closed by the server")
    if isinstance(exc, ssl.SSLError):
        return IoFailure(_ERROR, f"TLS error: {exc.reason or exc}")
    if isinstance(exc, ConnectionError):  # reset, aborted, broken pipe
        return IoFailure(_EOF, _strerror(exc, "Connection reset by peer"))
    if isinstance(exc, OSError):
        return IoFailure(_ERROR, _strerror(exc, str(exc)))
    return IoFailure(_ERROR, f"{type(exc).__name__}: {exc}")


def connect_failure(exc: BaseException) -> IoFailure:
    """Map an exception from ``connect()`` to an :class:`IoFailure` value.

    ``REFUSED`` for a refused or unreachable peer, ``TIMEOUT`` when the
    connect timeout passed; the reason is the system's text, which Postfix
    logs as "connect to host[addr]:port: Connection refused".
    """
    if isinstance(exc, TimeoutError):
        return IoFailure(_TIMEOUT, _strerror(exc, "Connection timed out"))
    if isinstance(exc, ConnectionRefusedError):
        return IoFailure(_REFUSED, _strerror(exc, "Connection refused"))
    if isinstance(exc, OSError) and exc.errno in _NO_PEER:
        return IoFailure(_REFUSED, _strerror(exc, "No route to host"))
    if isinstance(exc, OSError):
        return IoFailure(_ERROR, _strerror(exc, str(exc)))
    return IoFailure(_ERROR, f"{type(exc).__name__}: {exc}")


# Linux: create sockets non-blocking (elsewhere setblocking(False) does it).
_SOCK_NONBLOCK: int = getattr(socket, "SOCK_NONBLOCK", 0)
_CONNECTING = frozenset({errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK})


def _bind_address(text: str) -> str | None:
    """The numeric address of ``smtp_bind_address`` (``[...]`` allowed), or None if malformed."""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    return text


def open_socket(
    endpoint: Endpoint,
    bind_address: str | None,
    bind_enforce: bool,
    *,
    nonblocking: bool = False,
    window_size: int = 0,
) -> tuple[socket.socket, str | tuple[str, int]] | IoFailure:
    """A new stream socket for *endpoint* and the address to connect it to.

    A TCP socket first gets *window_size* (``tcp_windowsize``, 0: leave the
    system's defaults) as its send and receive buffer sizes, then is bound
    to *bind_address* (Postfix smtp_connect.c ``smtp_connect_addr()``): a
    failed bind is logged and ignored, unless *bind_enforce*
    (``smtp_bind_address_enforce``) makes it an ``IoFailure`` of kind
    ``BIND``. A bind address that is not a numeric IP address is always a
    ``BIND`` failure (Postfix stops with a fatal error).
    With *nonblocking* a TCP socket is created non-blocking (no ioctl()).
    """
    if endpoint.unix:
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError as exc:
            return IoFailure(_ERROR, _strerror(exc, "cannot create socket"))
        return sock, endpoint.address
    family = socket.AF_INET6 if ":" in endpoint.address else socket.AF_INET
    kind = socket.SOCK_STREAM | _SOCK_NONBLOCK if nonblocking else socket.SOCK_STREAM
    try:
        sock = socket.socket(family, kind)
    except OSError as exc:
        return IoFailure(_ERROR, _strerror(exc, "cannot create socket"))
    if window_size > 0:
        set_window_size(sock, window_size)
    if bind_address:
        local = _bind_address(bind_address)
        if local is None:
            sock.close()
            return IoFailure(_BIND, f"malformed bind address: {bind_address}")
        try:
            sock.bind((local, 0))
        except OSError as exc:
            text = _strerror(exc, str(exc))
            # Postfix smtp_connect_addr(): msg_warn("%s: bind %s: %m")
            log.warning("smtp_connect_addr: bind %s: %s", local, text)
            if bind_enforce:
                sock.close()
                return IoFailure(_BIND, f"bind {local}: {text}")
    return sock, (endpoint.address, endpoint.port)


def set_window_size(sock: socket.socket, window_size: int) -> None:
    """Set SO_SNDBUF and SO_RCVBUF to *window_size* before connect() (``tcp_windowsize``).

    Before connect() the receive buffer size decides the TCP window scale
    offered in the SYN, which is how Postfix works around routers that
    mishandle window scaling. A refused setting is logged and ignored.
    """
    for option, name in ((socket.SO_SNDBUF, "SO_SNDBUF"), (socket.SO_RCVBUF, "SO_RCVBUF")):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, window_size)
        except OSError as exc:
            # Postfix inet_windowsize.c set_inet_windowsize(): a warning only
            log.warning("setsockopt %s %d: %s", name, window_size, _strerror(exc, str(exc)))


def close_socket(sock: socket.socket, polite: bool = False) -> None:
    """Close *sock*; ``polite`` sends ``QUIT`` first without waiting (best effort)."""
    if polite:
        try:
            sock.setblocking(False)
            sock.send(b"QUIT\r\n")
        except (OSError, ValueError):
            pass
    try:
        sock.close()
    except OSError:
        pass


class TlsContexts:
    """``ssl.SSLContext`` objects built once per distinct TLS setting.

    Building a context (loading CA files and client certificates) costs far
    more than a handshake, and a context is reusable across connections, so
    contexts are kept per set of inputs to
    :func:`~pyfix_smtp.tls.context.build_context`, at most *max_size*.

    :attr:`sessions` is the client's TLS session cache, used only when
    ``smtp_tls_session_cache_database`` is set (see
    :mod:`pyfix_smtp.transport.tls_sessions`).
    """

    def __init__(self, max_size: int = 32, sessions: TlsSessionCache | None = None) -> None:
        self.max_size = max_size
        self._contexts: dict[tuple[object, ...], ssl.SSLContext] = {}
        self.sessions = sessions if sessions is not None else TlsSessionCache()

    def get(self, policy: TlsPolicy, options: TlsOptions) -> ssl.SSLContext:
        """The context for *policy* and *options*.

        Raises:
            TlsPolicyError: from ``build_context`` (bad ciphers, CA or
                certificate files, or a policy without TLS).
        """
        from pyfix_smtp.tls.context import build_context, context_key

        key = context_key(policy, options)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = build_context(policy, options)
            if len(self._contexts) >= self.max_size:
                del self._contexts[next(iter(self._contexts))]
            self._contexts[key] = ctx
        return ctx


def tls_established(
    policy: TlsPolicy,
    options: TlsOptions,
    tls: ssl.SSLSocket | ssl.SSLObject,
    lookup: SessionLookup | None = None,
) -> TlsEstablished:
    """Describe a finished handshake for the core (chain, version, cipher, CA trust).

    With a session cache *lookup*, a resumed session reports the chain and
    CA verdict of the handshake that made it (a resumed handshake carries
    no chain).
    """
    from pyfix_smtp.tls.context import peer_chain, pkix_trusted

    cipher = tls.cipher()
    reused = False
    chain: tuple[bytes, ...] | None = None
    pkix: bool | None = None
    entry = lookup.entry if lookup is not None else None
    if entry is not None and tls.session_reused:
        reused = True
        leaf = tls.getpeercert(binary_form=True)
        if entry.chain and leaf == entry.chain[0]:
            chain, pkix = entry.chain, entry.pkix_verified
    if chain is None:
        chain = peer_chain(tls)
        pkix = pkix_trusted(policy, options, chain, now=dt.datetime.now(dt.UTC))
    return TlsEstablished(
        chain=chain,
        version=tls.version() or "",
        cipher=cipher[0] if cipher else "",
        bits=cipher[2] if cipher else 0,
        pkix_verified=pkix,
        session_reused=reused,
    )


def tls_failed(policy: TlsPolicy, exc: BaseException) -> TlsFailed:
    """Postfix's outcome for a failed handshake (all failures: 4.7.5)."""
    from pyfix_smtp.tls.context import handshake_failure

    failure, detail = handshake_failure(policy, exc)
    return TlsFailed(failure, detail)


StsFetcher = Callable[[FetchStsPolicy], FetchedPolicy | IoFailure]
"""Fetches an MTA-STS policy file; see :func:`fetch_sts`."""


def fetch_sts(
    effect: FetchStsPolicy,
    *,
    context: ssl.SSLContext | None = None,
    connect_to: tuple[str, int] | None = None,
) -> FetchedPolicy | IoFailure:
    """Execute a :class:`FetchStsPolicy` with :func:`pyfix_smtp.tls.fetch.fetch_policy`.

    Any HTTP response is a :class:`FetchedPolicy` (the core checks the
    status); no complete response (TLS or certificate failure, timeout,
    too large) is an ``IoFailure``. *connect_to* sends the request
    elsewhere (a test server) while TLS still checks ``mta-sts.<domain>``.
    """
    from pyfix_smtp.tls.fetch import fetch_policy
    from pyfix_smtp.tls.mtasts import StsFetch, policy_url

    domain = effect.domain.rstrip(".").lower()
    request = StsFetch(
        domain,
        policy_url(domain),
        f"mta-sts.{domain}",
        max_bytes=effect.max_bytes,
        timeout=effect.timeout,
    )
    host, port = connect_to if connect_to is not None else (None, 443)
    result = fetch_policy(request, context=context, connect_host=host, connect_port=port)
    if result.error is not None:
        return IoFailure(_ERROR, result.error)
    return FetchedPolicy(result.body, result.status, result.content_type)


def _timeout(value: float) -> float | None:
    return value if value > 0 else None


class SyncDriver:
    """Executes effects with blocking sockets for one delivery at a time.

    Args:
        resolver: answers ``Resolve``/``ResolveMany`` (a
            :class:`~pyfix_smtp.dns.resolve.DnsResolver` or your own).
        cache: where ``CacheSave`` puts idle connections.
        contexts: TLS contexts, shared between drivers of one client.
        sts_fetcher: executes ``FetchStsPolicy`` (default :func:`fetch_sts`).
        clock: the ``GetTime`` clock.

    Timeouts of 0 or less mean "no limit" (``smtp_connect_timeout = 0``
    leaves the connect to the system's own limit, as in Postfix).
    """

    def __init__(
        self,
        resolver: Resolver,
        cache: ConnectionCache[socket.socket],
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
        self.sock: socket.socket | None = None
        self._endpoint: Endpoint | None = None  # of the current connection
        self._pending: PendingSession | None = None  # a TLS session to cache at the end
        self._sock_timeout: float | None = None
        self._poller: select.poll | None = None  # for self._polled
        self._polled: socket.socket | None = None
        self._poll_events = 0
        self._handlers: dict[type, Callable[[Any], EffectResult]] = {
            Send: self._send,
            Receive: self._receive,
            GetTime: self._get_time,
            Resolve: self._resolve,
            ResolveMany: self._resolve_many,
            Connect: self._connect,
            StartTls: self._start_tls,
            Close: self._close,
            FetchStsPolicy: self.sts_fetcher,
            CacheTake: self._cache_take,
            CacheSave: self._cache_save,
            Sleep: self._sleep,
        }

    def run(self, steps: Generator[Effect, EffectResult, T]) -> T:
        """Drive *steps* to the end and return its value (the report).

        A connection still current when the generator ends or fails is
        closed without ``QUIT``.
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
                result = handler(effect)
        except StopIteration as stop:
            value: T = stop.value
            return value
        finally:
            self.release()

    def execute(self, effect: Effect) -> EffectResult:
        """Execute one effect and return its result."""
        handler = self._handlers.get(type(effect))
        if handler is None:
            raise TypeError(f"not an effect: {effect!r}")
        return handler(effect)

    def release(self) -> None:
        """Close the current connection, if any, without ``QUIT``."""
        if self._pending is not None:
            self._finish_tls()
        sock, self.sock = self.sock, None
        if sock is not None:
            if sock is self._polled:
                self._poller = self._polled = None
            close_socket(sock)

    # -- effects ---------------------------------------------------------

    def _get_time(self, effect: GetTime) -> float:
        return self.clock()

    def _sleep(self, effect: Sleep) -> None:
        # Earlier Sends are complete (sendall()): the kernel sends them meanwhile.
        time.sleep(effect.seconds)

    def _resolve(self, effect: Resolve) -> EffectResult:
        return self.resolver.lookup(effect.query)

    def _resolve_many(self, effect: ResolveMany) -> EffectResult:
        lookup = self.resolver.lookup
        return tuple(lookup(q) for q in effect.queries)

    def _settimeout(self, sock: socket.socket, timeout: float) -> None:
        value = timeout if timeout > 0 else None
        if value != self._sock_timeout:
            sock.settimeout(value)
            self._sock_timeout = value

    def _connect(self, effect: Connect) -> Connected | IoFailure:
        self.release()
        unix = effect.endpoint.unix
        opened = open_socket(
            effect.endpoint,
            effect.bind_address,
            effect.bind_enforce,
            nonblocking=not unix,
            window_size=effect.window_size,
        )
        if isinstance(opened, IoFailure):
            return opened
        sock, address = opened
        local = ""
        try:
            if unix:
                sock.settimeout(_timeout(effect.timeout))
                sock.connect(address)
            else:
                self._connect_tcp(sock, address, effect.timeout)
                # Requests and replies are small; a pipelined batch is one write.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if effect.want_local_address:
                    local = str(sock.getsockname()[0])
        except (OSError, ValueError) as exc:
            sock.close()
            if isinstance(exc, ValueError):  # e.g. an embedded NUL in a path
                return IoFailure(_ERROR, str(exc))
            return connect_failure(exc)
        # Until StartTls, I/O is non-blocking with our own poll() for the
        # timeouts: no poll() before each write, no ioctl() per new timeout.
        if sock.gettimeout() != 0.0:
            sock.settimeout(0.0)
        self.sock = sock
        self._endpoint = effect.endpoint
        self._sock_timeout = 0.0
        return Connected(local)

    def _connect_tcp(self, sock: socket.socket, address: object, timeout: float) -> None:
        """connect() a non-blocking TCP socket, waiting up to *timeout* (0: no limit).

        Raises OSError as a blocking connect() would (TimeoutError when the
        time is up).
        """
        if sock.gettimeout() != 0.0:
            sock.setblocking(False)
        err = sock.connect_ex(address)  # type: ignore[arg-type]
        if err in _CONNECTING:
            deadline = time.monotonic() + timeout if timeout > 0 else None
            revents = self._wait(sock, select.POLLOUT, deadline)
            if not revents:
                raise TimeoutError(errno.ETIMEDOUT, "Connection timed out")
            # A failed connect() raises POLLERR (and POLLHUP): only then is
            # there an error to fetch. Writable alone means connected.
            err = (
                0
                if revents == select.POLLOUT
                else sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            )
        if err:
            raise OSError(err, os.strerror(err))

    def _send(self, effect: Send) -> IoFailure | None:
        sock = self.sock
        if sock is None:
            return IoFailure(_ERROR, "no connection")
        if self._sock_timeout == 0.0 and type(sock) is socket.socket:
            return self._send_plain(sock, effect.data, effect.timeout)
        try:
            if effect.timeout != self._sock_timeout:
                self._settimeout(sock, effect.timeout)
            sock.sendall(effect.data)
        except (OSError, ValueError) as exc:
            return io_failure(exc)
        return None

    def _send_plain(self, sock: socket.socket, data: bytes, timeout: float) -> IoFailure | None:
        """``sendall()`` on a non-blocking socket; *timeout* limits the whole write."""
        try:
            sent = sock.send(data)  # usually all of it, at once
        except BlockingIOError:
            sent = 0
        except (OSError, ValueError) as exc:
            return io_failure(exc)
        if sent == len(data):
            return None
        view = memoryview(data)[sent:]
        deadline = time.monotonic() + timeout if timeout > 0 else None
        try:
            while view:
                if not self._wait(sock, select.POLLOUT, deadline):
                    return IoFailure(_TIMEOUT, "Connection timed out")
                try:
                    view = view[sock.send(view) :]
                except BlockingIOError:
                    continue
        except (OSError, ValueError) as exc:
            return io_failure(exc)
        return None

    def _receive(self, effect: Receive) -> bytes | IoFailure:
        sock = self.sock
        if sock is None:
            return IoFailure(_ERROR, "no connection")
        try:
            if self._sock_timeout == 0.0 and type(sock) is socket.socket:
                timeout = effect.timeout
                deadline = time.monotonic() + timeout if timeout > 0 else None
                while True:
                    if not self._wait(sock, select.POLLIN, deadline):
                        return IoFailure(_TIMEOUT, "Connection timed out")
                    try:
                        return sock.recv(effect.max_bytes)
                    except BlockingIOError:  # a spurious wake-up
                        continue
            if effect.timeout != self._sock_timeout:
                self._settimeout(sock, effect.timeout)
            return sock.recv(effect.max_bytes)
        except (OSError, ValueError) as exc:
            return io_failure(exc)

    def _wait(self, sock: socket.socket, events: int, deadline: float | None) -> int:
        """poll() *sock* for *events* until *deadline*: the events seen, 0 when it passed."""
        poller = self._poller
        if poller is None or self._polled is not sock:
            poller = self._poller = select.poll()
            poller.register(sock, events)
            self._polled = sock
            self._poll_events = events
        elif self._poll_events != events:
            poller.modify(sock, events)
            self._poll_events = events
        if deadline is None:
            ready = poller.poll()
            return ready[0][1] if ready else 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return 0
            ready = poller.poll(left * 1000.0)
            if ready:
                return ready[0][1]  # one descriptor registered: its revents

    def _start_tls(self, effect: StartTls) -> TlsEstablished | TlsFailed | IoFailure:
        sock = self.sock
        if sock is None:
            return IoFailure(_ERROR, "no connection")
        policy: TlsPolicy = effect.policy  # type: ignore[assignment]
        options: TlsOptions = effect.options  # type: ignore[assignment]
        try:
            ctx = self.contexts.get(policy, options)
        except TlsPolicyError as exc:
            return TlsFailed(TLS_CONFIG_FAILURE, str(exc))
        lookup = None
        if options.smtp_tls_session_cache_database:
            lookup = self.contexts.sessions.lookup(
                policy, options, self._endpoint, ctx, self.clock()
            )
        try:
            # wrap_socket() takes over the descriptor; the SSLSocket is current now.
            tls = ctx.wrap_socket(
                sock,
                server_hostname=policy.sni or None,
                do_handshake_on_connect=False,
                session=lookup.session if lookup is not None else None,
            )
        except (OSError, ValueError) as exc:
            return tls_failed(policy, exc)
        self.sock = tls
        try:
            tls.settimeout(_timeout(effect.timeout))
            self._sock_timeout = _timeout(effect.timeout)
            tls.do_handshake()
        except (OSError, ValueError) as exc:
            if lookup is not None:
                self.contexts.sessions.failed(lookup)
            return tls_failed(policy, exc)
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

    def _close(self, effect: Close) -> None:
        self.release()

    def _cache_take(self, effect: CacheTake) -> CachedSession | None:
        found = self.cache.take(effect.labels)
        if found is None:
            return None
        self.release()
        self.sock, session = found
        self._sock_timeout = self.sock.gettimeout()
        return session

    def _cache_save(self, effect: CacheSave) -> None:
        if self._pending is not None:
            self._finish_tls()
        sock, self.sock = self.sock, None
        if sock is not None:
            self.cache.save(effect.labels, effect.session, sock)
