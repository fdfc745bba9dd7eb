"""Every wait uses the Postfix time limit of its stage; deadlines and smtp_min_data_rate."""

from __future__ import annotations

import pytest

from pyfix_smtp import Config
from pyfix_smtp.delivery import Action
from pyfix_smtp.delivery.effects import Connect, IoFailure, IoFailureKind, Receive, Send
from pyfix_smtp.dns.records import AddressRecord
from tests.test_delivery_support import GREETING, World, config, deliver, happy, request

LIMITS = {
    "smtp_connect_timeout": 11,
    "smtp_helo_timeout": 12,
    "smtp_mail_timeout": 13,
    "smtp_rcpt_timeout": 14,
    "smtp_data_init_timeout": 15,
    "smtp_data_xfer_timeout": 16,
    "smtp_data_done_timeout": 17,
    "smtp_quit_timeout": 18,
    "smtp_rset_timeout": 19,
}


def world() -> World:
    w = World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")
    w.server("192.0.2.1", 25, happy())
    return w


def test_each_wait_uses_its_stages_timeout() -> None:
    w = world()
    report = deliver(request(cfg=config(**LIMITS)), w)
    assert report.outcomes[0].action is Action.RELAYED
    (connect,) = w.of(Connect)
    assert connect.timeout == 11  # type: ignore[attr-defined]
    # greeting, EHLO reply, MAIL (pipelined group: the first reply awaited), end of data
    assert [e.timeout for e in w.of(Receive)] == [12, 12, 13, 17]  # type: ignore[attr-defined]
    # EHLO, MAIL..DATA, content (written while the end-of-data reply is awaited)
    # (the small message's one content write carries "." too: the end-of-data limit)
    assert [e.timeout for e in w.of(Send)] == [12, 13, 17]  # type: ignore[attr-defined]


def test_big_message_body_writes_use_the_data_transfer_timeout() -> None:
    w = world()
    content = (b"Subject: big\r\n\r\n" + b"x" * 76 + b"\r\n") * 20_000
    deliver(request(cfg=config(**LIMITS), content=content), w)
    timeouts = [e.timeout for e in w.of(Send)]  # type: ignore[attr-defined]
    assert timeouts[:2] == [12, 13]
    assert set(timeouts[2:-1]) == {16}
    assert timeouts[-1] == 17


def test_a_timeout_names_the_stage_it_happened_in() -> None:
    w = World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")
    w.server("192.0.2.1", 25, [("S", GREETING), ("TIMEOUT",)])
    (outcome,) = deliver(request(cfg=config(**LIMITS)), w).outcomes
    assert outcome.reason == (
        "conversation with mx1.example.net[192.0.2.1] timed out while performing the EHLO handshake"
    )


def test_per_request_deadline_counts_down_across_reads() -> None:
    w = World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")
    w.tick = 1.0  # every clock reading advances one second
    # the greeting arrives in three pieces: one request, one deadline
    w.server(
        "192.0.2.1",
        25,
        [("S", b"220 mx1"), ("S", b".example.net"), ("S", b" ESMTP\r\n"), *happy()[1:]],
    )
    cfg = config(smtp_per_request_deadline=True, **LIMITS)
    report = deliver(request(cfg=cfg), w)
    assert report.outcomes[0].action is Action.RELAYED
    first = [e.timeout for e in w.of(Receive)][:3]  # type: ignore[attr-defined]
    assert first == [12.0, 11.0, 10.0]


@pytest.mark.parametrize(
    ("settings", "deadline"),
    [
        ({}, False),
        ({"smtp_per_request_deadline": True}, True),
        # The old name only feeds the new one's default (mail_params.h
        # DEF_SMTP_REQ_DEADLINE); Postfix 3.11 never reads it at run time.
        ({"smtp_per_record_deadline": True}, True),
        ({"smtp_per_record_deadline": True, "smtp_per_request_deadline": False}, False),
    ],
)
def test_old_per_record_name_is_only_the_default(settings: dict[str, bool], deadline: bool) -> None:
    w = World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")
    w.tick = 1.0
    w.server(
        "192.0.2.1",
        25,
        [("S", b"220 mx1"), ("S", b".example.net"), ("S", b" ESMTP\r\n"), *happy()[1:]],
    )
    deliver(request(cfg=config(smtp_helo_timeout=12, **settings)), w)
    first = [e.timeout for e in w.of(Receive)][:3]  # type: ignore[attr-defined]
    assert first == ([12.0, 11.0, 10.0] if deadline else [12.0, 12.0, 12.0])


def test_an_expired_deadline_is_a_timeout() -> None:
    w = World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")
    w.tick = 5.0
    w.server("192.0.2.1", 25, [("S", b"220 mx1"), ("S", b".exa"), ("S", b"mple.net\r\n")])
    cfg = config(smtp_per_request_deadline=True, smtp_helo_timeout=9)
    (outcome,) = deliver(request(cfg=cfg), w).outcomes
    assert outcome.reason.startswith("conversation with mx1.example.net[192.0.2.1] timed out")


def test_bind_failure_with_enforce_is_a_configuration_error() -> None:
    w = World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")
    w.servers[("192.0.2.1", 25)] = IoFailure(IoFailureKind.BIND, "Cannot assign requested address")
    cfg = config(smtp_bind_address="198.51.100.7", smtp_bind_address_enforce=True)
    (outcome,) = deliver(request(cfg=cfg), w).outcomes
    assert (outcome.status, outcome.reason) == ("4.4.0", "server configuration error")
    (connect,) = w.of(Connect)
    assert connect.bind_address == "198.51.100.7"  # type: ignore[attr-defined]
    assert connect.bind_enforce  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("own", "server", "settings", "bind", "enforce"),
    [
        # one non-loopback address of the server's family: bind to it, a
        # failed bind only warns (smtp_bind_address_enforce is not read)
        (("192.0.2.200",), "192.0.2.1", {}, "192.0.2.200", False),
        (("192.0.2.200", "2001:db8::200"), "2001:db8::1", {}, "2001:db8::200", False),
        # two of that family (a loopback one counts), only a loopback one, or none: no bind
        (("192.0.2.200", "192.0.2.201"), "192.0.2.1", {}, None, False),
        (("::1", "2001:db8::200"), "2001:db8::1", {}, None, False),
        (("127.0.0.2",), "192.0.2.1", {}, None, False),
        (("2001:db8::200",), "192.0.2.1", {}, None, False),
        # smtp_bind_address(6) wins, and is enforced
        (
            ("192.0.2.200",),
            "192.0.2.1",
            {"smtp_bind_address": "198.51.100.7"},
            "198.51.100.7",
            True,
        ),
        (
            ("2001:db8::9",),
            "2001:db8::1",
            {"smtp_bind_address": "198.51.100.7"},
            "2001:db8::9",
            False,
        ),
    ],
)
def test_a_single_inet_interfaces_address_is_the_source_address(
    own: tuple[str, ...], server: str, settings: dict[str, str], bind: str | None, enforce: bool
) -> None:
    # Postfix smtp_connect.c smtp_connect_addr(): without smtp_bind_address(6),
    # "When running as a virtual host, bind to the virtual interface".
    w = World().mx("example.net", (10, "mx1.example.net"))
    rdtype = "AAAA" if ":" in server else "A"
    w.answer("mx1.example.net", rdtype, (AddressRecord(server),))
    w.server(server, 25, happy())
    cfg = config(inet_protocols="all", smtp_bind_address_enforce=True, **settings)
    (outcome,) = deliver(request(cfg=cfg, own_addresses=own), w).outcomes
    assert outcome.action is Action.RELAYED
    (connect,) = w.of(Connect)
    assert (connect.bind_address, connect.bind_enforce) == (bind, enforce)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("own", "bind"),
    [
        (("192.0.2.7",), "192.0.2.7"),
        (("192.0.2.7", "192.0.2.8"), None),
        (("127.0.0.1",), None),
        (None, None),  # our addresses unknown: no bind (no error either)
    ],
)
def test_lmtp_over_tcp_binds_to_the_single_inet_interfaces_address(
    own: tuple[str, ...] | None, bind: str | None
) -> None:
    # smtp_connect_addr() serves lmtp(8) too; LMTP has no best-MX check.
    w = World()
    w.server(
        "192.0.2.1",
        24,
        [
            ("S", b"220 lmtp.example.net LMTP\r\n"),
            ("S", b"250-lmtp.example.net\r\n250 PIPELINING\r\n"),
            ("S", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
            ("S", b"250 2.0.0 Saved\r\n"),
        ],
    )
    cfg = Config(protocol="lmtp", myhostname="client.example.org", inet_protocols="ipv4")
    req = request(nexthop="inet:[192.0.2.1]:24", cfg=cfg, own_addresses=own)
    (outcome,) = deliver(req, w).outcomes
    assert outcome.status == "2.0.0"
    (connect,) = w.of(Connect)
    assert connect.bind_address == bind  # type: ignore[attr-defined]


@pytest.mark.parametrize(("maps", "seen"), [("", True), ("inline:{{192.0.2.1=pipelining}}", False)])
def test_discard_ehlo_keyword_address_maps(maps: str, seen: bool) -> None:
    w = world()
    srv = w.servers[("192.0.2.1", 25)]
    cfg = config(smtp_discard_ehlo_keyword_address_maps=maps) if maps else config()
    deliver(request(cfg=cfg), w)
    writes = [e.data for e in w.of(Send)]  # type: ignore[attr-defined]
    # with PIPELINING discarded, MAIL goes out alone
    assert any(b"MAIL FROM:" in d and b"RCPT TO:" in d for d in writes) is seen
    assert srv is not None
