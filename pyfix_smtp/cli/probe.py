"""``pyfix-smtp probe DESTINATION``: a TLS session check, like Postfix's posttls-finger.

For the destination's servers, in plan order, it connects, shows the
greeting and the EHLO (LHLO) reply, starts TLS when the server's policy
asks for it, shows the TLS session and the certificate chain (subjects,
issuers, fingerprints with ``smtp_tls_fingerprint_digest``), applies the
policy's certificate check (Postfix's Anonymous/Untrusted/Trusted/Verified
label), sends EHLO again and QUIT. No mail transaction is started.

Without ``--all`` it stops at the first server it could connect to, as
posttls-finger does; with ``--all`` it probes every candidate. The session
is driven by the sans-IO :class:`~pyfix_smtp.protocol.ClientConnection`,
TLS by :func:`pyfix_smtp.tls.build_context` and the certificate check by
:func:`pyfix_smtp.tls.check_peer`, as the delivery driver does.

Exit status: 0 when every probed server (the first reachable one without
``--all``) passed the policy, 75 otherwise (unreachable, TLS required but
not offered, handshake or certificate failure, server skipped by policy),
69 when the plan failed for good.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from dataclasses import replace
from typing import TYPE_CHECKING

from cryptography import x509

from pyfix_smtp.cli.common import (
    EX_OK,
    EX_TEMPFAIL,
    Environment,
    destinations,
    make_plan,
    status_for_failure,
)
from pyfix_smtp.cli.policy import ServerPolicy, server_policies
from pyfix_smtp.delivery.effects import Endpoint, IoFailure
from pyfix_smtp.errors import TlsPolicyError
from pyfix_smtp.protocol import (
    NEED_DATA,
    ClientConnection,
    ClientOptions,
    Closed,
    Extensions,
    Greeting,
    HelloRejected,
    ProtocolWarning,
    StartTlsReady,
    StartTlsRejected,
)
from pyfix_smtp.tls.certs import colon_hex, fingerprint
from pyfix_smtp.tls.context import build_context, handshake_failure
from pyfix_smtp.tls.options import TlsOptions
from pyfix_smtp.tls.verify import check_peer
from pyfix_smtp.transport.sync import connect_failure, open_socket, tls_established

if TYPE_CHECKING:
    from pyfix_smtp.dns.results import Candidate
    from pyfix_smtp.status import Reply
    from pyfix_smtp.tls.policy import TlsPolicy

__all__ = ["Prober", "describe_chain", "run"]


def describe_chain(chain: tuple[bytes, ...], digest: str) -> list[str]:
    """Lines describing each certificate (leaf first): names, validity, fingerprints."""
    lines: list[str] = []
    for depth, der in enumerate(chain):
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            lines.append(f"  depth={depth} unparsable certificate: {exc}")
            continue
        lines.append(f"  depth={depth} subject={cert.subject.rfc4514_string() or '(empty)'}")
        lines.append(f"          issuer={cert.issuer.rfc4514_string() or '(empty)'}")
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = [*san.get_values_for_type(x509.DNSName)]
            names += [str(a) for a in san.get_values_for_type(x509.IPAddress)]
            if names:
                lines.append(f"          names={', '.join(names)}")
        except x509.ExtensionNotFound:
            pass
        lines.append(
            f"          valid {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S}"
            f" to {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"
        )
        lines.append(f"          {digest} fingerprint={colon_hex(fingerprint(der, digest))}")
        pkey = colon_hex(fingerprint(der, digest, public_key=True))
        lines.append(f"          {digest} pkey_fingerprint={pkey}")
    return lines


class Prober:
    """One probe session with one server; prints as it goes.

    :meth:`run` returns True when the session met the server's TLS policy.
    """

    def __init__(self, env: Environment, cand: Candidate, item: ServerPolicy) -> None:
        self.env = env
        self.cand = cand
        self.policy: TlsPolicy = item.policy
        self.label = cand.endpoint
        self.sock: socket.socket | None = None
        self.ok = True
        self.connected = False

    # -- output ---------------------------------------------------------------

    def say(self, text: str) -> None:
        self.env.print(text)

    def show_reply(self, reply: Reply | None) -> None:
        if reply is None:
            return
        for line in reply.wire_lines or (str(reply),):
            self.say(f"< {line}")

    def write(self, data: bytes) -> None:
        if not data:
            return
        assert self.sock is not None
        for line in data.split(b"\r\n"):
            if line:
                self.say("> " + line.decode("utf-8", "replace"))
        self.sock.sendall(data)

    def fail(self, text: str) -> None:
        self.ok = False
        self.say(text)

    # -- the session ------------------------------------------------------------

    def connect(self) -> bool:
        cfg = self.env.config
        unix = self.cand.port == 0
        endpoint = Endpoint(self.cand.hostname, self.cand.address, self.cand.port, unix)
        bind = cfg.smtp_bind_address6 if self.cand.is_ipv6 else cfg.smtp_bind_address
        opened = open_socket(endpoint, bind or None, cfg.smtp_bind_address_enforce)
        if isinstance(opened, IoFailure):
            self.fail(f"connect to {self.label}: {opened.reason}")
            return False
        sock, address = opened
        sock.settimeout(cfg.smtp_connect_timeout or None)
        try:
            sock.connect(address)
        except OSError as exc:
            sock.close()
            self.fail(f"connect to {self.label}: {connect_failure(exc).reason}")
            return False
        self.sock = sock
        self.connected = True
        self.say(f"Connected to {self.label}")
        return True

    def start_tls(self, options: TlsOptions) -> ssl.SSLSocket | None:
        """The TLS handshake and the policy's certificate check (Postfix smtp_start_tls())."""
        policy = self.policy
        assert self.sock is not None
        try:
            ctx = build_context(policy, options)
        except TlsPolicyError as exc:
            self.fail(f"client TLS configuration problem: {exc}")
            return None
        try:
            tls = ctx.wrap_socket(
                self.sock, server_hostname=policy.sni or None, do_handshake_on_connect=False
            )
            self.sock = tls
            tls.settimeout(self.env.config.smtp_starttls_timeout or None)
            tls.do_handshake()
        except (OSError, ValueError, ssl.SSLError) as exc:
            failure, detail = handshake_failure(policy, exc)
            self.fail(f"TLS handshake with {self.label} failed: {detail}")
            self.fail(f"=> {failure}")
            return None
        est = tls_established(policy, options, tls)
        digest = self.env.config.smtp_tls_fingerprint_digest
        self.say(f"certificate chain sent by {self.label} ({len(est.chain)}):")
        for line in describe_chain(est.chain, digest):
            self.say(line)
        if policy.sni:
            self.say(f"SNI sent: {policy.sni}")
        check = check_peer(
            policy, est.chain, now=dt.datetime.now(dt.UTC), pkix_verified=est.pkix_verified
        )
        bits = f" ({est.bits}/{est.bits} bits)" if est.bits else ""
        self.say(
            f"{check.status.value} TLS connection established to {self.label}:"
            f" {est.version} with cipher {est.cipher}{bits}"
        )
        if policy.level.must_match:
            self.say(f"certificate check at level {policy.level}: {check.detail}")
        else:
            trusted = {True: "yes", False: "no", None: "not checked"}[est.pkix_verified]
            self.say(
                f"level {policy.level}: the certificate need not match"
                f" (chain trusted by smtp_tls_CAfile/CApath: {trusted})"
            )
        if check.failure is not None:
            # Postfix smtp_start_tls(): QUIT over the TLS session it will not use.
            self.fail(f"=> {check.failure}")
            self.write(b"QUIT\r\n")
            return None
        return tls

    def run(self) -> bool:
        """Probe the server: greeting, EHLO, STARTTLS, certificate, EHLO, QUIT."""
        cfg = self.env.config
        policy = self.policy
        if policy.skip:
            self.fail(f"{self.label}: TLS policy skips this server: {policy.failure}")
            return False
        if not self.connect():
            return False
        options = TlsOptions.from_config(cfg)
        copts = ClientOptions.from_config(cfg, peer_name=self.cand.endpoint)
        # Unlike smtp(8), wait for the QUIT reply: it is part of the transcript.
        conn = ClientConnection(replace(copts, skip_quit_response=False))
        try:
            if copts.tls_wrappermode:
                if not policy.use_tls:
                    self.fail(f"smtp_tls_wrappermode needs TLS, but the level is {policy.level}")
                    return False
                if self.start_tls(options) is None:
                    return False
            return self._loop(conn, options)
        finally:
            if self.sock is not None:
                self.sock.close()

    def _receive(self, conn: ClientConnection) -> bool:
        """Read once and feed the machine; False when the socket failed."""
        parameter = conn.timeout_parameter
        timeout = self.env.config.get(parameter) if parameter else 0.0
        assert self.sock is not None
        try:
            self.sock.settimeout(
                float(timeout) if isinstance(timeout, int | float) and timeout > 0 else None
            )
            data = self.sock.recv(65536)
        except TimeoutError:
            conn.timed_out()
            return True
        except OSError as exc:
            self.fail(f"lost connection with {self.label}: {exc}")
            return False
        conn.receive_data(data)
        return True

    def _loop(self, conn: ClientConnection, options: TlsOptions) -> bool:
        policy = self.policy
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                self.write(conn.data_to_send())
                if not self._receive(conn):
                    return False
            elif isinstance(event, Greeting):
                self.show_reply(event.reply)
                if event.reply.code // 100 != 2:
                    self.fail(f"=> server refused the session: {event.reply}")
            elif isinstance(event, HelloRejected):
                self.show_reply(event.reply)
                if not event.fallback:
                    self.fail(f"=> server refused {event.stage.value}: {event.reply}")
            elif isinstance(event, StartTlsRejected):
                self.show_reply(event.reply)
                if policy.tls_required:
                    self.fail(f"=> STARTTLS refused at level {policy.level}: {event.reply}")
                else:
                    self.say(f"STARTTLS refused: plaintext at level {policy.level}")
                self.write(conn.quit())
            elif isinstance(event, ProtocolWarning):
                self.say(f"warning: {event.text}")
            elif isinstance(event, Extensions):
                self.show_reply(event.reply)
                self._after_hello(conn, event)
            elif isinstance(event, StartTlsReady):
                self.show_reply(event.reply)
                if self.start_tls(options) is None:
                    return False
                self.write(conn.tls_established())
            elif isinstance(event, Closed):
                self.show_reply(event.reply)
                if event.lost or event.timed_out:
                    what = "timeout" if event.timed_out else "lost connection"
                    self.fail(f"{what} with {self.label}")
                return self.ok

    def _after_hello(self, conn: ClientConnection, ext: Extensions) -> None:
        policy = self.policy
        if not conn.tls_active and policy.use_tls:
            if ext.starttls:
                self.write(conn.start_tls())
                return
            if policy.tls_required:
                # Postfix smtp_helo(): "TLS is required, but was not offered".
                self.fail(f"=> 4.7.4 TLS is required, but was not offered by host {self.label}")
            else:
                self.say(f"STARTTLS not offered: plaintext at level {policy.level}")
        elif not conn.tls_active:
            self.say(f"TLS level {policy.level}: no STARTTLS")
        self.write(conn.quit())


def run(env: Environment) -> int:
    """Probe the first reachable server of the destination (``--all``: every one)."""
    args = env.args
    dests = destinations(env.config, args.destination)
    plan = make_plan(env, dests, args.seed)
    if not plan.candidates:
        assert plan.failure is not None
        env.print(f"no server to try: {plan.failure}")
        return status_for_failure(plan.failure.soft)
    items = server_policies(env, plan, dests)
    by_target: dict[tuple[str, Candidate], ServerPolicy] = {}
    for item in items:
        for cand in item.candidates:
            by_target[(item.site.nexthop, cand)] = item
    results: list[bool] = []
    first = True
    for site in plan.sites:
        for cand in site.candidates:
            item = by_target[(site.nexthop, cand)]
            if not first:
                env.print()
            first = False
            env.print(
                f"probe {cand.endpoint} (nexthop {site.nexthop}, TLS level {item.policy.level})"
            )
            prober = Prober(env, cand, item)
            results.append(prober.run())
            if prober.connected and not args.all:
                return EX_OK if results[-1] else EX_TEMPFAIL
    return EX_OK if results and all(results) else EX_TEMPFAIL
