"""Properties of the core over random servers: one outcome each, no false deliveries.

Hypothesis builds worlds of one to three MX hosts (plus, sometimes, a
fallback relay) whose servers refuse connections, send random replies in
random chunks, break the connection or time out at random points, and
answer STARTTLS with random handshake results. Whatever happens:

* every recipient ends with exactly one outcome, in input order, with a
  status of the right class for its action;
* a recipient reported delivered really was: the server it names received
  its ``RCPT TO`` and the end of the message data, and sent the reply the
  outcome quotes after that;
* the core never does I/O without a current connection, never leaves one
  open, and finishes.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st

from pyfix_smtp.delivery import Action
from pyfix_smtp.delivery.effects import (
    CacheSave,
    Close,
    Connect,
    EffectResult,
    IoFailure,
    IoFailureKind,
    Receive,
    Send,
    StartTls,
    TlsEstablished,
    TlsFailed,
)
from pyfix_smtp.status import Failure
from tests.test_delivery_support import World, config, deliver, request

REPLIES = [
    b"220 fuzz.example ESMTP\r\n",
    b"220 ***********************\r\n",  # Cisco PIX: HELO, and a Sleep before "."
    b"250 fuzz.example\r\n",
    b"250-fuzz.example\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250-8BITMIME\r\n250 DSN\r\n",
    b"250-fuzz.example\r\n250-STARTTLS\r\n250 PIPELINING\r\n",
    b"250-fuzz.example\r\n250 SIZE 5\r\n",
    b"250 2.0.0 Ok\r\n",
    b"250 2.1.5 Ok\r\n",
    b"250-2.0.0 first\r\n250 2.0.0 queued as X\r\n",
    b"354 End data with <CR><LF>.<CR><LF>\r\n",
    b"220 2.0.0 Ready to start TLS\r\n",
    b"221 2.0.0 Bye\r\n",
    b"421 4.3.2 Service not available, closing\r\n",
    b"450 4.2.0 greylisted\r\n",
    b"451 4.3.0 try again\r\n",
    b"452 4.3.1 insufficient storage\r\n",
    b"500 5.5.2 what?\r\n",
    b"550 5.1.1 unknown user\r\n",
    b"554 5.7.1 rejected\r\n",
    b"199 odd\r\n",
    b"garbage without a code\r\n",
    b"250 2.0.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n",
]
ENDINGS = ["EOF", "TIMEOUT", "RESET"]


@functools.cache
def _chain() -> tuple[bytes, ...]:
    cert = trustme.CA().issue_cert("fuzz.example")
    return tuple(
        x509.load_pem_x509_certificate(b.bytes()).public_bytes(Encoding.DER)
        for b in cert.cert_chain_pems
    )


def _tls_result(choice: int) -> EffectResult:
    if choice == 0:
        return TlsEstablished(_chain(), "TLSv1.3", "TLS_AES_128_GCM_SHA256", 128, None)
    if choice == 1:
        return TlsFailed(Failure("4.7.5", "Cannot start TLS: handshake failure"), "fuzz")
    return IoFailure(IoFailureKind.EOF, "Connection reset by peer")


@dataclass
class FuzzServer:
    """Answers every read with its next chunk; records what it saw and said."""

    chunks: list[bytes]
    ending: str
    tls: list[int]
    send_fail_at: int | None
    received: bytearray = field(default_factory=bytearray)
    said: list[tuple[int, bytes]] = field(default_factory=list)  # (octets received, chunk)
    sends: int = 0

    def receive(self) -> EffectResult:
        if self.chunks:
            chunk = self.chunks.pop(0)
            self.said.append((len(self.received), chunk))
            return chunk
        if self.ending == "TIMEOUT":
            return IoFailure(IoFailureKind.TIMEOUT, "Connection timed out")
        if self.ending == "RESET":
            return IoFailure(IoFailureKind.ERROR, "Connection reset by peer")
        return b""

    def send(self, data: bytes) -> EffectResult:
        self.sends += 1
        if self.send_fail_at is not None and self.sends == self.send_fail_at:
            return IoFailure(IoFailureKind.EOF, "Broken pipe")
        self.received += data
        return None

    def start_tls(self) -> EffectResult:
        return _tls_result(self.tls.pop(0) if self.tls else 2)


@dataclass
class ReactiveServer:
    """A server that answers the commands it received, choosing each reply at random.

    Replies lean toward success so that whole transactions happen; any reply
    may be a refusal, a 421, or the end of the connection.
    """

    rng: random.Random
    received: bytearray = field(default_factory=bytearray)
    said: list[tuple[int, bytes]] = field(default_factory=list)
    _seen: int = 0
    _greeted: bool = False
    _in_data: bool = False
    _closed: bool = False

    def _pick(self, good: bytes, *bad: bytes) -> bytes:
        return good if self.rng.random() < 0.9 else self.rng.choice(bad)

    def _reply(self, line: bytes) -> bytes:
        verb = line.split(b" ", 1)[0].split(b":", 1)[0].upper()
        if verb in (b"EHLO", b"LHLO"):
            return self._pick(
                self.rng.choice(
                    [
                        b"250-fuzz.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
                        b"250-fuzz.example\r\n250-STARTTLS\r\n250 DSN\r\n",
                        b"250 fuzz.example\r\n",
                    ]
                ),
                b"502 5.5.2 no EHLO\r\n",
                b"421 4.3.2 busy\r\n",
            )
        if verb == b"HELO":
            return self._pick(b"250 fuzz.example\r\n", b"550 5.7.1 no\r\n")
        if verb == b"STARTTLS":
            return self._pick(b"220 2.0.0 Ready to start TLS\r\n", b"454 4.7.0 not now\r\n")
        if verb == b"MAIL":
            return self._pick(b"250 2.1.0 Ok\r\n", b"451 4.3.0 later\r\n", b"553 5.7.1 no\r\n")
        if verb == b"RCPT":
            return self._pick(b"250 2.1.5 Ok\r\n", b"450 4.2.0 later\r\n", b"550 5.1.1 no\r\n")
        if verb == b"DATA":
            reply = self._pick(b"354 go ahead\r\n", b"451 4.3.0 later\r\n", b"554 5.5.1 no\r\n")
            self._in_data = reply.startswith(b"354")
            return reply
        if verb == b"RSET":
            return self._pick(b"250 2.0.0 Ok\r\n", b"500 5.5.1 no RSET\r\n")
        if verb == b"QUIT":
            self._closed = True
            return b"221 2.0.0 Bye\r\n"
        return b"502 5.5.2 unknown command\r\n"

    def receive(self) -> EffectResult:
        if self._closed or self.rng.random() > 0.98:
            return self.rng.choice([b"", IoFailure(IoFailureKind.TIMEOUT, "Connection timed out")])
        out = b""
        if not self._greeted:
            self._greeted = True
            out = self._pick(
                # 1 in 8 a Cisco PIX banner: HELO, and (old messages) a Sleep before "."
                b"220 ******\r\n" if self.rng.random() < 0.125 else b"220 fuzz.example ESMTP\r\n",
                b"421 4.3.2 busy\r\n",
                b"554 5.7.1 go away\r\n",
            )
        while True:
            data = bytes(self.received[self._seen :])
            if self._in_data:
                end = data.find(b"\r\n.\r\n")
                if end < 0:
                    break
                self._seen += end + 5
                self._in_data = False
                out += self._pick(
                    b"250 2.0.0 Ok: queued as F\r\n", b"452 4.3.1 full\r\n", b"554 5.7.1 spam\r\n"
                )
                continue
            nl = data.find(b"\r\n")
            if nl < 0:
                break
            self._seen += nl + 2
            out += self._reply(data[:nl])
            if out.startswith(b"421") or b"\r\n421 " in out:
                self._closed = True
                break
        if not out:
            return b""  # nothing to answer: the server hangs up
        self.said.append((len(self.received), out))
        return out

    def send(self, data: bytes) -> EffectResult:
        if self._closed and self.rng.random() < 0.5:
            return IoFailure(IoFailureKind.EOF, "Broken pipe")
        self.received += data
        return None

    def start_tls(self) -> EffectResult:
        return _tls_result(self.rng.choice([0, 0, 0, 1, 2]))


class FuzzWorld(World):
    """A World whose servers are FuzzServers, checking connection discipline."""

    fuzz: dict[tuple[str, int], FuzzServer | ReactiveServer]

    def execute(self, effect: object) -> EffectResult:  # type: ignore[override]
        if isinstance(effect, Connect):
            ep = effect.endpoint
            server = self.fuzz.get((ep.address, ep.port))
            assert self.current is None
            self.effects.append(effect)
            if server is None:
                return IoFailure(IoFailureKind.REFUSED, "Connection refused")
            self.current = server  # type: ignore[assignment]
            from pyfix_smtp.delivery.effects import Connected

            return Connected()
        if isinstance(effect, Send | Receive | StartTls | Close | CacheSave):
            assert self.current is not None, f"{effect!r} without a connection"
            self.effects.append(effect)
            server: FuzzServer | ReactiveServer = self.current  # type: ignore[assignment]
            if isinstance(effect, Send):
                return server.send(effect.data)
            if isinstance(effect, Receive):
                return server.receive()
            if isinstance(effect, StartTls):
                return server.start_tls()
            self.current = None
            return None
        return super().execute(effect)  # type: ignore[arg-type]


garbled = st.builds(
    FuzzServer,
    chunks=st.lists(st.sampled_from(REPLIES), max_size=12),
    ending=st.sampled_from(ENDINGS),
    tls=st.lists(st.integers(0, 2), max_size=2),
    send_fail_at=st.none() | st.integers(1, 6),
)
reactive = st.builds(ReactiveServer, rng=st.randoms(use_true_random=False))
servers = st.one_of(reactive, reactive, reactive, garbled)


@settings(max_examples=300, deadline=None)
@given(
    hosts=st.lists(st.one_of(servers, servers, st.none()), min_size=1, max_size=3),
    relay=st.none() | servers,
    recipients=st.integers(1, 4),
    level=st.sampled_from(["none", "may", "may", "encrypt"]),
    soft_bounce=st.booleans(),
    cache=st.booleans(),
    old=st.booleans(),
)
def test_every_recipient_has_one_outcome_and_no_false_delivery(
    hosts: list[FuzzServer | ReactiveServer | None],
    relay: FuzzServer | ReactiveServer | None,
    recipients: int,
    level: str,
    soft_bounce: bool,
    cache: bool,
    old: bool,
) -> None:
    world = FuzzWorld()
    world.fuzz = {}
    names = [(10 * (i + 1), f"mx{i}.example.net") for i in range(len(hosts))]
    world.mx("example.net", *names)
    for i, server in enumerate(hosts):
        world.a(f"mx{i}.example.net", f"192.0.2.{i + 1}")
        if server is not None:
            world.fuzz[(f"192.0.2.{i + 1}", 25)] = server
    if relay is not None:
        world.fuzz[("192.0.2.99", 25)] = relay
    cfg = config(
        smtp_tls_security_level=level,
        soft_bounce=soft_bounce,
        smtp_fallback_relay="[192.0.2.99]",
    )
    addresses = [f"r{i}@example.net" for i in range(recipients)]
    report = deliver(
        request(
            addresses,
            cfg=cfg,
            connection_cache=cache,
            arrival=world.clock - 7200 if old else None,
        ),
        world,
    )
    assert world.current is None or cache  # a cached connection may stay open
    assert [o.recipient for o in report] == addresses
    by_relay = {
        f"mx{i}.example.net[192.0.2.{i + 1}]:25": s for i, s in enumerate(hosts) if s is not None
    }
    if relay is not None:
        by_relay["192.0.2.99[192.0.2.99]:25"] = relay
    for outcome in report:
        assert (
            outcome.status[0]
            == {"relayed": "2", "delivered": "2", "deferred": "4", "bounced": "5"}[
                outcome.action.value
            ]
        )
        if outcome.action is not Action.RELAYED:
            continue
        server = by_relay[outcome.relay]
        seen = bytes(server.received)
        assert f"RCPT TO:<{outcome.recipient}>".encode() in seen
        end = seen.find(b"\r\n.\r\n")
        assert end >= 0, "delivered without the end of the message data"
        assert outcome.reply is not None
        first = outcome.reply.wire_lines[0].encode()
        assert any(first in chunk and at > end for at, chunk in server.said), (
            "the quoted reply was not sent after the end of data"
        )
