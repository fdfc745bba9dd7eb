"""Effects: what the sans-IO delivery core asks a driver to do.

The delivery core (:mod:`pyfix_smtp.delivery`) is a generator. It yields one
effect at a time and receives the effect's result through ``send()``::

    steps = core.deliver_steps(request)
    result = None
    while True:
        effect = steps.send(result)        # StopIteration carries the report
        result = driver.execute(effect)    # sync sockets or asyncio

Drivers (:mod:`pyfix_smtp.transport.sync`, :mod:`pyfix_smtp.transport.aio`)
only execute effects; every decision stays in the core. A driver holds at
most one *current* connection per delivery: ``Connect`` (or a successful
``CacheTake``) makes one current, ``Close`` and ``CacheSave`` release it.
Failures of I/O come back as values (:class:`IoFailure`), never as
exceptions, so the core decides what they mean for each recipient. The
core itself raises only for programming errors (a result of the wrong
type, bad content chunks); a driver that sees an exception from the
generator closes the current connection and re-raises.

The core asks for the time with :class:`GetTime` only where Postfix reads
the clock (start of the attempt, start of each mail transaction, end of
each session, TLS certificate checks, deadlines); a driver may answer from
a cheap clock. It asks for a pause with :class:`Sleep` only where Postfix
sleeps (the Cisco PIX ``delay_dotcrlf`` workaround).

Each effect documents the type of its result.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pyfix_smtp.dns.records import Answer, Query
from pyfix_smtp.status import Failure

__all__ = [
    "CacheSave",
    "CacheTake",
    "CachedSession",
    "Close",
    "Connect",
    "Connected",
    "Effect",
    "Endpoint",
    "FetchStsPolicy",
    "FetchedPolicy",
    "GetTime",
    "IoFailure",
    "IoFailureKind",
    "Receive",
    "Resolve",
    "ResolveMany",
    "Send",
    "Sleep",
    "StartTls",
    "TlsEstablished",
    "TlsFailed",
]


@dataclass(frozen=True, slots=True)
class GetTime:
    """Result: ``float``, the wall-clock time in seconds since the Unix epoch."""


@dataclass(frozen=True, slots=True)
class Resolve:
    """Result: :class:`~pyfix_smtp.dns.records.Answer` for *query*.

    The driver's resolver maps every lookup problem to an ``Answer`` rcode
    (SERVFAIL, TIMEOUT, ...); it never raises.
    """

    query: Query


@dataclass(frozen=True, slots=True)
class ResolveMany:
    """Result: ``tuple[Answer, ...]``, one per query, in order.

    Independent lookups (the addresses of every MX host) that an asyncio
    driver may run concurrently.
    """

    queries: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to connect.

    Attributes:
        host: the server's name for logs and TLS (``mx.example.com``); for a
            UNIX-domain socket Postfix uses ``$myhostname`` here.
        address: the IP address text; for a UNIX-domain socket, the path
            (connect to this).
        port: the TCP port; 0 for a UNIX-domain socket.
        unix: True for a UNIX-domain socket (LMTP ``unix:/path``).
    """

    host: str
    address: str
    port: int
    unix: bool = False

    @property
    def label(self) -> str:
        """Postfix's ``host[address]:port`` (``namaddrport``); ``host[path]`` for a socket."""
        if self.unix:
            return f"{self.host}[{self.address}]"
        return f"{self.host}[{self.address}]:{self.port}"

    @property
    def name_address(self) -> str:
        """Postfix's ``host[address]`` (``namaddr``), as used in error texts."""
        return f"{self.host}[{self.address}]"


@dataclass(frozen=True, slots=True)
class Connect:
    """Open a connection to *endpoint*; it becomes the current connection.

    Result: :class:`Connected` or :class:`IoFailure`.

    Attributes:
        timeout: ``smtp_connect_timeout`` (0 = the system's own limit).
        bind_address: local address to bind to (``smtp_bind_address`` or
            ``smtp_bind_address6`` for the endpoint's family), or None.
        bind_enforce: ``smtp_bind_address_enforce``: a failed bind is an
            error (4.4.0 "server configuration error") instead of a warning.
        window_size: ``tcp_windowsize``: SO_SNDBUF and SO_RCVBUF for a TCP
            socket, set before connect() (0: the system's defaults).
        want_local_address: whether :class:`Connected` must carry our end's
            address (TLSRPT's sending-MTA IP); False spares the driver a
            getsockname() system call per connection.
    """

    endpoint: Endpoint
    timeout: float
    bind_address: str | None = None
    bind_enforce: bool = False
    window_size: int = 0
    want_local_address: bool = True

    def __post_init__(self) -> None:
        if self.window_size < 0:  # Postfix set_inet_windowsize(): "bad window size"
            raise ValueError(f"window_size must be >= 0, not {self.window_size}")


@dataclass(frozen=True, slots=True)
class Connected:
    """A connection is up. *local_address* is ours ("" unless the Connect wanted it)."""

    local_address: str = ""


class IoFailureKind(enum.Enum):
    """Why an I/O effect failed (Postfix smtp_stream.c exceptions)."""

    EOF = "eof"  # the server closed the connection (SMTP_ERR_EOF)
    TIMEOUT = "timeout"  # no progress within the timeout (SMTP_ERR_TIME)
    ERROR = "error"  # any other socket or TLS error
    REFUSED = "refused"  # connect() refused / unreachable
    BIND = "bind"  # the local bind failed and smtp_bind_address_enforce = yes


@dataclass(frozen=True, slots=True)
class IoFailure:
    """An I/O effect failed. *reason* is the system text ("Connection refused")."""

    kind: IoFailureKind
    reason: str


@dataclass(frozen=True, slots=True)
class Send:
    """Write *data* completely to the current connection.

    Result: ``None`` or :class:`IoFailure`. *timeout* limits each write
    system call (0: no limit).
    """

    data: bytes
    timeout: float


@dataclass(frozen=True, slots=True)
class Sleep:
    """Pause for *seconds* before the next effect; the connection stays current.

    Result: ``None``. Bytes of earlier :class:`Send` effects keep going out
    during the pause (a blocking driver has handed them to the kernel, an
    asyncio driver's transport drains its buffer meanwhile). The core uses
    it for Postfix's PIX ``delay_dotcrlf`` workaround: a pause of
    ``smtp_pix_workaround_delay_time`` before the final ``.`` (smtp_proto.c
    smtp_loop()).
    """

    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds >= 0:  # also refuses NaN
            raise ValueError(f"seconds must be >= 0, not {self.seconds}")


@dataclass(frozen=True, slots=True)
class Receive:
    """Read what is available from the current connection (at least one byte).

    Result: ``bytes`` (``b""`` when the server closed the connection) or
    :class:`IoFailure` (timeout, error). *timeout* limits the wait for the
    first byte (0: no limit).
    """

    timeout: float
    max_bytes: int = 65536


@dataclass(frozen=True, slots=True)
class StartTls:
    """Run a TLS client handshake on the current connection.

    Result: :class:`TlsEstablished`, :class:`TlsFailed` (the handshake
    failed) or :class:`IoFailure` (the connection broke). The driver builds
    the ``ssl.SSLContext`` from *policy* and *options* with
    :func:`pyfix_smtp.tls.context.build_context` and sends SNI
    ``policy.sni``; the core checks the returned chain.

    ``policy`` is a :class:`pyfix_smtp.tls.policy.TlsPolicy` and ``options``
    a :class:`pyfix_smtp.tls.options.TlsOptions` (typed loosely here so this
    module does not import ssl-facing code).
    """

    policy: object
    options: object
    timeout: float


@dataclass(frozen=True, slots=True)
class TlsEstablished:
    """The TLS handshake finished.

    Attributes:
        chain: the certificates the server sent, DER, leaf first.
        version: ``"TLSv1.3"`` ...
        cipher: the cipher suite name.
        bits: the cipher's secret bits.
        pkix_verified: True when OpenSSL verified the chain against the CA
            store during the handshake; None when it was not asked to.
        session_reused: the handshake resumed a cached TLS session
            (``smtp_tls_session_cache_database``); *chain* and
            *pkix_verified* are then those of the handshake that made it.
    """

    chain: tuple[bytes, ...]
    version: str = ""
    cipher: str = ""
    bits: int = 0
    pkix_verified: bool | None = None
    session_reused: bool = False


@dataclass(frozen=True, slots=True)
class TlsFailed:
    """The TLS handshake failed; the connection is unusable.

    *failure* is Postfix's outcome from
    :func:`pyfix_smtp.tls.context.handshake_failure` (4.7.5 "Server
    certificate not verified" or "Cannot start TLS: handshake failure");
    *detail* is the OpenSSL text for logs.
    """

    failure: Failure
    detail: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close the current connection (after QUIT, or *abort* without one)."""

    abort: bool = False


@dataclass(frozen=True, slots=True)
class FetchStsPolicy:
    """Fetch ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` (RFC 8461 §3.3).

    Result: :class:`FetchedPolicy` (any HTTP status) or :class:`IoFailure`
    (no complete response: TLS or certificate failure, timeout, more than
    *max_bytes*). :func:`pyfix_smtp.tls.fetch.fetch_policy` does it with the
    stdlib; its :class:`~pyfix_smtp.tls.mtasts.FetchResult` is accepted as
    a result too.
    """

    domain: str
    timeout: float
    max_bytes: int = 64 * 1024


@dataclass(frozen=True, slots=True)
class FetchedPolicy:
    """The response to a :class:`FetchStsPolicy`: HTTP status, body, content type."""

    body: bytes
    status: int = 200
    content_type: str = ""


@dataclass(frozen=True, slots=True)
class CachedSession:
    """The core's state of a connection kept open for reuse.

    *state* is opaque to drivers (the protocol machine and what the core
    knows of the server); *endpoint* says where it goes; *reuse_count* how
    many transactions it carried; *expires* when it must be closed
    (``smtp_connection_cache_time_limit``) and *reuse_deadline* when it may
    no longer be reused (``smtp_connection_reuse_time_limit``).
    """

    endpoint: Endpoint
    state: object
    reuse_count: int
    expires: float
    reuse_deadline: float


@dataclass(frozen=True, slots=True)
class CacheTake:
    """Take a cached connection stored under any of *labels*, first match wins.

    Result: :class:`CachedSession` (its connection becomes current) or
    ``None``. The driver drops expired entries itself (``expires``,
    ``reuse_deadline``). Several connections may be stored under one label
    (concurrent deliveries); any one of them may be returned, and it is
    removed from every label it was stored under.
    """

    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CacheSave:
    """Store the current connection under *labels*; it stops being current.

    Result: ``None``.
    """

    labels: tuple[str, ...]
    session: CachedSession


Effect = (
    GetTime
    | Resolve
    | ResolveMany
    | Connect
    | Send
    | Receive
    | Sleep
    | StartTls
    | Close
    | FetchStsPolicy
    | CacheTake
    | CacheSave
)

# Result types, for drivers' and tests' annotations.
ResolveResult = Answer
EffectResult = (
    float
    | Answer
    | tuple[Answer, ...]
    | Connected
    | IoFailure
    | bytes
    | TlsEstablished
    | TlsFailed
    | FetchedPolicy
    | CachedSession
    | None
)
