"""``ClientConnection``: the sans-IO SMTP/LMTP client state machine.

Modelled on h11 and on Postfix's smtp(8) (smtp_proto.c ``smtp_helo()``,
``smtp_loop()``, ``smtp_xfer()``, ``smtp_rset()``, ``smtp_quit()``). The
machine never touches a socket or a clock:

* feed what the server sends with :meth:`ClientConnection.receive_data`
  (``b""`` for end of file) or report a timeout with
  :meth:`~ClientConnection.timed_out`;
* call :meth:`~ClientConnection.next_event` until it returns
  :data:`~pyfix_smtp.protocol.events.NEED_DATA`; then write
  :meth:`~ClientConnection.data_to_send` (commands the machine produced on
  its own: EHLO after the greeting, the next command when the server does
  not pipeline, RSET after a rejection, QUIT) and read more;
* the caller's decisions (STARTTLS, AUTH, a mail transaction, RSET, QUIT)
  are methods that return the bytes to write now.

PIPELINING follows ``smtp_loop()`` exactly: with a server that offers it,
XFORWARD, MAIL, every RCPT and DATA go out in one write unless the next
command plus pending output would exceed 4096 octets (or no I/O happened for
10 seconds, when the caller passes ``now``); the client then waits for every
outstanding reply before it continues. DATA is a synchronisation point; the
content, the final ``.`` and QUIT go in one write. When MAIL, all RCPTs or
DATA were rejected, the client sends RSET (and QUIT) instead of going on.
Without PIPELINING the client sends one command at a time.

A call in the wrong state raises :class:`~pyfix_smtp.errors.LocalProtocolError`
naming the state and changes nothing; an exception once a call was accepted
leaves the machine in :attr:`State.ERROR`, and later calls fail fast.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pyfix_smtp.errors import CommandError, LocalProtocolError
from pyfix_smtp.protocol.commands import (
    auth_command,
    auth_response,
    envelope_failure,
    hello_command,
    mail_command,
    mime_downgrade_applies,
    rcpt_command,
    smtputf8_in_use,
    xforward_commands,
)
from pyfix_smtp.protocol.content import Framing
from pyfix_smtp.protocol.envelope import Envelope
from pyfix_smtp.protocol.events import (
    NEED_DATA,
    AuthChallenge,
    AuthResult,
    Closed,
    DataReady,
    Event,
    Greeting,
    HelloRejected,
    LmtpRecipientResult,
    MailResult,
    MessageResult,
    NeedData,
    ProtocolWarning,
    RecipientOutcome,
    RecipientResult,
    RsetResult,
    Stage,
    StartTlsReady,
    StartTlsRejected,
    TransactionResult,
    XforwardResult,
)
from pyfix_smtp.protocol.extensions import (
    EhloDiscard,
    Extensions,
    greeting_announces_esmtp,
    is_pix_greeting,
    parse_ehlo,
)
from pyfix_smtp.protocol.failures import (
    is_protocol_error_code,
    lost_failure,
    reply_failure,
)
from pyfix_smtp.protocol.replies import DEFAULT_LINE_LENGTH_LIMIT, ReplyParser
from pyfix_smtp.status import Failure, Reply

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["PIPELINING_BUFSIZE", "ClientConfig", "ClientConnection", "ClientOptions", "State"]

#: Postfix PIPELINING_BUFSIZE (VSTREAM_BUFSIZE): the most octets of
#: unacknowledged commands the client writes before it waits for replies.
PIPELINING_BUFSIZE = 4096
#: smtp_loop(): flush and wait when no I/O happened for this long (seconds).
PIPELINING_IDLE_FLUSH = 10.0
#: smtp_sasl_glue.c smtp_sasl_authenticate(): give up after this many challenges.
MAX_AUTH_STEPS = 100


class State(enum.Enum):
    """Where the session is. Caller methods are allowed only in some states."""

    GREETING = "greeting"
    """Waiting for the server's greeting banner."""
    HELLO = "hello"
    """EHLO, HELO or LHLO sent; waiting for the reply."""
    READY = "ready"
    """Session open and idle: STARTTLS, AUTH, a transaction, RSET or QUIT may follow."""
    STARTTLS = "starttls"
    """STARTTLS sent; waiting for the reply."""
    TLS_HANDSHAKE = "tls-handshake"
    """The driver must run the TLS handshake, then call ``tls_established()``."""
    AUTH = "auth"
    """An AUTH exchange is in progress."""
    TRANSACTION = "transaction"
    """A mail transaction is in progress (commands and replies in flight)."""
    DATA = "data"
    """The caller sends the message content with ``send_data()``."""
    RSET = "rset"
    """An RSET probe is in flight."""
    QUIT = "quit"
    """QUIT sent; waiting for the reply (``smtp_skip_quit_response = no``)."""
    CLOSED = "closed"
    """The session is over."""
    ERROR = "error"
    """A call raised; the machine is unusable."""

    # Identity hash (C speed) for the transition table lookups.
    __hash__ = object.__hash__


# The transition table: (state, trigger) -> next state. Caller methods and
# server replies both move the machine through it; a missing entry is a
# LocalProtocolError that names the state (h11 _state.py style).
_TRANSITIONS: dict[tuple[State, str], State] = {
    (State.GREETING, "greeting-accepted"): State.HELLO,
    (State.GREETING, "refused"): State.QUIT,
    (State.HELLO, "hello-accepted"): State.READY,
    (State.HELLO, "hello-fallback"): State.HELLO,
    (State.HELLO, "refused"): State.QUIT,
    (State.READY, "start_tls"): State.STARTTLS,
    (State.READY, "start_auth"): State.AUTH,
    (State.READY, "start_transaction"): State.TRANSACTION,
    (State.READY, "rset"): State.RSET,
    (State.READY, "quit"): State.QUIT,
    (State.STARTTLS, "starttls-accepted"): State.TLS_HANDSHAKE,
    (State.STARTTLS, "starttls-rejected"): State.READY,
    (State.TLS_HANDSHAKE, "tls_established"): State.HELLO,
    (State.TLS_HANDSHAKE, "quit"): State.QUIT,
    (State.AUTH, "send_auth_response"): State.AUTH,
    (State.AUTH, "cancel_auth"): State.AUTH,
    (State.AUTH, "quit"): State.QUIT,
    (State.AUTH, "auth-challenge"): State.AUTH,
    (State.AUTH, "auth-done"): State.READY,
    (State.TRANSACTION, "content"): State.DATA,
    (State.TRANSACTION, "transaction-done"): State.READY,
    (State.DATA, "send_data"): State.DATA,
    (State.DATA, "content-done"): State.TRANSACTION,
    (State.DATA, "abort_data"): State.CLOSED,
    (State.RSET, "rset-done"): State.READY,
    (State.QUIT, "quit-done"): State.CLOSED,
}
# Any state may end because the connection did (end of file, timeout, 421):
# _close() moves to CLOSED from anywhere.


class LookupTable(Protocol):
    """A lookup table such as :class:`pyfix_smtp.maps.TableList`."""

    def lookup(self, key: str) -> str | None:
        """The value for *key*, or ``None``."""
        ...

    def __len__(self) -> int:
        """Number of tables (0: the parameter is empty)."""
        ...


class ClientConfig(Protocol):
    """The parameters ClientOptions reads (:class:`pyfix_smtp.config.Config` has them).

    In an LMTP configuration the ``smtp_*`` attributes hold the ``lmtp_*``
    values.
    """

    @property
    def protocol(self) -> str:
        """``"smtp"`` or ``"lmtp"``."""
        ...

    @property
    def myhostname(self) -> str:
        """Postfix ``myhostname``."""
        ...

    @property
    def smtp_helo_name(self) -> str:
        """``smtp_helo_name`` / ``lmtp_lhlo_name``."""
        ...

    @property
    def smtp_always_send_ehlo(self) -> bool:
        """``smtp_always_send_ehlo``."""
        ...

    @property
    def smtp_never_send_ehlo(self) -> bool:
        """``smtp_never_send_ehlo``."""
        ...

    @property
    def smtp_discard_ehlo_keywords(self) -> tuple[str, ...]:
        """``smtp_discard_ehlo_keywords`` / ``lmtp_discard_lhlo_keywords``."""
        ...

    @property
    def smtp_pix_workarounds(self) -> tuple[str, ...]:
        """``smtp_pix_workarounds``."""
        ...

    @property
    def smtp_skip_quit_response(self) -> bool:
        """``smtp_skip_quit_response``."""
        ...

    @property
    def smtputf8_enable(self) -> bool:
        """``smtputf8_enable``."""
        ...

    @property
    def disable_mime_output_conversion(self) -> bool:
        """``disable_mime_output_conversion``."""
        ...

    @property
    def smtp_sasl_auth_enable(self) -> bool:
        """``smtp_sasl_auth_enable``."""
        ...

    @property
    def smtp_send_dummy_mail_auth(self) -> bool:
        """``smtp_send_dummy_mail_auth``."""
        ...

    @property
    def smtp_send_xforward_command(self) -> bool:
        """``smtp_send_xforward_command``."""
        ...

    @property
    def smtp_quote_rfc821_envelope(self) -> bool:
        """``smtp_quote_rfc821_envelope``."""
        ...

    @property
    def smtp_tls_block_early_mail_reply(self) -> bool:
        """``smtp_tls_block_early_mail_reply``."""
        ...

    @property
    def smtp_tls_wrappermode(self) -> bool:
        """``smtp_tls_wrappermode``."""
        ...

    @property
    def smtp_reply_filter(self) -> LookupTable:
        """``smtp_reply_filter``."""
        ...


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Per-connection settings, by Postfix parameter where there is one.

    Attributes:
        lmtp: speak LMTP (LHLO, one reply per recipient after the data).
        helo_name: ``smtp_helo_name`` / ``lmtp_lhlo_name``.
        peer_name: the server as Postfix names it in texts
            (``mx.example.com[192.0.2.1]``, ``private/dovecot-lmtp``).
        always_send_ehlo: ``smtp_always_send_ehlo``.
        never_send_ehlo: ``smtp_never_send_ehlo``.
        discard_ehlo_keywords: ``smtp_discard_ehlo_keywords``, or what
            ``smtp_discard_ehlo_keyword_address_maps`` gave for this server.
        pix_workarounds: ``smtp_pix_workarounds`` (or the
            ``smtp_pix_workaround_maps`` result); ``disable_esmtp`` is applied
            here, ``delay_dotcrlf`` is left to the driver (see
            :attr:`ClientConnection.pix_delay_dotcrlf`).
        skip_quit_response: ``smtp_skip_quit_response``.
        line_length_limit: ``line_length_limit`` (reply lines kept).
        smtputf8_enable: ``smtputf8_enable`` (UTF-8 kept in reply text).
        disable_mime_output_conversion: the Postfix parameter of that name.
        send_dummy_mail_auth: ``smtp_sasl_auth_enable`` and
            ``smtp_send_dummy_mail_auth`` both on.
        send_xforward_command: ``smtp_send_xforward_command``.
        quote_rfc821_envelope: ``smtp_quote_rfc821_envelope``.
        tls_block_early_mail_reply: ``smtp_tls_block_early_mail_reply``.
        tls_wrappermode: ``smtp_tls_wrappermode``: TLS from the first byte.
        chunking: use BDAT (RFC 3030) when the server offers CHUNKING and
            PIPELINING (beyond Postfix, which never uses BDAT).
        myhostname: ``myhostname``, for the greeting's ESMTP word check.
        reply_filter: ``smtp_reply_filter``: maps a reply line to a
            replacement (or ``None`` to keep it).
    """

    lmtp: bool = False
    helo_name: str = "localhost"
    peer_name: str = "unknown"
    always_send_ehlo: bool = True
    never_send_ehlo: bool = False
    discard_ehlo_keywords: EhloDiscard = field(default_factory=EhloDiscard)
    pix_workarounds: frozenset[str] = frozenset({"disable_esmtp", "delay_dotcrlf"})
    skip_quit_response: bool = True
    line_length_limit: int = DEFAULT_LINE_LENGTH_LIMIT
    smtputf8_enable: bool = True
    disable_mime_output_conversion: bool = False
    send_dummy_mail_auth: bool = False
    send_xforward_command: bool = False
    quote_rfc821_envelope: bool = True
    tls_block_early_mail_reply: bool = False
    tls_wrappermode: bool = False
    chunking: bool = False
    myhostname: str | None = None
    reply_filter: Callable[[str], str | None] | None = None

    def __post_init__(self) -> None:
        hello_command("LHLO" if self.lmtp else "EHLO", self.helo_name)  # validates the name
        if "\r" in self.peer_name or "\n" in self.peer_name:
            raise CommandError("peer_name", self.peer_name, "must not contain CR or LF")
        unknown = self.pix_workarounds - {"disable_esmtp", "delay_dotcrlf"}
        if unknown:
            raise CommandError("pix_workarounds", sorted(unknown), "unknown PIX workaround")
        if self.line_length_limit < 1:
            raise CommandError("line_length_limit", self.line_length_limit, "must be positive")

    @classmethod
    def from_config(
        cls,
        cfg: ClientConfig,
        *,
        peer_name: str,
        discard_ehlo_keywords: str | Iterable[str] | None = None,
        pix_workarounds: str | Iterable[str] | None = None,
        chunking: bool = False,
    ) -> ClientOptions:
        """Options for one server from the configuration.

        Args:
            cfg: the configuration (:class:`pyfix_smtp.config.Config`).
            peer_name: the server as Postfix names it (``host[address]``).
            discard_ehlo_keywords: what ``smtp_discard_ehlo_keyword_address_maps``
                found for the server address, if anything (it replaces
                ``smtp_discard_ehlo_keywords``, as in Postfix).
            pix_workarounds: what ``smtp_pix_workaround_maps`` found, if anything.
            chunking: use BDAT when offered (beyond Postfix).
        """
        discard = (
            cfg.smtp_discard_ehlo_keywords
            if discard_ehlo_keywords is None
            else discard_ehlo_keywords
        )
        pix = cfg.smtp_pix_workarounds if pix_workarounds is None else pix_workarounds
        pix_words = pix.replace(",", " ").split() if isinstance(pix, str) else list(pix)
        return cls(
            lmtp=cfg.protocol == "lmtp",
            helo_name=cfg.smtp_helo_name,
            peer_name=peer_name,
            always_send_ehlo=cfg.smtp_always_send_ehlo,
            never_send_ehlo=cfg.smtp_never_send_ehlo,
            discard_ehlo_keywords=EhloDiscard.parse(discard),
            pix_workarounds=frozenset(w.lower() for w in pix_words),
            skip_quit_response=cfg.smtp_skip_quit_response,
            smtputf8_enable=cfg.smtputf8_enable,
            disable_mime_output_conversion=cfg.disable_mime_output_conversion,
            send_dummy_mail_auth=cfg.smtp_sasl_auth_enable and cfg.smtp_send_dummy_mail_auth,
            send_xforward_command=cfg.smtp_send_xforward_command,
            quote_rfc821_envelope=cfg.smtp_quote_rfc821_envelope,
            tls_block_early_mail_reply=cfg.smtp_tls_block_early_mail_reply,
            tls_wrappermode=cfg.smtp_tls_wrappermode,
            chunking=chunking,
            myhostname=cfg.myhostname,
            reply_filter=cfg.smtp_reply_filter.lookup if len(cfg.smtp_reply_filter) else None,
        )


class _S(enum.IntEnum):
    """Sender/receiver stages of one transaction (smtp_proto.c SMTP_STATE_*)."""

    XFORWARD_NAME_ADDR = 0
    XFORWARD_PROTO_HELO = 1
    MAIL = 2
    RCPT = 3
    DATA = 4
    DOT = 5
    ABORT = 6
    QUIT = 8
    LAST = 9


# Stages whose 2xx confirms content: not after a failed write (see _step()).
_END_OF_DATA = frozenset({Stage.DOT, Stage.BDAT, Stage.BDAT_LAST})
# Stages answered outside a mail transaction (see _dispatch()).
_SESSION_STAGES = frozenset(
    {Stage.GREETING, Stage.EHLO, Stage.HELO, Stage.LHLO, Stage.STARTTLS, Stage.AUTH, Stage.RSET}
)

_STAGE_OF = {
    _S.XFORWARD_NAME_ADDR: Stage.XFORWARD_NAME_ADDR,
    _S.XFORWARD_PROTO_HELO: Stage.XFORWARD_PROTO_HELO,
    _S.MAIL: Stage.MAIL,
    _S.RCPT: Stage.RCPT,
    _S.DATA: Stage.DATA,
    _S.DOT: Stage.DOT,
    _S.ABORT: Stage.ABORT,
    _S.QUIT: Stage.QUIT,
}


@dataclass(slots=True)
class _Pending:
    """A command that was written and whose reply is awaited."""

    stage: Stage
    rcpt: int = -1


# One shared instance per stage for replies not tied to a recipient (never mutated).
_PENDING = {stage: _Pending(stage) for stage in Stage}


@dataclass(slots=True)
class _Transaction:
    """Sender and receiver bookkeeping for one message (smtp_loop() locals)."""

    envelope: Envelope
    keep: bool
    verify: str | None
    bdat: bool
    downgrade: bool
    xforward: tuple[bytes | None, bytes | None]
    mail: bytes
    rcpts: list[bytes]
    send_state: _S
    send_rcpt: int = 0
    cmd: bytes | None = None
    next_state: _S = _S.LAST
    next_rcpt: int = 0
    waiting: bool = False  # the sender waits for every outstanding reply
    content_pending: bool = False  # the sender waits for the caller's content
    content_done: bool = False
    mail_from_rejected: bool = False
    early_reply: bool = False
    nrcpt: int = 0  # accepted recipients; -1 after DATA was rejected
    survivors: list[int] = field(default_factory=list)
    recv_done: int = 0
    data_reply: Reply | None = None
    bdat_failed: bool = False
    quit_reply: Reply | None = None
    tail: bytes = b"\r\n"
    outcomes: dict[int, RecipientOutcome] = field(default_factory=dict)
    result_sent: bool = False
    quit_sent: bool = False


class ClientConnection:
    """One SMTP or LMTP client session, without I/O.

    Typical use (see docs/protocol.md for a complete session)::

        conn = ClientConnection(ClientOptions(helo_name="client.example"))
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                sock.sendall(conn.data_to_send())
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, Extensions):
                sock.sendall(conn.start_transaction(envelope))
            ...

    Args:
        options: the per-connection settings.
        progress_events: report each MAIL, RCPT and end-of-data reply as it
            arrives (:class:`MailResult`, :class:`RecipientResult`,
            :class:`MessageResult`, :class:`LmtpRecipientResult`). With
            False they are left out; :class:`TransactionResult` still
            carries every recipient's outcome and reply (the delivery core
            needs nothing else, and saves the events' cost per message).
    """

    def __init__(
        self, options: ClientOptions | None = None, *, progress_events: bool = True
    ) -> None:
        self.options = options or ClientOptions()
        self._progress = progress_events
        self._state = State.GREETING
        self._parser = ReplyParser(
            line_length_limit=self.options.line_length_limit,
            utf8=self.options.smtputf8_enable,
            reply_filter=self.options.reply_filter,
        )
        self._events: deque[Event] = deque()
        self._out: list[bytes] = []
        self._out_len = 0
        self._pending: deque[_Pending] = deque([_PENDING[Stage.GREETING]])
        self._txn: _Transaction | None = None
        self._extensions: Extensions | None = None
        self._tls_active = self.options.tls_wrappermode
        self._esmtp = True
        self._pix_delay_dotcrlf = False
        self._closing_reply: Reply | None = None  # a 421 was received
        self._closed_event: Closed | None = None
        self._protocol_error = False
        self._write_failed = False
        self._rset_rejected = False
        self._authenticated = False
        self._auth_steps = 0
        self._auth_deferred: bytes | None = None
        self._auth_error: str | None = None
        self._last_io: float | None = None
        self._now: float | None = None

    # ------------------------------------------------------------------
    # Introspection

    @property
    def state(self) -> State:
        """The current :class:`State`."""
        return self._state

    @property
    def extensions(self) -> Extensions | None:
        """What the server announced in the last successful hello (reset by STARTTLS)."""
        return self._extensions

    @property
    def tls_active(self) -> bool:
        """True once TLS protects the session (after STARTTLS or in wrapper mode)."""
        return self._tls_active

    @property
    def authenticated(self) -> bool:
        """True after a successful AUTH."""
        return self._authenticated

    @property
    def protocol_error(self) -> bool:
        """The server broke the protocol (garbage lines, odd codes): do not cache the session."""
        return self._protocol_error

    @property
    def pix_delay_dotcrlf(self) -> bool:
        """Postfix PIX ``delay_dotcrlf`` applies: the driver may delay the final ``.``."""
        return self._pix_delay_dotcrlf

    @property
    def reusable(self) -> bool:
        """The session can carry another transaction (Postfix would cache it)."""
        return (
            self._state is State.READY
            and not self._protocol_error
            and not self._rset_rejected
            and self._closing_reply is None
        )

    @property
    def stage(self) -> Stage | None:
        """The stage whose reply (or content) the machine waits for, if any."""
        if self._state is State.DATA:
            return Stage.CONTENT
        if self._state is State.TLS_HANDSHAKE:
            return Stage.STARTTLS
        if self._pending:
            return self._pending[0].stage
        return None

    @property
    def timeout_parameter(self) -> str | None:
        """The Postfix timeout parameter for the current wait (``smtp_rcpt_timeout`` ...).

        ``None`` when nothing is awaited (idle session). Drivers own the
        clocks; read the value from the configuration by this name.
        """
        stage = self.stage
        return None if stage is None else stage.timeout_parameter

    # ------------------------------------------------------------------
    # Plumbing

    def _goto(self, trigger: str) -> None:
        try:
            self._state = _TRANSITIONS[(self._state, trigger)]
        except KeyError:
            raise LocalProtocolError(
                f"cannot {trigger} in state {self._state.name}", state=self._state.name
            ) from None

    def _check(self, action: str) -> None:
        if self._state is State.ERROR:
            raise LocalProtocolError(f"{action}() after an earlier error", state=self._state.name)
        if (self._state, action) not in _TRANSITIONS:
            allowed = sorted(s.name for (s, a) in _TRANSITIONS if a == action)
            raise LocalProtocolError(
                f"{action}() is not allowed in state {self._state.name} "
                f"(allowed in {', '.join(allowed)})",
                state=self._state.name,
            )

    def _require_no_pending(self, why: str) -> None:
        if self._pending:
            raise LocalProtocolError(why, state=self._state.name)

    def _guarded(self, action: str, body: Callable[[], bytes]) -> bytes:
        self._check(action)
        return self._protect(body)

    def _protect(self, body: Callable[[], bytes]) -> bytes:
        # After _check(): an exception from here on leaves the machine in ERROR.
        try:
            return body()
        except BaseException:
            self._state = State.ERROR
            raise

    def _write(self, data: bytes) -> None:
        self._out.append(data)
        self._out_len += len(data)

    def data_to_send(self) -> bytes:
        """Bytes the machine produced on its own; write them before reading again."""
        if not self._out:
            return b""
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        self._out_len = 0
        return data

    def _send_now(self) -> bytes:
        return self.data_to_send()

    # ------------------------------------------------------------------
    # Input

    def receive_data(self, data: bytes, now: float | None = None) -> None:
        """Feed bytes received from the server; ``b""`` means end of file.

        Args:
            data: the bytes, split anywhere.
            now: the current time (any monotonic clock, seconds), when the
                driver wants Postfix's 10-second pipelining flush rule.
        """
        if self._state is State.ERROR:
            raise LocalProtocolError("receive_data() after an earlier error", state="ERROR")
        if now is not None:
            self._last_io = now
            self._now = now
        if self._state is State.CLOSED:
            return
        if self._state is State.TLS_HANDSHAKE and data:
            self._state = State.ERROR
            raise LocalProtocolError(
                "receive_data() during the TLS handshake: feed decrypted bytes "
                "only after tls_established()",
                state=State.TLS_HANDSHAKE.name,
            )
        if data:
            self._parser.feed(data)
        else:
            self._parser.feed_eof()

    def write_failed(self) -> None:
        """Report that writing the last :meth:`send_data` output failed.

        Feed whatever the server still sent, then end of file, as usual. A
        reply read after this may be premature: a 5xx or 4xx explains the
        failure (Postfix smtp_loop()), but a 2xx cannot confirm a message
        whose end may never have reached the server, so the recipients fail
        as a lost connection instead.
        """
        self._write_failed = True

    def timed_out(self) -> None:
        """Report that the driver's timeout for :attr:`timeout_parameter` expired."""
        if self._state in (State.CLOSED, State.ERROR):
            return
        self._lost(timed_out=True)

    # ------------------------------------------------------------------
    # Events

    def next_event(self) -> Event | NeedData:
        """Return the next event, or :data:`NEED_DATA` when input is needed.

        After :class:`Closed`, the same Closed event is returned again.
        """
        if self._state is State.ERROR:
            raise LocalProtocolError("next_event() after an earlier error", state="ERROR")
        try:
            while not self._events:
                if self._closed_event is not None:
                    return self._closed_event
                if not self._step():
                    return NEED_DATA
            return self._events.popleft()
        except BaseException:
            self._state = State.ERROR
            raise

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _step(self) -> bool:
        """Process one reply or one end of file; False when input is needed."""
        parser = self._parser
        state = self._state
        if state is State.DATA:
            # Replies are read after the content, except when the connection
            # broke meanwhile: then a premature reply may explain why
            # (smtp_loop() LOST_CONNECTION_INSIDE_DATA).
            if parser.closed:
                reply = parser.next_reply()
                self._drain_warnings()
                if reply is not None:
                    self._premature_reply(reply)
                    return True
                self._lost()
                return True
            return False
        if not self._pending:
            if parser.closed:  # unsolicited replies before the end of file are ignored
                self._lost()
                return True
            return False
        reply = parser.next_reply()
        if parser.warnings:
            self._drain_warnings()
        if reply is None:
            if parser.at_eof:
                self._lost()
                return True
            return False
        if reply.malformed:
            self._protocol_error = True  # smtp_chat.c: DONT_CACHE_THIS_SESSION
        if self._write_failed and reply.code // 100 == 2 and self.stage in _END_OF_DATA:
            # Deliberate difference from Postfix (docs/differences.md): this
            # 2xx may predate our "." after a failed write: not a delivery.
            self._lost()
            return True
        pending = self._pending.popleft()
        if reply.code == 421 and pending.stage is not Stage.STARTTLS:
            # RFC 5321 §3.8: the server closes now. Not for STARTTLS: Postfix
            # smtp_helo() treats any refusal alike (plaintext goes on at may,
            # so the next command finds the connection gone).
            self._closing_reply = reply
        if pending.stage in _SESSION_STAGES or self._txn is None:
            self._dispatch(pending, reply)
        else:
            self._on_transaction_reply(pending, reply)
        if self._closing_reply is not None and self._state not in (State.CLOSED, State.ERROR):
            self._after_421()
        return True

    def _drain_warnings(self) -> None:
        if self._parser.warnings:
            for text in self._parser.warnings:
                self._emit(ProtocolWarning(text))
            self._parser.warnings.clear()

    def _dispatch(self, pending: _Pending, reply: Reply) -> None:
        stage = pending.stage
        if stage is Stage.GREETING:
            self._on_greeting(reply)
        elif stage in (Stage.EHLO, Stage.HELO, Stage.LHLO):
            self._on_hello(stage, reply)
        elif stage is Stage.STARTTLS:
            self._on_starttls(reply)
        elif stage is Stage.AUTH:
            self._on_auth(reply)
        elif stage is Stage.RSET:
            self._emit(RsetResult(reply, stage))
            if reply.code // 100 != 2:
                self._rset_rejected = True  # smtp_proto.c CANT_RSET_THIS_SESSION
            self._goto("rset-done")
        elif stage is Stage.QUIT and self._txn is None:
            self._close(Closed(reply=reply))
        else:
            self._on_transaction_reply(pending, reply)

    # ------------------------------------------------------------------
    # Session start: greeting and hello (smtp_helo())

    def _on_greeting(self, reply: Reply) -> None:
        opts = self.options
        pix = is_pix_greeting(reply)
        if reply.code // 100 != 2:
            self._emit(Greeting(reply, esmtp=False, pix=pix))
            self._quit_after_failure()
            return
        if pix and opts.pix_workarounds:  # smtp_helo(): for LMTP too
            self._pix_delay_dotcrlf = "delay_dotcrlf" in opts.pix_workarounds
        if opts.lmtp:
            esmtp = True
        else:
            pix_no_esmtp = pix and "disable_esmtp" in opts.pix_workarounds
            if opts.never_send_ehlo or pix_no_esmtp:
                esmtp = False
            elif opts.always_send_ehlo:
                esmtp = True
            else:  # the banner decides
                esmtp = greeting_announces_esmtp(reply, myhostname=opts.myhostname)
        self._esmtp = esmtp
        self._emit(Greeting(reply, esmtp=esmtp, pix=pix))
        self._goto("greeting-accepted")
        self._send_hello()

    def _send_hello(self) -> None:
        stage = Stage.LHLO if self.options.lmtp else Stage.EHLO if self._esmtp else Stage.HELO
        self._write(hello_command(stage.value, self.options.helo_name))
        self._pending.append(_PENDING[stage])

    def _on_hello(self, stage: Stage, reply: Reply) -> None:
        if reply.code // 100 == 2:
            if stage is Stage.HELO:
                ext = Extensions("HELO", reply)
            else:
                ext = parse_ehlo(
                    reply,
                    command=stage.value,
                    discard=self.options.discard_ehlo_keywords,
                    tls_active=self._tls_active,
                )
                for text in ext.warnings:
                    self._emit(ProtocolWarning(text))
            self._extensions = ext
            self._emit(ext)
            self._goto("hello-accepted")
            return
        if stage is Stage.EHLO and reply.code != 421:
            # smtp_helo(): fall back to HELO unless the server said 421.
            self._emit(HelloRejected(reply, stage, fallback=True))
            self._goto("hello-fallback")
            self._esmtp = False
            self._send_hello()
            return
        self._emit(HelloRejected(reply, stage, fallback=False))
        self._quit_after_failure()

    def _quit_after_failure(self) -> None:
        # smtp_connect.c: after smtp_helo() fails, smtp_quit() unless the
        # session is forbidden or the stream saw an error or EOF; a 421
        # greeting or hello reply is no exception (Postfix 3.7 and 3.11 send
        # QUIT, tests/transcripts/postfix/greeting_421.json, ehlo_421.json).
        self._goto("refused")
        self._send_quit()

    def _send_quit(self) -> None:
        self._write(b"QUIT\r\n")
        if self.options.skip_quit_response:
            self._goto("quit-done")
            self._close(Closed(reply=self._closing_reply))  # the 421, if any
        else:
            self._pending.append(_Pending(Stage.QUIT))

    def _close(self, event: Closed) -> None:
        self._state = State.CLOSED
        self._pending.clear()
        self._closed_event = event
        self._emit(event)

    # ------------------------------------------------------------------
    # STARTTLS

    def start_tls(self) -> bytes:
        """Send STARTTLS (the server must have announced it)."""

        self._check("start_tls")
        if self._tls_active:
            raise LocalProtocolError("TLS is already active", state=self._state.name)
        if self._extensions is None or not self._extensions.starttls:
            raise LocalProtocolError("the server did not announce STARTTLS", state=self._state.name)

        def body() -> bytes:
            self._goto("start_tls")
            self._write(b"STARTTLS\r\n")
            self._pending.append(_PENDING[Stage.STARTTLS])
            return self._send_now()

        return self._guarded("start_tls", body)

    def _on_starttls(self, reply: Reply) -> None:
        if reply.code // 100 == 2:
            # Plaintext that arrived after the 220 must never be read as a
            # reply (CVE-2011-0411); Postfix purges its buffers around the
            # handshake (smtp_start_tls()).
            dropped = self._parser.discard_buffered()
            if dropped:
                self._emit(
                    ProtocolWarning(
                        f"discarding {dropped} octets of plaintext received after the "
                        "STARTTLS reply (possible response injection)"
                    )
                )
            self._emit(StartTlsReady(reply, dropped))
            self._goto("starttls-accepted")
            return
        # smtp_helo(): a refused STARTTLS clears the feature; plaintext goes on.
        if self._extensions is not None:
            self._extensions = self._extensions.without_starttls()
        self._emit(StartTlsRejected(reply))
        self._goto("starttls-rejected")

    def tls_established(self) -> bytes:
        """The driver finished the TLS handshake: send EHLO (LHLO) again.

        The extensions of the plaintext session are forgotten (RFC 3207 §4.2).
        """

        def body() -> bytes:
            self._goto("tls_established")
            self._tls_active = True
            self._extensions = None
            self._authenticated = False
            self._esmtp = True  # smtp_helo(): after STARTTLS always EHLO
            self._send_hello()
            return self._send_now()

        return self._guarded("tls_established", body)

    # ------------------------------------------------------------------
    # AUTH (wire exchange only; mechanisms live in pyfix_smtp.sasl)

    def start_auth(self, mechanism: str, initial_response: bytes | None = None) -> bytes:
        """Send ``AUTH mechanism [initial-response]`` (RFC 4954).

        The initial response is base64-encoded here; when the command would
        exceed 512 octets it is sent after the server's empty challenge, as
        Postfix does.
        """

        def body() -> bytes:
            command, deferred = auth_command(mechanism, initial_response)
            self._goto("start_auth")
            self._auth_steps = 0
            self._auth_deferred = deferred
            self._auth_error = None
            self._write(command)
            self._pending.append(_Pending(Stage.AUTH))
            return self._send_now()

        return self._guarded("start_auth", body)

    def send_auth_response(self, data: bytes) -> bytes:
        """Answer the last :class:`AuthChallenge` with *data* (base64-encoded here)."""

        self._check("send_auth_response")
        self._require_no_pending("no challenge to answer yet")

        def body() -> bytes:
            self._goto("send_auth_response")
            self._write(auth_response(data))
            self._pending.append(_Pending(Stage.AUTH))
            return self._send_now()

        return self._guarded("send_auth_response", body)

    def cancel_auth(self) -> bytes:
        """Cancel the AUTH exchange with ``*`` (RFC 4954 §4); the server answers 501."""

        self._check("cancel_auth")
        self._require_no_pending("no challenge to answer yet")

        def body() -> bytes:
            self._goto("cancel_auth")
            self._write(b"*\r\n")
            self._pending.append(_Pending(Stage.AUTH))
            return self._send_now()

        return self._guarded("cancel_auth", body)

    def _on_auth(self, reply: Reply) -> None:
        if reply.code // 100 == 3 and self._auth_error is None:
            self._auth_steps += 1
            text = reply.wire_lines[-1][4:] if reply.wire_lines else " ".join(reply.lines)
            if self._auth_deferred is not None:
                deferred, self._auth_deferred = self._auth_deferred, None
                if text.strip():
                    # smtp_sasl_authenticate(): both sides want to go first.
                    self._auth_error = "non-empty initial challenge from server"
                    self._write(b"*\r\n")
                else:
                    self._write(deferred)
                self._pending.append(_Pending(Stage.AUTH))
                self._goto("auth-challenge")
                return
            if self._auth_steps > MAX_AUTH_STEPS:
                self._auth_error = "authentication protocol loop with server"
                self._write(b"*\r\n")
                self._pending.append(_Pending(Stage.AUTH))
                self._goto("auth-challenge")
                return
            try:
                challenge: bytes | None = base64.b64decode(text.strip(), validate=True)
            except (binascii.Error, ValueError):
                challenge = None
            self._emit(AuthChallenge(reply, challenge, text, self._auth_steps))
            self._goto("auth-challenge")
            return
        self._authenticated = self._auth_error is None and reply.code // 100 == 2
        self._emit(AuthResult(reply, self._auth_error))
        self._auth_error = None
        self._goto("auth-done")

    # ------------------------------------------------------------------
    # RSET probe and QUIT

    def rset(self) -> bytes:
        """Send an RSET probe (Postfix smtp_rset(), before reusing a cached session)."""

        def body() -> bytes:
            self._goto("rset")
            self._write(b"RSET\r\n")
            self._pending.append(_Pending(Stage.RSET))
            return self._send_now()

        return self._guarded("rset", body)

    def quit(self) -> bytes:
        """Send QUIT and end the session (smtp_quit()).

        Allowed when the session is idle, in the middle of an AUTH exchange
        (instead of an answer to a challenge), and after the TLS handshake
        instead of ``tls_established()``: when the server certificate does
        not satisfy the policy, Postfix sends QUIT over the TLS session it
        will not use (smtp_connect.c calls smtp_quit() after smtp_helo()
        failed in smtp_start_tls()). Write the bytes through TLS.

        With ``smtp_skip_quit_response`` (the default) the session is closed
        at once; write the returned bytes and close the stream.
        """

        self._check("quit")
        self._require_no_pending("a reply is still outstanding; read it first")

        def body() -> bytes:
            # In AUTH state this abandons the exchange as Postfix does after a
            # SASL failure (the server reads QUIT as the response); after a
            # TLS handshake it ends a session whose certificate was refused.
            self._goto("quit")
            self._send_quit()
            return self._send_now()

        return self._guarded("quit", body)

    # ------------------------------------------------------------------
    # The mail transaction (smtp_xfer(), smtp_loop())

    def start_transaction(
        self,
        envelope: Envelope,
        *,
        keep_session: bool = False,
        verify: str | None = None,
        now: float | None = None,
    ) -> bytes:
        """Start sending *envelope*; return the first write (XFORWARD/MAIL/RCPT/DATA).

        Args:
            envelope: sender, recipients and DSN/SIZE/... parameters.
            keep_session: the session will be reused (cached): end with the
                end-of-data reply instead of QUIT.
            verify: an address verification probe (Postfix trace-only
                request): ``"rcpt"`` or ``"data"`` as in
                ``smtp_address_verify_target``. With ``"rcpt"`` an accepted
                RCPT counts as delivered and RSET replaces DATA; with
                ``"data"`` the recipients count as delivered when DATA is
                accepted, and the session then ends at once (no ``.``, no
                QUIT: close the connection).
            now: the current time, for the 10-second pipelining flush rule.

        A message the server cannot take (larger than its SIZE, SMTPUTF8
        required but not offered) is failed locally without any command;
        the session stays usable (Postfix then closes it without QUIT or
        caches it).
        """
        self._check("start_transaction")
        if verify not in (None, "rcpt", "data"):
            raise CommandError("smtp_address_verify_target", verify, "must be rcpt or data")
        ext = self._extensions
        if ext is None:  # pragma: no cover - READY implies a hello
            raise LocalProtocolError("no hello reply yet", state=self._state.name)
        opts = self.options
        # Build every command first: bad input raises before anything changes.
        utf8 = smtputf8_in_use(envelope, ext)
        xforward: tuple[bytes | None, bytes | None] = (None, None)
        if opts.send_xforward_command and envelope.xforward is not None:
            xforward = xforward_commands(envelope.xforward, ext)
        mail = mail_command(
            envelope,
            ext,
            disable_mime_output_conversion=opts.disable_mime_output_conversion,
            send_dummy_mail_auth=opts.send_dummy_mail_auth,
            quote_rfc821_envelope=opts.quote_rfc821_envelope,
        )
        rcpts = [
            rcpt_command(r, ext, smtputf8=utf8, quote_rfc821_envelope=opts.quote_rfc821_envelope)
            for r in envelope.recipients
        ]

        def body() -> bytes:
            if now is not None:
                self._now = now
            failure = envelope_failure(envelope, ext, server=opts.peer_name)
            if failure is not None:
                self._emit(
                    TransactionResult(
                        tuple(
                            RecipientOutcome(i, r, False, Stage.MAIL, None, failure)
                            for i, r in enumerate(envelope.recipients)
                        )
                    )
                )
                return b""
            self._goto("start_transaction")
            if xforward[0] is not None:
                first = _S.XFORWARD_NAME_ADDR
            elif xforward[1] is not None:
                first = _S.XFORWARD_PROTO_HELO
            else:
                first = _S.MAIL
            txn = _Transaction(
                envelope=envelope,
                keep=keep_session,
                verify=verify,
                bdat=opts.chunking and ext.chunking and ext.pipelining and verify is None,
                downgrade=mime_downgrade_applies(
                    envelope,
                    ext,
                    disable_mime_output_conversion=opts.disable_mime_output_conversion,
                ),
                xforward=xforward,
                mail=mail,
                rcpts=rcpts,
                send_state=first,
            )
            if opts.tls_block_early_mail_reply and self._tls_active and self._parser.buffered > 0:
                # CVE-2009-3555: a reply before our MAIL command.
                txn.early_reply = True
            self._txn = txn
            if not self._pipeline_all(txn, ext):
                self._run_sender()
            return self._send_now()

        return self._protect(body)  # checked above; nothing changed since

    def _pipeline_all(self, t: _Transaction, ext: Extensions) -> bool:
        """The usual start, at once: MAIL, every RCPT and DATA in one write.

        What :meth:`_run_sender` does when the server pipelines, nothing
        precedes MAIL (no XFORWARD), DATA follows the last RCPT (no BDAT, no
        address probe) and the commands fit in PIPELINING_BUFSIZE (so no
        command waits, smtp_loop() CHECK_PIPELINING_BUFSIZE): the sender ends
        waiting at "." for every reply. False (nothing done) otherwise.
        """
        if (
            not ext.pipelining
            or t.send_state is not _S.MAIL
            or t.bdat
            or t.verify is not None
            or self._pending
            or self._out_len
            or self._closing_reply is not None
        ):
            return False
        size = len(t.mail) + 6 + sum(len(r) for r in t.rcpts)  # 6: DATA CRLF
        if size > PIPELINING_BUFSIZE or (
            self._now is not None
            and self._last_io is not None
            and self._now - self._last_io > PIPELINING_IDLE_FLUSH
        ):
            return False
        out = self._out
        pending = self._pending
        out.append(t.mail)
        pending.append(_PENDING[Stage.MAIL])
        for i, rcpt in enumerate(t.rcpts):
            out.append(rcpt)
            pending.append(_Pending(Stage.RCPT, i))
        out.append(b"DATA\r\n")
        pending.append(_PENDING[Stage.DATA])
        self._out_len += size
        # Where _run_sender() stops: "." built, waiting for the replies.
        t.send_state = _S.DOT
        t.send_rcpt = 0
        t.cmd = b".\r\n"
        t.next_state = _S.LAST if t.keep else _S.QUIT
        t.next_rcpt = 0
        t.waiting = True
        return True

    def _build(self, t: _Transaction) -> tuple[bytes | None, _S, int]:
        """Build the command for the sender's state (smtp_loop() first switch)."""
        state = t.send_state
        if state is _S.RCPT:
            nxt_rcpt = t.send_rcpt + 1
            if nxt_rcpt < len(t.rcpts):
                return t.rcpts[t.send_rcpt], _S.RCPT, nxt_rcpt
            # smtp_loop(): a probe with target "rcpt" sends RSET instead of DATA.
            return t.rcpts[t.send_rcpt], (_S.ABORT if t.verify == "rcpt" else _S.DATA), nxt_rcpt
        if state is _S.MAIL:
            return t.mail, _S.RCPT, 0
        if state is _S.XFORWARD_NAME_ADDR:
            nxt = _S.XFORWARD_PROTO_HELO if t.xforward[1] is not None else _S.MAIL
            return t.xforward[0], nxt, t.send_rcpt
        if state is _S.XFORWARD_PROTO_HELO:
            return t.xforward[1], _S.MAIL, t.send_rcpt
        end_state = _S.LAST if t.keep else _S.QUIT
        if state is _S.DATA:
            if t.bdat:
                return None, end_state, 0
            return b"DATA\r\n", _S.DOT, 0
        if state is _S.DOT:
            return b".\r\n", end_state, 0
        if state is _S.ABORT:
            return b"RSET\r\n", end_state, 0
        if state is _S.QUIT:
            return b"QUIT\r\n", _S.LAST, 0
        return None, _S.LAST, 0

    def _must_wait(self, t: _Transaction) -> bool:
        """smtp_loop(): must the sender wait for the receiver before sending?"""
        state = t.send_state
        if state in (_S.DOT, _S.LAST) or (state is _S.DATA and t.bdat):
            return True  # SENDER_IN_WAIT_STATE (BDAT: content is a sync point)
        if not self._pending:
            return False
        ext = self._extensions
        if ext is None or not ext.pipelining:
            return True
        # CHECK_PIPELINING_BUFSIZE: QUIT right after the end of data is exempt.
        exempt = state is _S.QUIT and t.content_done
        if not exempt and len(t.cmd or b"") + self._out_len > PIPELINING_BUFSIZE:
            return True
        return (
            self._now is not None
            and self._last_io is not None
            and self._now - self._last_io > PIPELINING_IDLE_FLUSH
        )

    def _course_correct(self, t: _Transaction) -> None:
        """After the receiver caught up: RSET when MAIL, all RCPTs or DATA failed."""
        if (
            (t.send_state is _S.RCPT and t.mail_from_rejected)
            or (t.send_state is _S.DATA and t.nrcpt == 0)
            or (t.send_state is _S.DOT and t.nrcpt < 0)
        ):
            t.send_state = _S.ABORT
            t.cmd = b"RSET\r\n"
            t.next_state = _S.LAST if t.keep else _S.QUIT
            t.send_rcpt = t.next_rcpt = 0

    def _run_sender(self) -> None:
        """Advance the sender loop until it has to wait (smtp_loop())."""
        t = self._txn
        while t is not None and self._txn is t and self._closing_reply is None:
            if t.content_pending:
                if not t.content_done:
                    return
                t.content_pending = False
                self._content_sent(t)
            elif t.waiting:
                if self._pending:
                    return
                t.waiting = False
                self._course_correct(t)
                if not self._send_step(t):
                    return
            else:
                t.cmd, t.next_state, t.next_rcpt = self._build(t)
                if self._must_wait(t):
                    if self._pending:
                        t.waiting = True
                        return
                    self._course_correct(t)
                if not self._send_step(t):
                    return
            t.send_state = t.next_state
            t.send_rcpt = t.next_rcpt

    def _send_step(self, t: _Transaction) -> bool:
        """Send the built command; False when the loop must stop here."""
        state = t.send_state
        if state is _S.LAST:
            self._finish_transaction(t)
            return False
        if (state is _S.DOT or (state is _S.DATA and t.bdat)) and t.nrcpt > 0:
            # smtp_loop(): the server accepted DATA (or, with BDAT, at least
            # one recipient): the caller sends the content now.
            t.content_pending = True
            self._emit(
                DataReady(
                    t.data_reply,
                    Framing.BDAT if t.bdat else Framing.DATA,
                    t.downgrade,
                    tuple(t.survivors),
                )
            )
            self._goto("content")
            return False
        cmd = t.cmd
        if cmd is not None:
            self._out.append(cmd)
            self._out_len += len(cmd)
            if state is _S.RCPT:
                self._pending.append(_Pending(Stage.RCPT, t.send_rcpt))
            elif state is _S.QUIT:
                t.quit_sent = True
                if not self.options.skip_quit_response:
                    self._pending.append(_PENDING[Stage.QUIT])
            elif state is _S.DOT:
                # "." without content (no recipient accepted, RFC 2920 §3.1).
                self._pending.append(_PENDING[Stage.DOT])
            else:
                self._pending.append(_PENDING[_STAGE_OF[state]])
        return True

    def _content_sent(self, t: _Transaction) -> None:
        """The caller's final chunk (with "." or BDAT LAST) went out."""
        if t.bdat:
            stage = Stage.BDAT_LAST
            replies = max(t.nrcpt, 1) if self.options.lmtp else 1
        else:
            stage = Stage.DOT
            replies = max(t.nrcpt, 1) if self.options.lmtp else 1
        pending = _PENDING[stage]
        for _ in range(replies):
            self._pending.append(pending)

    def send_data(self, chunk: bytes, *, final: bool = False) -> bytes:
        """Send one piece of encoded content; return the bytes to write.

        With DATA framing, pass the output of
        :func:`~pyfix_smtp.protocol.content.encode_data` (already
        dot-stuffed; the last chunk ends with ``.`` CRLF) and mark the last
        one ``final=True``: the return value then also carries QUIT when the
        server pipelines, so content, ``.`` and QUIT leave in one write. With
        BDAT framing pass raw chunks (``encode_bdat``); each is prefixed with
        its ``BDAT`` command here.
        """

        def body() -> bytes:
            t = self._txn
            assert t is not None
            if t.bdat:
                out = self._bdat_chunk(t, chunk, final)
            else:
                self._check_end_of_data(t, chunk, final)
                out = chunk
            if self._out:
                # Commands the machine queued must never be overtaken.
                out = self._send_now() + out
            if not final:
                return out
            t.content_done = True
            self._goto("content-done")
            self._run_sender()
            tail = self._send_now()
            return out + tail if tail else out

        self._check("send_data")
        if not isinstance(chunk, bytes):
            raise TypeError(f"send_data() needs bytes, not {type(chunk).__name__}")
        return self._protect(body)

    def _check_end_of_data(self, t: _Transaction, chunk: bytes, final: bool) -> None:
        tail = chunk[-5:] if len(chunk) >= 5 else (t.tail + chunk)[-5:]
        t.tail = tail
        if final and tail != b"\r\n.\r\n":
            raise LocalProtocolError(
                "the final chunk must end the content with CRLF . CRLF "
                "(use pyfix_smtp.protocol.content.encode_data)",
                state=self._state.name,
            )

    def _bdat_chunk(self, t: _Transaction, chunk: bytes, final: bool) -> bytes:
        # Chunk replies are read after the last chunk (RFC 3030 §4.2 with
        # PIPELINING): a refused chunk fails the message then.
        if final:
            return b"BDAT %d LAST\r\n" % len(chunk) + chunk
        if not chunk:
            return b""
        self._pending.append(_Pending(Stage.BDAT))
        return b"BDAT %d\r\n" % len(chunk) + chunk

    def abort_data(self, failure: Failure) -> None:
        """Give up in the middle of the content (e.g. a MIME conversion error).

        Every accepted recipient fails with *failure*; the session cannot
        continue (Postfix drops the connection without ending the data), so
        close the stream without writing anything more.
        """

        def body() -> bytes:
            t = self._txn
            assert t is not None
            for idx in t.survivors:
                self._settle(t, idx, False, Stage.CONTENT, None, failure)
            self._txn = None
            self._goto("abort_data")
            self._close(Closed())
            return b""

        self._guarded("abort_data", body)

    # -- receiving transaction replies ----------------------------------

    def _on_transaction_reply(self, pending: _Pending, reply: Reply) -> None:
        t = self._txn
        if t is None:  # pragma: no cover - only transaction stages get here
            raise LocalProtocolError(f"unexpected reply for {pending.stage.name}")
        stage = pending.stage
        ok = reply.code // 100 == 2
        if stage in (Stage.XFORWARD_NAME_ADDR, Stage.XFORWARD_PROTO_HELO):
            self._emit(XforwardResult(reply, stage))
        elif stage is Stage.MAIL:
            if self._progress:
                self._emit(MailResult(reply))
            if not ok:
                self._fail_all(t, reply, stage)
                t.mail_from_rejected = True
            if t.early_reply:
                # smtp_loop(): CVE-2009-3555 detection.
                if not t.mail_from_rejected:
                    failure = Failure("4.7.0", "unexpected server message")
                    for idx in range(len(t.rcpts)):
                        self._settle(t, idx, False, Stage.MAIL, None, failure)
                self._emit(
                    ProtocolWarning(
                        f"server {self.options.peer_name} violates "
                        "smtp_tls_block_early_mail_reply policy"
                    )
                )
                self._protocol_error = True
                t.mail_from_rejected = True
        elif stage is Stage.RCPT:
            if not t.mail_from_rejected:
                if self._progress:
                    recipient = t.envelope.recipients[pending.rcpt]
                    self._emit(RecipientResult(pending.rcpt, recipient, reply))
                if ok:
                    t.nrcpt += 1
                    t.survivors.append(pending.rcpt)
                    if t.verify == "rcpt":
                        self._settle(t, pending.rcpt, True, stage, reply, None)
                else:
                    self._settle_reply(t, pending.rcpt, reply, stage)
        elif stage is Stage.DATA:
            if reply.code // 100 != 3:
                if t.nrcpt > 0:
                    if self._progress:
                        self._emit(MessageResult(reply, stage))
                    for idx in t.survivors:
                        self._settle_reply(t, idx, reply, stage)
                t.nrcpt = -1
            elif t.verify == "data":
                # smtp_loop(): the probe succeeded; the server now waits for
                # content, so the session ends without "." or QUIT.
                for idx in t.survivors:
                    self._settle(t, idx, True, stage, reply, None)
                self._txn = None
                self._pending.clear()
                self._protocol_error = True  # never reuse (DONT_CACHE_THIS_SESSION)
                self._close(Closed(stage=stage))
                return
            else:
                t.data_reply = reply
        elif stage is Stage.BDAT:
            if not ok and not t.bdat_failed:
                t.bdat_failed = True
                if t.nrcpt > 0:
                    if self._progress:
                        self._emit(MessageResult(reply, stage))
                    for idx in t.survivors:
                        self._settle_reply(t, idx, reply, stage)
                if self.options.lmtp:
                    # A failed transaction answers BDAT LAST once, not once
                    # per recipient.
                    last = [p for p in self._pending if p.stage is Stage.BDAT_LAST]
                    for extra in last[1:]:
                        self._pending.remove(extra)
        elif stage in (Stage.DOT, Stage.BDAT_LAST):
            self._end_of_data_reply(t, reply, stage)
        elif stage is Stage.ABORT:
            self._emit(RsetResult(reply, stage))
        elif stage is Stage.QUIT:
            t.quit_reply = reply
        if self._txn is t and self._closing_reply is None:
            if t.waiting and self._pending and not t.content_pending:
                return  # the sender still waits for outstanding replies
            self._run_sender()

    def _end_of_data_reply(self, t: _Transaction, reply: Reply, stage: Stage) -> None:
        if t.nrcpt <= 0 or (stage is Stage.BDAT_LAST and t.bdat_failed):
            return  # smtp_loop(): no recipient accepted, ignore the reply
        ok = reply.code // 100 == 2
        if not self.options.lmtp:
            if self._progress:
                self._emit(MessageResult(reply, stage))
            for idx in t.survivors:
                if idx not in t.outcomes:
                    if ok:
                        self._settle(t, idx, True, stage, reply, None)
                    else:
                        self._settle_reply(t, idx, reply, stage)
            return
        if t.recv_done >= len(t.survivors):  # pragma: no cover - queue holds nrcpt entries
            return
        idx = t.survivors[t.recv_done]
        t.recv_done += 1
        if self._progress:
            self._emit(LmtpRecipientResult(idx, t.envelope.recipients[idx], reply, stage))
        if ok:
            self._settle(t, idx, True, stage, reply, None)
        else:
            self._settle_reply(t, idx, reply, stage)

    def _premature_reply(self, reply: Reply) -> None:
        # The connection broke while the caller sent content, and a reply
        # was already there: it answers the end of data (smtp_loop()).
        t = self._txn
        assert t is not None
        if reply.code // 100 == 2:
            # Deliberate difference (docs/differences.md): Postfix takes a 2xx
            # here as delivery, but the server never saw the end of the
            # message, so this is a lost connection in the message body.
            self._lost()
            return
        stage = Stage.BDAT_LAST if t.bdat else Stage.DOT
        if reply.code == 421:
            self._closing_reply = reply
        self._end_of_data_reply(t, reply, stage)

    def _finish_transaction(self, t: _Transaction) -> None:
        # Every recipient has an outcome by now; anything else is a bug.
        for idx in range(len(t.rcpts)):
            if idx not in t.outcomes:  # pragma: no cover - defensive
                raise LocalProtocolError(
                    f"recipient {idx} has no outcome at the end of the transaction",
                    state=self._state.name,
                )
        self._txn = None
        if t.quit_sent:
            self._close(Closed(reply=t.quit_reply))
        else:
            self._goto("transaction-done")

    # -- outcomes ----------------------------------------------------------

    def _settle_reply(self, t: _Transaction, idx: int, reply: Reply, stage: Stage) -> None:
        if is_protocol_error_code(reply.code):
            self._protocol_error = True  # smtp_trouble.c smtp_check_code()
        self._settle(
            t, idx, False, stage, reply, reply_failure(reply, stage, self.options.peer_name)
        )

    def _fail_all(self, t: _Transaction, reply: Reply, stage: Stage) -> None:
        for idx in range(len(t.rcpts)):
            if idx not in t.outcomes:
                self._settle_reply(t, idx, reply, stage)

    def _settle(
        self,
        t: _Transaction,
        idx: int,
        delivered: bool,
        stage: Stage,
        reply: Reply | None,
        failure: Failure | None,
    ) -> None:
        if idx in t.outcomes:
            return
        t.outcomes[idx] = RecipientOutcome(
            idx, t.envelope.recipients[idx], delivered, stage, reply, failure
        )
        if len(t.outcomes) == len(t.rcpts) and not t.result_sent:
            t.result_sent = True
            self._emit(TransactionResult(tuple(t.outcomes[i] for i in range(len(t.rcpts)))))

    # ------------------------------------------------------------------
    # The end: 421, end of file, timeout

    def _after_421(self) -> None:
        """A 421 reply: the server is closing the channel (RFC 5321 §3.8).

        Remaining replies may still arrive; once none is outstanding (or at
        end of file) whatever is unsettled counts as lost at the stage the
        client would have continued with, and the session is closed.
        """
        if self._pending:
            return
        t = self._txn
        stage = None
        if t is not None:
            stage = self._next_stage(t)
            self._settle_lost(t, stage, timed_out=False)
            self._txn = None
        self._close(Closed(stage=stage, reply=self._closing_reply))

    @staticmethod
    def _next_stage(t: _Transaction) -> Stage:
        """The stage the sender would continue with (for texts about it)."""
        if t.send_state is _S.DOT or (t.send_state is _S.DATA and t.bdat):
            return Stage.CONTENT if not t.content_done else Stage.DOT
        return _STAGE_OF.get(t.send_state, Stage.QUIT)

    def _lost(self, *, timed_out: bool = False) -> None:
        stage = self.stage
        t = self._txn
        if t is not None:
            lost_stage = stage or self._next_stage(t)
            self._settle_lost(t, lost_stage, timed_out=timed_out)
            self._txn = None
        if self._closing_reply is not None and not timed_out:
            self._close(Closed(stage=stage, reply=self._closing_reply))
            return
        if stage is Stage.QUIT:
            # smtp_loop(): a QUIT reply that never comes is not an error.
            self._close(Closed(stage=stage, timed_out=timed_out))
            return
        self._close(Closed(lost=True, timed_out=timed_out, stage=stage))

    def _settle_lost(self, t: _Transaction, stage: Stage, *, timed_out: bool) -> None:
        failure = lost_failure(
            stage, self.options.peer_name, timed_out=timed_out, lmtp=self.options.lmtp
        )
        for idx in range(len(t.rcpts)):
            self._settle(t, idx, False, stage, None, failure)
