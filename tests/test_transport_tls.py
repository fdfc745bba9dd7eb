"""StartTls through both drivers: Postfix smtpd with the lab certificates, and a
small Python TLS server for SNI and for handshakes that fail or hang.

Policies come from :func:`pyfix_smtp.tls.policy.evaluate`, contexts from
:func:`pyfix_smtp.tls.context.build_context` (through the drivers' cache).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Generator, Iterator

import pytest

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
    FetchedPolicy,
    FetchStsPolicy,
    IoFailure,
    IoFailureKind,
    Receive,
    Send,
    StartTls,
    TlsEstablished,
    TlsFailed,
)
from pyfix_smtp.status import Failure
from pyfix_smtp.tls.options import TlsOptions
from pyfix_smtp.tls.policy import TlsPolicy, TlsTarget, evaluate
from pyfix_smtp.transport.aio import AsyncDriver, Connection, close_connection
from pyfix_smtp.transport.cache import ConnectionCache
from pyfix_smtp.transport.sync import (
    StsFetcher,
    SyncDriver,
    TlsContexts,
    close_socket,
    fetch_sts,
)
from tests.peers.certs import LabCerts
from tests.peers.mtasts import DEFAULT_POLICY, MtaStsServer
from tests.peers.postfix import PostfixSmtpd

pytestmark = pytest.mark.peers

Steps = Generator[Effect, EffectResult, object]
T = 5.0
HOST = "mx.example.test"

NOT_VERIFIED = Failure("4.7.5", "Server certificate not verified")
HANDSHAKE = Failure("4.7.5", "Cannot start TLS: handshake failure")


class _NoResolver:
    def lookup(self, query: object) -> object:
        raise AssertionError("no DNS here")


class Runner:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.contexts = TlsContexts()

    def run(self, *scripts: Callable[[], Steps]) -> list[object]:
        if self.kind == "sync":
            cache: ConnectionCache[socket.socket] = ConnectionCache(close_socket)
            try:
                return [
                    SyncDriver(_NoResolver(), cache, self.contexts).run(s())  # type: ignore[arg-type]
                    for s in scripts
                ]
            finally:
                cache.close_all()

        async def main() -> list[object]:
            acache: ConnectionCache[Connection] = ConnectionCache(close_connection)
            try:
                return [
                    await AsyncDriver(_NoResolver(), acache, self.contexts).run(s())  # type: ignore[arg-type]
                    for s in scripts
                ]
            finally:
                acache.close_all()

        return asyncio.run(main())


@pytest.fixture(params=["sync", "async"])
def runner(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


def reply(timeout: float = T) -> Generator[Effect, EffectResult, bytes]:
    """One complete (possibly multi-line) reply."""
    buf = b""
    while not buf.endswith(b"\r\n") or buf.rsplit(b"\r\n", 2)[-2][3:4] == b"-":
        got = yield Receive(timeout)
        assert isinstance(got, bytes), got
        assert got, "server closed the connection"
        buf += got
    return buf


def starttls_session(
    port: int, pol: TlsPolicy, *, implicit: bool = False, after: bool = True
) -> Steps:
    """Connect, (EHLO, STARTTLS,) handshake; then EHLO and QUIT over TLS."""
    endpoint = Endpoint(HOST, "127.0.0.1", port)
    assert isinstance((yield Connect(endpoint, T)), Connected)
    if not implicit:
        yield from reply()
        yield Send(b"EHLO client.example.org\r\n", T)
        ehlo = yield from reply()
        assert b"STARTTLS" in ehlo
        yield Send(b"STARTTLS\r\n", T)
        assert (yield from reply()).startswith(b"220 ")
    result = yield StartTls(pol, pol_options(pol), T)
    if not isinstance(result, TlsEstablished) or not after:
        yield Close(abort=True)
        return result, b""
    if implicit:
        yield from reply()
    yield Send(b"EHLO client.example.org\r\n", T)
    ehlo = yield from reply()
    yield Send(b"QUIT\r\n", T)
    yield from reply()
    yield Close()
    return result, ehlo


_OPTIONS: dict[int, TlsOptions] = {}


def pol_options(pol: TlsPolicy) -> TlsOptions:
    return _OPTIONS[id(pol)]


def make(port: int, level: str, **options: object) -> TlsPolicy:
    opts = TlsOptions(smtp_tls_security_level=level, **options)  # type: ignore[arg-type]
    target = TlsTarget(nexthop=f"[{HOST}]:{port}", domain=HOST, host=HOST, port=port)
    pol = evaluate(target, opts)
    _OPTIONS[id(pol)] = opts
    return pol


# -- Postfix smtpd --------------------------------------------------------------


def test_encrypt_returns_the_whole_chain(runner: Runner, postfix_smtpd: PostfixSmtpd) -> None:
    pol = make(postfix_smtpd.starttls_port, "encrypt")
    [(result, ehlo)] = runner.run(lambda: starttls_session(postfix_smtpd.starttls_port, pol))
    assert isinstance(result, TlsEstablished)
    certs = postfix_smtpd.certs
    assert result.chain == (certs.leaf_der, certs.ca_der)  # server.pem = leaf + CA
    assert result.version in ("TLSv1.2", "TLSv1.3")
    assert result.cipher
    assert result.bits >= 128
    assert result.pkix_verified is None  # not checked in the handshake at encrypt
    assert b"STARTTLS" not in ehlo  # the EHLO after TLS went over TLS


def test_verify_with_lab_ca(runner: Runner, postfix_smtpd: PostfixSmtpd) -> None:
    pol = make(
        postfix_smtpd.starttls_port, "verify", smtp_tls_CAfile=str(postfix_smtpd.certs.ca_pem)
    )
    [(result, _)] = runner.run(lambda: starttls_session(postfix_smtpd.starttls_port, pol))
    assert isinstance(result, TlsEstablished)
    assert result.pkix_verified is True


def test_verify_with_another_ca_fails(
    runner: Runner, postfix_smtpd: PostfixSmtpd, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import trustme

    other = tmp_path_factory.mktemp("otherca") / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    pol = make(postfix_smtpd.starttls_port, "verify", smtp_tls_CAfile=str(other))
    [(result, _)] = runner.run(lambda: starttls_session(postfix_smtpd.starttls_port, pol))
    assert isinstance(result, TlsFailed)
    assert result.failure == NOT_VERIFIED
    assert result.detail.startswith("certificate verification failed: ")


def test_implicit_tls(runner: Runner, postfix_smtpd: PostfixSmtpd) -> None:
    port = postfix_smtpd.tls_port
    pol = make(port, "encrypt", smtp_tls_wrappermode=True)
    [(result, ehlo)] = runner.run(lambda: starttls_session(port, pol, implicit=True))
    assert isinstance(result, TlsEstablished)
    assert ehlo.startswith(b"250-")


def test_bad_ca_file_is_a_configuration_problem(
    runner: Runner, postfix_smtpd: PostfixSmtpd
) -> None:
    pol = make(postfix_smtpd.starttls_port, "verify", smtp_tls_CAfile="/nonexistent/ca.pem")
    [(result, _)] = runner.run(lambda: starttls_session(postfix_smtpd.starttls_port, pol))
    assert isinstance(result, TlsFailed)
    assert result.failure == Failure("4.7.5", "client TLS configuration problem")
    assert "Certification Authority" in result.detail


def test_cached_tls_connection_is_reused(runner: Runner, postfix_smtpd: PostfixSmtpd) -> None:
    port = postfix_smtpd.starttls_port
    pol = make(port, "encrypt")
    endpoint = Endpoint(HOST, "127.0.0.1", port)

    def first() -> Steps:
        result, _ = yield from starttls_once(port, pol)
        now = time.time()
        yield CacheSave((endpoint.label,), CachedSession(endpoint, "tls", 1, now + 30, now + 300))
        return result

    def second() -> Steps:
        session = yield CacheTake((endpoint.label,))
        yield Send(b"RSET\r\n", T)
        rset = yield from reply()
        yield Send(b"QUIT\r\n", T)
        yield from reply()
        yield Close()
        return session, rset

    first_result, (session, rset) = runner.run(first, second)
    assert isinstance(first_result, TlsEstablished)
    assert isinstance(session, CachedSession)
    assert rset.startswith(b"250 ")


def starttls_once(
    port: int, pol: TlsPolicy
) -> Generator[Effect, EffectResult, tuple[object, bytes]]:
    endpoint = Endpoint(HOST, "127.0.0.1", port)
    yield Connect(endpoint, T)
    yield from reply()
    yield Send(b"EHLO c\r\n", T)
    yield from reply()
    yield Send(b"STARTTLS\r\n", T)
    yield from reply()
    result = yield StartTls(pol, pol_options(pol), T)
    yield Send(b"EHLO c\r\n", T)
    ehlo = yield from reply()
    return result, ehlo


def test_contexts_are_built_once(postfix_smtpd: PostfixSmtpd) -> None:
    contexts = TlsContexts()
    p1 = make(postfix_smtpd.starttls_port, "encrypt")
    p2 = make(postfix_smtpd.tls_port, "encrypt")  # another host, same TLS settings
    p3 = make(postfix_smtpd.tls_port, "encrypt", smtp_tls_mandatory_protocols=">=TLSv1.2")
    c1 = contexts.get(p1, pol_options(p1))
    assert contexts.get(p2, pol_options(p2)) is c1
    assert contexts.get(p3, pol_options(p3)) is not c1


# -- a Python TLS server: SNI, broken and silent handshakes ---------------------------


@contextlib.contextmanager
def starttls_server(certs: LabCerts, mode: str) -> Iterator[tuple[int, list[str | None]]]:
    """Greets, answers STARTTLS with 220, then: ``ok`` (handshake), ``garbage``, ``silent``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.server_pem, certs.server_key)
    names: list[str | None] = []

    def sni(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        names.append(name)

    ctx.sni_callback = sni  # type: ignore[assignment]
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    stop = threading.Event()

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.sendall(b"220 py.example.test ESMTP\r\n")
            conn.recv(100)  # STARTTLS
            conn.sendall(b"220 go ahead\r\n")
            if mode == "garbage":
                conn.recv(4096)  # ClientHello
                conn.sendall(b"this is not TLS\r\n" * 10)
            elif mode == "silent":
                stop.wait(10)
            else:
                with contextlib.suppress(OSError), ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(100)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], names
    finally:
        stop.set()
        server.close()
        thread.join(5)


def plain_starttls(port: int, pol: TlsPolicy, timeout: float = T) -> Steps:
    yield Connect(Endpoint(HOST, "127.0.0.1", port), T)
    yield from reply()
    yield Send(b"STARTTLS\r\n", T)
    yield from reply()
    result = yield StartTls(pol, pol_options(pol), timeout)
    yield Close(abort=True)
    return result


@pytest.mark.parametrize(("servername", "expected"), [("hostname", HOST), ("", None)])
def test_sni(runner: Runner, lab_certs: LabCerts, servername: str, expected: str | None) -> None:
    with starttls_server(lab_certs, "ok") as (port, names):
        pol = make(port, "encrypt", smtp_tls_servername=servername)
        assert pol.sni == expected
        [result] = runner.run(lambda: plain_starttls(port, pol))
    assert isinstance(result, TlsEstablished)
    assert names == [expected]


def test_garbage_instead_of_a_handshake(runner: Runner, lab_certs: LabCerts) -> None:
    with starttls_server(lab_certs, "garbage") as (port, _):
        pol = make(port, "may")
        [result] = runner.run(lambda: plain_starttls(port, pol))
    assert isinstance(result, TlsFailed)
    assert result.failure == HANDSHAKE


def test_silent_server_during_handshake(runner: Runner, lab_certs: LabCerts) -> None:
    with starttls_server(lab_certs, "silent") as (port, _):
        pol = make(port, "encrypt")
        started = time.monotonic()
        [result] = runner.run(lambda: plain_starttls(port, pol, timeout=0.3))
    assert time.monotonic() - started < 4
    assert isinstance(result, TlsFailed)
    assert result.failure == HANDSHAKE


def test_starttls_without_connection(runner: Runner) -> None:
    pol = make(25, "encrypt")

    def script() -> Steps:
        return (yield StartTls(pol, pol_options(pol), T))

    assert runner.run(script) == [IoFailure(IoFailureKind.ERROR, "no connection")]


# -- MTA-STS policy fetch (FetchStsPolicy) ------------------------------------------


def fetch_with(kind: str, fetcher: StsFetcher, effect: FetchStsPolicy) -> EffectResult:
    if kind == "sync":
        cache: ConnectionCache[socket.socket] = ConnectionCache(close_socket)
        return SyncDriver(_NoResolver(), cache, sts_fetcher=fetcher).execute(effect)  # type: ignore[arg-type]
    acache: ConnectionCache[Connection] = ConnectionCache(close_connection)
    driver = AsyncDriver(_NoResolver(), acache, sts_fetcher=fetcher)  # type: ignore[arg-type]
    return asyncio.run(driver.execute(effect))


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_fetch_sts_policy(kind: str, mta_sts_server: MtaStsServer, lab_certs: LabCerts) -> None:
    ctx = ssl.create_default_context(cafile=str(lab_certs.ca_pem))
    fetcher = functools.partial(
        fetch_sts, context=ctx, connect_to=(mta_sts_server.host, mta_sts_server.port)
    )
    effect = FetchStsPolicy("Example.Test.", 5.0)
    try:
        got = fetch_with(kind, fetcher, effect)
        assert got == FetchedPolicy(DEFAULT_POLICY.encode(), 200, "text/plain")
        assert mta_sts_server.requests[-1] == ("mta-sts.example.test", "/.well-known/mta-sts.txt")
        mta_sts_server.serve(b"gone", status=404)
        assert fetch_with(kind, fetcher, effect) == FetchedPolicy(b"gone", 404, "text/plain")
        mta_sts_server.serve(b"x" * 100)
        small = FetchStsPolicy("example.test", 5.0, max_bytes=50)
        assert fetch_with(kind, fetcher, small) == IoFailure(
            IoFailureKind.ERROR, "policy larger than 50 bytes"
        )
    finally:
        mta_sts_server.serve()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_fetch_sts_policy_untrusted_certificate(kind: str, mta_sts_server: MtaStsServer) -> None:
    # the system store does not know the lab CA: RFC 8461 §3.3 needs a valid certificate
    fetcher = functools.partial(fetch_sts, connect_to=(mta_sts_server.host, mta_sts_server.port))
    got = fetch_with(kind, fetcher, FetchStsPolicy("example.test", 5.0))
    assert isinstance(got, IoFailure)
    assert got.reason.startswith("certificate verification failed")


@contextlib.contextmanager
def injecting_server(certs: LabCerts) -> Iterator[int]:
    """Answers STARTTLS with 220 plus a forged plaintext reply, then offers TLS."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.server_pem, certs.server_key)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(2)

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.sendall(b"220 py.example.test ESMTP\r\n")
            conn.recv(100)  # STARTTLS
            conn.sendall(b"220 go ahead\r\n")
            time.sleep(0.1)
            conn.sendall(b"250 injected in plaintext\r\n")
            with contextlib.suppress(OSError), ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(100)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        thread.join(5)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_plaintext_after_starttls_reply_fails_the_handshake(kind: str, lab_certs: LabCerts) -> None:
    """Octets that arrive before the handshake never pass as TLS data (response injection)."""
    effects: list[Effect] = [
        Connect(Endpoint(HOST, "127.0.0.1", 0), T),
        Receive(T),
        Send(b"STARTTLS\r\n", T),
        Receive(T),
    ]
    with injecting_server(lab_certs) as port:
        effects[0] = Connect(Endpoint(HOST, "127.0.0.1", port), T)
        pol = make(port, "encrypt")
        start = StartTls(pol, pol_options(pol), T)
        if kind == "sync":
            sdriver = SyncDriver(_NoResolver(), ConnectionCache(close_socket))  # type: ignore[arg-type]
            replies = [sdriver.execute(e) for e in effects]
            time.sleep(0.3)  # the forged reply is in the socket buffer now
            result = sdriver.execute(start)
            sdriver.release()
        else:

            async def main() -> tuple[list[EffectResult], EffectResult]:
                driver = AsyncDriver(_NoResolver(), ConnectionCache(close_connection))  # type: ignore[arg-type]
                got = [await driver.execute(e) for e in effects]
                await asyncio.sleep(0.3)  # the forged reply is buffered now
                outcome = await driver.execute(start)
                driver.release()
                return got, outcome

            replies, result = asyncio.run(main())
    assert replies[3] == b"220 go ahead\r\n"
    assert isinstance(result, TlsFailed)
    assert result.failure == HANDSHAKE
