"""Transcripts recorded from Postfix 3.7 smtp(8)/lmtp(8), replayed through the whole core.

The server side of each transcript answers the core; everything the core
writes must equal, byte for byte, what Postfix wrote to the same server
(commands, pipelining groups, content, RSET, QUIT or no QUIT). The message
is the one Postfix sent (with its Received: header), un-stuffed.
"""

from __future__ import annotations

import pytest

from pyfix_smtp.config import Config
from pyfix_smtp.delivery import Action
from tests.test_connection_postfix import _envelope, _unstuff
from tests.test_delivery_support import MESSAGE, Server, World, deliver, request
from tests.transcripts.replay import POSTFIX_DIR, load_postfix, postfix_steps

NAMES = sorted(p.stem for p in POSTFIX_DIR.glob("*.json"))


def _run(name: str) -> tuple[Server, list[Action], dict[str, object]]:
    record = load_postfix(name)
    steps = postfix_steps(record)
    envelope = _envelope(record, steps)
    wire = next((t for d, t in steps if d == "C" and t.startswith(b"Received:")), b"")
    content = _unstuff(wire[: wire.find(b"\r\n.\r\n") + 5]) if wire else MESSAGE
    lmtp = bool(record["lmtp"])
    cfg = Config(
        protocol="lmtp" if lmtp else "smtp",
        myhostname=str(record["myhostname"]),
        smtp_send_xforward_command=True,
        smtp_tls_security_level="none",
        inet_protocols="ipv4",
    )
    world = World()
    server = Server([tuple(s) for s in steps], strict=True)
    world.servers[("192.0.2.1", 24 if lmtp else 25)] = server
    nexthop = "inet:[192.0.2.1]:24" if lmtp else "[192.0.2.1]"
    report = deliver(
        request(envelope=envelope, content=content, nexthop=nexthop, cfg=cfg, detect_8bit=False),
        world,
    )
    assert len(report) == len(envelope.recipients)
    return server, [o.action for o in report], record


@pytest.mark.parametrize("name", NAMES)
def test_core_writes_what_postfix_wrote(name: str) -> None:
    server, _actions, _record = _run(name)
    # every client step was checked; only replies the client does not wait for
    # (221 after QUIT with smtp_skip_quit_response = yes) may stay unread
    assert server.client_checked


EXPECTED = {
    "all_rcpt_rejected_pipelined": [Action.BOUNCED, Action.DEFERRED],
    "data_rejected": [Action.BOUNCED],
    "dot_rejected": [Action.BOUNCED],
    "lmtp_partial": [Action.RELAYED, Action.BOUNCED, Action.BOUNCED],
    "mail_rejected_pipelined": [Action.BOUNCED],
    "pipelined_plain": [Action.RELAYED],
    "size_too_big": [Action.BOUNCED],
    "some_rcpt_rejected": [Action.RELAYED, Action.BOUNCED, Action.RELAYED],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_outcomes_follow_the_servers_replies(name: str) -> None:
    _server, actions, _record = _run(name)
    assert actions == EXPECTED[name]
