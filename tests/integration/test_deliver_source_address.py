"""The source address of new connections: ``inet_interfaces`` as Postfix uses it.

Postfix smtp_connect.c ``smtp_connect_addr()``: without ``smtp_bind_address``
(``smtp_bind_address6`` for IPv6) the client binds to the address of
``inet_interfaces`` when that list has exactly one address of the server's
family and it is not a loopback address ("When running as a virtual host,
bind to the virtual interface"); a bind that fails is only a warning.

The reference is a private Postfix smtp(8) with ``inet_interfaces`` set to
one of this host's non-loopback IPv4 addresses, delivering to a loopback
server: the server sees the connection come from that address. pyfix_smtp,
configured the same way, must connect from the same address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import uuid
from collections.abc import Iterator

import pytest

import pyfix_smtp
from pyfix_smtp import Action, AsyncClient, Client, Config, DeliveryReport, Envelope
from pyfix_smtp.dns.interfaces import local_addresses
from pyfix_smtp.testing import SinkServer
from tests.peers import require_peer
from tests.peers.delivery import MYHOSTNAME
from tests.peers.postfix_client import start_postfix_client

pytestmark = pytest.mark.peers

SENDER = "sender@example.org"
MESSAGE = b"From: sender@example.org\r\nTo: bob@example.net\r\nSubject: source\r\n\r\nHi.\r\n"


@pytest.fixture(scope="module")
def own_address() -> str:
    """One non-loopback IPv4 address of this host."""
    found = sorted(str(a) for a in local_addresses(("ipv4",)) if not a.is_loopback)
    if not found:
        require_peer("this host has no non-loopback IPv4 address to bind to")
    return found[0]


@pytest.fixture(scope="module")
def server() -> Iterator[SinkServer]:
    with SinkServer() as sink:
        yield sink


def deliver(mode: str, cfg: Config, nexthop: str, **client: object) -> DeliveryReport:
    """One message through Client or AsyncClient (no cache), addresses from *cfg*."""
    envelope = Envelope(SENDER, ["bob@example.net"])
    if mode == "sync":
        with Client(cfg, cache_size=0, **client) as sync:  # type: ignore[arg-type]
            return pyfix_smtp.deliver(envelope, MESSAGE, nexthop, cfg, client=sync)

    async def run() -> DeliveryReport:
        async with AsyncClient(cfg, cache_size=0, **client) as aio:  # type: ignore[arg-type]
            return await pyfix_smtp.deliver_async(envelope, MESSAGE, nexthop, cfg, client=aio)

    return asyncio.run(run())


def peers_of(server: SinkServer, before: int) -> list[str]:
    deadline = time.monotonic() + 10
    while len(server.sessions) <= before and time.monotonic() < deadline:
        time.sleep(0.02)
    return [s.peer for s in server.sessions[before:]]


@pytest.fixture(scope="module")
def postfix_peer(own_address: str, server: SinkServer) -> str:
    """The address Postfix smtp(8) connects from with ``inet_interfaces = own_address``."""
    before = len(server.sessions)
    postfix = start_postfix_client(
        services={"plain": {"smtp_tls_security_level": "none"}},
        routes={"example.net": f"plain:{server.nexthop}"},
        main_cf={"inet_interfaces": own_address},
    )
    try:
        postfix.submit(SENDER, ["bob@example.net"], MESSAGE + uuid.uuid4().hex.encode() + b"\r\n")
        (theirs,) = postfix.wait(["bob@example.net"])["bob@example.net"]
    finally:
        postfix.stop()
    assert theirs.status == "sent"
    (peer,) = peers_of(server, before)
    return peer


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_single_interface_address_is_the_source_like_postfix(
    mode: str, own_address: str, server: SinkServer, postfix_peer: str
) -> None:
    assert postfix_peer == own_address
    before = len(server.sessions)
    cfg = Config(myhostname=MYHOSTNAME, inet_interfaces=own_address, inet_protocols="ipv4")
    (outcome,) = deliver(mode, cfg, server.nexthop).outcomes
    assert outcome.action is Action.RELAYED
    assert peers_of(server, before) == [postfix_peer]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_failed_interface_bind_only_warns(
    mode: str, server: SinkServer, caplog: pytest.LogCaptureFixture
) -> None:
    # An inet_interfaces address this host does not have (Postfix would not
    # start with it; a library caller can still say so): the bind fails, a
    # warning is logged, and the connection goes out from any address --
    # even with smtp_bind_address_enforce, which covers smtp_bind_address only.
    absent = "198.51.100.7"
    assert ipaddress.ip_address(absent) not in local_addresses(("ipv4",))
    before = len(server.sessions)
    cfg = Config(myhostname=MYHOSTNAME, inet_protocols="ipv4", smtp_bind_address_enforce=True)
    with caplog.at_level(logging.WARNING, logger="pyfix_smtp"):
        (outcome,) = deliver(mode, cfg, server.nexthop, own_addresses=[absent]).outcomes
    assert outcome.action is Action.RELAYED
    assert peers_of(server, before) == ["127.0.0.1"]
    assert f"smtp_connect_addr: bind {absent}: Cannot assign requested address" in caplog.messages
