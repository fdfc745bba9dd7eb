"""The sync and asyncio drivers executing effects against real peers.

Each test is a scripted effect generator (what the delivery core will yield)
run by both drivers (``kind`` is ``sync`` or ``async``): Postfix smtp-sink
for SMTP, PIPELINING, refusals and LMTP, small Python servers for what a
real server will not do on purpose (never answer, drop the connection
mid-DATA, LMTP over a UNIX socket, observe the client's source address).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from pyfix_smtp import AsyncClient, Client, Config, Envelope
from pyfix_smtp.delivery.effects import (
    CachedSession,
    CacheSave,
    CacheTake,
    Close,
    Connect,
    Connected,
    Effect,
    EffectResult,
    Endpoint,
    GetTime,
    IoFailure,
    IoFailureKind,
    Receive,
    Send,
    Sleep,
)
from pyfix_smtp.delivery.report import DeliveryReport
from pyfix_smtp.transport.aio import AsyncDriver, Connection, close_connection
from pyfix_smtp.transport.cache import ConnectionCache
from pyfix_smtp.transport.sync import SyncDriver, close_socket
from tests.peers import free_port
from tests.peers.sink import SINK_HOSTNAME, Sink, SinkFactory

pytestmark = pytest.mark.peers

Steps = Generator[Effect, EffectResult, object]
T = 5.0  # per-effect timeout in the scripts

_FINAL = re.compile(rb"^\d{3}(?: [^\r\n]*)?\r\n", re.MULTILINE)


class _NoResolver:
    def lookup(self, query: object) -> object:
        raise AssertionError("these scripts do not resolve")


class Runner:
    """Runs scripts with one kind of driver; a cache outlives single runs."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def run(self, *scripts: Callable[[], Steps], max_size: int = 16) -> list[object]:
        """Run each script in turn with a fresh driver sharing one cache."""
        if self.kind == "sync":
            cache: ConnectionCache[socket.socket] = ConnectionCache(close_socket, max_size=max_size)
            try:
                return [SyncDriver(_NoResolver(), cache).run(s()) for s in scripts]  # type: ignore[arg-type]
            finally:
                cache.close_all()

        async def main() -> list[object]:
            acache: ConnectionCache[Connection] = ConnectionCache(
                close_connection, max_size=max_size
            )
            try:
                return [await AsyncDriver(_NoResolver(), acache).run(s()) for s in scripts]  # type: ignore[arg-type]
            finally:
                acache.close_all()

        return asyncio.run(main())

    def gather(self, scripts: list[Callable[[], Steps]]) -> list[object]:
        """Run the scripts concurrently (asyncio) or one after the other (sync)."""
        if self.kind == "sync":
            return self.run(*scripts)

        async def main() -> list[object]:
            acache: ConnectionCache[Connection] = ConnectionCache(close_connection)
            try:
                return list(
                    await asyncio.gather(
                        *(AsyncDriver(_NoResolver(), acache).run(s()) for s in scripts)  # type: ignore[arg-type]
                    )
                )
            finally:
                acache.close_all()

        return asyncio.run(main())


@pytest.fixture(params=["sync", "async"])
def runner(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


# -- script building blocks ---------------------------------------------------


def replies(
    count: int = 1, timeout: float = T
) -> Generator[Effect, EffectResult, bytes | IoFailure]:
    """Receive until *count* complete replies arrived; an EOF is IoFailure(EOF)."""
    buf = b""
    while len(_FINAL.findall(buf)) < count:
        got = yield Receive(timeout)
        if isinstance(got, IoFailure):
            return got
        assert isinstance(got, bytes)
        if not got:
            return IoFailure(IoFailureKind.EOF, "closed")
        buf += got
    return buf


def codes(text: bytes | IoFailure) -> list[int]:
    """The codes of the final reply lines."""
    assert isinstance(text, bytes), text
    return [int(m[:3]) for m in _FINAL.findall(text)]


def inet(port: int, host: str = "127.0.0.1", name: str = "mx.example.test") -> Endpoint:
    return Endpoint(name, host, port)


def transaction(
    endpoint: Endpoint,
    *,
    hello: bytes = b"EHLO client.example.org",
    rcpts: tuple[bytes, ...] = (b"b@example.net",),
    body: bytes = b"Subject: t\r\n\r\nhello\r\n",
    pipelined: bool = True,
    lmtp: bool = False,
) -> Steps:
    """Greeting, EHLO/LHLO, MAIL, RCPTs, DATA, body, QUIT; returns every reply code."""
    connected = yield Connect(endpoint, T)
    assert isinstance(connected, Connected), connected
    seen: list[int] = []
    seen += codes((yield from replies()))
    yield Send(hello + b"\r\n", T)
    seen += codes((yield from replies()))
    envelope = [b"MAIL FROM:<a@example.org>\r\n"] + [b"RCPT TO:<%s>\r\n" % r for r in rcpts]
    envelope.append(b"DATA\r\n")
    if pipelined:
        assert (yield Send(b"".join(envelope), T)) is None
        seen += codes((yield from replies(len(envelope))))
    else:
        for command in envelope:
            yield Send(command, T)
            seen += codes((yield from replies()))
    yield Send(body + b".\r\n", T)
    seen += codes((yield from replies(len(rcpts) if lmtp else 1)))
    yield Send(b"QUIT\r\n", T)
    seen += codes((yield from replies()))
    yield Close()
    return seen


# -- SMTP against smtp-sink ----------------------------------------------------------------


def test_pipelined_transaction(runner: Runner, smtp_sink: Sink) -> None:
    [seen] = runner.run(lambda: transaction(inet(smtp_sink.port)))
    assert seen == [220, 250, 250, 250, 354, 250, 221]


def test_one_command_at_a_time(runner: Runner, smtp_sink: Sink) -> None:
    script = lambda: transaction(  # noqa: E731
        inet(smtp_sink.port), rcpts=(b"b@example.net", b"c@example.net"), pipelined=False
    )
    [seen] = runner.run(script)
    assert seen == [220, 250, 250, 250, 250, 354, 250, 221]


def test_greeting_names_the_sink(runner: Runner, smtp_sink: Sink) -> None:
    def script() -> Steps:
        connected = yield Connect(inet(smtp_sink.port), T)
        greeting = yield from replies()
        yield Close()
        return connected, greeting

    [(connected, greeting)] = runner.run(script)
    assert isinstance(connected, Connected)
    assert connected.local_address == "127.0.0.1"
    assert greeting == f"220 {SINK_HOSTNAME} ESMTP\r\n".encode()


def test_rcpt_refused(runner: Runner, sink_factory: SinkFactory) -> None:
    sink = sink_factory.start(["-f", "RCPT"])  # hard-reject every RCPT TO
    [seen] = runner.run(lambda: transaction(inet(sink.port)))
    assert seen[:3] == [220, 250, 250]
    assert seen[3] // 100 == 5  # smtp-sink says "500 Error: command failed"


def test_lmtp_over_tcp(runner: Runner, sink_factory: SinkFactory) -> None:
    sink = sink_factory.start(["-L"])
    rcpts = (b"b@example.net", b"c@example.net", b"d@example.net")
    [seen] = runner.run(
        lambda: transaction(inet(sink.port), hello=b"LHLO c", rcpts=rcpts, lmtp=True)
    )
    # one reply per recipient after the final dot (RFC 2033 §4.2)
    assert seen == [220, 250, 250, 250, 250, 250, 354, 250, 250, 250, 221]


def test_ipv6(runner: Runner, sink_factory: SinkFactory) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
            port = probe.getsockname()[1]
    except OSError:
        pytest.skip("no IPv6 loopback here")
    sink = sink_factory.start(host="::1", port=port)
    [seen] = runner.run(lambda: transaction(inet(sink.port, "::1")))
    assert seen == [220, 250, 250, 250, 354, 250, 221]


def test_many_concurrent_sessions(runner: Runner, smtp_sink: Sink) -> None:
    results = runner.gather([lambda: transaction(inet(smtp_sink.port)) for _ in range(20)])
    assert results == [[220, 250, 250, 250, 354, 250, 221]] * 20


# -- connect failures -----------------------------------------------------------------------


def test_connection_refused(runner: Runner) -> None:
    port = free_port()

    def script() -> Steps:
        return (yield Connect(inet(port), T))

    assert runner.run(script) == [IoFailure(IoFailureKind.REFUSED, "Connection refused")]


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A listener whose accept queue is full: further SYNs are dropped (Linux)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        yield port
    finally:
        for s in fillers:
            s.close()
        server.close()


def test_connect_timeout(runner: Runner) -> None:
    with full_backlog() as port:

        def script() -> Steps:
            return (yield Connect(inet(port), 0.3))

        [result] = runner.run(script)
    assert result == IoFailure(IoFailureKind.TIMEOUT, "Connection timed out")


def test_bind_enforced_failure(runner: Runner, smtp_sink: Sink) -> None:
    def script() -> Steps:
        # TEST-NET-1 is no address of this host: bind() fails
        return (yield Connect(inet(smtp_sink.port), T, "192.0.2.1", bind_enforce=True))

    [result] = runner.run(script)
    assert result == IoFailure(
        IoFailureKind.BIND, "bind 192.0.2.1: Cannot assign requested address"
    )


def test_bind_failure_not_enforced_warns_and_connects(
    runner: Runner, smtp_sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    def script() -> Steps:
        connected = yield Connect(inet(smtp_sink.port), T, "[192.0.2.1]")
        yield Close()
        return connected

    with caplog.at_level(logging.WARNING, logger="pyfix_smtp.transport"):
        [result] = runner.run(script)
    assert result == Connected("127.0.0.1")
    assert "bind 192.0.2.1: Cannot assign requested address" in caplog.text


def test_malformed_bind_address(runner: Runner, smtp_sink: Sink) -> None:
    def script() -> Steps:
        return (yield Connect(inet(smtp_sink.port), T, "mail.example.org"))

    [result] = runner.run(script)
    assert result == IoFailure(IoFailureKind.BIND, "malformed bind address: mail.example.org")


class Responder:
    """A one-connection-at-a-time TCP or UNIX server running *handle* in a thread."""

    def __init__(self, handle: Callable[[socket.socket], None], unix_path: Path | None = None):
        if unix_path is not None:
            self.server = socket.socket(socket.AF_UNIX)
            self.server.bind(str(unix_path))
        else:
            self.server = socket.socket()
            self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.server.settimeout(10)
        self.handle = handle
        self.peers: list[object] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.getsockname()[1])

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.server.accept()
            except OSError:
                return
            self.peers.append(peer)
            with conn:
                try:
                    self.handle(conn)
                except OSError:
                    pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self.thread.join(5)


@contextlib.contextmanager
def responder(
    handle: Callable[[socket.socket], None], unix_path: Path | None = None
) -> Iterator[Responder]:
    server = Responder(handle, unix_path)
    try:
        yield server
    finally:
        server.close()


def test_bind_address_is_used(runner: Runner) -> None:
    def greet(conn: socket.socket) -> None:
        conn.sendall(b"220 hi\r\n")
        conn.recv(100)

    with responder(greet) as server:

        def script() -> Steps:
            connected = yield Connect(inet(server.port), T, "127.0.0.2", bind_enforce=True)
            yield from replies()
            yield Close()
            return connected

        [result] = runner.run(script)
    assert result == Connected("127.0.0.2")
    assert server.peers[0][0] == "127.0.0.2"  # type: ignore[index]


def _advertised_window_scale(conn: socket.socket) -> int:
    """The TCP window scale the client offered in its SYN (Linux TCP_INFO tcpi_snd_wscale)."""
    info = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return info[6] & 0x0F


@pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="needs Linux TCP_INFO")
@pytest.mark.parametrize("window_size", [0, 4096, 1 << 20])
def test_tcp_windowsize_is_set_before_connect(runner: Runner, window_size: int) -> None:
    # Postfix smtp_connect_addr(): set_inet_windowsize() before connect(), so
    # the receive buffer decides the window scale offered in the SYN.
    scales: list[int] = []

    def greet(conn: socket.socket) -> None:
        scales.append(_advertised_window_scale(conn))
        conn.sendall(b"220 hi\r\n")
        conn.recv(100)

    with responder(greet) as server:

        def script() -> Steps:
            connected = yield Connect(inet(server.port), T, window_size=window_size)
            yield from replies()
            yield Close()
            return connected

        [result] = runner.run(script)
        # what a plain socket with (or without) the same setting offers
        with socket.socket() as plain:
            if window_size:
                plain.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, window_size)
                plain.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, window_size)
            plain.connect(("127.0.0.1", server.port))
            plain.recv(100)
            plain.sendall(b"QUIT\r\n")
            server.thread.join(0.5)
    assert result == Connected("127.0.0.1")
    assert len(scales) == 2
    assert scales[0] == scales[1]
    if window_size == 4096:
        assert scales[0] == 0  # a 4 KiB window needs no scaling


@pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="needs Linux TCP_INFO")
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_tcp_windowsize_from_config(kind: str) -> None:
    # tcp_windowsize reaches the socket through the delivery core's Connect.
    scales: list[int] = []

    def smtp(conn: socket.socket) -> None:
        scales.append(_advertised_window_scale(conn))
        conn.sendall(b"220 sink ESMTP\r\n")
        data = b""
        for marker, reply in (
            (b"\r\n", b"250-sink\r\n250 PIPELINING\r\n"),
            (b"DATA\r\n", b"250 ok\r\n250 ok\r\n354 go\r\n"),
            (b"\r\n.\r\n", b"250 2.0.0 Ok\r\n"),
            (b"QUIT\r\n", b"221 bye\r\n"),
        ):
            while marker not in data:
                got = conn.recv(65536)
                if not got:
                    return
                data += got
            data = data[data.index(marker) + len(marker) :]
            conn.sendall(reply)

    cfg = Config(myhostname="client.example.test", tcp_windowsize=4096)
    env = Envelope(sender="a@example.test", recipients=["b@example.test"])
    with responder(smtp) as server:
        nexthop = f"[127.0.0.1]:{server.port}"
        if kind == "sync":
            with Client(cfg, cache_size=0) as client:
                report = client.deliver(env, b"Subject: w\r\n\r\nhi\r\n", nexthop)
        else:

            async def main() -> DeliveryReport:
                async with AsyncClient(cfg, cache_size=0) as client:
                    return await client.deliver(env, b"Subject: w\r\n\r\nhi\r\n", nexthop)

            report = asyncio.run(main())
    assert [o.status for o in report] == ["2.0.0"]
    assert scales == [0]  # a 4 KiB receive buffer needs no window scaling


def test_negative_window_size_is_refused() -> None:
    with pytest.raises(ValueError, match="window_size must be >= 0, not -1"):
        Connect(inet(25), T, window_size=-1)


# -- hanging and dropping servers --------------------------------------------------------


def test_server_that_never_answers(runner: Runner) -> None:
    release = threading.Event()

    def silent(conn: socket.socket) -> None:
        release.wait(10)

    with responder(silent) as server:

        def script() -> Steps:
            yield Connect(inet(server.port), T)
            got = yield Receive(0.3)
            yield Close()
            return got

        try:
            [result] = runner.run(script)
        finally:
            release.set()
    assert result == IoFailure(IoFailureKind.TIMEOUT, "Connection timed out")


def test_server_that_stops_reading_times_the_write_out(runner: Runner) -> None:
    # The write's time limit holds for a write that fills every buffer, and
    # what the socket took before is not sent twice.
    release = threading.Event()

    def stuck(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        release.wait(10)

    with responder(stuck) as server:

        def script() -> Steps:
            yield Connect(inet(server.port), T)
            sent = yield Send(b"x" * (16 << 20), 0.3)
            yield Close()
            return sent

        try:
            [result] = runner.run(script)
        finally:
            release.set()
    assert result == IoFailure(IoFailureKind.TIMEOUT, "Connection timed out")


def test_server_drops_mid_data(runner: Runner) -> None:
    def dropper(conn: socket.socket) -> None:
        conn.sendall(b"220 hi\r\n")
        conn.recv(100)  # MAIL RCPT DATA
        conn.sendall(b"250 ok\r\n250 ok\r\n354 go\r\n")
        conn.recv(1000)  # the first piece of content
        # RST instead of FIN: the client's next write or read fails
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    with responder(dropper) as server:

        def script() -> Steps:
            yield Connect(inet(server.port), T)
            yield from replies()
            yield Send(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", T)
            yield from replies(3)
            outcomes: list[EffectResult] = []
            chunk = b"x" * 1000 + b"\r\n"
            for _ in range(2000):  # 2 MB: the reset arrives while we send
                sent = yield Send(chunk * 64, T)
                if sent is not None:
                    outcomes.append(sent)
                    break
            if not outcomes:
                outcomes.append((yield Receive(T)))
            yield Close(abort=True)
            return outcomes[0]

        [result] = runner.run(script)
    assert result in (
        IoFailure(IoFailureKind.EOF, "Connection reset by peer"),
        IoFailure(IoFailureKind.EOF, "Broken pipe"),
    )


def test_server_closes_connection(runner: Runner) -> None:
    def closer(conn: socket.socket) -> None:
        conn.sendall(b"421 bye\r\n")

    with responder(closer) as server:

        def script() -> Steps:
            yield Connect(inet(server.port), T)
            got = []
            while True:
                data = yield Receive(T)
                got.append(data)
                if not data or isinstance(data, IoFailure):
                    break
            yield Close()
            return got

        [result] = runner.run(script)
    assert result == [b"421 bye\r\n", b""]  # b"" is the EOF


# -- LMTP over a UNIX-domain socket ------------------------------------------------------


def lmtp_responder(conn: socket.socket) -> None:
    """A minimal LMTP server: per-recipient replies after the final dot."""
    conn.sendall(b"220 lmtp.example.test LMTP ready\r\n")
    buf = b""
    rcpts = 0
    in_data = False
    while True:
        data = conn.recv(65536)
        if not data:
            return
        buf += data
        while True:
            if in_data:
                end = buf.find(b"\r\n.\r\n")
                if end < 0:
                    break
                buf = buf[end + 5 :]
                in_data = False
                conn.sendall(b"".join(b"250 2.0.0 <r%d> Saved\r\n" % i for i in range(rcpts)))
                continue
            line, sep, rest = buf.partition(b"\r\n")
            if not sep:
                break
            buf = rest
            verb = line[:4].upper()
            if verb == b"LHLO":
                conn.sendall(b"250-lmtp.example.test\r\n250 PIPELINING\r\n")
            elif verb == b"RCPT":
                rcpts += 1
                conn.sendall(b"250 2.1.5 Ok\r\n")
            elif verb == b"DATA":
                in_data = True
                buf = b"\r\n" + buf  # the first line may start with "."
                conn.sendall(b"354 go\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 Ok\r\n")


def test_lmtp_over_unix_socket(runner: Runner, tmp_path: Path) -> None:
    path = tmp_path / "lmtp"
    with responder(lmtp_responder, unix_path=path):
        endpoint = Endpoint(str(path), str(path), 0, unix=True)
        rcpts = (b"b@example.net", b"c@example.net")

        def only_transaction() -> Steps:
            return (yield from transaction(endpoint, hello=b"LHLO c", rcpts=rcpts, lmtp=True))

        [seen] = runner.run(only_transaction)
    assert seen == [220, 250, 250, 250, 250, 354, 250, 250, 221]


def test_unix_socket_missing(runner: Runner, tmp_path: Path) -> None:
    path = str(tmp_path / "nobody-listens")

    def script() -> Steps:
        return (yield Connect(Endpoint(path, path, 0, unix=True), T))

    [result] = runner.run(script)
    assert result == IoFailure(IoFailureKind.ERROR, "No such file or directory")


def test_unix_path_too_long(runner: Runner) -> None:
    path = "/tmp/" + "x" * 200

    def script() -> Steps:
        return (yield Connect(Endpoint(path, path, 0, unix=True), T))

    [result] = runner.run(script)
    assert isinstance(result, IoFailure)
    assert result.kind is IoFailureKind.ERROR
    assert "too long" in result.reason


# -- effects without a connection -------------------------------------------------------


def test_send_and_receive_without_connection(runner: Runner) -> None:
    def script() -> Steps:
        return ((yield Send(b"NOOP\r\n", T)), (yield Receive(T)))

    failure = IoFailure(IoFailureKind.ERROR, "no connection")
    assert runner.run(script) == [(failure, failure)]


def test_get_time(runner: Runner) -> None:
    import time

    def script() -> Steps:
        return (yield GetTime())

    before = time.time()
    [now] = runner.run(script)
    assert isinstance(now, float)
    assert before <= now <= time.time()


def test_sleep(runner: Runner) -> None:
    import time

    def script() -> Steps:
        return (yield Sleep(0.05))

    started = time.monotonic()
    assert runner.run(script) == [None]
    assert time.monotonic() - started >= 0.05


def test_sleep_keeps_the_dot_out_of_the_content_write(runner: Runner) -> None:
    # The PIX delay_dotcrlf workaround: what was sent before the pause
    # arrives by itself; the final "." comes after the pause.
    import time

    arrivals: list[tuple[float, bytes]] = []

    def reader(conn: socket.socket) -> None:
        conn.sendall(b"354 go ahead\r\n")
        data = b""
        while not data.endswith(b"\r\n.\r\n"):
            chunk = conn.recv(65536)
            if not chunk:
                return
            arrivals.append((time.monotonic(), chunk))
            data += chunk
        conn.sendall(b"250 2.0.0 Ok\r\n")

    body = b"Subject: x\r\n\r\n" + b"y" * 70 + b"\r\n"
    with responder(reader) as server:

        def script() -> Steps:
            yield Connect(inet(server.port), T)
            yield from replies()
            sent = yield Send(body, T)
            assert sent is None
            yield Sleep(0.3)
            sent = yield Send(b".\r\n", T)
            assert sent is None
            reply = yield from replies()
            yield Close()
            return reply

        [reply] = runner.run(script)
    assert codes(reply) == [250]  # type: ignore[arg-type]
    assert b"".join(chunk for _, chunk in arrivals) == body + b".\r\n"
    assert arrivals[-1][1] == b".\r\n"
    assert arrivals[-1][0] - arrivals[-2][0] >= 0.2


# -- the connection cache ----------------------------------------------------------------


def session_for(endpoint: Endpoint, lifetime: float = 60.0) -> CachedSession:
    import time

    now = time.time()
    return CachedSession(endpoint, "opaque core state", 1, now + lifetime, now + 300)


def test_cached_connection_is_reused(runner: Runner, smtp_sink: Sink) -> None:
    endpoint = inet(smtp_sink.port)
    labels = (f"[127.0.0.1]:{smtp_sink.port}", endpoint.label)

    def first() -> Steps:
        yield Connect(endpoint, T)
        yield from replies()
        yield Send(b"EHLO c\r\n", T)
        yield from replies()
        yield CacheSave(labels, session_for(endpoint))
        # nothing is current any more
        return (yield Send(b"NOOP\r\n", T))

    def second() -> Steps:
        session = yield CacheTake(("unknown-label", endpoint.label))
        yield Send(b"RSET\r\n", T)
        rset = yield from replies()
        again = yield CacheTake(labels)  # taken once: gone under every label
        yield Send(b"QUIT\r\n", T)
        yield from replies()
        yield Close()
        return session, rset, again

    after_save, (session, rset, again) = runner.run(first, second)
    assert after_save == IoFailure(IoFailureKind.ERROR, "no connection")
    assert isinstance(session, CachedSession)
    assert session.state == "opaque core state"
    assert codes(rset) == [250]
    assert again is None


def test_expired_connection_is_not_reused(runner: Runner, smtp_sink: Sink) -> None:
    endpoint = inet(smtp_sink.port)

    def first() -> Steps:
        yield Connect(endpoint, T)
        yield from replies()
        yield CacheSave((endpoint.label,), session_for(endpoint, lifetime=-1.0))
        return None

    def second() -> Steps:
        return (yield CacheTake((endpoint.label,)))

    assert runner.run(first, second) == [None, None]


def test_current_connection_closed_when_script_ends(runner: Runner) -> None:
    closed = threading.Event()

    def watch(conn: socket.socket) -> None:
        conn.sendall(b"220 hi\r\n")
        if conn.recv(100) == b"":
            closed.set()

    with responder(watch) as server:

        def script() -> Steps:
            yield Connect(inet(server.port), T)
            yield from replies()
            return "left open"

        assert runner.run(script) == ["left open"]
        assert closed.wait(5)


def test_script_exception_propagates_and_closes(runner: Runner, smtp_sink: Sink) -> None:
    def script() -> Steps:
        yield Connect(inet(smtp_sink.port), T)
        raise RuntimeError("core bug")

    with pytest.raises(RuntimeError, match="core bug"):
        runner.run(script)


def test_unknown_effect_is_a_type_error(runner: Runner) -> None:
    def script() -> Steps:
        yield "not an effect"  # type: ignore[misc]
        return None

    with pytest.raises(TypeError, match="not an effect"):
        runner.run(script)
