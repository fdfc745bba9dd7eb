"""``debug_peer_list``: the SMTP conversation as Postfix's smtp(8) logs it for a listed peer.

A private Postfix client with ``debug_peer_list = 127.0.0.1`` and
``debug_peer_level = 1`` delivers a two-recipient message to a loopback
server and logs every command (``> host[addr]:port: ...``) and reply line
(``< host[addr]:port: ...``; smtp_chat.c). pyfix_smtp, with the same
settings, delivers the same message to the same server and must log the
same conversation at DEBUG on the ``pyfix_smtp.delivery`` logger. MAIL and
RCPT are compared without their parameters: Postfix's SIZE counts the
headers its cleanup(8) added and it sends an ORCPT for every recipient.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from pyfix_smtp import Action, Config, Envelope
from pyfix_smtp.testing import SinkServer
from tests.peers.delivery import MYHOSTNAME, Deliverer
from tests.peers.postfix_client import start_postfix_client

pytestmark = pytest.mark.peers

SENDER = "sender@example.org"
RECIPIENTS = ["bob@debug.test", "carol@debug.test"]
MESSAGE = b"From: sender@example.org\r\nSubject: debug peer\r\n\r\nHello.\r\n"
CHAT = re.compile(r"^([<>]) (\S+): (.*)$")


def comparable(lines: list[str]) -> list[str]:
    """The conversation lines with the MAIL/RCPT parameters left out."""
    out = []
    for line in lines:
        match = CHAT.match(line)
        assert match is not None, line
        text = match[3]
        if text.startswith(("MAIL FROM:", "RCPT TO:")):
            text = text.split(" ")[0] if text.startswith("MAIL") else " ".join(text.split(" ")[:2])
        out.append(f"{match[1]} {match[2]}: {text}")
    return out


@pytest.fixture(scope="module")
def server() -> Iterator[SinkServer]:
    with SinkServer() as sink:
        yield sink


@pytest.fixture(scope="module")
def postfix_chat(server: SinkServer) -> list[str]:
    """What Postfix smtp(8) logged of its conversation with the server."""
    postfix = start_postfix_client(
        services={"plain": {"smtp_tls_security_level": "none"}},
        routes={"debug.test": f"plain:{server.nexthop}"},
        main_cf={"debug_peer_list": "127.0.0.1", "debug_peer_level": "1"},
        myhostname=MYHOSTNAME,
    )
    try:
        postfix.submit(SENDER, RECIPIENTS, MESSAGE)
        postfix.wait(RECIPIENTS)
        log = postfix.log()
    finally:
        postfix.stop()
    chat = [
        line.split("]: ", 1)[1]
        for line in log.splitlines()
        if "postfix/smtp[" in line and re.search(r"\]: [<>] ", line)
    ]
    assert chat, log
    return chat


def test_conversation_is_logged_like_postfix(
    deliverer: Deliverer,
    server: SinkServer,
    postfix_chat: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = Config(
        myhostname=MYHOSTNAME,
        smtp_tls_security_level="none",
        debug_peer_list="127.0.0.1",
        debug_peer_level=1,
    )
    with caplog.at_level(logging.DEBUG, logger="pyfix_smtp.delivery"):
        report = deliverer(Envelope(SENDER, RECIPIENTS), MESSAGE, server.nexthop, cfg)
    assert [o.action for o in report] == [Action.RELAYED, Action.RELAYED]
    ours = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.DEBUG and CHAT.match(r.getMessage())
    ]
    theirs = comparable(postfix_chat)
    mine = comparable(ours)
    # The QUIT reply may arrive with the end-of-data reply: we log what came
    # in one read, Postfix only the lines it reads (it skips the QUIT reply).
    if mine[-1].endswith(": 221 2.0.0 Bye") and len(mine) == len(theirs) + 1:
        mine.pop()
    assert normalise(mine) == normalise(theirs)


def normalise(lines: list[str]) -> list[str]:
    return [re.sub(r"queued as \w+", "queued as X", line) for line in lines]


def test_no_conversation_for_other_peers(
    deliverer: Deliverer, server: SinkServer, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = Config(myhostname=MYHOSTNAME, debug_peer_list="192.0.2.0/24, other.example")
    with caplog.at_level(logging.DEBUG, logger="pyfix_smtp.delivery"):
        deliverer(Envelope(SENDER, RECIPIENTS), MESSAGE, server.nexthop, cfg)
    assert not [r for r in caplog.records if CHAT.match(r.getMessage())]
