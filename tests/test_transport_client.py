"""The public API end to end: deliver(), deliver_async(), Client, AsyncClient.

Real peers: smtp-sink (plain, ``-f``/``-r`` refusals, ``-L`` LMTP, ``-d``
dumps), a Python LMTP responder on a UNIX socket, and Python servers that
never answer or drop the connection mid-DATA. Every test runs sync and
asyncio alike (``mode``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

import pyfix_smtp
from pyfix_smtp import Action, AsyncClient, Client, Config, DeliveryReport, Envelope
from tests.peers import free_port
from tests.peers.dns import DnsLab
from tests.peers.sink import Sink, SinkFactory
from tests.test_transport_content import dump_sink as dump_sink
from tests.test_transport_content import dumped
from tests.test_transport_drivers import lmtp_responder, responder

pytestmark = pytest.mark.peers

OWN = ("192.0.2.1", "198.51.100.1")  # our interfaces: none of the test servers', and
# two of them, so smtp(8)'s single-inet_interfaces bind rule does not apply
MESSAGE = b"Subject: client test\r\nFrom: a@example.org\r\n\r\nhello\r\n.dot line\r\n"
ENVELOPE = Envelope("a@example.org", ["b@example.net", "c@example.net"])


def nexthop(port: int) -> str:
    return f"[127.0.0.1]:{port}"


def config(port: int | None = None, **params: object) -> Config:
    settings: dict[str, object] = {"myhostname": "client.pyfix.test"}
    if port is not None:  # reuse connections to this nexthop (smtp_connection_cache_destinations)
        settings["smtp_connection_cache_destinations"] = (nexthop(port),)
    settings.update(params)
    return Config(**settings)  # type: ignore[arg-type]


class Mode:
    """Runs deliveries with one client, blocking or in one event loop."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def deliver_many(
        self,
        calls: list[tuple[Envelope, object, str, Config]],
        *,
        concurrent: bool = False,
        cache_size: int = 16,
    ) -> list[DeliveryReport]:
        if self.kind == "sync":
            with Client(cache_size=cache_size, own_addresses=OWN) as client:
                return [client.deliver(*call) for call in calls]

        async def main() -> list[DeliveryReport]:
            async with AsyncClient(cache_size=cache_size, own_addresses=OWN) as client:
                if concurrent:
                    return list(await asyncio.gather(*(client.deliver(*c) for c in calls)))
                return [await client.deliver(*call) for call in calls]

        return asyncio.run(main())

    def deliver(
        self, content: object, nexthop: str, cfg: Config, envelope: Envelope = ENVELOPE
    ) -> DeliveryReport:
        [report] = self.deliver_many([(envelope, content, nexthop, cfg)])
        return report


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> Mode:
    return Mode(request.param)


def actions(report: DeliveryReport) -> list[tuple[str, Action, str]]:
    return [(o.recipient, o.action, o.status) for o in report]


# -- the happy paths ---------------------------------------------------------------


def test_relayed_to_smtp_sink(mode: Mode, smtp_sink: Sink) -> None:
    report = mode.deliver(MESSAGE, nexthop(smtp_sink.port), config())
    assert actions(report) == [
        ("b@example.net", Action.RELAYED, "2.0.0"),
        ("c@example.net", Action.RELAYED, "2.0.0"),
    ]
    outcome = report.outcomes[0]
    assert outcome.relay == f"127.0.0.1[127.0.0.1]:{smtp_sink.port}"
    assert outcome.reply is not None
    assert outcome.reply.code == 250
    assert "status=sent (250 2.0.0 Ok" in report.log_lines()[0]


def test_refused_and_deferred_recipients(mode: Mode, sink_factory: SinkFactory) -> None:
    hard = sink_factory.start(["-f", "RCPT"])
    soft = sink_factory.start(["-r", "RCPT"])
    bounced = mode.deliver(MESSAGE, nexthop(hard.port), config())
    deferred = mode.deliver(MESSAGE, nexthop(soft.port), config())
    assert [o.action for o in bounced] == [Action.BOUNCED, Action.BOUNCED]
    assert [o.action for o in deferred] == [Action.DEFERRED, Action.DEFERRED]
    assert "(in reply to RCPT TO command)" in bounced.outcomes[0].reason


def test_each_outcome_and_event_is_logged_once(
    mode: Mode, sink_factory: SinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # The core logs every outcome (and every event line) once; the transport
    # adds no second copy.
    sink = sink_factory.start(["-r", "RCPT"])
    refused = free_port()
    for target in (nexthop(sink.port), nexthop(refused)):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="pyfix_smtp"):
            report = mode.deliver(MESSAGE, target, config(), envelope=ENVELOPE)
        logged = [r.getMessage() for r in caplog.records if r.name.startswith("pyfix_smtp")]
        assert [o.action for o in report] == [Action.DEFERRED, Action.DEFERRED]
        expected = [line.partition("warning: ")[2] or line for line in report.events]
        expected += report.log_lines()
        assert sorted(logged) == sorted(expected)
        assert len(logged) == len(set(logged))
    assert any("Connection refused" in line for line in report.events)


def test_the_config_is_not_hashed_per_delivery(
    smtp_sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hashing a Config hashes every parameter: derived options are found by
    # the Config's identity, for a Client and for the module-level deliver().
    cfg = config(smtp_sink.port)
    target = nexthop(smtp_sink.port)
    hashes: list[int] = []
    original = Config.__hash__

    def counting(self: Config) -> int:
        hashes.append(1)
        return original(self)

    with Client(cfg, own_addresses=OWN) as client:
        client.deliver(ENVELOPE, MESSAGE, target)  # the first one derives and remembers
        pyfix_smtp.deliver(ENVELOPE, MESSAGE, target, cfg)
        monkeypatch.setattr(Config, "__hash__", counting)
        hash(cfg)
        assert hashes == [1]  # the counter sees hashes
        hashes.clear()
        reports = [client.deliver(ENVELOPE, MESSAGE, target) for _ in range(3)]
        reports += [pyfix_smtp.deliver(ENVELOPE, MESSAGE, target, cfg) for _ in range(3)]
    pyfix_smtp.close_connections()
    assert all(o.action is Action.RELAYED for r in reports for o in r)
    assert hashes == []


def test_lmtp_over_tcp(mode: Mode, sink_factory: SinkFactory) -> None:
    sink = sink_factory.start(["-L"])
    report = mode.deliver(MESSAGE, f"inet:[127.0.0.1]:{sink.port}", config(protocol="lmtp"))
    # one reply per recipient after the dot; smtp-sink -L says "250 2.2.0 Ok"
    assert [o.status for o in report] == ["2.2.0", "2.2.0"]
    assert all(o.action in (Action.DELIVERED, Action.RELAYED) for o in report)


def test_lmtp_over_unix_socket(mode: Mode, tmp_path: Path) -> None:
    path = tmp_path / "lmtp"
    with responder(lmtp_responder, unix_path=path):
        report = mode.deliver(MESSAGE, f"unix:{path}", config(protocol="lmtp"))
    assert [o.status for o in report] == ["2.0.0", "2.0.0"]
    # Postfix names a UNIX-domain server $myhostname[path]
    assert report.outcomes[0].relay == f"client.pyfix.test[{path}]"


def test_many_concurrent_deliveries(smtp_sink: Sink) -> None:
    """20 tasks deliver 3 messages each through one AsyncClient."""
    cfg = config(smtp_sink.port)
    hop = nexthop(smtp_sink.port)

    async def main() -> list[DeliveryReport]:
        async with AsyncClient(own_addresses=OWN) as client:

            async def task() -> list[DeliveryReport]:
                return [await client.deliver(ENVELOPE, MESSAGE, hop, cfg) for _ in range(3)]

            waves = await asyncio.gather(*(task() for _ in range(20)))
            assert len(client.cache) == 20  # every connection went back to the cache
        return [r for wave in waves for r in wave]

    reports = asyncio.run(main())
    assert len(reports) == 60
    assert all(o.status == "2.0.0" for r in reports for o in r)
    uses = [r.outcomes[0].conn_use for r in reports]
    assert uses.count(1) == 20  # 20 connections, each used three times
    assert sorted(uses) == [1] * 20 + [2] * 20 + [3] * 20


def test_mx_lookup_through_the_dns_lab(mode: Mode, smtp_sink: Sink, dns_lab: DnsLab) -> None:
    """Resolve effects answered by the lab's unbound: MX 10 mx.example.test -> 127.0.0.1."""
    cfg = config(inet_protocols=("ipv4",))
    hop = f"{dns_lab.signed_zone}:{smtp_sink.port}"  # MX lookup, the sink's port
    if mode.kind == "sync":
        with Client(resolver=dns_lab.resolver(), own_addresses=OWN) as client:
            report = client.deliver(ENVELOPE, MESSAGE, hop, cfg)
    else:

        async def main() -> DeliveryReport:
            async with AsyncClient(resolver=dns_lab.async_resolver(), own_addresses=OWN) as c:
                return await c.deliver(ENVELOPE, MESSAGE, hop, cfg)

        report = asyncio.run(main())
    assert [o.status for o in report] == ["2.0.0", "2.0.0"]
    assert report.outcomes[0].relay == f"mx.example.test[127.0.0.1]:{smtp_sink.port}"


# -- connection reuse -----------------------------------------------------------------


def counting_smtp(
    connections: list[list[bytes]], close_after: int | None = None
) -> Callable[[socket.socket], None]:
    """A tiny SMTP server that records each connection's commands.

    With *close_after*, it closes the connection silently after that many
    messages (a server's idle timeout while the client keeps it cached).
    """

    def smtp(conn: socket.socket) -> None:
        lines: list[bytes] = []
        connections.append(lines)
        conn.sendall(b"220 count.example.test ESMTP\r\n")
        buf = b""
        in_data = False
        messages = 0
        while True:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            while b"\r\n" in buf:
                line, buf = buf.split(b"\r\n", 1)
                if in_data:
                    if line == b".":
                        in_data = False
                        conn.sendall(b"250 2.0.0 queued\r\n")
                        messages += 1
                        if messages == close_after:
                            return
                    continue
                lines.append(line.split(b" ")[0].upper())
                verb = lines[-1]
                if verb == b"EHLO":
                    conn.sendall(b"250-count.example.test\r\n250 PIPELINING\r\n")
                elif verb == b"DATA":
                    in_data = True
                    conn.sendall(b"354 go\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 2.0.0 ok\r\n")

    return smtp


def test_connection_is_reused_and_closed_with_quit(mode: Mode) -> None:
    """A Python server counts connections and sees the QUIT of Client.close()."""
    connections: list[list[bytes]] = []
    smtp = counting_smtp(connections)

    with responder(smtp) as server:
        cfg = config(server.port)
        call = (ENVELOPE, MESSAGE, nexthop(server.port), cfg)
        reports = mode.deliver_many([call, call, call])
        deadline = time.monotonic() + 5
        while (
            not connections or connections[-1][-1:] != [b"QUIT"]
        ) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert [r.outcomes[0].conn_use for r in reports] == [1, 2, 3]
    assert len(connections) == 1
    # a reused connection is probed with RSET (Postfix smtp_reuse.c); close() says QUIT
    assert connections[0] == [b"EHLO"] + [b"MAIL", b"RCPT", b"RCPT", b"DATA"] + (
        [b"RSET", b"MAIL", b"RCPT", b"RCPT", b"DATA"] * 2
    ) + [b"QUIT"]


def test_async_client_closes_expired_connections_without_a_delivery() -> None:
    # smtp_connection_cache_time_limit: the asyncio client's timer closes an
    # idle cached connection when it expires (as scache does, without QUIT).
    connections: list[list[bytes]] = []
    with responder(counting_smtp(connections)) as server:
        cfg = config(server.port, smtp_connection_cache_time_limit=1)

        async def main() -> tuple[int, int, list[int]]:
            async with AsyncClient(own_addresses=OWN) as client:
                reports = [
                    await client.deliver(ENVELOPE, MESSAGE, nexthop(server.port), cfg)
                    for _ in range(2)
                ]
                cached = len(client.cache)
                await asyncio.sleep(1.3)
                return cached, len(client.cache), [r.outcomes[0].conn_use for r in reports]

        cached, after, uses = asyncio.run(main())
    assert (cached, after, uses) == (1, 0, [1, 2])
    assert len(connections) == 1
    assert connections[0][-1] != b"QUIT"


def test_no_cache_means_a_connection_per_message(mode: Mode, smtp_sink: Sink) -> None:
    cfg = config(smtp_sink.port)
    call = (ENVELOPE, MESSAGE, nexthop(smtp_sink.port), cfg)
    reports = mode.deliver_many([call, call], cache_size=0)
    assert [r.outcomes[0].conn_use for r in reports] == [1, 1]


def test_default_clients_and_close_connections(smtp_sink: Sink) -> None:
    cfg = config(smtp_sink.port)
    hop = nexthop(smtp_sink.port)
    first = pyfix_smtp.deliver(ENVELOPE, MESSAGE, hop, cfg)
    second = pyfix_smtp.deliver(ENVELOPE, MESSAGE, hop, cfg)
    assert (first.outcomes[0].conn_use, second.outcomes[0].conn_use) == (1, 2)
    pyfix_smtp.close_connections()
    third = pyfix_smtp.deliver(ENVELOPE, MESSAGE, hop, cfg)
    assert third.outcomes[0].conn_use == 1
    pyfix_smtp.close_connections()

    # another thread has its own default client
    seen: list[int] = []

    def other() -> None:
        seen.append(pyfix_smtp.deliver(ENVELOPE, MESSAGE, hop, cfg).outcomes[0].conn_use)
        pyfix_smtp.close_connections()

    pyfix_smtp.deliver(ENVELOPE, MESSAGE, hop, cfg)
    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == [1]
    pyfix_smtp.close_connections()

    async def main() -> list[int]:
        a = await pyfix_smtp.deliver_async(ENVELOPE, MESSAGE, hop, cfg)
        b = await pyfix_smtp.deliver_async(ENVELOPE, MESSAGE, hop, cfg)
        pyfix_smtp.close_connections()
        return [a.outcomes[0].conn_use, b.outcomes[0].conn_use]

    assert asyncio.run(main()) == [1, 2]


def test_cached_connection_closed_by_the_server(mode: Mode) -> None:
    """The RSET probe finds the cached connection dead: a new one carries the mail."""
    connections: list[list[bytes]] = []
    with responder(counting_smtp(connections, close_after=1)) as server:
        cfg = config(server.port)
        call = (ENVELOPE, MESSAGE, nexthop(server.port), cfg)
        reports = mode.deliver_many([call, call])
    assert [[o.status for o in r] for r in reports] == [["2.0.0", "2.0.0"]] * 2
    assert [r.outcomes[0].conn_use for r in reports] == [1, 1]
    assert len(connections) == 2


# -- failures the drivers report ----------------------------------------------------


def test_connection_refused(mode: Mode) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = mode.deliver(MESSAGE, nexthop(port), config())
    outcome = report.outcomes[0]
    assert outcome.action is Action.DEFERRED
    assert outcome.status == "4.4.1"
    assert outcome.reason == f"connect to 127.0.0.1[127.0.0.1]:{port}: Connection refused"


def test_bind_address(mode: Mode, smtp_sink: Sink) -> None:
    hop = nexthop(smtp_sink.port)
    ok = mode.deliver(MESSAGE, hop, config(smtp_bind_address="127.0.0.2"))
    assert [o.status for o in ok] == ["2.0.0", "2.0.0"]
    enforced = config(smtp_bind_address="192.0.2.1", smtp_bind_address_enforce=True)
    failed = mode.deliver(MESSAGE, hop, enforced)
    assert [(o.status, o.reason) for o in failed] == [("4.4.0", "server configuration error")] * 2


def test_server_that_never_answers(mode: Mode) -> None:
    release = threading.Event()
    with responder(lambda conn: release.wait(10)) as server:
        started = time.monotonic()
        try:
            report = mode.deliver(MESSAGE, nexthop(server.port), config(smtp_helo_timeout=1))
        finally:
            release.set()
    assert time.monotonic() - started < 6
    outcome = report.outcomes[0]
    assert outcome.action is Action.DEFERRED
    assert outcome.status == "4.4.2"
    assert "timed out while receiving the initial server greeting" in outcome.reason


def test_server_drops_mid_data(mode: Mode) -> None:
    def dropper(conn: socket.socket) -> None:
        conn.sendall(b"220 drop.example.test ESMTP\r\n")
        conn.recv(1000)  # EHLO
        conn.sendall(b"250-drop.example.test\r\n250 PIPELINING\r\n")
        buf = b""
        while buf.count(b"\r\n") < 4:  # MAIL RCPT RCPT DATA
            buf += conn.recv(1000)
        conn.sendall(b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
        conn.recv(1000)  # some content
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    big = MESSAGE + (b"x" * 998 + b"\r\n") * 3000  # 3 MB: still sending when dropped
    with responder(dropper) as server:
        report = mode.deliver(big, nexthop(server.port), config())
    outcome = report.outcomes[0]
    assert outcome.action is Action.DEFERRED
    assert outcome.status == "4.4.2"
    # Where the loss shows depends on the socket buffers: a failed write
    # ("message body") or no reply to the final dot ("end of data").
    assert outcome.reason in (
        "lost connection with 127.0.0.1[127.0.0.1] while sending message body",
        "lost connection with 127.0.0.1[127.0.0.1] while sending end of data"
        " -- message may be sent more than once",
    )


# -- content forms into smtp-sink -d ---------------------------------------------------


def email_message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["Subject"] = "form test"
    msg.set_content("body line\n.dot line\n")
    return msg


CONTENT_FORMS: dict[str, Callable[[Path], object]] = {
    "bytes": lambda tmp: MESSAGE,
    "file": lambda tmp: (tmp / "m").open("rb"),
    "iterator": lambda tmp: iter([MESSAGE[:10], MESSAGE[10:33], MESSAGE[33:]]),
    "bytesio": lambda tmp: io.BytesIO(MESSAGE),
    "message": lambda tmp: email_message(),
}


@pytest.mark.parametrize("form", sorted(CONTENT_FORMS))
def test_content_forms_arrive_intact(
    mode: Mode, dump_sink: Sink, tmp_path: Path, form: str
) -> None:
    (tmp_path / "m").write_bytes(MESSAGE)
    dumped(dump_sink, 0)
    content = CONTENT_FORMS[form](tmp_path)
    one = Envelope("a@example.org", ["b@example.net"])
    try:
        report = mode.deliver(content, nexthop(dump_sink.port), config(), envelope=one)
    finally:
        close = getattr(content, "close", None)
        if callable(close):
            close()
    assert [o.status for o in report] == ["2.0.0"]
    expected = MESSAGE if form != "message" else bytes(email_message())
    expected = expected.replace(b"\r\n", b"\n")
    assert dumped(dump_sink, 1) == [expected + b"\n"]


# -- import cost --------------------------------------------------------------------


def test_import_does_not_load_the_network_stack() -> None:
    code = (
        "import sys, pyfix_smtp\n"
        "heavy = [m for m in ('asyncio', 'ssl', 'socket', 'dns.resolver', 'cryptography',"
        " 'pyfix_smtp.transport.client', 'pyfix_smtp.protocol') if m in sys.modules]\n"
        "print(heavy)\n"
        "pyfix_smtp.deliver\n"
        "print('pyfix_smtp.transport.client' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:2] == ["[]", "True"]


def test_import_loads_neither_the_config_nor_dataclasses() -> None:
    # ``import pyfix_smtp`` costs about a millisecond; Config, Reply and the
    # delivery API are loaded when first used.
    code = (
        "import sys, pyfix_smtp\n"
        "print([m for m in ('pyfix_smtp.config', 'pyfix_smtp.status', 'dataclasses', 'typing')"
        " if m in sys.modules])\n"
        "print(pyfix_smtp.Config.__name__, pyfix_smtp.Reply.__name__,"
        " pyfix_smtp.tls.dane.__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:2] == ["[]", "Config Reply pyfix_smtp.tls.dane"]


_LITERAL_DELIVERY = r"""
import socket, sys, threading
import pyfix_smtp

server = socket.create_server(("127.0.0.1", 0))
STEPS = [  # read until the first, then reply with the second
    (b"\r\n", b"250-sink\r\n250 PIPELINING\r\n"),
    (b"DATA\r\n", b"250 ok\r\n250 ok\r\n354 go\r\n"),
    (b"\r\n.\r\n", b"250 2.0.0 Ok\r\n"),
]

def serve():
    conn, _ = server.accept()
    conn.sendall(b"220 sink ESMTP\r\n")
    for end, reply in STEPS:
        data = b""
        while not data.endswith(end):
            data += conn.recv(65536)
        conn.sendall(reply)
    conn.recv(100)

threading.Thread(target=serve, daemon=True).start()
cfg = pyfix_smtp.Config(myhostname="client.example.test")
env = pyfix_smtp.Envelope(sender="a@example.test", recipients=["b@example.test"])
nexthop = f"[127.0.0.1]:{server.getsockname()[1]}"
report = pyfix_smtp.deliver(env, b"Subject: x\r\n\r\nhi\r\n", nexthop, cfg)
print(report.outcomes[0].status)
print([m for m in ("asyncio", "dns", "dns.resolver") if m in sys.modules])
"""


def test_a_delivery_to_a_literal_address_loads_no_dns_or_asyncio() -> None:
    # A nexthop without DNS and a Config without TLS: dnspython and asyncio
    # stay unloaded (they cost about 10 MiB and 25 ms).
    out = subprocess.run(
        [sys.executable, "-c", _LITERAL_DELIVERY],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split("\n")
    assert out[:2] == ["2.0.0", "[]"]


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'delivr'"):
        pyfix_smtp.delivr  # type: ignore[attr-defined]  # noqa: B018
