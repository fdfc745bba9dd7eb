"""Building delivery requests: content sources, envelope completion, early errors."""

from __future__ import annotations

import io
from collections.abc import Iterable
from email.message import EmailMessage
from pathlib import Path

import pytest

from pyfix_smtp.config import Config
from pyfix_smtp.delivery import ContentSource, build_request
from pyfix_smtp.delivery.options import delivery_options
from pyfix_smtp.errors import ConfigError, DestinationError
from pyfix_smtp.protocol.envelope import BodyType, Envelope
from pyfix_smtp.protocol.events import Stage

ENV = Envelope("a@example.org", ["b@example.net"])
OWN = ["192.0.2.10"]


def test_bytes_content_is_read_again_and_sized() -> None:
    request = build_request(
        ENV, b"Subject: x\r\n\r\nbody\r\n", nexthop="example.net", own_addresses=OWN
    )
    assert b"".join(request.content.open()) == b"".join(request.content.open())
    assert request.envelope.size == 20
    assert request.content.size == 20


def test_a_given_size_is_kept() -> None:
    env = Envelope("a@example.org", ["b@example.net"], size=5000)
    request = build_request(env, b"x\r\n", nexthop="example.net", own_addresses=OWN)
    assert request.envelope.size == 5000


def test_seekable_file_is_read_from_its_position(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(b"junk" + b"Subject: x\r\n\r\nhi\r\n")
    with path.open("rb") as f:
        f.seek(4)
        request = build_request(ENV, f, nexthop="example.net", own_addresses=OWN)
        assert b"".join(request.content.open()) == b"Subject: x\r\n\r\nhi\r\n"
        assert b"".join(request.content.open()) == b"Subject: x\r\n\r\nhi\r\n"
        assert request.envelope.size == 18


def test_text_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_text("Subject: x\n\nhi\n")
    with path.open() as f, pytest.raises(TypeError, match="binary mode"):
        build_request(ENV, f, nexthop="example.net", own_addresses=OWN)


def test_message_object() -> None:
    msg = EmailMessage()
    msg["Subject"] = "hi"
    msg.set_content("hello\n")
    request = build_request(ENV, msg, nexthop="example.net", own_addresses=OWN)
    assert b"hello" in b"".join(request.content.open())


def test_iterator_needs_a_spool() -> None:
    chunks = iter([b"Subject: x\r\n\r\n", b"hi\r\n"])
    with pytest.raises(TypeError, match="cannot be read twice"):
        build_request(ENV, chunks, nexthop="example.net", own_addresses=OWN)

    def spool(parts: Iterable[bytes]) -> ContentSource:
        return ContentSource.from_file(io.BytesIO(b"".join(parts)))

    request = build_request(
        ENV, iter([b"a\r\n", b"b\r\n"]), nexthop="example.net", own_addresses=OWN, spool=spool
    )
    assert b"".join(request.content.open()) == b"a\r\nb\r\n"


def test_str_content_is_refused() -> None:
    with pytest.raises(TypeError, match="not str"):
        build_request(ENV, "text", nexthop="example.net", own_addresses=OWN)


@pytest.mark.parametrize(
    ("content", "body"),
    [
        (b"Subject: x\r\n\r\nplain\r\n", BodyType.UNDECLARED),
        (b"Content-Transfer-Encoding: 8bit\r\n\r\nj\xc3\xb6\r\n", BodyType.EIGHT_BIT),
    ],
)
def test_8bit_is_detected_from_mime_headers(content: bytes, body: BodyType) -> None:
    request = build_request(ENV, content, nexthop="example.net", own_addresses=OWN)
    assert request.envelope.body is body


def test_bad_nexthop_fails_early() -> None:
    with pytest.raises(DestinationError):
        build_request(ENV, b"x", nexthop="[unclosed", own_addresses=OWN)


def test_interface_addresses_are_needed_for_smtp() -> None:
    with pytest.raises(ConfigError, match="inet_interfaces"):
        build_request(ENV, b"x", nexthop="example.net")
    lmtp = Config(protocol="lmtp")
    request = build_request(ENV, b"x", nexthop="inet:[192.0.2.1]:24", config=lmtp)
    assert request.destinations[0].text == "[192.0.2.1]:24"  # "inet:" applies to the whole list


def test_fallback_relays_follow_the_nexthop() -> None:
    cfg = Config(smtp_fallback_relay="[relay1.example], relay2.example")
    request = build_request(ENV, b"x", nexthop="example.net", config=cfg, own_addresses=OWN)
    assert [d.text for d in request.destinations] == [
        "example.net",
        "[relay1.example]",
        "relay2.example",
    ]
    assert [d.is_fallback for d in request.destinations] == [False, True, True]


def test_options_are_derived_once_per_config() -> None:
    cfg = Config(myhostname="once.example")
    assert delivery_options(cfg) is delivery_options(cfg)
    assert delivery_options(cfg) is delivery_options(Config(myhostname="once.example"))
    with pytest.raises(ConfigError, match="smtp_address_verify_target"):
        delivery_options(Config(smtp_address_verify_target="mail"))


@pytest.mark.parametrize("protocol", ["smtp", "lmtp"])
def test_stage_timeouts_are_the_stage_parameters(protocol: str) -> None:
    # The session reads each wait's limit from this table (no lookups per read).
    opts = delivery_options(
        Config(protocol=protocol, smtp_rcpt_timeout=7, smtp_data_done_timeout=9)  # type: ignore[arg-type]
    )
    assert opts.stage_timeouts[None] == opts.timeout(None)
    for stage in Stage:
        assert opts.stage_timeouts[stage] == opts.timeout(stage.timeout_parameter), stage
    assert opts.stage_timeouts[Stage.RCPT] == 7.0
    assert opts.stage_timeouts[Stage.DOT] == 9.0


def test_relayhost_planner_options_are_one_instance_per_relayhost() -> None:
    # The core remembers a literal nexthop's site per PlanOptions identity.
    cfg = Config(myhostname="client.example", inet_interfaces="127.0.0.1")
    first, second, other = (
        build_request(ENV, b"x", nexthop=nexthop, config=cfg, nexthop_is_relayhost=True)
        for nexthop in ("[192.0.2.1]", "[192.0.2.1]", "[192.0.2.2]")
    )
    options = first.planner_options()
    assert options.relayhost == "[192.0.2.1]"
    assert second.planner_options() is options
    assert other.planner_options().relayhost == "[192.0.2.2]"
