"""A scripted world for the delivery core: DNS, servers, TLS and a connection cache.

Scenario tests build a :class:`World` (DNS answers, one scripted
:class:`Server` per address and port), run
:func:`pyfix_smtp.delivery.core.deliver_steps` against it with
:func:`deliver` and look at the report, the effects the core asked for and
the bytes each server received. Nothing opens a socket.

A server script is a list of steps, replayed in order:

* ``("S", b"...")`` - what the server sends (one ``Receive`` returns it);
* ``("C", b"...")`` - what the client must have written by then (checked
  when the next ``S`` step is read; ``strict`` servers only);
* ``("EOF",)``, ``("TIMEOUT",)``, ``("RESET",)`` - the next ``Receive``
  sees end of file, a timeout or a connection reset;
* ``("SEND-EOF",)``, ``("SEND-TIMEOUT",)`` - the next ``Send`` fails;
* ``("SLEEP",)`` - the client pauses (a ``Sleep`` effect) here, before any
  further read; Sends before it succeed, so a ``SEND-*`` step after it fails
  the first write after the pause;
* ``("TLS", result)`` - the answer to ``StartTls``.

The tests at the end of this module check the world itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pyfix_smtp.config import Config
from pyfix_smtp.delivery.core import deliver_steps
from pyfix_smtp.delivery.effects import (
    CachedSession,
    CacheSave,
    CacheTake,
    Close,
    Connect,
    Connected,
    Effect,
    EffectResult,
    FetchedPolicy,
    FetchStsPolicy,
    GetTime,
    IoFailure,
    IoFailureKind,
    Receive,
    Resolve,
    ResolveMany,
    Send,
    Sleep,
    StartTls,
    TlsEstablished,
    TlsFailed,
)
from pyfix_smtp.delivery.report import DeliveryReport
from pyfix_smtp.delivery.request import DeliveryRequest, build_request
from pyfix_smtp.dns.records import AddressRecord, Answer, MxRecord, Query, Rcode, Record
from pyfix_smtp.protocol.envelope import Envelope

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts" / "postfix"

MESSAGE = (
    b"Subject: test\r\nFrom: sender@example.org\r\nTo: rcpt@example.net\r\n\r\n"
    b"Hello.\r\n.leading dot\r\n"
)
GREETING = b"220 mx.example.net ESMTP Postfix\r\n"
EHLO = (
    b"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-ENHANCEDSTATUSCODES\r\n"
    b"250-8BITMIME\r\n250 DSN\r\n"
)
EHLO_TLS = (
    b"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN\r\n"
)
OWN = ("192.0.2.200",)


class ScriptError(AssertionError):
    """The core did something the script did not expect."""


@dataclass
class Server:
    """One scripted server at one address and port."""

    steps: list[tuple[object, ...]]
    strict: bool = False
    received: bytearray = field(default_factory=bytearray)
    connections: int = 0
    closes: list[bool] = field(default_factory=list)
    _checked: int = 0
    _pos: int = 0

    def _next(self) -> tuple[object, ...] | None:
        while self._pos < len(self.steps):
            step = self.steps[self._pos]
            if step[0] == "C":
                want = step[1]
                assert isinstance(want, bytes)
                got = bytes(self.received[self._checked : self._checked + len(want)])
                if self.strict and got != want:
                    raise ScriptError(f"client wrote {got!r}, expected {want!r}")
                self._checked += len(want)
                self._pos += 1
                continue
            return step
        return None

    def receive(self) -> bytes | IoFailure:
        step = self._next()
        if step is None:
            return b""  # the script is over: end of file
        kind = step[0]
        if kind in ("SEND-EOF", "SEND-TIMEOUT", "TLS", "SLEEP"):
            raise ScriptError(f"Receive while the script expects {kind}")
        self._pos += 1
        if kind == "S":
            data = step[1]
            assert isinstance(data, bytes)
            return data
        if kind == "EOF":
            return b""
        if kind == "TIMEOUT":
            return IoFailure(IoFailureKind.TIMEOUT, "Connection timed out")
        if kind == "RESET":
            return IoFailure(IoFailureKind.ERROR, "Connection reset by peer")
        raise ScriptError(f"unknown step {step!r}")

    def _peek(self) -> tuple[int, tuple[object, ...] | None]:
        pos = self._pos
        while pos < len(self.steps) and self.steps[pos][0] == "C":
            pos += 1
        return pos, (self.steps[pos] if pos < len(self.steps) else None)

    def send(self, data: bytes) -> IoFailure | None:
        pos, step = self._peek()
        if step is not None and step[0] in ("SEND-EOF", "SEND-TIMEOUT"):
            self._next()
            self._pos = pos + 1
            if step[0] == "SEND-TIMEOUT":
                return IoFailure(IoFailureKind.TIMEOUT, "Connection timed out")
            return IoFailure(IoFailureKind.EOF, "Broken pipe")
        self.received += data
        return None

    def sleep(self) -> None:
        """The client pauses: use a ``SLEEP`` step if one is next (checked by ``done``)."""
        pos, step = self._peek()
        if step is not None and step[0] == "SLEEP":
            self._next()
            self._pos = pos + 1

    def start_tls(self) -> EffectResult:
        step = self._next()
        if step is None or step[0] != "TLS":
            raise ScriptError(f"StartTls but the script has {step!r}")
        self._pos += 1
        result = step[1]
        assert isinstance(result, TlsEstablished | TlsFailed | IoFailure)
        return result

    @property
    def text(self) -> str:
        """What the client sent, as text."""
        return self.received.decode("utf-8", "replace")

    @property
    def done(self) -> bool:
        """Every step was used."""
        return self._next() is None

    @property
    def client_checked(self) -> bool:
        """Every ``C`` step was checked (server lines after the last one may be unread)."""
        self._next()
        return all(step[0] != "C" for step in self.steps[self._pos :])


@dataclass
class World:
    """DNS, servers, clock and connection cache answering the core's effects."""

    dns: dict[tuple[str, str], Answer] = field(default_factory=dict)
    servers: dict[tuple[str, int], Server | IoFailure] = field(default_factory=dict)
    clock: float = 1_000_000.0
    tick: float = 0.01
    effects: list[Effect] = field(default_factory=list)
    cache: dict[str, list[tuple[CachedSession, Server]]] = field(default_factory=dict)
    sts: dict[str, FetchedPolicy | IoFailure] = field(default_factory=dict)
    current: Server | None = None

    # -- building ---------------------------------------------------------------

    def mx(self, domain: str, *hosts: tuple[int, str], authentic: bool = False) -> World:
        records = tuple(MxRecord(pref, host) for pref, host in hosts)
        self.answer(domain, "MX", records, authentic=authentic)
        return self

    def a(self, name: str, *addresses: str, authentic: bool = False) -> World:
        self.answer(name, "A", tuple(AddressRecord(a) for a in addresses), authentic=authentic)
        self.answer(name, "AAAA", (), rcode=Rcode.NODATA)
        return self

    def answer(
        self,
        name: str,
        rdtype: str,
        records: tuple[Record, ...],
        *,
        rcode: Rcode = Rcode.NOERROR,
        authentic: bool = False,
    ) -> None:
        if not records and rcode is Rcode.NOERROR:
            rcode = Rcode.NODATA
        self.dns[(name.lower(), rdtype)] = Answer(
            Query(name, rdtype), rcode, records, authentic=authentic, canonical_name=name
        )

    def server(self, address: str, port: int, steps: Iterable[tuple[object, ...]]) -> Server:
        srv = Server(list(steps))
        self.servers[(address, port)] = srv
        return srv

    def refuse(self, address: str, port: int, reason: str = "Connection refused") -> None:
        self.servers[(address, port)] = IoFailure(IoFailureKind.REFUSED, reason)

    # -- answering ----------------------------------------------------------------

    def resolve(self, query: Query) -> Answer:
        found = self.dns.get((query.name.lower(), query.rdtype))
        if found is None:
            return Answer(query, Rcode.NXDOMAIN, detail="Host not found")
        return Answer(
            query,
            found.rcode,
            found.records,
            authentic=found.authentic and query.dnssec,
            canonical_name=found.canonical_name,
        )

    def execute(self, effect: Effect) -> EffectResult:
        self.effects.append(effect)
        if isinstance(effect, GetTime):
            self.clock += self.tick
            return self.clock
        if isinstance(effect, Resolve):
            return self.resolve(effect.query)
        if isinstance(effect, ResolveMany):
            return tuple(self.resolve(q) for q in effect.queries)
        if isinstance(effect, Connect):
            if self.current is not None:
                raise ScriptError("Connect while a connection is current")
            ep = effect.endpoint
            target = self.servers.get((ep.address, ep.port))
            if target is None:
                return IoFailure(IoFailureKind.REFUSED, "Connection refused")
            if isinstance(target, IoFailure):
                return target
            target.connections += 1
            self.current = target
            return Connected("192.0.2.200")
        if isinstance(effect, Send):
            return self._current().send(effect.data)
        if isinstance(effect, Receive):
            return self._current().receive()
        if isinstance(effect, StartTls):
            return self._current().start_tls()
        if isinstance(effect, Close):
            self._current().closes.append(effect.abort)
            self.current = None
            return None
        if isinstance(effect, CacheSave):
            server = self._current()
            for label in effect.labels:
                self.cache.setdefault(label, []).append((effect.session, server))
            self.current = None
            return None
        if isinstance(effect, CacheTake):
            if self.current is not None:
                raise ScriptError("CacheTake while a connection is current")
            for label in effect.labels:
                entries = self.cache.get(label)
                if entries:
                    session, server = entries.pop(0)
                    for others in self.cache.values():
                        others[:] = [e for e in others if e[0] is not session]
                    self.current = server
                    return session
            return None
        if isinstance(effect, Sleep):
            # The core pauses only with a connection open (PIX delay_dotcrlf).
            if self.current is None:
                raise ScriptError("Sleep without a current connection")
            if isinstance(self.current, Server):
                self.current.sleep()
            self.clock += effect.seconds
            return None
        if isinstance(effect, FetchStsPolicy):
            return self.sts.get(effect.domain, IoFailure(IoFailureKind.REFUSED, "refused"))
        raise ScriptError(f"unexpected effect {effect!r}")

    def _current(self) -> Server:
        if self.current is None:
            raise ScriptError("I/O without a current connection")
        return self.current

    def of(self, kind: type) -> list[Effect]:
        """The effects of one type, in order."""
        return [e for e in self.effects if isinstance(e, kind)]


def deliver(request: DeliveryRequest, world: World) -> DeliveryReport:
    """Run the core against *world* to the end."""
    steps = deliver_steps(request)
    result: EffectResult = None
    count = 0
    while True:
        try:
            effect = steps.send(result)
        except StopIteration as stop:
            report = stop.value
            assert isinstance(report, DeliveryReport)
            return report
        count += 1
        if count > 100_000:
            raise ScriptError("the core does not finish")
        result = world.execute(effect)


def config(**overrides: object) -> Config:
    """A Config for scripted tests (our name is client.example.org)."""
    values: dict[str, object] = {
        "myhostname": "client.example.org",
        "smtp_tls_security_level": "none",
        "smtp_randomize_addresses": False,
        "inet_protocols": "ipv4",
    }
    values.update(overrides)
    return Config(**values)


def request(
    recipients: Iterable[str] = ("rcpt@example.net",),
    *,
    nexthop: str = "example.net",
    cfg: Config | None = None,
    content: bytes = MESSAGE,
    sender: str = "sender@example.org",
    envelope: Envelope | None = None,
    **kwargs: object,
) -> DeliveryRequest:
    """A request with sensible defaults for scripted tests."""
    env = envelope if envelope is not None else Envelope(sender, list(recipients))
    kwargs.setdefault("own_addresses", OWN)
    return build_request(
        env,
        content,
        nexthop=nexthop,
        config=cfg if cfg is not None else config(),
        **kwargs,  # type: ignore[arg-type]
    )


def happy(rcpts: int = 1, extra: Iterable[tuple[object, ...]] = ()) -> list[tuple[object, ...]]:
    """A server that accepts one message for *rcpts* recipients (pipelined)."""
    return [
        ("S", GREETING),
        ("S", EHLO),
        *transaction(rcpts),
        *extra,
    ]


def transaction(rcpts: int = 1) -> list[tuple[object, ...]]:
    """The replies to one pipelined transaction that succeeds."""
    return [
        (
            "S",
            b"250 2.1.0 Ok\r\n"
            + b"250 2.1.5 Ok\r\n" * rcpts
            + b"354 End data with <CR><LF>.<CR><LF>\r\n",
        ),
        ("S", b"250 2.0.0 Ok: queued as 4ABC\r\n"),
    ]


def transcript(name: str) -> dict[str, object]:
    """A transcript recorded from Postfix smtp(8) (tests/transcripts/postfix)."""
    data = json.loads((TRANSCRIPTS / f"{name}.json").read_text())
    assert isinstance(data, dict)
    return data


def server_side(name: str) -> list[tuple[object, ...]]:
    """The server steps of a recorded transcript, as a script."""
    steps = transcript(name)["steps"]
    assert isinstance(steps, list)
    return [("S", text.encode()) for kind, text in steps if kind == "S"]


# -- tests of the world itself ----------------------------------------------------------


def test_world_answers_dns_and_defaults_to_nxdomain() -> None:
    world = World().a("mx.example.net", "192.0.2.1")
    found = world.resolve(Query("mx.example.net", "A"))
    assert found.rcode is Rcode.NOERROR
    assert found.records == (AddressRecord("192.0.2.1"),)
    assert world.resolve(Query("nowhere.example", "MX")).rcode is Rcode.NXDOMAIN


def test_server_replays_steps_and_checks_client_bytes() -> None:
    srv = Server([("S", b"220 hi\r\n"), ("C", b"EHLO x\r\n"), ("S", b"250 ok\r\n")], strict=True)
    assert srv.receive() == b"220 hi\r\n"
    assert srv.send(b"EHLO x\r\n") is None
    assert srv.receive() == b"250 ok\r\n"
    assert srv.done
    bad = Server([("S", b"220 hi\r\n"), ("C", b"EHLO x\r\n"), ("S", b"250 ok\r\n")], strict=True)
    bad.receive()
    bad.send(b"HELO x\r\n")
    try:
        bad.receive()
    except ScriptError:
        pass
    else:
        raise AssertionError("a wrong client line must fail the script")
