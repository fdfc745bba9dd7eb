"""Per-delivery context shared by the core, the handshake and the transfer.

Holds the request, its derived options, the recipient bookkeeping and the
request-wide facts Postfix keeps in ``SMTP_STATE`` (REQUIRETLS level, the
connection-cache flags, the addresses already reused from the cache), plus
the failure helpers that map Postfix's ``smtp_site_fail()``,
``smtp_misc_fail()``, ``smtp_sess_fail()`` and ``smtp_stream_except()``
onto :class:`~pyfix_smtp.delivery.state.Recipients`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyfix_smtp.delivery.cache_keys import KeyContext
from pyfix_smtp.delivery.options import DeliveryOptions
from pyfix_smtp.delivery.request import DeliveryRequest
from pyfix_smtp.delivery.session import Session
from pyfix_smtp.delivery.state import Recipients
from pyfix_smtp.delivery.trouble import Judgement
from pyfix_smtp.protocol.envelope import Envelope
from pyfix_smtp.protocol.events import Closed, Stage
from pyfix_smtp.protocol.failures import lost_failure
from pyfix_smtp.status import Failure, Reply
from pyfix_smtp.tls.levels import TlsLevel
from pyfix_smtp.tls.requiretls import RequireTlsAction

__all__ = ["Context"]


@dataclass(slots=True)
class Context:
    """What one delivery knows beyond a single session (Postfix ``SMTP_STATE``).

    Attributes:
        request: the delivery request.
        options: its Config's derived options.
        rcpts: recipient bookkeeping.
        sender: the envelope sender, internal form (SASL and cache keys).
        requiretls: the REQUIRETLS action for the current nexthop, None when
            the sender did not request REQUIRETLS or ``requiretls_enable = no``.
        nexthop_label: cache the first good session under the nexthop label
            (Postfix HAVE_SCACHE_REQUEST_NEXTHOP).
        conn_load, conn_store: look up / store cached connections (Postfix
            SMTP_MISC_FLAG_CONN_LOAD / _STORE).
        cache_used: addresses of connections reused in this delivery.
        keys: the request-wide parts of cache labels.
        wire_envelope: the envelope the transactions send when
            ``smtp_generic_maps`` rewrote it (same recipients, same order);
            None: the request's own. Reports keep the request's addresses.
    """

    request: DeliveryRequest
    options: DeliveryOptions
    rcpts: Recipients
    sender: str
    keys: KeyContext
    requiretls: RequireTlsAction | None = None
    nexthop_label: bool = False
    conn_load: bool = False
    conn_store: bool = False
    cache_used: set[str] = field(default_factory=set)
    wire_envelope: Envelope | None = None

    @property
    def lmtp(self) -> bool:
        """Speaking LMTP."""
        return self.options.protocol == "lmtp"

    @property
    def requiretls_active(self) -> bool:
        """Postfix ``reqtls_level > SMTP_REQTLS_POLICY_ACT_DISABLE``."""
        return self.requiretls is not None and self.requiretls > RequireTlsAction.DISABLE

    @property
    def requiretls_requires_tls(self) -> bool:
        """Postfix TLS_REQUIRED_BY_REQTLS_POLICY()."""
        return self.requiretls is not None and self.requiretls.requires_tls

    def have_sasl_credentials(self, session: Session) -> bool:
        """Postfix HAVE_SASL_CREDENTIALS for this server."""
        sasl = self.options.sasl
        if not sasl.auth_enable or sasl.password_maps is None:
            return False
        found = sasl.credentials(host=session.hostname, nexthop=session.nexthop, sender=self.sender)
        return found is not None

    def plaintext_fallback_ok(self, session: Session, *, tls_up: bool) -> bool:
        """Postfix PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE / _AFTER_TLS_SESSION_FAILURE.

        Only at level ``may``, without a REQUIRETLS requirement, for a
        message older than ``minimal_backoff_time`` (or an address probe),
        without SASL credentials for the server; after a failure inside the
        TLS session at least one recipient must still be undecided.
        """
        policy = session.policy
        if policy is None or policy.level is not TlsLevel.MAY:
            return False
        if tls_up and not self.rcpts.any_unmarked:
            return False
        if self.requiretls_requires_tls:
            return False
        age = self.rcpts.handoff - self.rcpts.arrival
        if not (self.request.verify_probe or age >= self.options.minimal_backoff_time):
            return False
        return not self.have_sasl_credentials(session)

    def site_fail(
        self,
        session: Session,
        failure: Failure,
        *,
        reply: Reply | None = None,
        soft_non_final: bool = False,
        throttle: bool = True,
    ) -> Judgement:
        """Postfix smtp_site_fail()/smtp_misc_fail(): every unmarked recipient.

        *throttle* (Postfix SMTP_MISC_FAIL_THROTTLE) marks the session as
        not to be cached because the server is in trouble; otherwise it is
        only not cached (SMTP_MISC_FAIL_DONT_CACHE).
        """
        verdict = self.rcpts.fail_all(
            failure,
            relay=session.relay,
            reply=reply,
            soft_non_final=soft_non_final,
            final_server=False if session.retry_plain else None,
            setup_done=session.setup_done,
            conn_use=session.conn_use,
        )
        if throttle:
            session.dont_cache_throttled()
        else:
            session.dont_cache()
        return verdict

    def stream_failure(self, session: Session, closed: Closed) -> Failure:
        """Postfix smtp_stream_except(): lost connection or timeout, 4.4.2.

        When TLS was up and plaintext fallback is allowed, the same address
        is tried again without TLS (RETRY_AS_PLAINTEXT clears the final
        server flag, so the recipients are kept).
        """
        failure = lost_failure(
            closed.stage or Stage.GREETING,
            session.name_address,
            timed_out=closed.timed_out,
            lmtp=self.lmtp,
        )
        if session.conn.tls_active and self.plaintext_fallback_ok(session, tls_up=True):
            session.retry_plain = True
        self.site_fail(session, failure)
        return failure
