"""Events the client connection reports, and the protocol stages they belong to.

Every event is a frozen, slotted dataclass. Events that carry a server reply
name the :class:`Stage` (the command) it answered, so a report can say
"host X said: 550 ... (in reply to RCPT TO command)" as Postfix does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pyfix_smtp.protocol.content import Framing
from pyfix_smtp.protocol.envelope import Recipient
from pyfix_smtp.protocol.extensions import Extensions
from pyfix_smtp.status import Failure, Reply

__all__ = [
    "NEED_DATA",
    "AuthChallenge",
    "AuthResult",
    "Closed",
    "DataReady",
    "Event",
    "Extensions",
    "Greeting",
    "HelloRejected",
    "LmtpRecipientResult",
    "MailResult",
    "MessageResult",
    "NeedData",
    "ProtocolWarning",
    "RecipientOutcome",
    "RecipientResult",
    "RsetResult",
    "Stage",
    "StartTlsReady",
    "StartTlsRejected",
    "TransactionResult",
    "XforwardResult",
]


class Stage(enum.Enum):
    """A protocol stage: the command a reply answers, or what the client was doing.

    Texts and timeouts follow Postfix smtp_proto.c (``xfer_states``,
    ``xfer_request``, ``xfer_timeouts``) and smtp_helo().
    """

    GREETING = "greeting"
    EHLO = "EHLO"
    HELO = "HELO"
    LHLO = "LHLO"
    STARTTLS = "STARTTLS"
    AUTH = "AUTH"
    XFORWARD_NAME_ADDR = "XFORWARD name/address"
    XFORWARD_PROTO_HELO = "XFORWARD protocol/helo"
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"
    CONTENT = "content"
    DOT = "end of data"
    BDAT = "BDAT"
    BDAT_LAST = "BDAT LAST"
    ABORT = "final RSET"
    RSET = "RSET probe"
    QUIT = "QUIT"

    # Members are singletons: hash them by identity (C speed) instead of
    # Enum's name hash; the protocol machine looks stages up per reply.
    __hash__ = object.__hash__

    def describe(self, *, lmtp: bool = False) -> str:
        """What the client was doing, for "lost connection with X while ...".

        Postfix's words: ``"sending RCPT TO"``, ``"receiving the initial
        server greeting"``, ``"sending end of data -- message may be sent more
        than once"``. AUTH happens inside the hello stage, so Postfix reports
        it as ``"performing the EHLO handshake"`` (LHLO for LMTP).
        """
        if self is Stage.AUTH:
            return "performing the LHLO handshake" if lmtp else "performing the EHLO handshake"
        return _WHILE[self]

    @property
    def request(self) -> str:
        """The command a reply answered, for "(in reply to ...)": ``"RCPT TO command"``."""
        return _REQUEST[self]

    @property
    def timeout_parameter(self) -> str:
        """The Postfix parameter that limits this stage (``smtp_rcpt_timeout`` ...).

        Names are the ``smtp_*`` ones; in an LMTP configuration the same
        attribute holds the ``lmtp_*`` value (``lmtp_lhlo_timeout`` for the
        hello stages).
        """
        return _TIMEOUT[self]


_WHILE = {
    Stage.GREETING: "receiving the initial server greeting",
    Stage.EHLO: "performing the EHLO handshake",
    Stage.HELO: "performing the HELO handshake",
    Stage.LHLO: "performing the LHLO handshake",
    Stage.STARTTLS: "receiving the STARTTLS response",
    Stage.XFORWARD_NAME_ADDR: "sending XFORWARD name/address",
    Stage.XFORWARD_PROTO_HELO: "sending XFORWARD protocol/helo_name",
    Stage.MAIL: "sending MAIL FROM",
    Stage.RCPT: "sending RCPT TO",
    Stage.DATA: "sending DATA command",
    Stage.CONTENT: "sending message body",
    Stage.DOT: "sending end of data -- message may be sent more than once",
    Stage.BDAT: "sending message body",
    Stage.BDAT_LAST: "sending end of data -- message may be sent more than once",
    Stage.ABORT: "sending final RSET",
    Stage.RSET: "sending RSET probe",
    Stage.QUIT: "sending QUIT",
}

_REQUEST = {
    Stage.GREETING: "initial server greeting",
    Stage.EHLO: "EHLO command",
    Stage.HELO: "HELO command",
    Stage.LHLO: "LHLO command",
    Stage.STARTTLS: "STARTTLS command",
    Stage.AUTH: "AUTH command",
    Stage.XFORWARD_NAME_ADDR: "XFORWARD name/address command",
    Stage.XFORWARD_PROTO_HELO: "XFORWARD helo/protocol command",
    Stage.MAIL: "MAIL FROM command",
    Stage.RCPT: "RCPT TO command",
    Stage.DATA: "DATA command",
    Stage.CONTENT: "message body",
    Stage.DOT: "end of DATA command",
    Stage.BDAT: "BDAT command",
    Stage.BDAT_LAST: "BDAT LAST command",
    Stage.ABORT: "final RSET command",
    Stage.RSET: "RSET probe",
    Stage.QUIT: "QUIT command",
}

_TIMEOUT = {
    Stage.GREETING: "smtp_helo_timeout",
    Stage.EHLO: "smtp_helo_timeout",
    Stage.HELO: "smtp_helo_timeout",
    Stage.LHLO: "smtp_helo_timeout",
    Stage.STARTTLS: "smtp_starttls_timeout",
    Stage.AUTH: "smtp_helo_timeout",
    Stage.XFORWARD_NAME_ADDR: "smtp_xforward_timeout",
    Stage.XFORWARD_PROTO_HELO: "smtp_xforward_timeout",
    Stage.MAIL: "smtp_mail_timeout",
    Stage.RCPT: "smtp_rcpt_timeout",
    Stage.DATA: "smtp_data_init_timeout",
    Stage.CONTENT: "smtp_data_xfer_timeout",
    Stage.DOT: "smtp_data_done_timeout",
    Stage.BDAT: "smtp_data_xfer_timeout",
    Stage.BDAT_LAST: "smtp_data_done_timeout",
    Stage.ABORT: "smtp_rset_timeout",
    Stage.RSET: "smtp_rset_timeout",
    Stage.QUIT: "smtp_quit_timeout",
}


class NeedData(enum.Enum):
    """Sentinel type of :data:`NEED_DATA`."""

    NEED_DATA = "NEED_DATA"


NEED_DATA = NeedData.NEED_DATA
"""``next_event()`` result: send :meth:`data_to_send`, then feed more input."""


def _accepted(reply: Reply) -> bool:
    return reply.code // 100 == 2


@dataclass(frozen=True, slots=True)
class Greeting:
    """The server's greeting banner (accepted when 2xx)."""

    reply: Reply
    esmtp: bool
    """The client will send EHLO (or LHLO) rather than HELO."""
    pix: bool = False
    """The banner looks like a Cisco PIX fixup (``smtp_pix_workarounds`` apply)."""

    @property
    def accepted(self) -> bool:
        """True for a 2xx greeting."""
        return _accepted(self.reply)


@dataclass(frozen=True, slots=True)
class HelloRejected:
    """EHLO, HELO or LHLO was refused.

    With ``fallback`` the client tries HELO next (Postfix does after a
    non-421 EHLO rejection); otherwise the session ends.
    """

    reply: Reply
    stage: Stage
    fallback: bool


@dataclass(frozen=True, slots=True)
class StartTlsReady:
    """The server accepted STARTTLS: start TLS on the stream now, then call
    ``tls_established()``.

    ``discarded`` counts plaintext octets that arrived after the 220 reply;
    they were dropped unread (response injection, CVE-2011-0411).
    """

    reply: Reply
    discarded: int = 0


@dataclass(frozen=True, slots=True)
class StartTlsRejected:
    """The server refused STARTTLS; the session continues in plaintext."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class AuthChallenge:
    """A ``334`` SASL challenge: answer with ``send_auth_response()`` or ``cancel_auth()``.

    ``challenge`` is the base64-decoded challenge, or ``None`` when the
    server's text is not valid base64 (``text`` has it as received).
    """

    reply: Reply
    challenge: bytes | None
    text: str
    step: int


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The end of an AUTH exchange: success on 2xx.

    ``error`` names a protocol violation the client detected (a non-empty
    first challenge after a deferred initial response, more than 100
    challenges); the client then cancelled the exchange with ``*``.
    """

    reply: Reply
    error: str | None = None

    @property
    def accepted(self) -> bool:
        """True when authentication succeeded."""
        return self.error is None and _accepted(self.reply)


@dataclass(frozen=True, slots=True)
class XforwardResult:
    """Reply to an XFORWARD command (a rejection is only a warning in Postfix)."""

    reply: Reply
    stage: Stage


@dataclass(frozen=True, slots=True)
class MailResult:
    """Reply to MAIL FROM; a rejection fails every recipient of the message."""

    reply: Reply

    @property
    def stage(self) -> Stage:
        """The command this reply answered: MAIL FROM."""
        return Stage.MAIL

    @property
    def accepted(self) -> bool:
        """True for a 2xx reply."""
        return _accepted(self.reply)


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """Reply to one RCPT TO (not reported when MAIL FROM was rejected)."""

    index: int
    recipient: Recipient
    reply: Reply

    @property
    def stage(self) -> Stage:
        """The command this reply answered: RCPT TO."""
        return Stage.RCPT

    @property
    def accepted(self) -> bool:
        """True for a 2xx reply."""
        return _accepted(self.reply)


@dataclass(frozen=True, slots=True)
class DataReady:
    """Send the message content now with ``send_data()``.

    ``reply`` is the 354 reply to DATA (``None`` with BDAT, which has no
    go-ahead). ``framing`` says how to encode the content
    (:func:`pyfix_smtp.protocol.content.encode_data` or ``encode_bdat``) and
    ``downgrade_8bit`` whether 8bit MIME must be converted to 7bit.
    ``accepted`` lists the indexes of the recipients the server accepted.
    """

    reply: Reply | None
    framing: Framing
    downgrade_8bit: bool
    accepted: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MessageResult:
    """The server's verdict on the message for all accepted recipients (SMTP).

    ``stage`` is ``DOT`` (or ``BDAT_LAST``) for the end-of-data reply, or
    ``DATA``/``BDAT`` when the server refused the DATA command or a chunk.
    """

    reply: Reply
    stage: Stage

    @property
    def accepted(self) -> bool:
        """True when the server took the message (2xx at end of data)."""
        return _accepted(self.reply) and self.stage in (Stage.DOT, Stage.BDAT_LAST)


@dataclass(frozen=True, slots=True)
class LmtpRecipientResult:
    """LMTP: the per-recipient reply after end of data (RFC 2033 §4.2)."""

    index: int
    recipient: Recipient
    reply: Reply
    stage: Stage = Stage.DOT
    """``DOT``, or ``BDAT_LAST`` when the content went with BDAT."""

    @property
    def accepted(self) -> bool:
        """True for a 2xx reply."""
        return _accepted(self.reply)


@dataclass(frozen=True, slots=True)
class RsetResult:
    """Reply to RSET: a probe before reusing a session, or the final RSET."""

    reply: Reply
    stage: Stage


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """How one recipient fared in a transaction.

    Attributes:
        index: position in the envelope.
        recipient: the recipient.
        delivered: the server took responsibility (2xx at end of data).
        stage: the stage that decided it (the reply's command, or where the
            connection was lost).
        reply: the deciding server reply, or ``None`` for a local failure or
            a lost connection.
        failure: for an undelivered recipient, the status and the text in
            Postfix's words (``host X said: ... (in reply to RCPT TO
            command)``, ``lost connection with X while sending RCPT TO``).
            Soft/hard rules (final server, ``soft_bounce``) are applied by
            the delivery layer, not here.
    """

    index: int
    recipient: Recipient
    delivered: bool
    stage: Stage
    reply: Reply | None = None
    failure: Failure | None = None

    def __post_init__(self) -> None:
        if self.delivered == (self.failure is not None):
            raise ValueError("an outcome is either delivered or has a failure")


@dataclass(frozen=True, slots=True)
class TransactionResult:
    """Every recipient of the transaction has an outcome (emitted exactly once)."""

    outcomes: tuple[RecipientOutcome, ...]

    @property
    def delivered(self) -> tuple[RecipientOutcome, ...]:
        """The outcomes of delivered recipients."""
        return tuple(o for o in self.outcomes if o.delivered)

    @property
    def failed(self) -> tuple[RecipientOutcome, ...]:
        """The outcomes of recipients that were not delivered."""
        return tuple(o for o in self.outcomes if not o.delivered)


@dataclass(frozen=True, slots=True)
class ProtocolWarning:
    """Something odd the client tolerated (Postfix logs these as warnings)."""

    text: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The session is over; no more events follow (``next_event()`` repeats it).

    Attributes:
        lost: the connection ended unexpectedly (end of file or a timeout).
        timed_out: the driver reported a timeout.
        stage: what the client was doing when the connection was lost.
        reply: the QUIT reply, or the 421 reply that ended the session.
    """

    lost: bool = False
    timed_out: bool = False
    stage: Stage | None = None
    reply: Reply | None = None


Event = (
    Greeting
    | Extensions
    | HelloRejected
    | StartTlsReady
    | StartTlsRejected
    | AuthChallenge
    | AuthResult
    | XforwardResult
    | MailResult
    | RecipientResult
    | DataReady
    | MessageResult
    | LmtpRecipientResult
    | RsetResult
    | TransactionResult
    | ProtocolWarning
    | Closed
)
"""Any event :meth:`ClientConnection.next_event` returns."""
