"""One SMTP/LMTP session: a connection, its protocol machine, and the I/O between them.

A :class:`Session` couples a
:class:`~pyfix_smtp.protocol.connection.ClientConnection` with the effects
that move its bytes (``Send``, ``Receive``) and with what Postfix's
``SMTP_SESSION`` remembers about the server: host, address and port for
texts and logs, the TLS policy and whether TLS is up, the best-MX flag,
whether and until when the session may be cached, and how often it was
reused. Decisions about recipients are made by the callers
(:mod:`.handshake`, :mod:`.transfer`, :mod:`.core`).

Time limits: every wait uses the ``smtp_*_timeout`` the protocol machine
names for its current stage. With ``smtp_per_request_deadline`` the limit
covers a whole request and reply rather than each read or write, and while
sending message content it grows by the octets sent divided by
``smtp_min_data_rate`` (Postfix smtp_stream_setup()).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass

from pyfix_smtp.delivery.effects import (
    Close,
    Effect,
    EffectResult,
    Endpoint,
    GetTime,
    IoFailure,
    IoFailureKind,
    Receive,
    Send,
)
from pyfix_smtp.delivery.options import DeliveryOptions
from pyfix_smtp.protocol.connection import ClientConnection, State
from pyfix_smtp.protocol.events import NEED_DATA, Event, NeedData, ProtocolWarning, Stage
from pyfix_smtp.tls.levels import TlsLevel
from pyfix_smtp.tls.policy import TlsPolicy

__all__ = ["CONTENT_WRITE_SIZE", "CachedState", "ProbeFailed", "Session"]

#: The SMTP conversation with a ``debug_peer_list`` peer goes here, at DEBUG.
LOGGER = logging.getLogger("pyfix_smtp.delivery")

#: Write content in pieces of about this size (the encoder's output is
#: joined up to it, so a small message goes out in one write with "." and QUIT).
CONTENT_WRITE_SIZE = 256 * 1024


# Effects are immutable: one Receive per time limit serves every read.
_RECEIVE: dict[float, Receive] = {}


class ProbeFailed(Exception):
    """A pipelined RSET probe failed: the cached session must not be used."""


@dataclass(slots=True)
class CachedState:
    """What a cached connection carries to its next delivery (opaque to drivers).

    Postfix passivates the same facts into the connection cache
    (smtp_session.c ``smtp_session_passivate()``): the protocol state (the
    server's EHLO features), the TLS level the session was made for, whether
    TLS is up and the certificate matched, the best-MX flag (restored only
    when the session is found by its nexthop label) and when reuse ends.
    """

    conn: ClientConnection
    hostname: str
    tls_level: TlsLevel
    cert_matched: bool
    best_mx: bool
    expire: float
    peer_label: str


class Session:
    """One connection to one server and Postfix's bookkeeping about it.

    Attributes:
        conn: the protocol machine.
        endpoint: where the connection goes.
        hostname: the server's name (Postfix ``iter->host``).
        name_address: ``host[addr]`` (Postfix ``session->namaddr``).
        label: ``host[addr]:port`` (``session->namaddrport``), for ``relay=``.
        nexthop: the current nexthop as written (``iter->dest``).
        policy: the TLS policy the session was started with, if any.
        tls_level: the TLS level used in cache keys (``state->tls->level``).
        best_mx: the server is a best MX host (SMTP_FEATURE_BEST_MX).
        loop_detect: check EHLO replies for our own name (SMTP, port 25).
        from_cache: the session was taken from the connection cache.
        reuse_count: how often the session was reused (0 = new).
        expire: > 0: may be cached until then; 0: do not cache; < 0: do not
            cache, the server is throttled (Postfix ``expire_time``).
        forbidden: no further I/O (after a failed TLS handshake).
        closed: the connection was closed (a ``Close`` effect was issued).
        retry_plain: try the same address again without TLS
            (Postfix ``tls_retry_plain``).
        cert_matched: the server certificate matched the policy.
        debug: log the conversation at DEBUG (the peer is in ``debug_peer_list``).
        setup_done: when the mail transaction started (``conn_setup_done``).
        probe_pending: a reused session's RSET probe goes out pipelined with
            the next transaction; its reply is checked before the protocol
            machine sees the rest (no message data is sent before it).
    """

    __slots__ = (
        "_deadline",
        "_deadline_stage",
        "_debug_in",
        "_out",
        "_probe_buf",
        "best_mx",
        "cert_matched",
        "closed",
        "conn",
        "debug",
        "endpoint",
        "expire",
        "forbidden",
        "from_cache",
        "hostname",
        "label",
        "loop_detect",
        "name_address",
        "nexthop",
        "options",
        "policy",
        "probe_pending",
        "retry_plain",
        "reuse_count",
        "setup_done",
        "tls_level",
        "warnings",
    )

    def __init__(
        self,
        conn: ClientConnection,
        endpoint: Endpoint,
        options: DeliveryOptions,
        *,
        hostname: str,
        nexthop: str,
        policy: TlsPolicy | None = None,
        tls_level: TlsLevel = TlsLevel.NONE,
        best_mx: bool = False,
        loop_detect: bool = False,
        expire: float = 0.0,
    ) -> None:
        self.conn = conn
        self.endpoint = endpoint
        self.options = options
        self.hostname = hostname
        if endpoint.unix:
            self.name_address = f"{hostname}[{endpoint.address}]"
            self.label = self.name_address  # smtp_session_alloc(): no port
        else:
            self.name_address = f"{hostname}[{endpoint.address}]"
            self.label = f"{self.name_address}:{endpoint.port}"
        self.nexthop = nexthop
        self.policy = policy
        self.tls_level = tls_level
        self.best_mx = best_mx
        self.loop_detect = loop_detect
        self.from_cache = False
        self.reuse_count = 0
        self.expire = expire
        self.forbidden = False
        self.closed = False
        self.retry_plain = False
        self.cert_matched = False
        self.setup_done: float | None = None
        self.warnings: list[str] = []
        self._out: list[bytes] = []
        self.probe_pending = False
        self._probe_buf = b""
        self._deadline = 0.0
        self._deadline_stage: Stage | None = None
        self.debug = False
        self._debug_in = b""

    # -- caching flags (Postfix smtp.h macros) ------------------------------

    def dont_cache(self) -> None:
        """Postfix DONT_CACHE_THIS_SESSION."""
        if self.expire > 0:
            self.expire = 0.0

    def dont_cache_throttled(self) -> None:
        """Postfix DONT_CACHE_THROTTLED_SESSION."""
        self.expire = -1.0

    @property
    def throttled(self) -> bool:
        """Postfix THIS_SESSION_IS_THROTTLED."""
        return not self.forbidden and self.expire < 0

    @property
    def cacheable(self) -> bool:
        """Postfix THIS_SESSION_IS_CACHED, and the protocol machine agrees."""
        return not self.forbidden and self.expire > 0 and self.conn.reusable

    def expired(self, now: float) -> bool:
        """Postfix THIS_SESSION_IS_EXPIRED."""
        limit = self.options.smtp_connection_reuse_count_limit
        return (
            not self.forbidden
            and self.expire > 0
            and (self.expire < now or (limit > 0 and self.reuse_count >= limit))
        )

    @property
    def relay(self) -> str:
        """What ``relay=`` shows for outcomes decided in this session."""
        return self.label

    @property
    def conn_use(self) -> int:
        """Postfix ``conn_use=``: 1 for a new connection."""
        return self.reuse_count + 1

    # -- I/O -----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes to send before the next read."""
        if data:
            self._out.append(data)

    def events(self, *, need_data: bool = False) -> Generator[Effect, EffectResult, Event]:
        """The next protocol event, after whatever writes and reads it takes.

        Protocol warnings are logged by the caller from :attr:`warnings`.
        With *need_data* the caller has just seen ``NEED_DATA`` from the
        machine: the first write and read happen without asking it again.

        Raises:
            ProbeFailed: a pipelined RSET probe (see :attr:`probe_pending`)
                was refused or the connection ended before its reply.
        """
        conn = self.conn
        out = self._out
        while True:
            if need_data:
                need_data = False
                event: Event | NeedData = NEED_DATA
            else:
                event = conn.next_event()
            if event is not NEED_DATA:
                if type(event) is ProtocolWarning:
                    self.warnings.append(event.text)
                    continue
                return event
            # The machine needs input: write what is queued, then read.
            pending = conn.data_to_send()
            if pending:
                out.append(pending)
            if out and not (yield from self.flush()):
                continue
            if self.options.per_request_deadline:
                timeout = yield from self.limit()
                if timeout is None:
                    if self.probe_pending:
                        raise ProbeFailed("timeout")
                    conn.timed_out()
                    continue
            else:
                timeout = self.options.stage_timeouts[conn.stage]
            receive = _RECEIVE.get(timeout)
            if receive is None:
                if len(_RECEIVE) >= 64:  # deadlines make many distinct limits
                    _RECEIVE.clear()
                receive = _RECEIVE[timeout] = Receive(timeout)
            result = yield receive
            if type(result) is bytes:
                if self.debug:
                    self._log_in(result)
                if self.probe_pending:
                    result = self._probe_reply(result)
                    if not result:
                        continue
                conn.receive_data(result)
            elif isinstance(result, IoFailure):
                if self.probe_pending:
                    raise ProbeFailed(result.reason)
                self.io_failed(result)
            else:
                raise TypeError(f"Receive needs bytes or IoFailure, got {result!r}")

    def _probe_reply(self, data: bytes) -> bytes:
        """Split the reply to a pipelined RSET probe off the input (Postfix smtp_rset()).

        Returns the input that follows it (for the protocol machine).
        """
        if not data:
            raise ProbeFailed("lost connection")
        buf = self._probe_buf + data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                self._probe_buf = buf
                return b""
            line = buf[start:end]
            start = end + 1
            if len(line) >= 4 and line[3:4] == b"-":
                continue  # a continuation line
            break
        self.probe_pending = False
        self._probe_buf = b""
        if not (line[:1] == b"2" and line[1:3].isdigit()):
            # smtp_proto.c CANT_RSET_THIS_SESSION: the session is not reused
            raise ProbeFailed(line.decode("ascii", "replace").strip())
        return buf[start:]

    def run_probe(self) -> Generator[Effect, EffectResult, None]:
        """Send a pending RSET probe on its own and check the reply.

        Raises:
            ProbeFailed: the probe was refused or the connection broke.
        """
        self.write(b"RSET\r\n")
        yield from self.flush()
        while self.probe_pending:
            result = yield Receive(self.options.timeouts["smtp_rset_timeout"])
            if type(result) is not bytes:
                raise ProbeFailed(getattr(result, "reason", "lost connection"))
            if self.debug:
                self._log_in(result)
            if self._probe_reply(result):
                self.dont_cache()  # more than the reply: do not trust the session

    def flush(self) -> Generator[Effect, EffectResult, bool]:
        """Send what is queued; False when the connection broke (the machine knows)."""
        if not self._out:
            return True
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        if self.options.per_request_deadline:
            timeout = yield from self.limit()
            if timeout is None:
                if self.probe_pending:
                    raise ProbeFailed("timeout")
                self.conn.timed_out()
                return False
        else:
            timeout = self.options.stage_timeouts[self.conn.stage]
        if self.debug:
            self._log_out(data)
        result = yield Send(data, timeout)
        if result is None:
            return True
        if isinstance(result, IoFailure):
            if self.probe_pending:
                raise ProbeFailed(result.reason)
            self.io_failed(result)
            return False
        raise TypeError(f"Send needs None or IoFailure, got {result!r}")

    def _log_out(self, data: bytes) -> None:
        """Postfix smtp_chat_cmd() at msg_verbose: ``> host[addr]:port: COMMAND``.

        Unlike Postfix, SASL data (the AUTH initial response and the
        responses to challenges) is not shown.
        """
        if not LOGGER.isEnabledFor(logging.DEBUG):
            return
        auth = self.conn.state is State.AUTH
        for line in data.split(b"\r\n"):
            if line:
                text = line.decode("utf-8", "replace")
                if auth or text[:5].upper() == "AUTH ":
                    text = _hide_sasl(text)
                LOGGER.debug("> %s: %s", self.label, text)

    def log_end_of_data(self, data: bytes) -> None:
        """Log the ``.`` (and any command after it) of the last DATA content write."""
        if not LOGGER.isEnabledFor(logging.DEBUG):
            return
        end = data.rfind(b"\r\n.\r\n")  # dot-stuffed content: only the end of data
        if end >= 0 or data.startswith(b".\r\n"):
            LOGGER.debug("> %s: .", self.label)  # smtp_loop(): smtp_chat_cmd(session, ".")
            self._log_out(data[end + 5 if end >= 0 else 3 :])

    def _log_in(self, data: bytes) -> None:
        """Postfix smtp_chat_resp() at msg_verbose: ``< host[addr]:port: reply line``."""
        if not LOGGER.isEnabledFor(logging.DEBUG):
            return
        lines = (self._debug_in + data).split(b"\n")
        self._debug_in = lines.pop()
        for line in lines:
            text = line.rstrip(b"\r").decode("utf-8", "replace")
            LOGGER.debug("< %s: %s", self.label, text[:100])  # "%.100s"

    def io_failed(self, failure: IoFailure) -> None:
        """Tell the machine the connection timed out or broke (Postfix smtp_stream.c)."""
        if failure.kind is IoFailureKind.TIMEOUT:
            self.conn.timed_out()  # SMTP_ERR_TIME
        else:
            self.conn.receive_data(b"")  # SMTP_ERR_EOF: read or write error

    def limit(self) -> Generator[Effect, EffectResult, float | None]:
        """The limit for the next read or write; None when a deadline already passed."""
        opts = self.options
        limit = opts.stage_timeouts[self.conn.stage]
        if not opts.per_request_deadline or limit <= 0:
            return limit
        now = yield GetTime()
        assert isinstance(now, float | int)
        stage = self.conn.stage
        if stage is not self._deadline_stage:
            self._deadline_stage = stage
            self._deadline = now + limit
        remaining = self._deadline - now
        return remaining if remaining > 0 else None

    def extend_deadline(self, octets: int) -> None:
        """``smtp_min_data_rate``: content sent extends the deadline."""
        if self.options.per_request_deadline:
            self._deadline += octets / self.options.smtp_min_data_rate

    def send_quit(self) -> Generator[Effect, EffectResult, None]:
        """Postfix smtp_quit(): QUIT when the session is usable, then close.

        QUIT may also abandon an AUTH exchange, as Postfix does after a SASL
        failure, or end a TLS session whose certificate was refused. With
        ``smtp_skip_quit_response = no`` the reply is awaited.
        """
        conn = self.conn
        if self.forbidden or conn.state not in (State.READY, State.AUTH, State.TLS_HANDSHAKE):
            yield from self.close(abort=self.forbidden or conn.state is State.ERROR)
            return
        self.write(conn.quit())
        while _state(conn) is State.QUIT:  # smtp_skip_quit_response = no
            yield from self.events()
        yield from self.close()

    def close(self, *, abort: bool = False) -> Generator[Effect, EffectResult, None]:
        """Write anything the machine still has queued (QUIT), then close (once)."""
        if self.closed:
            return
        if not abort and not self.forbidden:
            pending = self.conn.data_to_send() if self.conn.state is not State.ERROR else b""
            self.write(pending)
            if self._out:
                yield from self.flush()
        self._out.clear()
        self.closed = True
        yield Close(abort=abort)

    def passivate(self) -> CachedState:
        """The state to store with the cached connection."""
        return CachedState(
            conn=self.conn,
            hostname=self.hostname,
            tls_level=self.tls_level,
            cert_matched=self.cert_matched,
            best_mx=self.best_mx,
            expire=self.expire,
            peer_label=self.label,
        )


def _hide_sasl(line: str) -> str:
    """An AUTH command or SASL response line with its credentials left out."""
    words = line.split(" ", 2)
    if words[0].upper() == "AUTH":
        return " ".join(words[:2]) + (" [hidden]" if len(words) > 2 else "")
    if line in ("*", "QUIT"):  # cancel, or abandon the exchange
        return line
    return "[hidden]"


# -- debug_peer_list (Postfix global/debug_peer.c, util/match_list.c) ----------


def _state(conn: ClientConnection) -> State:
    # A call, so that type checkers do not keep an earlier narrowing of conn.state.
    return conn.state
