"""The recipients of one delivery and what has been decided for them.

Postfix keeps one recipient list per delivery request and marks each
recipient during a session: *keep* (try the next server) or *drop*
(reported: sent, deferred or bounced). After the session the dropped ones
leave the list and the kept ones are unmarked for the next server
(smtp_rcpt.c ``smtp_rcpt_cleanup()``). :class:`Recipients` does the same
and turns every *drop* into exactly one
:class:`~pyfix_smtp.delivery.report.RecipientOutcome`.

Reports are collected as they happen and stamped with the time once per
session (:meth:`Recipients.flush`), which saves clock reads on the hot
path; Postfix's ``delays=`` fields come out the same to the resolution it
logs.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pyfix_smtp.delivery.report import Action, MessageTimes, RecipientOutcome, internal_address
from pyfix_smtp.delivery.trouble import Judgement, Verdict, judge
from pyfix_smtp.errors import LookupTableError
from pyfix_smtp.maps import TableList
from pyfix_smtp.protocol.envelope import Envelope
from pyfix_smtp.status import Failure, Reply
from pyfix_smtp.tls.tlsrpt import ResultType, TlsrptFailure, TlsrptPolicy, TlsrptResult

__all__ = ["LOGGER", "Recipients", "TlsStats", "TlsrptState"]

#: Postfix-format log lines go here (``pyfix_smtp.delivery``).
LOGGER = logging.getLogger("pyfix_smtp.delivery")

_KEEP = 1
_DROP = 2

# Postfix dsn_util.c dsn_valid(): "c.ddd.ddd" then whitespace or the end.
_DSN_PREFIX = re.compile(r"([245])\.[0-9]{1,3}\.[0-9]{1,3}(?=[ \t\n\v\f\r]|\Z)")
_SPACE = " \t\n\v\f\r"


@dataclass(slots=True)
class _Pending:
    """A decided recipient whose outcome waits for its time stamp."""

    index: int
    action: Action
    status: str
    reason: str
    relay: str
    reply: Reply | None
    setup_done: float | None
    conn_use: int
    soft_bounce: bool
    tls: str | None = None


_UNDECIDED, _COMPLIANT, _VIOLATION = range(3)

#: A feature's state: (initial name, final name or None, status); None: inactive.
_Feature = tuple[str, str | None, int] | None
_REQUIRETLS: _Feature = ("requiretls", None, _UNDECIDED)
#: pol_stats_format() results by state (few distinct states occur).
_FORMATTED: dict[tuple[_Feature, _Feature], str | None] = {}


def _format(features: tuple[_Feature, _Feature]) -> str | None:
    fields = []
    for feature in features:
        if feature is None:
            continue
        name, final, status = feature
        text = "!" + name if status == _VIOLATION else name
        if final is not None and final != name:
            text += ":" + final
        if status == _UNDECIDED:
            text += "?"
        fields.append(text)
    return "/".join(fields) if fields else None


class TlsStats:
    """Postfix POL_STATS (global/pol_stats.c) as smtp(8) keeps it: the ``tls=`` log field.

    Two features: the TLS security level (index :attr:`LEVEL`) and, when
    the sender requested REQUIRETLS, REQUIRETLS (:attr:`REQUIRETLS`). Each
    is activated with the desired state's name and later decided with the
    state reached, compliant or not. :attr:`text` renders them as
    ``pol_stats_format()`` does: ``name``, ``name:final`` when the final
    name differs, ``!`` in front of a violation, ``?`` after an undecided
    feature, joined with ``/``; None when nothing is active.
    """

    LEVEL = 0  # SMTP_TLS_STAT_IDX_SEC_LEVEL
    REQUIRETLS = 1  # SMTP_TLS_STAT_IDX_REQTLS

    __slots__ = ("_features", "_text")

    def __init__(self) -> None:
        self._features: list[_Feature] = [None, None]
        self._text: str | None = None

    def revert(self) -> None:
        """pol_stats_revert(): every feature inactive again."""
        self._features = [None, None]
        self._text = None

    def start(self, level: str, *, requiretls: bool) -> None:
        """revert(), then activate the level (and REQUIRETLS when requested)."""
        self._features = [(level, None, _UNDECIDED), _REQUIRETLS if requiretls else None]
        self._text = None

    def activate(self, index: int, name: str) -> None:
        """pol_stat_activate(): the feature is wanted, as *name*."""
        self._features[index] = (name, None, _UNDECIDED)
        self._text = None

    def decide(self, index: int, name: str, *, compliant: bool) -> None:
        """pol_stat_decide(): what was reached, and whether it satisfies the policy."""
        feature = self._features[index]
        initial = feature[0] if feature is not None else name
        self._features[index] = (initial, name, _COMPLIANT if compliant else _VIOLATION)
        self._text = None

    @property
    def text(self) -> str | None:
        """pol_stats_format(), or None when no feature is active (no ``tls=`` field)."""
        text = self._text
        if text is None:
            key = (self._features[0], self._features[1])
            if key in _FORMATTED:
                text = _FORMATTED[key]
            else:
                text = _format(key)
                if len(_FORMATTED) < 4096:
                    _FORMATTED[key] = text
            self._text = text
        return text


class TlsrptState:
    """Postfix's TLSRPT_WRAPPER for one nexthop domain (tlsrpt_wrapper.c ``trw_*``).

    One result at most per connection: :meth:`set_policy` (a new
    connection) clears what was reported; the first :meth:`failure` or
    :meth:`success` after it counts, later ones are ignored ("Report a
    failure only when it is seen first"). Results go to *results*.
    """

    __slots__ = (
        "_ehlo",
        "_policy",
        "_rcv_addr",
        "_rcv_name",
        "_snd_addr",
        "domain",
        "record",
        "reported",
        "results",
        "skip_reused",
    )

    def __init__(
        self, domain: str, record: str, *, skip_reused: bool, results: list[TlsrptResult]
    ) -> None:
        self.domain = domain
        self.record = record
        #: smtp_tlsrpt_skip_reused_handshakes
        self.skip_reused = skip_reused
        self.results = results
        self.reported = False
        self._policy: TlsrptPolicy | None = None
        self._snd_addr: str | None = None
        self._rcv_name: str | None = None
        self._rcv_addr: str | None = None
        self._ehlo: str | None = None

    def set_policy(self, policy: TlsrptPolicy) -> None:
        """trw_set_tls_policy(): a new connection; clears the connection facts."""
        self._policy = policy
        self.reported = False
        self._snd_addr = self._rcv_name = self._rcv_addr = self._ehlo = None

    def set_connection(self, sending_ip: str | None, mx_name: str, mx_address: str) -> None:
        """trw_set_tcp_connection(): our address and the server's name and address."""
        self._snd_addr = sending_ip or None
        self._rcv_name = mx_name
        self._rcv_addr = mx_address

    def set_ehlo(self, text: str) -> None:
        """trw_set_ehlo_resp(): the server's (plaintext) EHLO reply."""
        if self._policy is not None and not self.reported:
            self._ehlo = text

    def failure(self, result_type: ResultType, reason: str | None = None) -> TlsrptResult | None:
        """trw_report_failure(): the result, or None when one was already reported."""
        if self._policy is None or self.reported:
            return None
        detail = TlsrptFailure(
            result_type,
            sending_mta_ip=self._snd_addr,
            receiving_mx_hostname=self._rcv_name,
            receiving_mx_helo=self._ehlo,
            receiving_ip=self._rcv_addr,
            failure_reason_code=reason,
        )
        return self._report(detail)

    def success(self) -> TlsrptResult | None:
        """trw_report_success(): the result, or None when one was already reported."""
        if self._policy is None or self.reported:
            return None
        return self._report(None)

    def _report(self, detail: TlsrptFailure | None) -> TlsrptResult:
        assert self._policy is not None
        self.reported = True
        result = TlsrptResult(
            self.domain, self.record, self._policy, self._rcv_name, self._rcv_addr, detail
        )
        self.results.append(result)
        return result


class Recipients:
    """Recipient bookkeeping for one delivery (Postfix SMTP_RCPT_* macros).

    Attributes:
        left: indexes of recipients still to deliver, in envelope order
            (Postfix ``rcpt_list`` up to ``SMTP_RCPT_LEFT``).
        final_server: the current server is the last one that will be tried
            (Postfix SMTP_MISC_FLAG_FINAL_SERVER).
        events: informational log lines (hosts skipped ...), in order.
    """

    __slots__ = (
        "_decided",
        "_marks",
        "_outcomes",
        "_pending",
        "address_format",
        "arrival",
        "dsn_filter",
        "dsn_filter_name",
        "envelope",
        "events",
        "final_server",
        "handoff",
        "left",
        "log_tls",
        "probe",
        "queue_id",
        "resolution",
        "soft_bounce",
        "tls_stats",
        "tlsrpt",
        "tlsrpt_results",
        "why",
    )

    def __init__(
        self,
        envelope: Envelope,
        *,
        arrival: float,
        handoff: float,
        queue_id: str = "",
        soft_bounce: bool = False,
        resolution: int = 2,
        probe: bool = False,
        address_format: str = "external",
        dsn_filter: TableList | None = None,
        dsn_filter_name: str = "smtp_delivery_status_filter",
        log_tls: bool = False,
    ) -> None:
        self.envelope = envelope
        count = len(envelope.recipients)
        self.left: list[int] = list(range(count))
        self._marks: dict[int, int] = {}
        self._outcomes: list[RecipientOutcome | None] = [None] * count
        self._decided = 0  # outcomes set
        self._pending: list[_Pending] = []
        self.final_server = False
        self.events: list[str] = []
        self.arrival = arrival
        self.handoff = handoff
        self.queue_id = queue_id
        self.soft_bounce = soft_bounce
        self.resolution = resolution
        #: An address-verification probe (Postfix DEL_REQ_FLAG_MTA_VRFY).
        self.probe = probe
        #: ``info_log_address_format`` for the log lines.
        self.address_format = address_format
        #: ``smtp_delivery_status_filter`` (None: no table) and its name.
        self.dsn_filter = dsn_filter
        self.dsn_filter_name = dsn_filter_name
        #: ``smtp_log_tls_feature_status``: outcomes carry the ``tls=`` field.
        self.log_tls = log_tls
        #: The TLS feature status, from the first server's TLS policy on
        #: (Postfix ``state->tls_stats``); None until then.
        self.tls_stats: TlsStats | None = None
        #: TLSRPT for the current nexthop domain (Postfix ``state->tlsrpt``):
        #: None unless smtp_tlsrpt_enable and the domain publishes a policy.
        self.tlsrpt: TlsrptState | None = None
        #: Every TLSRPT result of this delivery, in order (None: TLSRPT never
        #: applied, which keeps the common path free of it).
        self.tlsrpt_results: list[TlsrptResult] | None = None
        #: The last failure recorded (Postfix ``state->why``), for the
        #: recipients left over after the last server.
        self.why: Failure | None = None

    # -- counts ---------------------------------------------------------------

    @property
    def unmarked(self) -> list[int]:
        """Recipients of this session without a verdict yet."""
        marks = self._marks
        return [i for i in self.left if i not in marks]

    @property
    def any_unmarked(self) -> bool:
        """Postfix ``SMTP_RCPT_LEFT(state) > SMTP_RCPT_MARK_COUNT(state)``."""
        return len(self._marks) < len(self.left)

    @property
    def pending(self) -> bool:
        """Outcomes are waiting for their time stamp (:meth:`flush`)."""
        return bool(self._pending)

    def is_marked(self, index: int) -> bool:
        """True once *index* was kept or dropped in this session."""
        return index in self._marks

    # -- logging --------------------------------------------------------------

    def info(self, text: str, *, with_queue_id: bool = True) -> None:
        """An informational line (Postfix ``msg_info``): logged and kept in :attr:`events`."""
        line = f"{self.queue_id}: {text}" if with_queue_id and self.queue_id else text
        self.events.append(line)
        LOGGER.info("%s", line)

    def warning(self, text: str) -> None:
        """A warning line (Postfix ``msg_warn``): logged and kept in :attr:`events`."""
        self.events.append(f"warning: {text}")
        LOGGER.warning("%s", text)

    # -- verdicts ---------------------------------------------------------------

    def keep(self, index: int) -> None:
        """Postfix SMTP_RCPT_KEEP: try this recipient at the next server."""
        self._marks[index] = _KEEP

    def _drop(self, pending: _Pending) -> None:
        # Postfix SMTP_RCPT_DROP: reported now, removed after the session.
        self._marks[pending.index] = _DROP
        if self.tls_stats is not None:  # log_adhoc() prints the status of this moment
            pending.tls = self.tls_stats.text
        self._pending.append(pending)

    def done(
        self,
        index: int,
        reply: Reply,
        *,
        relay: str,
        delivered: bool = False,
        setup_done: float | None = None,
        conn_use: int = 1,
    ) -> None:
        """Postfix smtp_rcpt_done(): the server took the recipient."""
        if index in self._marks:
            raise AssertionError(f"recipient {index} already has a verdict")
        status = reply.status if reply.status[0] == "2" else "2.0.0"
        reason = str(reply)
        if self.dsn_filter is not None:  # global/sent.c sent(): the filter first
            filtered = self._filter(status, reason)
            if filtered is not None:
                status, reason = filtered
        self._drop(
            _Pending(
                index,
                Action.DELIVERED if delivered else Action.RELAYED,
                status,
                reason,
                relay,
                reply,
                setup_done,
                conn_use,
                False,
            )
        )

    def _judge(
        self, failure: Failure, final_server: bool | None, soft_non_final: bool
    ) -> Judgement:
        verdict = judge(
            failure,
            final_server=self.final_server if final_server is None else final_server,
            soft_bounce=self.soft_bounce,
            soft_non_final=soft_non_final,
        )
        if verdict.soft_bounce and self.probe:
            # global/bounce.c bounce_append_intern(): a probe's result goes to
            # the verify service before soft_bounce is looked at.
            return Judgement(Verdict.BOUNCE, failure)
        return verdict

    def fail(
        self,
        index: int,
        failure: Failure,
        *,
        relay: str,
        reply: Reply | None = None,
        soft_non_final: bool = False,
        final_server: bool | None = None,
        setup_done: float | None = None,
        conn_use: int = 1,
        log_keep: bool = True,
    ) -> Judgement:
        """Postfix smtp_rcpt_fail(): keep, defer or bounce one recipient."""
        if index in self._marks:
            raise AssertionError(f"recipient {index} already has a verdict")
        self.why = failure
        verdict = self._judge(failure, final_server, soft_non_final)
        if verdict.verdict is Verdict.KEEP:
            if log_keep:  # smtp_rcpt_fail(): msg_info("%s: %s", queue_id, reason)
                self.info(failure.reason)
            self.keep(index)
            return verdict
        if self.dsn_filter is None:
            action = Action.BOUNCED if verdict.verdict is Verdict.BOUNCE else Action.DEFERRED
            status, reason, softened = (
                verdict.failure.status,
                verdict.failure.reason,
                verdict.soft_bounce,
            )
        else:
            action, status, reason, softened = self._recorded(verdict, failure)
        self._drop(
            _Pending(
                index,
                action,
                status,
                reason,
                relay,
                reply,
                setup_done,
                conn_use,
                softened,
            )
        )
        return verdict

    def _recorded(self, verdict: Judgement, failure: Failure) -> tuple[Action, str, str, bool]:
        """global/bounce.c and defer.c: the delivery status filter, then soft_bounce.

        bounce_append() and defer_append() look the status and text up
        first; the result may turn a bounce into a deferral or back, and
        soft_bounce applies to what bounces after that (not to probes).
        """
        bounce = verdict.verdict is Verdict.BOUNCE or verdict.soft_bounce
        status, reason = failure.status, failure.reason
        filtered = self._filter(status, reason)
        if filtered is not None:
            status, reason = filtered
            bounce = status[0] == "5"
        if not bounce:
            return Action.DEFERRED, status, reason, False
        if self.soft_bounce and not self.probe:
            return Action.DEFERRED, "4" + status[1:], reason, True
        return Action.BOUNCED, status, reason, False

    def _filter(self, status: str, reason: str) -> tuple[str, str] | None:
        """Postfix dsn_filter.c dsn_filter_lookup(): ``"x.y.z text"`` in the table.

        The result must be a status of the same kind (success for success,
        4.x.x or 5.x.x for a failure) optionally followed by new text;
        anything else is a warning and changes nothing.
        """
        table = self.dsn_filter
        if table is None:
            return None
        try:
            result = table.lookup(f"{status} {reason}")
        except LookupTableError as exc:  # maps_find(): a lookup error finds nothing
            self.warning(f"{self.dsn_filter_name} lookup error: {exc.reason}")
            return None
        if result is None:
            return None
        found = _DSN_PREFIX.match(result)
        if found is None or (found[1] == "2") != (status[0] == "2"):
            self.warning(f"{self.dsn_filter_name}: bad status code: {result}")
            return None
        return found[0], result[found.end() :].lstrip(_SPACE)  # dsn_split()

    def fail_all(
        self,
        failure: Failure,
        *,
        relay: str,
        reply: Reply | None = None,
        soft_non_final: bool = False,
        final_server: bool | None = None,
        setup_done: float | None = None,
        conn_use: int = 1,
    ) -> Judgement:
        """Postfix smtp_bulk_fail(): the same verdict for every unmarked recipient.

        A *keep* verdict is logged once as an info line, as Postfix does.
        """
        self.why = failure
        verdict = self._judge(failure, final_server, soft_non_final)
        if verdict.verdict is Verdict.KEEP:
            self.info(failure.reason)  # smtp_bulk_fail(): msg_info("%s: %s", queue_id, reason)
        for index in self.unmarked:
            self.fail(
                index,
                failure,
                relay=relay,
                reply=reply,
                soft_non_final=soft_non_final,
                final_server=final_server,
                setup_done=setup_done,
                conn_use=conn_use,
                log_keep=False,
            )
        return verdict

    # -- the end of a session ---------------------------------------------------

    def flush(self, now: float) -> None:
        """Stamp the reports collected so far with *now* and log them."""
        if not self._pending:
            return
        resolution = self.resolution
        address_format = self.address_format
        log = LOGGER.isEnabledFor(logging.INFO)
        recipients = self.envelope.recipients
        for p in self._pending:
            recipient = recipients[p.index]
            # ORCPT holds the external form; outcomes keep addresses internal.
            orcpt = internal_address(recipient.orcpt.address) if recipient.orcpt else None
            setup = p.setup_done if p.setup_done is not None else now
            outcome = RecipientOutcome(  # positional: the fields in order
                recipient.address.unquoted,
                p.action,
                p.status,
                p.reason,
                p.relay,
                p.reply,
                orcpt,
                MessageTimes(self.arrival, self.handoff, setup, now if now > setup else setup),
                p.conn_use,
                p.soft_bounce,
                self.probe,
                p.tls,
            )
            if self._outcomes[p.index] is None:
                self._decided += 1
            self._outcomes[p.index] = outcome
            if log:
                LOGGER.info("%s", outcome.log_line(self.queue_id, resolution, address_format))
        self._pending.clear()

    def cleanup(self) -> None:
        """Postfix smtp_rcpt_cleanup(): drop decided recipients, unmark kept ones."""
        if self._marks:
            marks = self._marks
            self.left = [i for i in self.left if marks.get(i) != _DROP]
            marks.clear()

    def outcomes(self) -> tuple[RecipientOutcome, ...]:
        """Every recipient's one outcome, in envelope order.

        Raises:
            AssertionError: a recipient has no outcome (a bug: Postfix
                panics with "left-over recipients" in that case).
        """
        outcomes = self._outcomes
        if self._decided != len(outcomes) or self._pending:
            missing = [i for i, o in enumerate(outcomes) if o is None]
            raise AssertionError(f"recipients without an outcome: {missing}")
        return tuple(outcomes)  # type: ignore[arg-type]  # every one is set
