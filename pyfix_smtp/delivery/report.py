"""Per-recipient outcomes, delivery reports and Postfix-format log lines.

Every recipient of a delivery ends with exactly one :class:`RecipientOutcome`.
Its :meth:`~RecipientOutcome.log_line` is the line Postfix's smtp(8) writes
through ``log_adhoc()`` (global/log_adhoc.c), so pflogsumm-style tools can read
what pyfix_smtp logs::

    to=<bob@example.net>, relay=mx.example.net[192.0.2.25]:25, delay=0.52,
    delays=0/0/0.31/0.21, tls=may, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4Zx)
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pyfix_smtp.status import Reply
from pyfix_smtp.tls.tlsrpt import TlsrptResult

__all__ = [
    "Action",
    "DeliveryReport",
    "MessageTimes",
    "RecipientOutcome",
    "external_address",
    "format_delay",
    "internal_address",
]


class Action(enum.Enum):
    """What happened to one recipient."""

    #: Final delivery: an LMTP server without DSN and ``lmtp_assume_final``
    #: (Postfix smtp_rcpt.c ``smtp_rcpt_done()``).
    DELIVERED = "delivered"
    #: Accepted by the server for further delivery (the usual SMTP success).
    RELAYED = "relayed"
    #: Temporary failure: try again later.
    DEFERRED = "deferred"
    #: Permanent failure: return the message to the sender.
    BOUNCED = "bounced"

    @property
    def log_status(self) -> str:
        """The word Postfix logs after ``status=``: sent, deferred or bounced."""
        return {"delivered": "sent", "relayed": "sent"}.get(self.value, self.value)

    @property
    def dsn_action(self) -> str:
        """The RFC 3464 §2.3.3 action: delivered, relayed, delayed or failed."""
        return {"deferred": "delayed", "bounced": "failed"}.get(self.value, self.value)

    @property
    def done(self) -> bool:
        """True when the recipient needs no further delivery attempt."""
        return self is not Action.DEFERRED


def format_delay(seconds: float, sig_digits: int = 2, max_digits: int = 2) -> str:
    """Format a delay as Postfix's ``format_tv()`` does (util/format_tv.c).

    Large values are rounded to whole seconds; small values keep *sig_digits*
    significant digits, but never more than *max_digits* decimals
    (``delay_logging_resolution_limit``). Trailing zeros are not printed.
    """
    if not 0 <= max_digits <= 6 or not 1 <= sig_digits <= 6:
        raise ValueError("format_delay: digits out of range")
    micros_total = max(0, round(seconds * 1_000_000))
    sec, usec = divmod(micros_total, 1_000_000)
    resolution = 1_000_000 // 10**max_digits
    width = 10**sig_digits
    if resolution < 1_000_000:
        if sec > 0:
            n = 1
            while sec >= n and n <= width // 10:
                n *= 10
            resolution = (1_000_000 // width) * n
        else:
            while usec >= width * resolution:
                resolution *= 10
    if resolution > 1:  # round half up at the resolution
        usec += resolution // 2
        if usec >= 1_000_000:
            sec += 1
            usec -= 1_000_000
    text = str(sec)
    if usec >= resolution:
        digits = []
        rem, n = usec, 100_000
        while rem >= resolution and n > 0:
            digits.append(str(rem // n))
            rem %= n
            n //= 10
        text += "." + "".join(digits)
    return text


# Postfix quote_822_local.c is_822_dot_string() with QUOTE_FLAG_8BITCLEAN: a
# local part that is not a dot-string of atoms (8-bit text allowed) is quoted.
_NOT_822_DOT_STRING = re.compile(r'[\x00-\x20\x7f()<>@,;:\\"\[\]]|\A\.|\.\.|\.\Z')
_822_QUOTED_PAIR = re.compile(r'["\\\r]')  # make_822_quoted_string()
#: ``info_log_address_format`` values (Postfix info_log_addr_form.c).
ADDRESS_FORMATS = ("external", "internal")


def external_address(address: str) -> str:
    """An internal-form address in external form (Postfix ``quote_822_local()``).

    The local part (after a source route, up to the last ``@``) is left as
    it is when it is an RFC 822 dot-string, else it becomes a quoted string:
    ``john doe@example.com`` -> ``"john doe"@example.com``. The empty
    address stays empty.
    """
    if not address:
        return address
    start = 0
    if address[0] == "@":  # skip a source route "@a,@b:"
        colon = address.find(":")
        if colon >= 0:
            start = colon + 1
    end = address.rfind("@", start)
    if end < 0:
        end = len(address)
    local = address[start:end]
    if local and _NOT_822_DOT_STRING.search(local) is None:
        return address
    quoted = _822_QUOTED_PAIR.sub(r"\\\g<0>", local)
    return f'{address[:start]}"{quoted}"{address[end:]}'


def _same(address: str) -> str:
    return address


def internal_address(address: str) -> str:
    """An external-form address in internal form (Postfix ``unquote_822_local()``).

    Quotes and backslash escapes are removed up to the last unquoted ``@``;
    the domain part is left as it is.
    """
    if '"' not in address and "\\" not in address:
        return address
    start = 0
    if address[0] == "@":
        colon = address.find(":")
        if colon >= 0:
            start = colon + 1
    out: list[str] = [address[:start]]
    bare_at = -1  # position in out / address of the last unquoted "@"
    bare_src = -1
    in_quote = False
    i, n = start, len(address)
    while i < n:
        ch = address[i]
        if ch == '"':
            in_quote = not in_quote
            i += 1
            continue
        if ch == "@":
            if not in_quote:
                bare_at, bare_src = len(out), i
        elif ch == "\\":
            i += 1
            if i == n:  # a trailing backslash is dropped
                break
            ch = address[i]
        out.append(ch)
        i += 1
    if bare_at >= 0:
        return "".join(out[:bare_at]) + address[bare_src:]
    return "".join(out)


@dataclass(frozen=True, slots=True)
class MessageTimes:
    """Time stamps of one delivery attempt, in seconds (any common epoch).

    Postfix's MSG_STATS: *arrival* is when the message entered the system
    (``incoming_arrival``), *handoff* when this delivery attempt started
    (``agent_handoff``; also stands in for the active-queue entry, which a
    library does not have), *setup_done* when the server's handshake finished
    (``conn_setup_done``) and *done* when the recipient's outcome was known.
    """

    arrival: float
    handoff: float
    setup_done: float | None
    done: float

    @property
    def delays(self) -> tuple[float, float, float, float]:
        """Postfix's ``delays=a/b/c/d``: before queue, in queue, set-up, transmission."""

        def delta(later: float, earlier: float) -> float:
            return max(0.0, later - earlier)

        before_queue = delta(self.handoff, self.arrival)
        if self.setup_done is not None:
            return (
                before_queue,
                0.0,
                delta(self.setup_done, self.handoff),
                delta(self.done, self.setup_done),
            )
        return (before_queue, 0.0, 0.0, delta(self.done, self.handoff))

    @property
    def total(self) -> float:
        """Postfix's ``delay=``: from arrival to the outcome."""
        return max(0.0, self.done - self.arrival)


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """The one outcome of one recipient.

    Attributes:
        recipient: the recipient address as given (internal form).
        original_recipient: the original recipient (from the ORCPT), when
            known, in internal form too.
        action: delivered, relayed, deferred or bounced.
        status: RFC 3463 enhanced status code, e.g. ``"2.0.0"`` or ``"4.4.1"``.
        reason: Postfix's text, e.g. ``"host mx.example[192.0.2.1] said: 550
            5.1.1 <bob@example.net>: unknown user (in reply to RCPT TO command)"``
            or, for a success, the server's reply text.
        reply: the server reply behind the outcome, when a server replied.
        relay: ``host[address]:port`` of the server that decided, or ``"none"``.
        times: time stamps for ``delay=`` and ``delays=``.
        conn_use: how many times the connection had been used (1 = new).
        soft_bounce: a bounce turned into a deferral by ``soft_bounce = yes``
            (Postfix bounce_append() logs it as ``status=SOFTBOUNCE``).
        probe: the outcome of an address-verification probe: logged as
            ``status=deliverable`` or ``status=undeliverable`` (Postfix
            sent(), defer_append() and bounce_append() with
            DEL_REQ_FLAG_MTA_VRFY), never as a soft bounce.
        tls: Postfix's TLS feature status when the outcome was decided
            (``smtp_log_tls_feature_status``, Postfix 3.10+), e.g. ``may``,
            ``may:none``, ``!verify`` or ``secure/requiretls``; None: no
            ``tls=`` field.
    """

    recipient: str
    action: Action
    status: str
    reason: str
    relay: str = "none"
    reply: Reply | None = None
    original_recipient: str | None = None
    times: MessageTimes | None = None
    conn_use: int = 1
    soft_bounce: bool = False
    probe: bool = False
    tls: str | None = None

    def __post_init__(self) -> None:
        expected = "2" if self.action in (Action.DELIVERED, Action.RELAYED) else None
        if expected is not None and not self.status.startswith(expected):
            raise ValueError(f"{self.action.value} needs a 2.x.x status, not {self.status}")
        if self.action is Action.DEFERRED and not self.status.startswith("4"):
            raise ValueError(f"deferred needs a 4.x.x status, not {self.status}")
        if self.action is Action.BOUNCED and not self.status.startswith("5"):
            raise ValueError(f"bounced needs a 5.x.x status, not {self.status}")
        if self.soft_bounce and (self.action is not Action.DEFERRED or self.probe):
            raise ValueError("only a deferred outcome of a message can be a soft bounce")

    def log_line(
        self, queue_id: str = "", resolution_digits: int = 2, address_format: str = "external"
    ) -> str:
        """The Postfix ``log_adhoc()`` line for this outcome.

        *address_format* is ``info_log_address_format``: ``external``
        (Postfix's default) quotes the addresses as RFC 822 requires,
        ``internal`` prints them unquoted.
        """
        if address_format == "external":
            form = external_address
        elif address_format == "internal":
            form = _same
        else:
            raise ValueError(f"address_format must be external or internal, not {address_format!r}")
        recipient = self.recipient
        parts = [f"to=<{form(recipient)}>"]  # global/log_adhoc.c info_log_addr_form_recipient()
        orig = self.original_recipient
        if orig and orig.casefold() != recipient.casefold():
            parts.append(f"orig_to=<{form(orig)}>")
        parts.append(f"relay={self.relay}")
        if self.conn_use > 1:
            parts.append(f"conn_use={self.conn_use}")
        if self.times is not None:
            delays = self.times.delays
            parts.append(f"delay={format_delay(self.times.total, 2, resolution_digits)}")
            parts.append(
                "delays=" + "/".join(format_delay(d, 2, resolution_digits) for d in delays)
            )
        if self.tls is not None:  # global/log_adhoc.c: pol_stats_format()
            parts.append(f"tls={self.tls}")
        parts.append(f"dsn={self.status}")
        if self.probe:  # Postfix sent.c / verify.c verify_append(): the probe's action
            word = "deliverable" if self.status[0] == "2" else "undeliverable"
        else:
            word = "SOFTBOUNCE" if self.soft_bounce else self.action.log_status
        parts.append(f"status={word} ({self.reason})")
        line = ", ".join(parts)
        return f"{queue_id}: {line}" if queue_id else line


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """The result of one delivery: exactly one outcome per recipient, in order."""

    outcomes: tuple[RecipientOutcome, ...]
    queue_id: str = ""
    #: Postfix-format log lines of informational events (hosts skipped, TLS
    #: fallbacks), in order; the per-recipient lines come from ``outcomes``.
    events: tuple[str, ...] = field(default=())
    #: ``delay_logging_resolution_limit`` and ``info_log_address_format``
    #: of the delivery: :meth:`log_lines` gives the lines as they were logged.
    resolution_digits: int = 2
    address_format: str = "external"
    #: TLSRPT (RFC 8460) results, one per new TLS attempt that Postfix would
    #: report (``smtp_tlsrpt_enable``, SMTP only, the nexthop domain
    #: publishes a TLSRPT policy); :meth:`TlsrptResult.datagram` gives what
    #: ``tlsrpt-collectd`` expects. Empty without TLSRPT.
    tlsrpt: tuple[TlsrptResult, ...] = field(default=())

    def __iter__(self) -> Iterator[RecipientOutcome]:
        return iter(self.outcomes)

    def __len__(self) -> int:
        return len(self.outcomes)

    @property
    def recipients(self) -> tuple[RecipientOutcome, ...]:
        """Alias of :attr:`outcomes` (one per recipient, in the given order)."""
        return self.outcomes

    def with_action(self, action: Action) -> tuple[RecipientOutcome, ...]:
        """The outcomes with the given action."""
        return tuple(o for o in self.outcomes if o.action is action)

    @property
    def all_done(self) -> bool:
        """True when no recipient was deferred."""
        return all(o.action.done for o in self.outcomes)

    def log_lines(self) -> list[str]:
        """Every per-recipient Postfix log line, in recipient order."""
        digits, form = self.resolution_digits, self.address_format
        return [o.log_line(self.queue_id, digits, form) for o in self.outcomes]
