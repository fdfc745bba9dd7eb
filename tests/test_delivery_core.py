"""The delivery core against scripted servers: sites, MX order, limits, leftovers, LMTP."""

from __future__ import annotations

import pytest

from pyfix_smtp.config import Config
from pyfix_smtp.delivery import Action
from pyfix_smtp.delivery.effects import CacheSave, Close, Connect, Resolve
from pyfix_smtp.delivery.report import format_delay
from pyfix_smtp.dns.records import Rcode
from tests.test_delivery_support import (
    GREETING,
    World,
    config,
    deliver,
    happy,
    request,
    transaction,
)


def mx_world() -> World:
    return World().mx("example.net", (10, "mx.example.net")).a("mx.example.net", "192.0.2.1")


def test_one_message_to_one_mx_host() -> None:
    world = mx_world()
    srv = world.server("192.0.2.1", 25, happy(2))
    report = deliver(request(["a@example.net", "b@example.net"]), world)
    assert [o.action for o in report] == [Action.RELAYED, Action.RELAYED]
    assert [o.status for o in report] == ["2.0.0", "2.0.0"]
    assert report.outcomes[0].reason == "250 2.0.0 Ok: queued as 4ABC"
    assert report.outcomes[0].relay == "mx.example.net[192.0.2.1]:25"
    assert srv.text.startswith(
        "EHLO client.example.org\r\n"
        "MAIL FROM:<sender@example.org> SIZE=87\r\n"
        "RCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
    )
    assert srv.text.endswith("\r\n..leading dot\r\n.\r\nQUIT\r\n")
    assert [e.query.rdtype for e in world.of(Resolve)] == ["MX", "A"]  # type: ignore[attr-defined]
    assert world.of(Close) == [Close(abort=False)]
    assert srv.done


def test_log_line_is_postfix_format(caplog: pytest.LogCaptureFixture) -> None:
    world = mx_world()
    world.server("192.0.2.1", 25, happy())
    with caplog.at_level("INFO", logger="pyfix_smtp.delivery"):
        report = deliver(request(queue_id="4QX"), world)
    line = report.log_lines()[0]
    assert line.startswith("4QX: to=<rcpt@example.net>, relay=mx.example.net[192.0.2.1]:25, delay=")
    assert line.endswith(", dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4ABC)")
    assert line in caplog.messages


@pytest.mark.parametrize(
    ("settings", "to", "delay_digits"),
    [
        ({}, '"john doe"@example.net', 2),
        ({"info_log_address_format": "internal"}, "john doe@example.net", 2),
        ({"delay_logging_resolution_limit": 4}, '"john doe"@example.net', 4),
    ],
)
def test_logged_lines_and_report_lines_agree(
    caplog: pytest.LogCaptureFixture, settings: dict[str, object], to: str, delay_digits: int
) -> None:
    # info_log_address_format (global/info_log_addr_form.c) and
    # delay_logging_resolution_limit apply to the logged lines and to
    # DeliveryReport.log_lines() alike.
    world = mx_world()
    world.tick = 0.0012345
    world.server("192.0.2.1", 25, happy())
    with caplog.at_level("INFO", logger="pyfix_smtp.delivery"):
        report = deliver(request(['"john doe"@example.net'], cfg=config(**settings)), world)
    assert report.outcomes[0].recipient == "john doe@example.net"  # internal form
    (line,) = report.log_lines()
    assert line.startswith(f"to=<{to}>, relay=")
    assert line in caplog.messages
    times = report.outcomes[0].times
    assert times is not None
    assert f", delay={format_delay(times.total, 2, delay_digits)}, " in line


def test_literal_nexthop_needs_no_dns() -> None:
    world = World()
    world.server("192.0.2.9", 2525, happy())
    report = deliver(request(nexthop="[192.0.2.9]:2525"), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert world.of(Resolve) == []
    assert world.of(Connect)[0].endpoint.label == "192.0.2.9[192.0.2.9]:2525"  # type: ignore[attr-defined]


# -- sites, limits and the final server -------------------------------------------------------


BUSY = [("S", b"421 4.3.2 Service not available\r\n")]


def mx_list(count: int) -> World:
    hosts = [(10 * (i + 1), f"mx{i + 1}.example.net") for i in range(count)]
    world = World().mx("example.net", *hosts)
    for i in range(count):
        world.a(f"mx{i + 1}.example.net", f"192.0.2.{i + 1}")
    return world


def test_mx_hosts_are_tried_in_preference_order_until_one_takes_the_mail() -> None:
    world = mx_list(3)
    world.refuse("192.0.2.1", 25)
    world.server("192.0.2.2", 25, BUSY)
    world.server("192.0.2.3", 25, happy())
    report = deliver(request(), world)
    assert report.outcomes[0].relay == "mx3.example.net[192.0.2.3]:25"
    assert [e.endpoint.address for e in world.of(Connect)] == [  # type: ignore[attr-defined]
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.3",
    ]


def test_address_limit_counts_failed_connects() -> None:
    world = mx_list(3)
    world.refuse("192.0.2.1", 25)
    world.refuse("192.0.2.2", 25, "Connection timed out")
    third = world.server("192.0.2.3", 25, happy())
    (outcome,) = deliver(request(cfg=config(smtp_mx_address_limit=2)), world).outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.4.1")
    assert outcome.reason == "connect to mx2.example.net[192.0.2.2]:25: Connection timed out"
    assert third.connections == 0


def test_session_limit_counts_good_handshakes_only() -> None:
    later = ("S", b"250 2.1.0 Ok\r\n450 4.2.0 <rcpt@example.net>: later\r\n554 5.5.1 no\r\n")
    world = mx_list(4)
    world.server("192.0.2.1", 25, BUSY)  # handshake error: not counted
    world.server("192.0.2.2", 25, [("S", GREETING), *happy()[1:2], later])
    world.server("192.0.2.3", 25, [("S", GREETING), *happy()[1:2], later])
    fourth = world.server("192.0.2.4", 25, happy())
    (outcome,) = deliver(request(cfg=config(smtp_mx_session_limit=2)), world).outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.2.0")
    assert outcome.relay == "mx3.example.net[192.0.2.3]:25"  # the final server
    assert fourth.connections == 0


def test_fallback_relay_after_the_nexthop() -> None:
    world = mx_list(1)
    world.server("192.0.2.1", 25, BUSY)
    world.server("192.0.2.50", 25, happy())
    report = deliver(request(cfg=config(smtp_fallback_relay="[192.0.2.50]")), world)
    assert report.outcomes[0].relay == "192.0.2.50[192.0.2.50]:25"


def test_hard_error_at_the_last_fallback_relay_becomes_4_3_5() -> None:
    world = mx_list(1)
    world.server("192.0.2.1", 25, BUSY)
    world.server("192.0.2.50", 25, [("S", b"554 5.7.1 relay refused\r\n")])
    cfg = config(smtp_fallback_relay="[192.0.2.50]", smtp_skip_5xx_greeting=False)
    report = deliver(request(cfg=cfg), world)
    (outcome,) = report.outcomes
    # the greeting's 5xx bounced at once (a hard error at the final server)
    assert outcome.action is Action.BOUNCED
    # a lookup failure of the relay is a hard status left over after all sites: 4.3.5
    world = mx_list(1)
    world.server("192.0.2.1", 25, BUSY)
    cfg = config(smtp_fallback_relay="[relay.invalid]")
    report = deliver(request(cfg=cfg), world)
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.3.5")
    assert "warning: smtp_fallback_relay configuration problem" in report.events


def test_hard_dns_failure_of_the_relayhost_is_4_3_5() -> None:
    world = World()
    cfg = config(relayhost="[relay.invalid]")
    report = deliver(request(cfg=cfg, nexthop="[relay.invalid]"), world)
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.3.5")
    # the same without relayhost bounces
    (outcome,) = deliver(request(nexthop="[relay.invalid]"), World()).outcomes
    assert outcome.action is Action.BOUNCED
    # or when the caller says the nexthop is the relayhost
    report = deliver(request(nexthop="[relay.invalid]", nexthop_is_relayhost=True), World())
    assert report.outcomes[0].status == "4.3.5"


def test_domain_without_mx_uses_its_own_address() -> None:
    world = World().a("example.net", "192.0.2.7")
    world.answer("example.net", "MX", (), rcode=Rcode.NODATA)
    world.server("192.0.2.7", 25, happy())
    report = deliver(request(), world)
    assert report.outcomes[0].relay == "example.net[192.0.2.7]:25"


def test_unknown_domain_bounces() -> None:
    (outcome,) = deliver(request(), World()).outcomes
    assert outcome.action is Action.BOUNCED
    assert outcome.status.startswith("5.")
    assert outcome.relay == "none"


# -- LMTP ----------------------------------------------------------------------------------------

LHLO = b"250-lmtp.example.net\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n"


def lmtp_script() -> list[tuple[object, ...]]:
    return [
        ("S", b"220 lmtp.example.net LMTP ready\r\n"),
        ("S", LHLO),
        ("S", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
        ("S", b"250 2.0.0 <a@example.net> Saved\r\n452 4.2.2 <b@example.net> Quota exceeded\r\n"),
    ]


def test_lmtp_over_a_unix_socket_has_one_reply_per_recipient() -> None:
    world = World()
    srv = world.server("/run/dovecot/lmtp", 0, lmtp_script())
    cfg = Config(protocol="lmtp", myhostname="client.example.org", lmtp_assume_final=True)
    report = deliver(
        request(["a@example.net", "b@example.net"], nexthop="unix:/run/dovecot/lmtp", cfg=cfg),
        world,
    )
    assert [o.action for o in report] == [Action.DELIVERED, Action.DEFERRED]
    assert report.outcomes[0].relay == "client.example.org[/run/dovecot/lmtp]"
    assert report.outcomes[1].reason == (
        "host client.example.org[/run/dovecot/lmtp] said: 452 4.2.2 <b@example.net> Quota"
        " exceeded (in reply to end of DATA command)"
    )
    assert srv.text.startswith("LHLO client.example.org\r\n")
    (connect,) = world.of(Connect)
    assert connect.endpoint.unix  # type: ignore[attr-defined]


def test_lmtp_relayed_unless_assume_final() -> None:
    world = World()
    world.server("192.0.2.8", 24, lmtp_script())
    cfg = Config(protocol="lmtp", myhostname="client.example.org", inet_protocols="ipv4")
    report = deliver(
        request(["a@example.net", "b@example.net"], nexthop="inet:[192.0.2.8]:24", cfg=cfg), world
    )
    assert [o.action for o in report] == [Action.RELAYED, Action.DEFERRED]


def test_lmtp_unix_socket_refused() -> None:
    world = World()
    world.refuse("/run/lmtp", 0, "No such file or directory")
    cfg = Config(protocol="lmtp", myhostname="client.example.org")
    (outcome,) = deliver(request(nexthop="unix:/run/lmtp", cfg=cfg), world).outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.4.1")
    assert outcome.reason == "connect to client.example.org[/run/lmtp]: No such file or directory"


def test_lmtp_unix_session_is_cached_under_its_path() -> None:
    world = World()
    srv = world.server(
        "/run/lmtp",
        0,
        [*lmtp_script()[:2], *transaction(), ("S", b"250 2.0.0 Ok\r\n"), *transaction()],
    )
    cfg = Config(protocol="lmtp", myhostname="client.example.org")
    for _ in range(2):
        report = deliver(request(nexthop="unix:/run/lmtp", cfg=cfg, connection_cache=True), world)
        assert report.outcomes[0].action is Action.RELAYED
    assert srv.connections == 1
    assert len(world.of(CacheSave)) == 2


# -- address verification probes -----------------------------------------------------------


def test_probe_stops_at_rcpt_with_rset_instead_of_data() -> None:
    world = mx_list(1)
    srv = world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            *happy()[1:2],
            (
                "S",
                b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <b@example.net>: unknown\r\n"
                b"250 2.0.0 Ok\r\n",
            ),
        ],
    )
    report = deliver(request(["a@example.net", "b@example.net"], verify_probe=True), world)
    assert [o.action for o in report] == [Action.RELAYED, Action.BOUNCED]
    assert report.outcomes[0].reason == "250 2.1.5 Ok"
    assert "DATA" not in srv.text
    assert srv.text.endswith("RCPT TO:<b@example.net>\r\nRSET\r\nQUIT\r\n")


def test_probe_with_target_data_drops_the_connection_after_354() -> None:
    world = mx_list(1)
    srv = world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            *happy()[1:2],
            ("S", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"),
        ],
    )
    cfg = config(smtp_address_verify_target="data")
    (outcome,) = deliver(request(cfg=cfg, verify_probe=True), world).outcomes
    assert (outcome.action, outcome.status) == (Action.RELAYED, "2.0.0")
    assert srv.text.endswith("DATA\r\n")  # no content, no QUIT
