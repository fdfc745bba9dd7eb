"""One mail transaction on a ready session (Postfix smtp_xfer() and smtp_loop()).

A session taken from the connection cache may still owe its RSET probe
(:attr:`~pyfix_smtp.delivery.session.Session.probe_pending`): the probe
then leads the pipelined MAIL/RCPT/DATA group and
:class:`~pyfix_smtp.delivery.session.ProbeFailed` escapes from here when it
fails, before any recipient was judged and before any message data went out.

The protocol machine does the pipelining and produces one outcome per
recipient of the transaction; :func:`transfer` streams the content when the
server is ready for it and applies Postfix's verdicts:

* accepted: ``relayed`` (``delivered`` for an LMTP server without DSN when
  ``lmtp_assume_final = yes``, smtp_rcpt.c smtp_rcpt_done());
* a reply that refused MAIL, a RCPT, DATA or the message: the reply's
  status (soft: keep for the next server unless this is the final one);
* SIZE too big (5.3.4) before any command, SMTPUTF8 needed (5.6.7);
* lost connection or timeout: 4.4.2 with the stage named; when TLS was up
  at level ``may`` the same address is retried in plaintext (Postfix
  PLAINTEXT_FALLBACK_OK_AFTER_TLS_SESSION_FAILURE);
* content the MIME converter gives up on: its status, and the connection
  is dropped without ending the data (smtp_mime_fail()).

Behind a Cisco PIX firewall (its ``220 ****`` banner, ``delay_dotcrlf`` in
``smtp_pix_workarounds``) the content of a message at least
``smtp_pix_workaround_threshold_time`` old goes out first, then a
:class:`~pyfix_smtp.delivery.effects.Sleep` of
``smtp_pix_workaround_delay_time``, then the final ``.`` (smtp_loop()).

Address-verification probes stop before the content (the protocol
machine's ``verify``): with ``smtp_address_verify_target = rcpt`` an
accepted RCPT is a success and RSET replaces DATA; with ``data`` the
recipients succeed when DATA is accepted and the connection is dropped.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace

from pyfix_smtp.delivery.context import Context
from pyfix_smtp.delivery.effects import (
    Effect,
    EffectResult,
    GetTime,
    IoFailure,
    IoFailureKind,
    Receive,
    Send,
    Sleep,
)
from pyfix_smtp.delivery.handshake import log_warnings, pix_delay_due
from pyfix_smtp.delivery.session import CONTENT_WRITE_SIZE, Session
from pyfix_smtp.errors import ContentError
from pyfix_smtp.protocol.connection import State
from pyfix_smtp.protocol.content import END_OF_DATA, ContentEncoder, Framing
from pyfix_smtp.protocol.events import (
    NEED_DATA,
    Closed,
    DataReady,
    ProtocolWarning,
    TransactionResult,
    XforwardResult,
)
from pyfix_smtp.protocol.header_checks import MessageChecks
from pyfix_smtp.status import Failure

__all__ = ["END_WRITE_SIZE", "transfer"]

#: Postfix VSTREAM_BUFSIZE: the most message octets that go out with the final
#: "." (and QUIT); anything before them is written first.
END_WRITE_SIZE = 4096

Steps = Generator[Effect, EffectResult, None]

_GET_TIME = GetTime()


def transfer(ctx: Context, session: Session) -> Steps:
    """Deliver the message to the recipients still left, over *session*."""
    rcpts = ctx.rcpts
    conn = session.conn
    indexes = list(rcpts.left)
    # The generic-mapped envelope when smtp_generic_maps changed it (indexes align).
    full = ctx.wire_envelope or ctx.request.envelope
    envelope = (
        full
        if len(indexes) == len(full.recipients)
        else replace(full, recipients=tuple(full.recipients[i] for i in indexes))
    )
    if envelope.requiretls != ctx.requiretls_active:
        # smtp_loop(): REQUIRETLS / RET=HDRS only when reqtls_level > disable
        envelope = replace(envelope, requiretls=ctx.requiretls_active)
    now = yield _GET_TIME
    assert isinstance(now, float | int)
    session.setup_done = float(now)  # smtp_loop() SMTP_STATE_MAIL: conn_setup_done
    if session.expired(now):
        session.dont_cache()  # smtp_loop() SMTP_STATE_DOT: THIS_SESSION_IS_EXPIRED
    keep = session.cacheable
    # smtp_loop(): an address probe stops at smtp_address_verify_target
    verify = ctx.options.smtp_address_verify_target if ctx.request.verify_probe else None
    commands = conn.start_transaction(envelope, keep_session=keep, verify=verify, now=float(now))
    if session.probe_pending:
        if commands:
            # The RSET probe of a reused session leads the pipelined commands.
            session.write(b"RSET\r\n")
        else:
            yield from session.run_probe()  # a local failure: probe first anyway
    session.write(commands)
    result: TransactionResult | None = None
    closed: Closed | None = None
    next_event = conn.next_event
    while True:
        if result is not None and conn.state is State.READY:
            break
        # The machine first: only when it needs input does the session write and read.
        event = next_event()
        if event is NEED_DATA:
            event = yield from session.events(need_data=True)
        elif type(event) is ProtocolWarning:
            session.warnings.append(event.text)
            event = yield from session.events()
        if session.warnings:
            log_warnings(ctx, session)
        if isinstance(event, TransactionResult):
            result = event
        elif isinstance(event, DataReady):
            yield from _send_content(ctx, session, event, now)
        elif isinstance(event, XforwardResult):
            if event.reply.code // 100 != 2:  # smtp_loop(): only a warning
                ctx.rcpts.warning(
                    f"host {session.label} said: {event.reply} (in reply to {event.stage.request})"
                )
        elif isinstance(event, Closed):
            closed = event
            break
    if result is None:  # pragma: no cover - the machine settles everyone before Closed
        raise AssertionError("transaction ended without outcomes")
    _settle(ctx, session, indexes, result, closed)
    if closed is not None:
        yield from session.close(abort=closed.lost)


def _settle(
    ctx: Context,
    session: Session,
    indexes: list[int],
    result: TransactionResult,
    closed: Closed | None,
) -> None:
    """Apply Postfix's verdicts to the transaction's outcomes."""
    rcpts = ctx.rcpts
    lost = closed is not None and closed.lost
    if lost:
        session.dont_cache_throttled()  # smtp_stream_except(): SMTP_MISC_FAIL_THROTTLE
        if any(
            o.failure is not None and o.reply is None and o.failure.status == "4.4.2"
            for o in result.outcomes
        ) and (session.conn.tls_active and ctx.plaintext_fallback_ok(session, tls_up=True)):
            session.retry_plain = True  # RETRY_AS_PLAINTEXT: the final flag is cleared
    final = False if session.retry_plain else None
    delivered = (
        ctx.lmtp
        and ctx.options.lmtp_assume_final
        and not (session.conn.extensions is not None and session.conn.extensions.dsn)
    )
    logged: set[str] = set()
    for outcome in result.outcomes:
        index = indexes[outcome.index]
        if outcome.delivered:
            assert outcome.reply is not None
            rcpts.done(
                index,
                outcome.reply,
                relay=session.relay,
                delivered=delivered,
                setup_done=session.setup_done,
                conn_use=session.conn_use,
            )
            continue
        failure = outcome.failure
        assert failure is not None
        soft_non_final = outcome.reply is None and failure.status == "5.6.7"
        # One info line per failure, as smtp_bulk_fail() logs one per bulk.
        first = failure.reason not in logged
        logged.add(failure.reason)
        rcpts.fail(
            index,
            failure,
            relay=session.relay,
            reply=outcome.reply,
            soft_non_final=soft_non_final,
            final_server=final,
            setup_done=session.setup_done,
            conn_use=session.conn_use,
            log_keep=first,
        )
        if soft_non_final:
            session.dont_cache()  # SMTP_MISC_FAIL_DONT_CACHE


def _send_content(ctx: Context, session: Session, ready: DataReady, now: float) -> Steps:
    """Stream the message after 354 (or as BDAT chunks), ending with "." (and QUIT).

    *now* is the time the transaction started, for the PIX threshold.
    """
    conn = session.conn
    opts = ctx.options
    # A request without an arrival time counts as arriving at the start of the
    # attempt (Recipients.arrival), as for delay=: a new message gets no delay
    # unless the threshold is 0. BDAT has no "." line to delay (Postfix never
    # sends BDAT).
    pix_delay = conn.pix_delay_dotcrlf and ready.framing is Framing.DATA and pix_delay_due(ctx, now)
    encoder_options = opts.encoder
    if ready.downgrade_8bit != encoder_options.downgrade_8bit:
        encoder_options = replace(encoder_options, downgrade_8bit=ready.downgrade_8bit)
    checks = opts.content_checks
    # Postfix smtp_proto.c: smtp_header_rewrite()/smtp_body_rewrite() as MIME output hooks.
    hook = checks.start() if checks is not None else None
    encoder = ContentEncoder(encoder_options, framing=ready.framing, hook=hook)
    pending: list[bytes] = []
    size = 0
    try:
        for chunk in ctx.request.content.open():
            out = encoder.feed(chunk)
            if hook is not None and hook.notes:
                _log_notes(ctx, hook)
            if out:
                pending.append(out)
                size += len(out)
            if size >= CONTENT_WRITE_SIZE:
                data = conn.send_data(b"".join(pending))
                pending.clear()
                size = 0
                if not (yield from _write(session, data)):
                    return
        pending.append(encoder.finish(end_of_data=not pix_delay))
    except ContentError as exc:
        if hook is not None:
            _log_notes(ctx, hook)
        if exc.status == "4.3.0":
            # A header/body checks or generic_maps lookup failed: smtp_proto.c logs
            # "<queue id>: smtp header checks lookup error" and ends with
            # smtp_stream_except(SMTP_ERR_DATA), which throttles the session.
            queue_id = ctx.request.queue_id
            ctx.rcpts.warning(f"{queue_id}: {exc.reason}" if queue_id else exc.reason)
            session.dont_cache_throttled()
            conn.abort_data(
                Failure("4.3.0", f"local data error while talking to {session.name_address}")
            )
            return
        # smtp_mime_fail(): fail the message, drop the connection mid-DATA
        session.dont_cache()
        conn.abort_data(Failure(exc.status, exc.reason))
        return
    except OSError as exc:
        session.dont_cache()
        conn.abort_data(Failure("4.3.0", f"error reading message content: {exc}"))
        return
    if hook is not None and hook.notes:
        _log_notes(ctx, hook)
    data = b"".join(pending)
    if pix_delay:
        yield from _send_delayed_dot(session, data, opts.smtp_pix_workaround_delay_time)
        return
    if len(data) > END_WRITE_SIZE:
        # Postfix writes the body in VSTREAM_BUFSIZE pieces and the last one
        # with "." when it reads the reply: a failure before that is "while
        # sending message body", only one in the last piece "end of data".
        if not (yield from _write(session, conn.send_data(data[:-END_WRITE_SIZE]))):
            return
        data = data[-END_WRITE_SIZE:]
    last = conn.send_data(data, final=True)
    if session.debug and ready.framing is Framing.DATA:
        session.log_end_of_data(last)
    yield from _write(session, last)


def _send_delayed_dot(session: Session, data: bytes, delay: float) -> Steps:
    """The PIX ``delay_dotcrlf`` workaround: all content, a pause, then "." (and QUIT).

    Postfix smtp_loop(): smtp_flush() of everything before ".", then
    sleep(var_smtp_pix_delay), so that the firewall never sees CRLF . CRLF
    span a packet boundary. A failure of the content write is "while sending
    message body"; a failure of the "." write after the pause is one of the
    end of data.
    """
    conn = session.conn
    body = conn.send_data(data)  # not final: the machine stays in the content stage
    if body and not (yield from _write(session, body)):
        return
    yield Sleep(delay)  # smtp_proto.c smtp_loop(): sleep(var_smtp_pix_delay)
    last = conn.send_data(END_OF_DATA, final=True)
    if session.debug:
        session.log_end_of_data(last)
    yield from _write(session, last)


def _log_notes(ctx: Context, hook: MessageChecks) -> None:
    """Log what the checks noted so far, in message order, and forget it.

    Actions are info lines with the queue id (smtp_proto.c smtp_hbc_logger()),
    problems with a table or a mapping are warnings (msg_warn()).
    """
    rcpts = ctx.rcpts
    for note in hook.notes:
        if note.severity == "info":
            rcpts.info(note.message)
        else:
            rcpts.warning(note.message)
    hook.notes.clear()


def _write(session: Session, data: bytes) -> Generator[Effect, EffectResult, bool]:
    """Write content; after a broken write, look for a premature reply (smtp_loop())."""
    opts = session.options
    if opts.per_request_deadline:
        timeout = yield from session.limit()
    else:
        timeout = opts.stage_timeouts[session.conn.stage]
    if timeout is None:
        session.conn.timed_out()
        return False
    result = yield Send(data, timeout)
    if result is None:
        session.extend_deadline(len(data))
        return True
    if not isinstance(result, IoFailure):
        raise TypeError(f"Send needs None or IoFailure, got {result!r}")
    if result.kind is IoFailureKind.TIMEOUT:
        session.conn.timed_out()
        return False
    # LOST_CONNECTION_INSIDE_DATA: a 5xx may be waiting before the end of file.
    session.conn.write_failed()
    more = yield Receive(timeout)
    if type(more) is bytes and more:
        session.conn.receive_data(more)
    session.conn.receive_data(b"")
    return False
