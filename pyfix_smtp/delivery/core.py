"""The delivery algorithm as a generator of effects (Postfix smtp_connect.c).

:func:`deliver_steps` takes a :class:`~pyfix_smtp.delivery.request.DeliveryRequest`
and yields :mod:`~pyfix_smtp.delivery.effects` (resolve, connect, send,
receive, start TLS, cache take/save ...) until it returns the
:class:`~pyfix_smtp.delivery.report.DeliveryReport`. Drivers execute the
effects; tests answer them from scripts. Every recipient ends with exactly
one outcome, in input order.

The walk, as Postfix 3.11's ``smtp_connect_inet()`` / ``smtp_connect_local()``:

1. sites: the nexthop's destinations, then ``smtp_fallback_relay`` (never
   for LMTP ``unix:``); each is planned lazily (MX/SRV/address lookups as
   ``Resolve``/``ResolveMany`` effects) and the walk stops after a *final*
   site (the last one, one where we are an MX host, or a mail loop);
2. per site, with connection caching, first a session cached under the
   nexthop label, then sessions cached under the best MX hosts' endpoints
   (each after an RSET probe);
3. then the addresses in order: ``smtp_mx_address_limit`` counts every
   address taken (failed connects and TLS-policy skips included),
   ``smtp_mx_session_limit`` every session whose handshake succeeded (and
   every reused one); the last address to be tried makes its server the
   *final server*, where soft errors defer instead of moving on;
4. a TLS handshake failure at ``may`` retries the same address in
   plaintext when Postfix's PLAINTEXT_FALLBACK_OK rules allow (not counted);
5. recipients still left after the last site get the last failure seen,
   with Postfix's leftover rules (4.3.0 when there was none; 4.3.5 instead
   of a hard status for a fallback relay or the relayhost).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace

from pyfix_smtp.address import to_ascii_domain
from pyfix_smtp.address_rewrite import GenericMaps
from pyfix_smtp.delivery.cache_keys import KeyContext, dest_label, endpoint_label
from pyfix_smtp.delivery.context import Context
from pyfix_smtp.delivery.effects import (
    CachedSession,
    CacheSave,
    CacheTake,
    Connect,
    Connected,
    Effect,
    EffectResult,
    Endpoint,
    GetTime,
    IoFailure,
    IoFailureKind,
    Resolve,
    ResolveMany,
)
from pyfix_smtp.delivery.handshake import (
    handshake,
    initial_level,
    log_warnings,
    tlsrpt_failure,
    tlsrpt_policy,
)
from pyfix_smtp.delivery.match_lists import PeerList, StringList
from pyfix_smtp.delivery.options import DeliveryOptions, delivery_options
from pyfix_smtp.delivery.report import DeliveryReport
from pyfix_smtp.delivery.request import DeliveryRequest
from pyfix_smtp.delivery.session import CachedState, ProbeFailed, Session
from pyfix_smtp.delivery.state import Recipients, TlsrptState, TlsStats
from pyfix_smtp.delivery.tlsplan import (
    requiretls_action,
    server_policy,
    sts_policy,
    target_for,
)
from pyfix_smtp.delivery.transfer import transfer
from pyfix_smtp.delivery.trouble import bind_failure, connect_failure
from pyfix_smtp.destination import Destination
from pyfix_smtp.dns.options import Family, PlanOptions
from pyfix_smtp.dns.plan import final_failure, plan_site_batched
from pyfix_smtp.dns.records import Answer
from pyfix_smtp.dns.results import Candidate, Origin, Site, Source
from pyfix_smtp.errors import AddressError, CommandError, LookupTableError
from pyfix_smtp.protocol.connection import ClientConnection, ClientOptions, State
from pyfix_smtp.protocol.envelope import Recipient
from pyfix_smtp.protocol.events import RsetResult
from pyfix_smtp.protocol.extensions import EhloDiscard
from pyfix_smtp.status import Failure
from pyfix_smtp.tls.levels import TlsLevel
from pyfix_smtp.tls.mtasts import FETCH_TIMEOUT, StsPolicy
from pyfix_smtp.tls.policy import TlsPolicy
from pyfix_smtp.tls.tlsrpt import ResultType, find_policy_record, policy_query

__all__ = ["deliver_steps"]

Steps = Generator[Effect, EffectResult, None]

_GET_TIME = GetTime()  # effects are immutable: one instance serves every request


def deliver_steps(request: DeliveryRequest) -> Generator[Effect, EffectResult, DeliveryReport]:
    """Deliver *request*; yield effects, return the report.

    Drive it with ``send()``: the first ``send(None)`` returns the first
    effect, each later ``send(result)`` answers the previous one, and
    ``StopIteration.value`` is the :class:`DeliveryReport`.
    """
    return _Delivery(request).run()  # the generator itself: one frame less per effect


class _Delivery:
    """One delivery request in progress (Postfix ``SMTP_STATE``)."""

    def __init__(self, request: DeliveryRequest) -> None:
        self.request = request
        self.options: DeliveryOptions = delivery_options(request.config)
        self.ctx: Context | None = None
        self.policies: dict[tuple[str, str, int, str], TlsPolicy] = {}
        #: ids of the sites taken from the memo (alive there, never rebuilt)
        self.stable_sites: set[int] = set()
        #: the DNS planner options of a TCP delivery (our interface addresses)
        self.plan_options: PlanOptions | None = None
        #: ``debug_peer_list`` (None: empty), and whether the nexthop matched it
        self.debug_peers = _debug_peers(self.options)
        self.debug_nexthop = False

    # -- the whole request ---------------------------------------------------

    def run(self) -> Generator[Effect, EffectResult, DeliveryReport]:
        request = self.request
        opts = self.options
        now = yield _GET_TIME
        handoff = _clock(now)
        envelope = request.envelope
        if self.debug_peers is not None:  # Postfix deliver_message(): debug_peer_check()
            self.debug_nexthop = self.debug_peers.matches(request.nexthop, "noaddr")
        dsn_filter = request.config.smtp_delivery_status_filter
        rcpts = Recipients(
            envelope,
            arrival=request.arrival if request.arrival is not None else handoff,
            handoff=handoff,
            queue_id=request.queue_id,
            soft_bounce=opts.soft_bounce,
            resolution=opts.delay_logging_resolution_limit,
            probe=request.verify_probe,
            address_format=request.config.info_log_address_format.lower(),
            dsn_filter=dsn_filter if len(dsn_filter) else None,
            dsn_filter_name=f"{opts.protocol}_delivery_status_filter",
            log_tls=request.config.smtp_log_tls_feature_status,
        )
        sender = envelope.sender.unquoted
        ctx = Context(
            request=request,
            options=opts,
            rcpts=rcpts,
            sender=sender,
            keys=self._keys(sender, envelope.requires_smtputf8),
        )
        self.ctx = ctx
        if opts.generic_maps is not None:
            self._generic_envelope(ctx, opts.generic_maps)
        if opts.tlsrpt_warning is not None and "tlsrpt-warned" not in opts.memo:
            opts.memo["tlsrpt-warned"] = True  # once per Config, as once per smtp(8) process
            rcpts.warning(opts.tlsrpt_warning)
        destinations = request.destinations
        fallback = False
        plan_options: PlanOptions | None = None
        if not rcpts.left:
            pass  # smtp_generic_maps failed: everyone is deferred, nothing to connect for
        elif destinations[0].path is not None:
            yield from self._connect_local(destinations[0])
        else:
            plan_options = request.planner_options()
            fallback = yield from self._connect_inet(destinations, plan_options)
        if rcpts.left:
            yield from self._leftover(destinations, plan_options, fallback)
        if rcpts.pending:  # outcomes decided since the last session's clock reading
            now = yield _GET_TIME
            rcpts.flush(_clock(now))
        return DeliveryReport(
            rcpts.outcomes(),
            request.queue_id,
            tuple(rcpts.events),
            rcpts.resolution,
            rcpts.address_format,
            () if rcpts.tlsrpt_results is None else tuple(rcpts.tlsrpt_results),
        )

    def _generic_envelope(self, ctx: Context, generic: GenericMaps) -> None:
        """Rewrite MAIL FROM and RCPT TO once for the whole delivery (smtp_generic_maps).

        Postfix smtp_proto.c smtp_loop() rewrites each address as it sends
        it; the result is the same for every server, so it is done once. A
        rewritten recipient without ORCPT gets its original address as ORCPT,
        as Postfix sends ``rcpt->orig_addr``. A lookup error stops Postfix's
        smtp(8) ("map lookup problem", fatal) and its queue manager defers
        the message: here every recipient is deferred (4.3.0) and no
        connection is made.
        """
        rcpts = ctx.rcpts
        original = self.request.envelope
        try:
            wire, mappings = generic.rewrite_envelope(original)
        except (LookupTableError, CommandError) as exc:
            # CommandError: a recipient mapped to the null address (Postfix would
            # send "RCPT TO:<>").
            text = f"{generic.parameter} map lookup problem: {exc}"
            rcpts.warning(text)
            rcpts.final_server = True
            rcpts.fail_all(Failure("4.3.0", text), relay="none")
            rcpts.cleanup()
            return
        for mapping in mappings:
            if mapping.warning is not None:
                rcpts.warning(mapping.warning)  # smtp_map11_internal(): multi-valued result
        if wire is original:
            return
        recipients = tuple(
            Recipient(new.address, orcpt=old.address, notify=new.notify)
            if new is not old and old.orcpt is None
            else new
            for old, new in zip(original.recipients, wire.recipients, strict=True)
        )
        ctx.wire_envelope = replace(wire, recipients=recipients)

    def _keys(self, sender: str, smtputf8: bool) -> KeyContext:
        """The request-wide label parts; one instance per distinct value, so
        that label lookups compare them by identity."""
        opts = self.options
        memo = opts.key_contexts
        key = (sender, self.request.nexthop, smtputf8)
        keys = memo.get(key)
        if keys is None:
            sasl = opts.sasl
            passwords = sasl.password_maps is not None
            keys = KeyContext(
                service=opts.service_key,
                sender=sender,
                request_nexthop=self.request.nexthop,
                sender_dependent_sasl=passwords and sasl.sender_dependent_authentication,
                sasl_passwords=passwords,
                requires_smtputf8=smtputf8,
            )
            if len(memo) >= 1024:
                memo.clear()
            memo[key] = keys
        assert isinstance(keys, KeyContext)
        return keys

    def _leftover(
        self,
        destinations: tuple[Destination, ...],
        plan_options: PlanOptions | None,
        fallback: bool,
    ) -> Steps:
        """smtp_connect_inet()/smtp_connect(): fail the recipients nobody took."""
        ctx = self._ctx
        rcpts = ctx.rcpts
        why = rcpts.why
        if plan_options is None:  # LMTP unix: no leftover rules (smtp_connect_local())
            failure = why or Failure("4.3.0", "server unavailable or unable to receive mail")
        else:
            final = final_failure(
                why,
                fallback=fallback,
                first_nexthop=destinations[0].text,
                options=plan_options,
            )
            for warning in final.warnings:
                rcpts.warning(warning)
            failure = final.failure
            if final.best_mx_transport is not None:
                # Postfix hands the mail to best_mx_transport; a library cannot.
                rcpts.info(
                    f"mail loops back to myself: pass it to best_mx_transport"
                    f" {final.best_mx_transport}"
                )
                failure = Failure(
                    "4" + failure.status[1:],
                    f"{failure.reason} (best_mx_transport {final.best_mx_transport})",
                )
        rcpts.final_server = True  # smtp_connect(): "XXX" final server for the rest
        rcpts.fail_all(failure, relay="none")
        rcpts.cleanup()
        yield from ()

    @property
    def _ctx(self) -> Context:
        assert self.ctx is not None
        return self.ctx

    # -- LMTP over a UNIX-domain socket ---------------------------------------

    def _connect_local(self, destination: Destination) -> Steps:
        """Postfix smtp_connect_local()."""
        ctx = self._ctx
        opts = self.options
        rcpts = ctx.rcpts
        path = destination.path
        assert path is not None
        if opts.smtp_fallback_relay:
            rcpts.warning(
                f'ignoring "lmtp_fallback_relay = {", ".join(opts.smtp_fallback_relay)}"'
                " setting for non-TCP connections"
            )
        self._cache_policy(path)
        ctx.requiretls = requiretls_action(
            opts, requested=self.request.envelope.requiretls, nexthop_domain=opts.myhostname
        )
        ctx.keys = replace(ctx.keys, requiretls_level=_level_key(ctx))
        candidate = Candidate(
            hostname=opts.myhostname,
            address=path,
            port=0,
            family=Family.UNIX,
            best_mx=True,
            origin=Origin.PATH,
            qname=path,
            rname=path,
        )
        site = Site(
            nexthop=path,
            domain=opts.myhostname,
            port=0,
            source=Source.UNIX,
            candidates=(candidate,),
            final=True,
        )
        policy = yield from self._policy(site, candidate, path, opts.myhostname, None)
        self._tls_activate(policy)
        if policy.failure is not None:
            rcpts.why = policy.failure
            rcpts.warning(
                f"TLS policy lookup error for {opts.myhostname}/{path}: {policy.failure.reason}"
            )
            return
        if policy.level is TlsLevel.MAY:
            rcpts.warning(
                "smtp_connect_local: opportunistic TLS encryption is not appropriate"
                " for unix-domain destinations."
            )
            policy = replace(policy, level=TlsLevel.NONE)
        rcpts.final_server = True  # "All delivery errors bounce or defer."
        if ctx.conn_load:
            cached = yield from self._take(
                (dest_label(ctx.keys, tls_level=int(TlsLevel.NONE)),),
                policy=policy,
                nexthop=path,
                best_mx=None,
                defer_probe=True,
            )
            if cached is not None and (yield from self._transfer_reused(cached)):
                return
        session = yield from self._connect(site, candidate, policy, path)
        if session is None:
            return
        if (yield from handshake(ctx, session)):
            yield from transfer(ctx, session)
        yield from self._cleanup(session)

    # -- SMTP and LMTP over TCP -----------------------------------------------

    def _connect_inet(
        self, destinations: tuple[Destination, ...], plan_options: PlanOptions
    ) -> Generator[Effect, EffectResult, bool]:
        """Postfix smtp_connect_inet(); returns whether the last site tried was a fallback relay."""
        ctx = self._ctx
        rcpts = ctx.rcpts
        self.plan_options = plan_options
        if not plan_options.inet_protocols:
            rcpts.why = Failure("4.4.4", "all network protocols are disabled")
            return False
        fallback = False
        count = len(destinations)
        for i, destination in enumerate(destinations):
            if not rcpts.left:
                break
            nexthop = destination.text
            if nexthop.startswith("inet:"):
                nexthop = nexthop[5:]
            domain = destination.host
            ctx.requiretls = requiretls_action(
                self.options,
                requested=self.request.envelope.requiretls,
                nexthop_domain=domain,
            )
            if ctx.keys.requiretls_level != _level_key(ctx):
                ctx.keys = replace(ctx.keys, requiretls_level=_level_key(ctx))
            if self.options.tlsrpt_enable:
                rcpts.tlsrpt = yield from self._tlsrpt(destination)
            last = i == count - 1
            site = self._known_site(destination, plan_options, last) or (
                yield from self._plan(destination, plan_options, last=last)
            )
            fallback = destination.is_fallback
            for warning in site.warnings:
                rcpts.warning(warning)
            if not site.candidates:
                rcpts.why = site.failure
            else:
                if i == 0:
                    self._cache_policy(domain)
                sts = (
                    (yield from self._sts(destination, domain))
                    if self._sts_applies(destination)
                    else None
                )
                yield from self._site(site, nexthop, domain, sts)
            if site.final:
                break
        return fallback

    def _tlsrpt(
        self, destination: Destination
    ) -> Generator[Effect, EffectResult, TlsrptState | None]:
        """Postfix smtp_connect_inet(): smtp_tlsrpt_create_wrapper() for one nexthop.

        Only when TLS is not switched off (``TLS-Required: no``, the main.cf
        level ``none``), for a domain name (not an address), and when the
        domain publishes exactly one TLSRPT policy (smtp_tlsrpt_find_policy()).
        """
        opts = self.options
        rcpts = self._ctx.rcpts
        if (
            self._tls_not_required()
            or opts.global_tls_level <= TlsLevel.NONE
            or destination.literal_address is not None
        ):
            return None
        domain = destination.host
        try:
            adomain = to_ascii_domain(domain)  # smtp_tlsrpt_create_wrapper(): A-label form
        except AddressError:
            adomain = domain
        dnssec = opts.config.smtp_dns_support_level.lower() == "dnssec"  # RES_USE_DNSSEC
        answer = yield Resolve(policy_query(adomain, dnssec=dnssec))
        if not isinstance(answer, Answer):
            raise TypeError(f"Resolve needs an Answer, got {answer!r}")
        record, warning = find_policy_record(answer, adomain)
        if warning is not None:
            rcpts.warning(warning)
        if record is None:
            return None
        if rcpts.tlsrpt_results is None:
            rcpts.tlsrpt_results = []
        return TlsrptState(
            adomain, record, skip_reused=opts.tlsrpt_skip_reused, results=rcpts.tlsrpt_results
        )

    def _known_site(
        self, destination: Destination, plan_options: PlanOptions, last: bool
    ) -> Site | None:
        """A literal nexthop's site planned by an earlier delivery, else None."""
        # By identity (parsed nexthops are remembered too): hashing a
        # Destination per message costs more than the lookup saves.
        found = self.options.memo.get(("site", id(destination), id(plan_options), last))
        if found is not None and found[0] is plan_options and found[1] is destination:
            site: Site = found[2]
            self.stable_sites.add(id(site))
            return site
        return None

    def _plan(
        self, destination: Destination, plan_options: PlanOptions, *, last: bool
    ) -> Generator[Effect, EffectResult, Site]:
        """Plan one site; DNS batches become Resolve/ResolveMany effects."""
        known = self._known_site(destination, plan_options, last)
        if known is not None:
            return known
        memo = self.options.memo
        key = ("site", id(destination), id(plan_options), last)
        steps = plan_site_batched(destination, plan_options, self.request.rng, last=last)
        asked = False
        try:
            batch = next(steps)
            while True:
                asked = True
                if len(batch) == 1:
                    answer = yield Resolve(batch[0])
                    if not isinstance(answer, Answer):
                        raise TypeError(f"Resolve needs an Answer, got {answer!r}")
                    answers: tuple[Answer, ...] = (answer,)
                else:
                    many = yield ResolveMany(batch)
                    if not isinstance(many, tuple):
                        raise TypeError(f"ResolveMany needs a tuple of Answers, got {many!r}")
                    answers = many
                batch = steps.send(answers)
        except StopIteration as stop:
            site = stop.value
        assert isinstance(site, Site)
        if not asked and len(site.candidates) + len(site.spare) <= 1:
            # A literal address: nothing random, nothing looked up.
            if len(memo) > 4096:
                memo.clear()
            memo[key] = (plan_options, destination, site)
        return site

    def _cache_policy(self, domain: str) -> None:
        """Postfix smtp_cache_policy() for the first nexthop."""
        ctx = self._ctx
        opts = self.options
        memo = opts.memo
        key = ("cache-destination", domain)
        wanted = memo.get(key)
        if wanted is None:
            wanted = _cache_destinations(opts).matches(domain)
            if len(memo) > 4096:
                memo.clear()
            memo[key] = wanted
        # A library has no qmgr "high volume" signal: on demand means "the
        # caller gave the driver a connection cache".
        enabled = self.request.connection_cache and (wanted or opts.smtp_connection_cache_on_demand)
        ctx.conn_load = ctx.conn_store = enabled
        ctx.nexthop_label = enabled

    def _sts_applies(self, destination: Destination) -> bool:
        """Native MTA-STS is looked up for this destination."""
        request = self.request
        return not (
            request.sts_cache is None
            or not (request.mta_sts or self.options.tls.smtp_mta_sts_enable)
            or self.options.protocol != "smtp"
            or not destination.mx_lookup
            or self._tls_not_required()
        )

    def _tls_not_required(self) -> bool:
        """Postfix smtp.h STATE_TLS_NOT_REQUIRED(): ``TLS-Required: no`` counts.

        The header is ignored when ``tls_required_enable = no``, and when the
        sender requested REQUIRETLS with ``requiretls_enable = yes`` (then
        :attr:`Context.requiretls` is set, ``disable`` action included).
        """
        return (
            self.request.tls_required_no
            and self.options.tls.tls_required_enable
            and self._ctx.requiretls is None
        )

    def _sts(
        self, destination: Destination, domain: str
    ) -> Generator[Effect, EffectResult, StsPolicy | None]:
        """Native MTA-STS for an MX-looked-up SMTP destination (beyond Postfix)."""
        cache = self.request.sts_cache
        if cache is None or not self._sts_applies(destination):
            return None
        now = yield _GET_TIME
        policy, notes = yield from sts_policy(
            domain, cache=cache, now=_clock(now), timeout=FETCH_TIMEOUT
        )
        if notes:
            self._ctx.rcpts.info(f"MTA-STS {domain}: {notes[-1]}")
        return policy

    def _known_policy(
        self,
        site: Site,
        candidate: Candidate,
        nexthop: str,
        domain: str,
        sts: StsPolicy | None,
    ) -> TlsPolicy | None:
        """The candidate's policy when it is known without a lookup, else None."""
        key = (candidate.hostname, candidate.address, candidate.port, nexthop)
        policy = self.policies.get(key)
        if policy is not None:
            return policy
        # A site remembered across deliveries (a literal nexthop) keeps its
        # candidates: their policies, when no DNS was asked, are remembered
        # with them, which saves building and hashing a TlsTarget per message.
        if id(site) not in self.stable_sites:
            return None
        front = (
            "policy",
            id(candidate),
            nexthop,
            domain,
            self.request.tls_required_no,
            self._ctx.requiretls,
            id(sts),
        )
        found = self.options.memo.get(front)
        if found is not None and found[0] is candidate and found[1] is sts:
            policy = found[2]
            assert isinstance(policy, TlsPolicy)
            self.policies[key] = policy
            return policy
        return None

    def _policy(
        self,
        site: Site,
        candidate: Candidate,
        nexthop: str,
        domain: str,
        sts: StsPolicy | None,
    ) -> Generator[Effect, EffectResult, TlsPolicy]:
        """Postfix smtp_get_effective_tls_level() for one candidate (cached per delivery)."""
        known = self._known_policy(site, candidate, nexthop, domain, sts)
        if known is not None:
            return known
        stable = id(site) in self.stable_sites
        memo = self.options.memo
        tls_required_no = self.request.tls_required_no
        requiretls = self._ctx.requiretls
        key = (candidate.hostname, candidate.address, candidate.port, nexthop)
        front = ("policy", id(candidate), nexthop, domain, tls_required_no, requiretls, id(sts))
        target = target_for(site, candidate, nexthop=nexthop, domain=domain)
        computed = yield from server_policy(
            self.options,
            target,
            tls_required_no=tls_required_no,
            requiretls=requiretls,
            sts=sts,
        )
        self.policies[key] = computed
        if stable and memo.get(("tls", target, tls_required_no, requiretls, sts)) is computed:
            memo[front] = (candidate, sts, computed)  # computed without DNS
        return computed

    def _tls_activate(self, policy: TlsPolicy) -> None:
        """Postfix smtp_get_effective_tls_level(): the TLS feature status for one server.

        The features start over for every server tried: REQUIRETLS when it
        applies, and the policy's level ("unknown" when the policy lookup
        failed); a level that cannot satisfy REQUIRETLS decides that now.
        """
        ctx = self.ctx
        assert ctx is not None
        rcpts = ctx.rcpts
        if not rcpts.log_tls:
            return
        stats = rcpts.tls_stats
        if stats is None:
            stats = rcpts.tls_stats = TlsStats()
        failure = policy.failure
        if failure is None:
            level = policy.level
            name = (initial_level(policy) if level is TlsLevel.ENCRYPT else level).text
            stats.start(name, requiretls=ctx.requiretls_active)
            return
        if not _failed_after_lookup(policy):
            stats.start("unknown", requiretls=ctx.requiretls_active)
            return
        stats.start(initial_level(policy).text, requiretls=ctx.requiretls_active)
        if failure.status == "5.7.10":  # REQUIRETLS vs the level
            name = "nocertmatch" if "certificate matching" in failure.reason else "noencryption"
            stats.decide(TlsStats.REQUIRETLS, name, compliant=False)

    def _site(self, site: Site, nexthop: str, domain: str, sts: StsPolicy | None) -> Steps:
        """The address loop of smtp_connect_inet() for one site."""
        ctx = self._ctx
        opts = self.options
        rcpts = ctx.rcpts
        best_pref = site.candidates[0].preference
        addresses = list(site.candidates) + list(site.spare)
        addr_count = sess_count = 0
        if ctx.conn_load:
            if ctx.cache_used:  # smtp_scrub_addr_list()
                addresses = [a for a in addresses if a.address not in ctx.cache_used]
            addr_count = sess_count = yield from self._reuse(
                site, addresses, best_pref, nexthop, domain, sts
            )
        address_limit = opts.smtp_mx_address_limit
        session_limit = opts.smtp_mx_session_limit
        retry_plain = False
        i = 0
        while rcpts.left and i < len(addresses):
            candidate = addresses[i]
            has_next = i + 1 < len(addresses)
            addr_count += 1
            if addr_count == address_limit:
                has_next = False
            policy = self._known_policy(site, candidate, nexthop, domain, sts) or (
                yield from self._policy(site, candidate, nexthop, domain, sts)
            )
            self._tls_activate(policy)
            if policy.failure is not None:
                rcpts.why = policy.failure
                rcpts.warning(
                    f"TLS policy lookup for {nexthop}/{candidate.hostname}: {policy.failure.reason}"
                )
                if rcpts.tlsrpt is not None:
                    self._tlsrpt_unusable(policy, candidate)
                if not has_next:
                    break
                i += 1
                continue
            if retry_plain:
                policy = replace(policy, level=TlsLevel.NONE)  # PLAINTEXT_FALLBACK: TLS off
                retry_plain = False
            session: Session | None = None
            if ctx.conn_load and candidate.preference != best_pref:
                session = yield from self._take_endpoint(candidate, policy, nexthop, best_mx=False)
            if session is None:
                session = yield from self._connect(site, candidate, policy, nexthop)
            if session is not None:
                session.best_mx = session.best_mx or candidate.preference == best_pref
                rcpts.final_server = site.final and not has_next
                if not session.from_cache and not (yield from handshake(ctx, session)):
                    if session.retry_plain:  # same address, TLS off, not counted
                        retry_plain = True
                        addr_count -= 1
                else:
                    sess_count += 1
                    if sess_count == session_limit:
                        has_next = False
                    rcpts.final_server = site.final and not has_next
                    yield from transfer(ctx, session)
                    if session.retry_plain:
                        retry_plain = True
                        sess_count -= 1
                        addr_count -= 1
                yield from self._cleanup(session)
                if retry_plain:
                    continue
            if not has_next:
                break
            i += 1

    # -- connection cache (Postfix smtp_reuse.c) ----------------------------------

    def _reuse(
        self,
        site: Site,
        addresses: list[Candidate],
        best_pref: int,
        nexthop: str,
        domain: str,
        sts: StsPolicy | None,
    ) -> Generator[Effect, EffectResult, int]:
        """Postfix smtp_reuse_session(): cached sessions before new connections."""
        ctx = self._ctx
        rcpts = ctx.rcpts
        count = 0
        # Postfix looks the nexthop label up with a dummy TLS policy (level
        # none); only sessions stored at level none can match, so the lookup
        # is skipped when no such label was ever stored with this Config.
        label = dest_label(ctx.keys, tls_level=int(TlsLevel.NONE))
        if (
            addresses
            and rcpts.left
            and ctx.nexthop_label
            and ("stored", label) in self.options.memo
        ):
            session = yield from self._take(
                (label,), policy=None, nexthop=nexthop, best_mx=None, defer_probe=True
            )
            if session is not None:
                saved = list(addresses)
                self._update_addresses(addresses, session.endpoint.address, 1)
                rcpts.final_server = site.final and not addresses
                if (yield from self._transfer_reused(session)):
                    count = 1
                else:
                    addresses[:] = saved
        i = 0
        while rcpts.left and i < len(addresses):
            candidate = addresses[i]
            if candidate.preference != best_pref:
                break
            policy = self._known_policy(site, candidate, nexthop, domain, sts) or (
                yield from self._policy(site, candidate, nexthop, domain, sts)
            )
            self._tls_activate(policy)
            if policy.failure is not None:
                rcpts.warning(
                    f"TLS policy lookup error for {nexthop}/{candidate.hostname}:"
                    f" {policy.failure.reason}"
                )
                i += 1
                continue
            session = yield from self._take_endpoint(
                candidate, policy, nexthop, best_mx=True, defer_probe=True
            )
            if session is None:
                i += 1
                continue
            saved = list(addresses)
            removed = self._update_addresses(addresses, session.endpoint.address, count + 1)
            following = i if removed == i else i + 1
            rcpts.final_server = site.final and following >= len(addresses)
            if not (yield from self._transfer_reused(session)):
                addresses[:] = saved  # the probe failed: as if nothing was cached
                i += 1
                continue
            count += 1
            i = following
        return count

    def _transfer_reused(self, session: Session) -> Generator[Effect, EffectResult, bool]:
        """A transaction on a reused session; False when its RSET probe failed."""
        try:
            yield from transfer(self._ctx, session)
        except ProbeFailed:
            yield from session.close(abort=True)  # smtp_reuse_common(): smtp_session_free()
            yield from self._cleanup(session)
            return False
        self._ctx.cache_used.add(session.endpoint.address)
        yield from self._cleanup(session)
        return True

    def _update_addresses(self, addresses: list[Candidate], address: str, count: int) -> int:
        """Postfix smtp_update_addr_list(); returns the index removed (-1: none)."""
        opts = self.options
        if count in (opts.smtp_mx_session_limit, opts.smtp_mx_address_limit):
            addresses.clear()
            return -1
        for index, candidate in enumerate(addresses):
            if candidate.address == address:
                del addresses[index]
                return index
        return -1

    def _take_endpoint(
        self,
        candidate: Candidate,
        policy: TlsPolicy,
        nexthop: str,
        *,
        best_mx: bool,
        defer_probe: bool = False,
    ) -> Generator[Effect, EffectResult, Session | None]:
        """Postfix smtp_reuse_addr()."""
        ctx = self._ctx
        label = endpoint_label(
            ctx.keys,
            current_nexthop=nexthop,
            hostname=candidate.hostname,
            address=candidate.address,
            port=candidate.port,
            tls_level=int(policy.level),
            tls_must_match=policy.level.must_match,
        )
        return (
            yield from self._take(
                (label,), policy=policy, nexthop=nexthop, best_mx=best_mx, defer_probe=defer_probe
            )
        )

    def _take(
        self,
        labels: tuple[str, ...],
        *,
        policy: TlsPolicy | None,
        nexthop: str,
        best_mx: bool | None,
        defer_probe: bool = False,
    ) -> Generator[Effect, EffectResult, Session | None]:
        """Postfix smtp_reuse_common(): take a cached session, probe it with RSET.

        With *defer_probe* and a server that offers PIPELINING, the probe is
        left to the transaction (:attr:`Session.probe_pending`): it goes out
        in the same write as MAIL, RCPT and DATA, and the session is used
        only when its reply is 2xx (a difference from Postfix, which waits
        for the RSET reply first; it saves one round trip per message).
        """
        ctx = self._ctx
        result = yield CacheTake(labels)
        if result is None:
            return None
        if not isinstance(result, CachedSession) or not isinstance(result.state, CachedState):
            raise TypeError(f"CacheTake needs a CachedSession from this core, got {result!r}")
        state = result.state
        session = Session(
            state.conn,
            result.endpoint,
            self.options,
            hostname=state.hostname,
            nexthop=nexthop,
            policy=policy,
            tls_level=state.tls_level,
            best_mx=state.best_mx if best_mx is None else best_mx,
            expire=state.expire,
        )
        session.from_cache = True
        session.reuse_count = result.reuse_count + 1  # smtp_session_activate()
        if self.debug_peers is not None:
            session.debug = self._debug(state.hostname, result.endpoint.address)
        session.cert_matched = state.cert_matched
        conn = session.conn
        if conn.state is not State.READY:
            yield from session.close(abort=True)
            return None
        ext = conn.extensions
        if defer_probe and ext is not None and ext.pipelining:
            session.probe_pending = True
            return session
        session.write(conn.rset())  # smtp_rset(): the RSET probe
        event = yield from session.events()
        log_warnings(ctx, session)
        if not (isinstance(event, RsetResult) and event.reply.code // 100 == 2) or (
            conn.state is not State.READY
        ):
            yield from session.close(abort=True)  # smtp_session_free()
            return None
        ctx.cache_used.add(result.endpoint.address)
        return session

    def _cleanup(self, session: Session) -> Steps:
        """Postfix smtp_cleanup_session(): report, then cache or close the session."""
        ctx = self._ctx
        rcpts = ctx.rcpts
        opts = self.options
        now = _clock((yield _GET_TIME))
        rcpts.flush(now)
        throttled = session.throttled
        if not session.closed:
            conn = session.conn
            if session.expired(now):
                yield from session.send_quit()  # also disables caching
            elif session.cacheable and ctx.conn_store and conn.state is State.READY:
                endpoint = session.endpoint
                labels = [
                    endpoint_label(
                        ctx.keys,
                        current_nexthop=session.nexthop,
                        hostname=session.hostname,
                        address=endpoint.address,
                        port=endpoint.port,
                        tls_level=int(session.tls_level),
                        tls_must_match=session.tls_level.must_match,
                    )
                ]
                if ctx.nexthop_label:
                    label = dest_label(ctx.keys, tls_level=int(session.tls_level))
                    labels.insert(0, label)
                    memo = self.options.memo
                    if ("stored", label) not in memo:
                        if len(memo) > 4096:
                            memo.clear()
                        memo[("stored", label)] = True
                yield CacheSave(
                    tuple(labels),
                    CachedSession(
                        endpoint=endpoint,
                        state=session.passivate(),
                        reuse_count=session.reuse_count,
                        expires=now + opts.smtp_connection_cache_time_limit,
                        reuse_deadline=session.expire,
                    ),
                )
                session.closed = True  # no longer the driver's current connection
            else:
                yield from session.close(abort=True)  # smtp_session_free(): no QUIT
        if ctx.nexthop_label and not throttled:
            ctx.nexthop_label = False  # only the first good session gets the nexthop label
        rcpts.cleanup()

    # -- new connections ------------------------------------------------------

    def _connect(
        self, site: Site, candidate: Candidate, policy: TlsPolicy, nexthop: str
    ) -> Generator[Effect, EffectResult, Session | None]:
        """Postfix smtp_connect_addr()/smtp_connect_unix() and smtp_session_alloc()."""
        ctx = self._ctx
        opts = self.options
        connect = self._connect_effect(site, candidate, want_local=ctx.rcpts.tlsrpt is not None)
        endpoint = connect.endpoint
        result = yield connect
        if isinstance(result, IoFailure):
            if result.kind is IoFailureKind.BIND:
                failure = bind_failure()
            else:
                failure = connect_failure(endpoint.label, result.reason)
            ctx.rcpts.why = failure
            ctx.rcpts.info(failure.reason, with_queue_id=False)
            return None
        if not isinstance(result, Connected):
            raise TypeError(f"Connect needs Connected or IoFailure, got {result!r}")
        expire = 0.0
        if ctx.conn_store:
            now = _clock((yield _GET_TIME))
            expire = now + opts.smtp_connection_reuse_time_limit  # smtp_session_alloc()
        session = Session(
            ClientConnection(self._client_options(endpoint), progress_events=False),
            endpoint,
            opts,
            hostname=candidate.hostname,
            nexthop=nexthop,
            policy=policy,
            tls_level=policy.level,
            loop_detect=site.loop_detection,
            expire=expire,
        )
        if self.debug_peers is not None:
            session.debug = self._debug(candidate.hostname, candidate.address)
        tlsrpt = ctx.rcpts.tlsrpt
        if tlsrpt is not None:
            # smtp_connect_inet(): smtp_tlsrpt_set_tls_policy(), smtp_tlsrpt_set_tcp_connection()
            tlsrpt.set_policy(tlsrpt_policy(policy, tlsrpt.domain))
            tlsrpt.set_connection(result.local_address, candidate.hostname, candidate.address)
        return session

    def _tlsrpt_unusable(self, policy: TlsPolicy, candidate: Candidate) -> None:
        """Postfix tls_client_start(): the TLSRPT failure of unusable trust inputs.

        Postfix finds these after connecting; pyfix_smtp skips the server
        before it (docs/differences.md), so the result has no sending address.
        """
        ctx = self._ctx
        tlsrpt = ctx.rcpts.tlsrpt
        assert tlsrpt is not None
        if not policy.reasons:
            return
        last = policy.reasons[-1]
        found = _UNUSABLE_TLSRPT.get((last.source, last.text))
        if found is None:
            return
        tlsrpt.set_policy(tlsrpt_policy(policy, tlsrpt.domain))
        tlsrpt.set_connection(None, candidate.hostname, candidate.address)
        tlsrpt_failure(ctx, *found)

    def _connect_effect(self, site: Site, candidate: Candidate, *, want_local: bool) -> Connect:
        """The Connect for *candidate* (Postfix smtp_connect_addr()).

        Remembered with a site kept across deliveries (a literal nexthop):
        the effect is immutable and depends only on the candidate, this
        Config and the planner options (the virtual-host bind address).
        """
        memo = self.options.memo
        plan = self.plan_options
        key = ("connect", id(candidate), id(plan), want_local)
        found = memo.get(key)
        if found is not None and found[0] is candidate and found[1] is plan:
            known: Connect = found[2]
            return known
        opts = self.options
        unix = candidate.family is Family.UNIX
        endpoint = Endpoint(candidate.hostname, candidate.address, candidate.port, unix=unix)
        bind: str | None = None
        enforce = opts.smtp_bind_address_enforce
        if not unix:
            text = opts.smtp_bind_address6 if candidate.is_ipv6 else opts.smtp_bind_address
            bind = text.strip("[]") or None
            if bind is None:  # "running as a virtual host": a failed bind is only a warning
                bind = self._virtual_host_address(candidate.is_ipv6)
                enforce = False
        connect = Connect(
            endpoint,
            opts.timeouts["smtp_connect_timeout"],
            bind_address=bind,
            bind_enforce=enforce,
            window_size=opts.config.tcp_windowsize,  # Postfix smtp_connect_addr()
            want_local_address=want_local,  # read only for TLSRPT (_connect())
        )
        if id(site) in self.stable_sites:
            if len(memo) > 4096:
                memo.clear()
            memo[key] = (candidate, plan, connect)
        return connect

    def _debug(self, hostname: str, address: str) -> bool:
        """Postfix smtp_session_alloc(): debug_peer_check(host, addr)."""
        peers = self.debug_peers
        return self.debug_nexthop or (peers is not None and peers.matches(hostname, address))

    def _virtual_host_address(self, ipv6: bool) -> str | None:
        """Postfix smtp_connect_addr() without ``smtp_bind_address(6)``.

        When ``inet_interfaces`` has exactly one address of the server's
        family and it is not a loopback address, the client binds to it,
        so that the mail comes from the "right" machine address.
        """
        plan = self.plan_options
        if plan is None or not plan.own_addresses:
            return None
        memo = self.options.memo
        key = ("virtual-host", id(plan))
        found = memo.get(key)
        if found is None or found[0] is not plan:
            chosen: list[str | None] = []
            for version in (4, 6):
                mine = [a for a in plan.own_addresses if a.version == version]
                single = len(mine) == 1 and not mine[0].is_loopback
                chosen.append(str(mine[0]) if single else None)
            found = (plan, chosen[0], chosen[1])
            if len(memo) > 4096:
                memo.clear()
            memo[key] = found
        address = found[2] if ipv6 else found[1]
        assert address is None or isinstance(address, str)
        return address

    def _client_options(self, endpoint: Endpoint) -> ClientOptions:
        """The protocol machine's options for one server.

        Remembered per server unless an address map is configured (a table
        may be a Python mapping that changes between deliveries).
        """
        opts = self.options
        fixed = not (
            len(opts.smtp_discard_ehlo_keyword_address_maps) or len(opts.smtp_pix_workaround_maps)
        )
        memo = opts.memo
        key = ("client", endpoint.name_address)
        found = memo.get(key) if fixed else None
        if found is None:
            found = replace(
                opts.client,
                peer_name=endpoint.name_address,
                discard_ehlo_keywords=self._ehlo_discard(endpoint.address),
                pix_workarounds=self._pix(endpoint.address),
            )
            if fixed:
                if len(memo) > 4096:
                    memo.clear()
                memo[key] = found
        assert isinstance(found, ClientOptions)
        return found

    def _ehlo_discard(self, address: str) -> EhloDiscard:
        """``smtp_discard_ehlo_keyword_address_maps`` for the server address, else the default."""
        table = self.options.smtp_discard_ehlo_keyword_address_maps
        if len(table):
            value = table.lookup(address)
            if value is not None:
                return EhloDiscard.parse(value)
        return self.options.client.discard_ehlo_keywords

    def _pix(self, address: str) -> frozenset[str]:
        """``smtp_pix_workaround_maps`` for the server address, else ``smtp_pix_workarounds``."""
        table = self.options.smtp_pix_workaround_maps
        if len(table):
            value = table.lookup(address)
            if value is not None:
                words = {w.lower() for w in value.replace(",", " ").split()}
                return frozenset(words & {"disable_esmtp", "delay_dotcrlf"})
        return self.options.client.pix_workarounds


#: The failures TlsPolicy records after the policy itself was found (Postfix
#: decides them after smtp_tls_policy_cache_query() succeeded, or in
#: tls_client_start()): by the source of the policy's last reason, or the
#: exact (source, text) of that reason.
_AFTER_LOOKUP_SOURCES = frozenset(
    {"REQUIRETLS", "smtp_tls_wrappermode", "MTA-STS", "TLS settings", "SNI", "match"}
)
#: tls_client_start(): the "all ... unusable" policy failures (exact reasons),
#: each with its TLSRPT result.
_UNUSABLE_TLSRPT = {
    ("fingerprint", "all fingerprints unusable"): (
        ResultType.VALIDATION_FAILURE,
        "all-fingerprints-unusable",
    ),
    ("trust anchors", "all trust anchors unusable"): (
        ResultType.VALIDATION_FAILURE,
        "all-trust-anchors-unusable",
    ),
    ("DANE", "all TLSA records unusable"): (ResultType.TLSA_INVALID, "all-TLSA-records-unusable"),
}
_AFTER_LOOKUP_REASONS = frozenset(_UNUSABLE_TLSRPT)


def _failed_after_lookup(policy: TlsPolicy) -> bool:
    """The policy failed after its level was known (else: the lookup failed)."""
    if not policy.reasons:
        return False
    last = policy.reasons[-1]
    return last.source in _AFTER_LOOKUP_SOURCES or (last.source, last.text) in _AFTER_LOOKUP_REASONS


def _cache_destinations(options: DeliveryOptions) -> StringList:
    """``smtp_connection_cache_destinations`` as a Postfix string_list, once per Config."""
    memo = options.memo
    key = ("connection-cache-destinations",)
    found = memo.get(key)
    if found is None:
        found = memo[key] = StringList(
            options.smtp_connection_cache_destinations,
            parameter=f"{options.config.protocol}_connection_cache_destinations",
        )
    assert isinstance(found, StringList)
    return found


def _debug_peers(options: DeliveryOptions) -> PeerList | None:
    """``debug_peer_list`` as a matcher, once per Config (None when empty)."""
    memo = options.memo
    key = ("debug_peer_list",)
    if key not in memo:
        peers = PeerList(options.config.debug_peer_list)
        memo[key] = peers if peers else None
    found = memo[key]
    assert found is None or isinstance(found, PeerList)
    return found


def _clock(value: EffectResult) -> float:
    if isinstance(value, bool) or not isinstance(value, float | int):
        raise TypeError(f"GetTime needs a float, got {value!r}")
    return float(value)


def _level_key(ctx: Context) -> int:
    """The REQUIRETLS level as Postfix prints it into cache keys (``%u``)."""
    if ctx.requiretls is None:
        return 0
    return int(ctx.requiretls) & 0xFFFFFFFF
