"""The delivery core against scripted servers: the happy paths."""

from __future__ import annotations

import pytest

from pyfix_smtp.delivery import Action
from pyfix_smtp.delivery.effects import Close, Connect, Resolve
from tests.test_delivery_support import World, deliver, happy, request


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


def test_literal_nexthop_needs_no_dns() -> None:
    world = World()
    world.server("192.0.2.9", 2525, happy())
    report = deliver(request(nexthop="[192.0.2.9]:2525"), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert world.of(Resolve) == []
    assert world.of(Connect)[0].endpoint.label == "192.0.2.9[192.0.2.9]:2525"  # type: ignore[attr-defined]
