"""``debug_peer_list``: Postfix's host name/address lists, and the conversation logged at DEBUG."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pyfix_smtp.delivery import Action
from pyfix_smtp.delivery.match_lists import PeerList
from pyfix_smtp.errors import ConfigError
from tests.test_delivery_support import EHLO, GREETING, World, config, deliver, happy, request

# Postfix util/match_list.c and match_ops.c, debug_peer_list being in
# parent_domain_matches_subdomains: (patterns, name, address, match)
CASES = [
    (["mx.example.net"], "mx.example.net", "192.0.2.1", True),
    (["MX.Example.NET"], "mx.example.net", "192.0.2.1", True),  # both sides casefolded
    (["example.net"], "mx.example.net", "192.0.2.1", True),  # parent domain style
    (["example.net"], "mxexample.net", "192.0.2.1", False),
    ([".example.net"], "mx.example.net", "192.0.2.1", False),  # dot form: not with parent style
    (["192.0.2.1"], "mx.example.net", "192.0.2.1", True),
    (["192.0.2.0/24"], "mx.example.net", "192.0.2.77", True),
    (["192.0.2.0/24"], "mx.example.net", "198.51.100.1", False),
    (["[2001:db8::1]"], "mx.example.net", "2001:db8::1", True),
    (["[2001:db8::]/32"], "mx.example.net", "2001:db8:0:0::5", True),
    (["[2001:0db8:0::1]"], "mx.example.net", "2001:db8::1", True),  # other spellings
    (["192.0.2.0/24"], "mx.example.net", "2001:db8::1", False),  # never across families
    (["!mx.example.net", "example.net"], "mx.example.net", "192.0.2.1", False),  # first wins
    (["!!mx.example.net"], "mx.example.net", "192.0.2.1", True),
    (["!other.example", "example.net"], "mx.example.net", "192.0.2.1", True),
    (["inline:{{mx.example.net=yes}}"], "mx.example.net", "192.0.2.1", True),
    (["inline:{{example.net=yes}}"], "mx.example.net", "192.0.2.1", True),  # fixed: parents
    (["inline:{{192.0.2.1=yes}}"], "mx.example.net", "192.0.2.1", True),
    (["pcre:{{/^mx\\./ yes}}"], "mx.example.net", "192.0.2.1", True),
    (["pcre:{{/^example/ yes}}"], "mx.example.net", "192.0.2.1", False),  # no parents
    (["example.net"], "mx.example.net", "noaddr", True),  # the nexthop check
    (["192.0.2.1"], "[192.0.2.1]", "noaddr", False),
]


@pytest.mark.parametrize(("patterns", "name", "address", "match"), CASES)
def test_peer_list_matches_like_namadr_list(
    patterns: list[str], name: str, address: str, match: bool
) -> None:
    assert PeerList(patterns).matches(name, address) is match


def test_peer_list_file_patterns(tmp_path: Path) -> None:
    listing = tmp_path / "peers"
    listing.write_text("# debug these\nmx.example.net\n  192.0.2.9\nother.example\n")
    peers = PeerList([f"!{listing}", "example.net"])
    assert not peers.matches("mx.example.net", "192.0.2.1")  # "!" applies to the file's items
    assert not peers.matches("x.example.org", "192.0.2.9")  # continuation line joined
    assert peers.matches("www.example.net", "192.0.2.1")


@pytest.mark.parametrize(
    ("patterns", "problem"),
    [(["!"], "no pattern"), (["192.0.2.1/24"], "host bits"), (["/no/such/file"], "cannot open")],
)
def test_peer_list_errors(patterns: list[str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        PeerList(patterns)


def test_empty_peer_list_is_false() -> None:
    assert not PeerList([])


MX = "mx1.example.net[192.0.2.1]:25"


def conversation(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.DEBUG and r.name == "pyfix_smtp.delivery"
    ]


@pytest.mark.parametrize(
    ("peers", "logged"),
    [
        ("mx1.example.net", True),
        ("192.0.2.0/24", True),
        ("example.net", True),  # a parent domain of the MX host
        ("!mx1.example.net, 192.0.2.1", False),
        ("", False),
    ],
)
def test_the_conversation_with_a_listed_peer_is_logged(
    caplog: pytest.LogCaptureFixture, peers: str, logged: bool
) -> None:
    world = World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")
    world.server("192.0.2.1", 25, happy(2))
    cfg = config(debug_peer_list=peers)
    with caplog.at_level(logging.DEBUG, logger="pyfix_smtp.delivery"):
        report = deliver(request(["a@example.net", "b@example.net"], cfg=cfg), world)
    assert [o.action for o in report] == [Action.RELAYED, Action.RELAYED]
    expected = [
        # Postfix smtp_chat.c at msg_verbose: commands as written, reply lines as read
        f"< {MX}: 220 mx.example.net ESMTP Postfix",
        f"> {MX}: EHLO client.example.org",
        *(f"< {MX}: {line}" for line in EHLO.decode().splitlines()),
        f"> {MX}: MAIL FROM:<sender@example.org> SIZE=87",
        f"> {MX}: RCPT TO:<a@example.net>",
        f"> {MX}: RCPT TO:<b@example.net>",
        f"> {MX}: DATA",
        f"< {MX}: 250 2.1.0 Ok",
        f"< {MX}: 250 2.1.5 Ok",
        f"< {MX}: 250 2.1.5 Ok",
        f"< {MX}: 354 End data with <CR><LF>.<CR><LF>",
        f"> {MX}: .",
        f"> {MX}: QUIT",
        f"< {MX}: 250 2.0.0 Ok: queued as 4ABC",
    ]
    assert conversation(caplog) == (expected if logged else [])


def test_a_listed_nexthop_logs_every_session(caplog: pytest.LogCaptureFixture) -> None:
    # smtp.c deliver_message(): debug_peer_check(request->nexthop, "noaddr")
    world = World().mx("example.com", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")
    for peers, logged in (("example.com", True), ("example.org", False)):
        caplog.clear()
        world.server("192.0.2.1", 25, happy())
        with caplog.at_level(logging.DEBUG, logger="pyfix_smtp.delivery"):
            deliver(request(nexthop="example.com", cfg=config(debug_peer_list=peers)), world)
        assert bool(conversation(caplog)) is logged


def test_sasl_data_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    world = World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")
    ehlo = EHLO.replace(b"250 DSN\r\n", b"250-DSN\r\n250 AUTH PLAIN LOGIN\r\n")
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", ehlo),
            ("S", b"334 VXNlcm5hbWU6\r\n"),
            ("S", b"334 UGFzc3dvcmQ6\r\n"),
            ("S", b"235 2.7.0 Authentication successful\r\n"),
            *happy()[2:],
        ],
    )
    cfg = config(
        debug_peer_list="mx1.example.net",
        smtp_sasl_auth_enable=True,
        smtp_sasl_password_maps="inline:{{mx1.example.net=user:secret}}",
        smtp_sasl_mechanism_filter="login",
        smtp_sasl_security_options="",
    )
    with caplog.at_level(logging.DEBUG, logger="pyfix_smtp.delivery"):
        (outcome,) = deliver(request(cfg=cfg), world).outcomes
    assert outcome.action is Action.RELAYED
    sent = [m for m in conversation(caplog) if m.startswith(">")]
    assert sent[1:4] == [f"> {MX}: AUTH LOGIN", f"> {MX}: [hidden]", f"> {MX}: [hidden]"]
    assert not any("c2VjcmV0" in m or "dXNlcg" in m for m in caplog.messages)


def test_long_reply_lines_are_cut_at_100_characters(caplog: pytest.LogCaptureFixture) -> None:
    world = World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")
    greeting = b"220 " + b"x" * 200 + b"\r\n"
    world.server("192.0.2.1", 25, [("S", greeting), *happy()[1:]])
    with caplog.at_level(logging.DEBUG, logger="pyfix_smtp.delivery"):
        deliver(request(cfg=config(debug_peer_list="192.0.2.1")), world)
    assert conversation(caplog)[0] == f"< {MX}: 220 " + "x" * 96  # smtp_chat_resp(): "%.100s"
