"""The session handshake: greeting, EHLO/HELO/LHLO, STARTTLS, AUTH (Postfix smtp_helo()).

:func:`handshake` returns True when the session is ready for mail. On
failure it has already applied Postfix's verdict to the unmarked
recipients (keep for the next server, defer or bounce), sent QUIT when the
session is still usable (smtp_connect.c: "if not forbidden and no stream
error: smtp_quit()") and closed the connection. Handshake failures never
count toward ``smtp_mx_session_limit``.

Order of checks after a successful EHLO, as in smtp_helo():

1. our own ``myhostname`` as the server's EHLO name (SMTP, port 25):
   5.4.6 at a best MX host, else 4.4.6 "mail for X loops back to myself";
   a greeting that names us is only logged (Postfix 3.11);
2. SMTPUTF8 required but not offered: 5.6.7, soft at non-final servers;
3. after STARTTLS, REQUIRETLS requested and ``enforce`` but not offered:
   5.7.30, soft at non-final servers;
4. STARTTLS when offered and the level is ``may`` or higher; a refusal is
   fatal only when TLS is required (the server's status, or REQUIRETLS
   5.7.10); not offered but required: 4.7.4 (REQUIRETLS 5.7.30);
5. SASL authentication when enabled, offered, and credentials exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator

from pyfix_smtp.delivery.context import Context
from pyfix_smtp.delivery.effects import (
    Effect,
    EffectResult,
    GetTime,
    IoFailure,
    StartTls,
    TlsEstablished,
    TlsFailed,
)
from pyfix_smtp.delivery.session import Session
from pyfix_smtp.delivery.state import TlsStats
from pyfix_smtp.delivery.trouble import handshake_failure, loop_failure
from pyfix_smtp.errors import SaslError
from pyfix_smtp.protocol.connection import State
from pyfix_smtp.protocol.events import (
    AuthChallenge,
    AuthResult,
    Closed,
    Extensions,
    Greeting,
    HelloRejected,
    StartTlsReady,
    StartTlsRejected,
)
from pyfix_smtp.protocol.failures import refused_failure
from pyfix_smtp.sasl.failures import non_empty_initial_challenge, protocol_loop
from pyfix_smtp.sasl.selection import ConnectionSecurity
from pyfix_smtp.sasl.session import AuthAttempt, finish_auth, mechanism_failure, start_auth
from pyfix_smtp.status import Failure, Reply
from pyfix_smtp.tls.levels import TlsLevel
from pyfix_smtp.tls.loglevel import (
    TlsLog,
    cache_lines,
    peer_lines,
    session_mask,
    setup_lines,
)
from pyfix_smtp.tls.policy import Reason, TlsPolicy
from pyfix_smtp.tls.requiretls import (
    RequireTlsAction,
    certificate_not_matched,
    missing_requiretls,
    starttls_not_offered,
    starttls_refused,
)
from pyfix_smtp.tls.tlsrpt import PolicyType, ResultType, TlsrptPolicy, failure_for_verify_error
from pyfix_smtp.tls.verify import NOT_VERIFIED, check_peer

__all__ = ["handshake", "initial_level", "log_warnings", "tlsrpt_policy"]

_TLSA_FALLBACK = Reason("DANE", "all TLSA records unusable, fallback to unauthenticated TLS")


def initial_level(policy: TlsPolicy) -> TlsLevel:
    """The level Postfix's policy lookup gives, before tls_client_start() may lower it.

    When every TLSA record turns out unusable Postfix starts the handshake
    at ``dane`` (``halfdane`` for an insecure MX RRset) and falls back to
    ``encrypt`` there; the TlsPolicy already says ``encrypt``.
    """
    if policy.level is TlsLevel.ENCRYPT and _TLSA_FALLBACK in policy.reasons:
        mx = policy.target.mx
        return TlsLevel.HALFDANE if mx is not None and not mx.authentic else TlsLevel.DANE
    return policy.level


def _decide(ctx: Context, feature: int, name: str, *, compliant: bool) -> None:
    """Postfix smtp_tls_stat_decide_*(): record what a TLS feature reached."""
    stats = ctx.rcpts.tls_stats
    if stats is not None:
        stats.decide(feature, name, compliant=compliant)


def _tls_required_failed(ctx: Context, session: Session, level: TlsLevel) -> None:
    """smtp_helo(): STARTTLS refused or not offered although TLS is required."""
    if ctx.rcpts.tls_stats is None:
        return
    if ctx.requiretls_requires_tls:
        _decide(ctx, TlsStats.REQUIRETLS, "nostarttls", compliant=False)
    if level.tls_required:
        name = initial_level(session.policy).text if session.policy is not None else level.text
        _decide(ctx, TlsStats.LEVEL, name, compliant=False)


Steps = Generator[Effect, EffectResult, bool]

_DANE_BASED = (TlsLevel.HALFDANE, TlsLevel.DANE, TlsLevel.DANE_ONLY)  # Postfix TLS_DANE_BASED()


def tlsrpt_policy(policy: TlsPolicy, domain: str) -> TlsrptPolicy:
    """The TLSRPT policy of a connection (Postfix smtp_tlsrpt_set_tls_policy()).

    * DANE levels: the DNS TLSA records (``"usage selector mtype HEX"``,
      upper-case hex as Postfix hex_encode()) for the TLSA base domain, or
      no-policy-found when there are none;
    * an ``smtp_tls_policy_maps`` entry from an MTA-STS plugin
      (``policy_type=sts``): its policy strings, domain and MX patterns;
    * our native MTA-STS (beyond Postfix): the policy file's lines, its
      domain and ``mx`` patterns;
    * otherwise no-policy-found for *domain*, the TLSRPT policy domain.
    """
    if initial_level(policy) in _DANE_BASED:
        records = [a for a in policy.associations if a.source == "dns"]
        records += [d.association for d in policy.discarded if d.association.source == "dns"]
        if records:
            strings = tuple(
                f"{a.usage} {a.selector} {a.mtype} {a.data.hex().upper()}" for a in records
            )
            return TlsrptPolicy(PolicyType.TLSA, policy.dane_base_domain or domain, strings)
        return TlsrptPolicy(PolicyType.NO_POLICY_FOUND, domain)
    entry = policy.entry
    if entry is not None and entry.policy_type is not None:  # smtp_tlsrpt_set_ext_policy()
        if entry.sts:
            return TlsrptPolicy(
                PolicyType.STS,
                entry.policy_domain or domain,
                entry.policy_string,
                entry.mx_host_pattern,
            )
        return TlsrptPolicy(PolicyType.NO_POLICY_FOUND, domain)
    sts = policy.sts
    if sts is not None:
        lines = tuple(line.strip() for line in sts.text.splitlines() if line.strip())
        return TlsrptPolicy(PolicyType.STS, sts.domain, lines, sts.mx)
    return TlsrptPolicy(PolicyType.NO_POLICY_FOUND, domain)


def tlsrpt_failure(ctx: Context, result_type: ResultType, reason: str | None = None) -> None:
    """trw_report_failure(): the first result of a connection counts, with its log line."""
    tlsrpt = ctx.rcpts.tlsrpt
    if tlsrpt is not None:
        result = tlsrpt.failure(result_type, reason)
        if result is not None:
            ctx.rcpts.info(result.log_line(), with_queue_id=False)


def _tlsrpt_success(ctx: Context) -> None:
    """trw_report_success()."""
    tlsrpt = ctx.rcpts.tlsrpt
    if tlsrpt is not None:
        result = tlsrpt.success()
        if result is not None:
            ctx.rcpts.info(result.log_line(), with_queue_id=False)


def log_warnings(ctx: Context, session: Session) -> None:
    """Pass the protocol machine's warnings on to the log."""
    if session.warnings:
        for text in session.warnings:
            ctx.rcpts.warning(f"{session.label}: {text}")
        session.warnings.clear()


def handshake(ctx: Context, session: Session) -> Steps:
    """Postfix smtp_helo() (and smtp_start_tls()) for a new connection."""
    # smtp_helo(): SMTPS, TLS before the greeting
    if ctx.options.client.tls_wrappermode and not (
        yield from _start_tls(ctx, session, wrapper=True)
    ):
        return False
    in_tls = ctx.options.client.tls_wrappermode
    conn = session.conn
    while True:
        event = yield from session.events()
        if session.warnings:
            log_warnings(ctx, session)
        if isinstance(event, Greeting):
            if event.accepted:
                words = event.reply.text.split() if session.loop_detect else ()
                if words and words[0].lower() == ctx.options.myhostname.lower():
                    # smtp_helo(): only a warning in Postfix 3.11; EHLO decides
                    ctx.rcpts.warning(
                        f"host {session.label} greeted me with my own hostname"
                        f" {ctx.options.myhostname}"
                    )
                if event.pix and session.conn.options.pix_workarounds:
                    now = yield GetTime()
                    assert isinstance(now, float | int)
                    ctx.rcpts.info(_pix_line(ctx, session, now))
                continue
            return (yield from _refused(ctx, session, event.reply, greeting=True))
        if isinstance(event, HelloRejected):
            if event.fallback:
                continue  # smtp_helo(): EHLO refused (not 421), try HELO
            return (yield from _refused(ctx, session, event.reply))
        if isinstance(event, Extensions):
            outcome = yield from _after_hello(ctx, session, event, in_tls=in_tls)
            if outcome is None:
                in_tls = True  # STARTTLS done: EHLO again
                continue
            return outcome
        if isinstance(event, Closed):
            return (yield from _closed(ctx, session, event))
        raise AssertionError(f"unexpected event during the handshake: {event!r} ({conn.state})")


def _refused(ctx: Context, session: Session, reply: Reply, *, greeting: bool = False) -> Steps:
    """``host X refused to talk to me: <reply>`` (Postfix smtp_helo() smtp_site_fail())."""
    failure = refused_failure(reply, session.name_address)
    if greeting and reply.code // 100 == 5 and ctx.options.smtp_skip_5xx_greeting:
        failure = failure.softened()  # smtp_helo(): "STR(resp->dsn_buf)[0] = '4'"
    ctx.site_fail(session, failure, reply=reply)
    # The protocol machine sends QUIT itself after a refusal (none after 421).
    yield from _drain(session)
    return False


def _drain(session: Session) -> Generator[Effect, EffectResult, None]:
    """Let the machine finish its own QUIT, then close."""
    conn = session.conn
    while conn.state not in (State.CLOSED, State.ERROR, State.READY):
        yield from session.events()
    if conn.state is State.READY:
        yield from session.send_quit()
    else:
        yield from session.close()


def _closed(ctx: Context, session: Session, event: Closed) -> Steps:
    """The connection ended during the handshake."""
    if not event.lost and event.reply is not None:
        # A 421 the machine closed on (e.g. in reply to STARTTLS).
        failure = refused_failure(event.reply, session.name_address)
        ctx.site_fail(session, failure, reply=event.reply)
    else:
        ctx.stream_failure(session, event)
    yield from session.close(abort=True)
    return False


def _fail_and_quit(
    ctx: Context,
    session: Session,
    failure: Failure,
    *,
    reply: Reply | None = None,
    soft_non_final: bool = False,
    throttle: bool = True,
) -> Steps:
    ctx.site_fail(session, failure, reply=reply, soft_non_final=soft_non_final, throttle=throttle)
    yield from session.send_quit()
    return False


def _after_hello(
    ctx: Context, session: Session, ext: Extensions, *, in_tls: bool
) -> Generator[Effect, EffectResult, bool | None]:
    """smtp_helo() after a successful hello; None means "STARTTLS done, EHLO again"."""
    opts = ctx.options
    conn = session.conn
    name = ext.server_name
    if (
        session.loop_detect
        and ext.command == "EHLO"
        and name is not None
        and name.lower() == opts.myhostname.lower()
    ):
        ctx.rcpts.warning(
            f"host {session.label} replied to HELO/EHLO with my own hostname {opts.myhostname}"
        )
        failure = loop_failure(ctx.request.nexthop, best_mx=session.best_mx)
        return (yield from _fail_and_quit(ctx, session, failure))
    if ctx.request.envelope.requires_smtputf8 and not ext.smtputf8:
        # smtp_helo() Fix 20250824: try other servers before giving up
        failure = Failure(
            "5.6.7",
            "message requires SMTPUTF8, but no server was found that supports SMTPUTF8."
            f" The last attempted server was {session.name_address}",
        )
        return (
            yield from _fail_and_quit(ctx, session, failure, soft_non_final=True, throttle=False)
        )
    action = ctx.requiretls
    if in_tls and action is not None and ctx.requiretls_active:
        missing = missing_requiretls(action, ext.requiretls, session.name_address)
        if missing is not None:
            _decide(ctx, TlsStats.REQUIRETLS, "none", compliant=False)
            return (
                yield from _fail_and_quit(
                    ctx, session, missing.failure, soft_non_final=True, throttle=False
                )
            )
        if ext.requiretls:
            name = "requiretls" if session.cert_matched else "nocertmatch"
            _decide(ctx, TlsStats.REQUIRETLS, name, compliant=True)
        else:
            _decide(ctx, TlsStats.REQUIRETLS, "none", compliant=True)
            ctx.rcpts.info(
                "Sender requested REQUIRETLS, but REQUIRETLS support was not offered"
                f" by host {session.name_address}"
            )
    if not in_tls:
        tlsrpt = ctx.rcpts.tlsrpt
        if tlsrpt is not None:  # smtp_helo(): smtp_tlsrpt_set_ehlo_resp() / trw_set_ehlo_resp()
            lines = ext.reply.wire_lines or (str(ext.reply),)
            tlsrpt.set_ehlo(("\r\n" if ext.command == "EHLO" else "\n").join(lines))
        level = session.tls_level
        if ext.starttls and opts.config.smtp_tls_note_starttls_offer and level <= TlsLevel.NONE:
            ctx.rcpts.info(f"Host offered STARTTLS: [{session.hostname}]", with_queue_id=False)
        if ext.starttls and level >= TlsLevel.MAY and session.policy is not None:
            session.write(conn.start_tls())
            event = yield from session.events()
            log_warnings(ctx, session)
            if isinstance(event, StartTlsReady):
                if (yield from _start_tls(ctx, session, wrapper=False)):
                    return None
                return False
            if isinstance(event, Closed):
                if not event.lost and event.reply is not None:
                    tlsrpt_failure(ctx, ResultType.STARTTLS_NOT_SUPPORTED)
                return (yield from _closed(ctx, session, event))
            assert isinstance(event, StartTlsRejected)
            tlsrpt_failure(ctx, ResultType.STARTTLS_NOT_SUPPORTED)  # smtp_start_tls() refused
            required = level.tls_required or ctx.requiretls_requires_tls
            if required:
                _tls_required_failed(ctx, session, level)
                refused = starttls_refused(
                    action, level, session.name_address, str(event.reply), event.reply.status
                )
                assert refused is not None
                if conn.state is not State.READY:
                    ctx.site_fail(
                        session,
                        refused.failure,
                        reply=event.reply,
                        soft_non_final=refused.soft_non_final,
                        throttle=not refused.soft_non_final,
                    )
                    yield from _drain(session)
                    return False
                return (
                    yield from _fail_and_quit(
                        ctx,
                        session,
                        refused.failure,
                        reply=event.reply,
                        soft_non_final=refused.soft_non_final,
                        throttle=not refused.soft_non_final,
                    )
                )
            if conn.state is not State.READY:  # 421 in reply to STARTTLS
                closed = yield from session.events()
                assert isinstance(closed, Closed)
                return (yield from _closed(ctx, session, closed))
            ext = conn.extensions or ext  # STARTTLS forgotten; go on in plaintext
        if (level.tls_required or ctx.requiretls_requires_tls) and not conn.tls_active:
            tlsrpt_failure(ctx, ResultType.STARTTLS_NOT_SUPPORTED)  # smtp_helo(): not offered
            missing_tls = starttls_not_offered(action, level, session.name_address)
            if missing_tls is not None:
                _tls_required_failed(ctx, session, level)
                return (
                    yield from _fail_and_quit(
                        ctx,
                        session,
                        missing_tls.failure,
                        soft_non_final=missing_tls.soft_non_final,
                        throttle=not missing_tls.soft_non_final,
                    )
                )
        # smtp_helo(): "Continue in plain-text mode."
        _decide(ctx, TlsStats.LEVEL, "none", compliant=True)
        if ctx.requiretls_active:
            _decide(ctx, TlsStats.REQUIRETLS, "none", compliant=True)
    if opts.sasl.auth_enable and ext.auth:
        return (yield from _authenticate(ctx, session, ext))
    return True


def pix_delay_due(ctx: Context, now: float) -> bool:
    """Is the message old enough for PIX ``delay_dotcrlf``?

    Postfix smtp_helo(): arrival at least ``smtp_pix_workaround_threshold_time``
    ago, in whole seconds (``incoming_arrival.tv_sec <= now - threshold``).
    """
    threshold = ctx.options.smtp_pix_workaround_threshold_time
    return int(now) - int(ctx.rcpts.arrival) >= threshold


def _pix_line(ctx: Context, session: Session, now: float) -> str:
    """smtp_helo()'s "enabling PIX workarounds" line, in pix_bug_table order."""
    words = session.conn.options.pix_workarounds
    enabled = [w for w in ("disable_esmtp", "delay_dotcrlf") if w in words]
    if "delay_dotcrlf" in enabled and not pix_delay_due(ctx, now):
        enabled.remove("delay_dotcrlf")
    return f"enabling PIX workarounds: {' '.join(enabled)} for {session.label}"


def _start_tls(ctx: Context, session: Session, *, wrapper: bool) -> Steps:
    """Postfix smtp_start_tls(): the handshake and the certificate check."""
    policy = session.policy
    assert policy is not None
    if not policy.connection_reuse:
        session.dont_cache()  # smtp_start_tls(): no TLS session caching without reuse
    yield from session.flush()
    # Postfix tls_client_start(): what smtp_tls_loglevel asks for, plus trust
    # problems at the levels where the certificate must match.
    mask = session_mask(ctx.options.tls.log_mask, policy)
    for line in setup_lines(session.label, policy, mask):
        ctx.rcpts.info(line, with_queue_id=False)
    tlsrpt = ctx.rcpts.tlsrpt
    if tlsrpt is not None and _TLSA_FALLBACK in policy.reasons:
        # tls_client_start(): dane/half-dane with no usable TLSA record
        tlsrpt_failure(ctx, ResultType.TLSA_INVALID, "all-TLSA-records-unusable")
    result = yield StartTls(policy, ctx.options.tls, ctx.options.timeouts["smtp_starttls_timeout"])
    if isinstance(result, TlsEstablished):
        for line in cache_lines(session.label, result.session_reused, mask):
            ctx.rcpts.info(line, with_queue_id=False)  # tls_client_post_connect(): TLS_LOG_CACHE
        now = yield GetTime()
        assert isinstance(now, float | int)
        check = check_peer(
            policy,
            result.chain,
            now=dt.datetime.fromtimestamp(now, dt.UTC),
            pkix_verified=result.pkix_verified,
        )
        for line in peer_lines(session.label, check, result.chain, mask):
            ctx.rcpts.info(line, with_queue_id=False)
        if mask & TlsLog.SUMMARY:  # tls_client_post_connect(): tls_log_summary()
            bits = f" ({result.bits}/{result.bits} bits)" if result.bits else ""
            ctx.rcpts.info(
                f"{check.status.value} TLS connection established to {session.label}:"
                f" {result.version} with cipher {result.cipher}{bits}",
                with_queue_id=False,
            )
        session.cert_matched = check.matched
        if tlsrpt is not None:
            _tlsrpt_established(ctx, policy, check.matched, check.trusted, check.detail, result)
        if policy.level.must_match and not check.matched:
            ctx.rcpts.info(f"certificate check for {session.label}: {check.detail}")
            _certificate_failure(ctx, session, trusted=check.trusted)
            # Postfix sends QUIT over the TLS session it will not use
            # (smtp_connect.c: smtp_helo() failed, smtp_quit()), then closes
            # the TLS session normally (smtp_session_free(): tls_client_stop()).
            if wrapper:
                # SMTPS: no greeting was read yet; the machine waits for it.
                session.write(b"QUIT\r\n")
                yield from session.flush()
                session.forbidden = True
                yield from session.close(abort=True)
            else:
                yield from session.send_quit()
                session.forbidden = True  # never used again
            return False
        # smtp_start_tls(): "Report relaxed enforcement if the initial TLS level was degraded."
        _decide(ctx, TlsStats.LEVEL, policy.level.text, compliant=True)
        if not wrapper:
            session.write(session.conn.tls_established())
        return True
    # tls_client_start() failed: the connection is in an unknown state.
    session.forbidden = True  # Postfix DONT_USE_FORBIDDEN_SESSION
    if isinstance(result, TlsFailed):
        ctx.rcpts.info(f"TLS handshake with {session.label} failed: {result.detail}")
        if result.failure.reason == NOT_VERIFIED.reason:
            # OpenSSL refused the chain during the handshake (verify/secure)
            if tlsrpt is not None:
                why = result.detail.removeprefix("certificate verification failed: ")
                engine = failure_for_verify_error(why)
                if engine is not None:  # tls_log_verify_error()
                    tlsrpt_failure(ctx, *engine)
                tlsrpt_failure(ctx, ResultType.CERTIFICATE_NOT_TRUSTED)  # smtp_start_tls()
            _certificate_failure(ctx, session, trusted=False)
            yield from session.close(abort=True)
            return False
    elif isinstance(result, IoFailure):
        ctx.rcpts.info(f"TLS handshake with {session.label} failed: {result.reason}")
    else:
        raise TypeError(f"StartTls needs TlsEstablished, TlsFailed or IoFailure, got {result!r}")
    # tls_client_start(): "SSL_connect error"
    tlsrpt_failure(ctx, ResultType.VALIDATION_FAILURE, "tls-handshake-failure")
    if ctx.plaintext_fallback_ok(session, tls_up=False):
        session.retry_plain = True  # RETRY_AS_PLAINTEXT
    ctx.site_fail(session, handshake_failure(), throttle=policy.level is not TlsLevel.MAY)
    yield from session.close(abort=True)
    return False


def _tlsrpt_established(
    ctx: Context,
    policy: TlsPolicy,
    matched: bool,
    trusted: bool,
    detail: str,
    result: TlsEstablished,
) -> None:
    """TLSRPT after a finished handshake (tls_client.c, then smtp_start_tls()).

    At a level where the certificate must match but did not, the TLS engine
    reports the verification error first (tls_log_verify_error(), new TLS
    sessions only; an ``smtp_tls_policy_maps`` ``policy_failure`` wins),
    else the SMTP engine reports certificate-host-mismatch (trusted) or
    certificate-not-trusted. Otherwise the attempt is a success. Nothing
    more is reported when a failure was (all TLSA records unusable), nor
    for a resumed TLS session with ``smtp_tlsrpt_skip_reused_handshakes``.
    """
    tlsrpt = ctx.rcpts.tlsrpt
    assert tlsrpt is not None
    reused = result.session_reused  # TLScontext->session_reused
    if policy.level.must_match and not matched:
        if not reused:
            entry = policy.entry
            forced = entry.policy_failure if entry is not None else None
            if forced:
                tlsrpt_failure(ctx, ResultType(forced.lower()))
            else:
                engine = failure_for_verify_error(detail)
                if engine is not None:
                    tlsrpt_failure(ctx, *engine)
        if not (reused and tlsrpt.skip_reused):  # TLScontext->rpt_reported
            kind = (
                ResultType.CERTIFICATE_HOST_MISMATCH
                if trusted
                else ResultType.CERTIFICATE_NOT_TRUSTED
            )
            tlsrpt_failure(ctx, kind)
        return
    if not (reused and tlsrpt.skip_reused):
        _tlsrpt_success(ctx)


def _certificate_failure(ctx: Context, session: Session, *, trusted: bool) -> None:
    """Postfix smtp_start_tls(): a must-match level without a matching certificate."""
    if session.policy is not None:
        _decide(ctx, TlsStats.LEVEL, session.policy.level.text, compliant=False)
    if ctx.requiretls_active:
        enforce = ctx.requiretls is RequireTlsAction.ENFORCE
        _decide(ctx, TlsStats.REQUIRETLS, "nocertmatch", compliant=not enforce)
    failed = certificate_not_matched(ctx.requiretls, trusted, session.name_address)
    if ctx.requiretls is RequireTlsAction.ENFORCE:
        ctx.site_fail(session, failed.failure, soft_non_final=True, throttle=False)
    else:
        ctx.site_fail(session, failed.failure)


def _authenticate(ctx: Context, session: Session, ext: Extensions) -> Steps:
    """Postfix smtp_sasl_helo_login() and smtp_sasl_authenticate()."""
    sasl = ctx.options.sasl
    conn = session.conn
    if not conn.tls_active:
        security = ConnectionSecurity.PLAINTEXT
    elif session.cert_matched:
        security = ConnectionSecurity.TLS_VERIFIED
    else:
        security = ConnectionSecurity.TLS
    cache = ctx.request.sasl_cache
    now = 0.0
    if cache is not None:
        clock = yield GetTime()
        assert isinstance(clock, float | int)
        now = float(clock)
    started = start_auth(
        sasl,
        offered=ext.auth_mechanisms,
        host=session.hostname,
        nexthop=session.nexthop,
        server=session.name_address,
        security=security,
        now=now,
        sender=ctx.sender,
        cache=cache,
    )
    if started is None:
        return True  # no credentials: "talk to each other like strangers"
    if isinstance(started, Failure):
        return (yield from _fail_and_quit(ctx, session, started))
    attempt: AuthAttempt = started
    session.write(conn.start_auth(attempt.mechanism.name, attempt.initial_response))
    failure: Failure | None = None
    while True:
        event = yield from session.events()
        log_warnings(ctx, session)
        if isinstance(event, AuthChallenge):
            try:
                if event.challenge is None:
                    raise SaslError("malformed SASL challenge from server")
                response = attempt.mechanism.step(event.challenge)
            except SaslError as exc:
                # smtp_sasl_authenticate(): give up; the QUIT that follows
                # abandons the exchange (no "*").
                failure = mechanism_failure(session.name_address, exc)
                break
            session.write(conn.send_auth_response(response))
            continue
        if isinstance(event, AuthResult):
            if failure is None:
                if event.error is not None:
                    if "loop" in event.error:
                        failure = protocol_loop(session.name_address)
                    else:
                        failure = non_empty_initial_challenge(
                            attempt.mechanism.name, session.name_address, str(event.reply)
                        )
                else:
                    failure = finish_auth(sasl, attempt, event.reply, now=now, cache=cache)
            break
        if isinstance(event, Closed):
            return (yield from _closed(ctx, session, event))
        raise AssertionError(f"unexpected event during AUTH: {event!r}")
    if failure is not None:
        return (yield from _fail_and_quit(ctx, session, failure))
    return True
