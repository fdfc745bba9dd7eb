"""Header/body checks and smtp_generic_maps wired into the delivery core (scripted servers).

The checks themselves are tested in ``tests/test_header_checks*.py`` and
``tests/test_generic_maps.py``; here the core must use them as Postfix's
smtp(8) does: the generic-mapped envelope on the wire with the original
addresses in the report, check actions in the content and in the log
without any effect on outcomes, and a table failure deferring with 4.3.0
(smtp_proto.c ``smtp_header_rewrite()``/``smtp_body_rewrite()``,
``smtp_trouble.c`` ``smtp_stream_except(SMTP_ERR_DATA)``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pyfix_smtp.config import Config
from pyfix_smtp.delivery import Action
from pyfix_smtp.delivery.effects import CacheSave, Close, Connect
from pyfix_smtp.delivery.options import delivery_options
from pyfix_smtp.errors import ConfigError, LookupTableError
from pyfix_smtp.protocol.envelope import Envelope, Recipient
from pyfix_smtp.protocol.replies import DEFAULT_LINE_LENGTH_LIMIT
from tests.test_delivery_support import (
    EHLO,
    GREETING,
    World,
    config,
    deliver,
    happy,
    request,
    transaction,
)

MESSAGE = (
    b"From: Sender <sender@example.org>\r\nTo: rcpt@example.net\r\nSubject: secret plan\r\n"
    b"X-Internal: yes\r\n\r\nHello.\r\nconfidential line\r\n"
)


EHLO_NO_8BITMIME = b"250-mx.example.net\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n"


def mx_world(*hosts: tuple[int, str]) -> World:
    world = World().mx("example.net", *(hosts or ((10, "mx.example.net"),)))
    for i, (_, host) in enumerate(hosts or ((10, "mx.example.net"),), start=1):
        world.a(host, f"192.0.2.{i}")
    return world


def _lines(text: str) -> list[str]:
    return text.split("\r\n")


# -- options ---------------------------------------------------------------------------


def test_nothing_configured_means_no_hook_and_no_rewriting() -> None:
    opts = delivery_options(config())
    assert opts.content_checks is None
    assert opts.generic_maps is None


def test_options_are_built_once_per_config() -> None:
    cfg = config(smtp_header_checks="inline:{{/^x/=WARN}}")
    first = delivery_options(cfg)
    assert first.content_checks is not None
    assert delivery_options(cfg) is first
    assert delivery_options(cfg).content_checks is first.content_checks


def test_global_parameters_reach_the_options() -> None:
    cfg = config(
        smtp_generic_maps="inline:{{a@example.org=b@example.org}}",
        smtp_body_checks="inline:{{x=WARN}}",
        recipient_delimiter="+-",
        myorigin="origin.example",
        mydestination="local.example, texthash:/ignored/table",
        owner_request_special=False,
        double_bounce_sender="twice-bounced",
        propagate_unmatched_extensions="canonical, generic",
        line_length_limit=4096,
        header_size_limit=5000,
    )
    opts = delivery_options(cfg)
    generic = opts.generic_maps
    assert generic is not None
    assert generic.recipient_delimiter == "+-"
    assert generic.myorigin == "origin.example"
    assert generic.local_domains == frozenset({"local.example"})  # tables are not names
    assert not generic.owner_request_special
    assert generic.double_bounce_sender == "twice-bounced"
    assert generic.propagate_extensions
    checks = opts.content_checks
    assert checks is not None
    assert checks.generic is generic
    assert checks.body_piece == 4096
    assert opts.client.line_length_limit == 4096  # smtp_chat_resp(): reply lines
    assert opts.encoder.header_size_limit == 5000
    defaults = delivery_options(config())
    assert defaults.client.line_length_limit == DEFAULT_LINE_LENGTH_LIMIT
    assert defaults.encoder.header_size_limit == 102400


def test_sender_dependent_sasl_lookups_use_the_delimiter_and_local_domains() -> None:
    cfg = config(
        smtp_sasl_auth_enable=True,
        smtp_sender_dependent_authentication=True,
        smtp_sasl_password_maps="inline:{{user@origin.example=u:p}}",
        recipient_delimiter="+",
        myorigin="origin.example",
        mydestination="local.example",
    )
    sasl = delivery_options(cfg).sasl
    assert sasl.recipient_delimiter == "+"
    assert sasl.local_domains == ("origin.example", "local.example")


def test_unknown_propagate_unmatched_extensions_name_is_refused() -> None:
    # Postfix ext_prop.c: name_mask() stops on an unknown name.
    with pytest.raises(ConfigError) as info:
        Config(propagate_unmatched_extensions="canonical, genric")
    assert info.value.parameter == "propagate_unmatched_extensions"


# -- header and body checks ----------------------------------------------------------


CHECKS = {
    "smtp_header_checks": (
        "regexp:{{/^Subject: secret/ REPLACE Subject: [redacted]},"
        " {/^X-Internal:/ IGNORE}, {/^From:/ WARN sender seen},"
        " {/^To:/ DISCARD not in smtp(8)}}"
    ),
    "smtp_body_checks": "regexp:{{/^confidential/ REPLACE [removed]}, {/^Hello/ INFO greeting}}",
}


def test_checks_change_what_the_server_receives_and_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = mx_world()
    srv = world.server("192.0.2.1", 25, happy())
    with caplog.at_level("INFO", logger="pyfix_smtp.delivery"):
        report = deliver(request(cfg=config(**CHECKS), content=MESSAGE, queue_id="4QX"), world)
    assert [o.action for o in report] == [Action.RELAYED]
    data = srv.text.split("DATA\r\n", 1)[1]
    assert _lines(data)[:6] == [
        "From: Sender <sender@example.org>",
        "To: rcpt@example.net",  # DISCARD does nothing in smtp(8)
        "Subject: [redacted]",
        "",
        "Hello.",
        "[removed]",
    ]
    assert "X-Internal" not in data
    assert report.events == (
        "4QX: warning: header From: Sender <sender@example.org>: sender seen",
        "warning: unsupported command in smtp_header_checks map: DISCARD not in smtp(8)",
        "4QX: replace: header Subject: secret plan: Subject: [redacted]",
        "4QX: info: body Hello.: greeting",
        "4QX: replace: body confidential line: [removed]",
    )
    # Each event is logged once, before the recipient's line.
    messages = caplog.messages
    assert messages.index("4QX: replace: body confidential line: [removed]") < next(
        i for i, m in enumerate(messages) if "to=<rcpt@example.net>" in m
    )
    assert [r.levelname for r in caplog.records if "unsupported command" in r.message] == [
        "WARNING"
    ]


@pytest.mark.parametrize(
    "action", ["REJECT no", "DISCARD no", "HOLD no", "REDIRECT a@b.example", "BCC a@b.example"]
)
def test_check_actions_never_change_outcomes(action: str) -> None:
    world = mx_world()
    srv = world.server("192.0.2.1", 25, happy(2))
    cfg = config(smtp_header_checks=f"regexp:{{{{/^Subject:/ {action}}}}}")
    report = deliver(request(["a@example.net", "b@example.net"], cfg=cfg), world)
    assert [o.action for o in report] == [Action.RELAYED, Action.RELAYED]
    assert "Subject: test\r\n" in srv.text
    verb = action.split()[0]
    assert any(f"unsupported command in smtp_header_checks map: {verb}" in e for e in report.events)


def _flaky(failures: int) -> tuple[list[str], Callable[[str], str | None]]:
    """A header_checks table that fails *failures* times, then finds nothing."""
    seen: list[str] = []

    def table(key: str) -> str | None:
        seen.append(key)
        if len(seen) <= failures:
            raise LookupTableError("python:flaky", key, "backend down")
        return None

    return seen, table


def test_lookup_error_on_the_final_server_defers_with_4_3_0() -> None:
    world = mx_world()
    srv = world.server("192.0.2.1", 25, happy(2))
    _, table = _flaky(1)
    cfg = config(smtp_header_checks=table)
    rcpts = ["a@example.net", "b@example.net"]
    report = deliver(request(rcpts, cfg=cfg, queue_id="4QX", connection_cache=True), world)
    assert [(o.action, o.status, o.reason) for o in report] == [
        (Action.DEFERRED, "4.3.0", "local data error while talking to mx.example.net[192.0.2.1]")
    ] * 2
    assert report.outcomes[0].relay == "mx.example.net[192.0.2.1]:25"
    assert report.events[0].startswith(
        "warning: 4QX: smtp header checks lookup error: python:flaky = 'Subject: test':"
    )
    # The DATA phase is not ended: no "." line, the connection is dropped.
    assert not srv.text.endswith("\r\n.\r\n")
    assert "QUIT" not in srv.text
    assert world.of(CacheSave) == []


def test_lookup_error_on_a_backup_server_moves_on_and_does_not_cache() -> None:
    world = mx_world((10, "mx1.example.net"), (20, "mx2.example.net"))
    first = world.server("192.0.2.1", 25, happy())
    second = world.server("192.0.2.2", 25, happy())
    seen, table = _flaky(1)
    cfg = config(smtp_header_checks=table)
    report = deliver(
        request(cfg=cfg, queue_id="4QX", connection_cache=True), world
    )  # cache on: a throttled session must still not be kept
    assert [(o.action, o.relay) for o in report] == [
        (Action.RELAYED, "mx2.example.net[192.0.2.2]:25")
    ]
    # smtp_bulk_fail(): a soft error on a non-final server is logged and the
    # recipient kept for the next one.
    assert "4QX: local data error while talking to mx1.example.net[192.0.2.1]" in report.events
    assert not first.text.endswith("\r\n.\r\n")
    assert second.text.endswith("\r\n.\r\n")
    assert len(seen) > 1
    saved = world.of(CacheSave)
    assert len(saved) == 1  # only the good session
    connects = [e for e in world.effects if isinstance(e, Connect)]
    assert [c.endpoint.address for c in connects] == ["192.0.2.1", "192.0.2.2"]


def test_mime_errors_keep_their_status() -> None:
    nested = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n" + (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" * 5
    )
    cfg = config(smtp_body_checks="inline:{{x=WARN}}", mime_nesting_limit=2)
    # Checks alone follow the MIME structure but report no nesting errors
    # (smtp_proto.c: MIME_OPT_REPORT_NESTING only when downgrading).
    world = mx_world()
    world.server("192.0.2.1", 25, happy())
    assert deliver(request(cfg=cfg, content=nested), world).outcomes[0].action is Action.RELAYED
    # Downgrading too: the conversion gives up with 5.6.0, as without checks.
    world = mx_world()
    world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO_NO_8BITMIME), *transaction()])
    report = deliver(request(cfg=cfg, content=nested), world)
    assert (report.outcomes[0].action, report.outcomes[0].status) == (Action.BOUNCED, "5.6.0")


# -- smtp_generic_maps -----------------------------------------------------------------


GENERIC = (
    "inline:{{sender@example.org=outside@example.com},"
    " {a@example.net=alpha@example.com}, {c@example.net=c@example.com}}"
)


def test_generic_maps_rewrite_the_wire_envelope_and_keep_the_report(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = mx_world()
    srv = world.server("192.0.2.1", 25, happy(3))  # its EHLO reply offers DSN
    envelope = Envelope(
        "sender@example.org",
        [
            Recipient("a@example.net", notify="FAILURE"),
            Recipient("b@example.net"),
            Recipient("c@example.net", orcpt="given@example.net"),
        ],
    )
    assert b"DSN" in EHLO
    with caplog.at_level("INFO", logger="pyfix_smtp.delivery"):
        report = deliver(request(envelope=envelope, cfg=config(smtp_generic_maps=GENERIC)), world)
    commands = _lines(srv.text.split("DATA\r\n", 1)[0])
    assert commands[1:5] == [
        "MAIL FROM:<outside@example.com> SIZE=87",
        # smtp_loop(): ORCPT is the original recipient (Postfix rcpt->orig_addr)
        "RCPT TO:<alpha@example.com> ORCPT=rfc822;a@example.net NOTIFY=FAILURE",
        "RCPT TO:<b@example.net>",  # not rewritten: sent as given
        "RCPT TO:<c@example.com> ORCPT=rfc822;given@example.net",  # a given ORCPT stays
    ]
    # Reports and log lines keep the original addresses, in order.
    assert [o.recipient for o in report] == ["a@example.net", "b@example.net", "c@example.net"]
    assert [o.action for o in report] == [Action.RELAYED] * 3
    assert any("to=<a@example.net>" in m for m in caplog.messages)
    assert not any("alpha@example.com" in line for line in report.log_lines())


def test_generic_maps_rewrite_header_addresses() -> None:
    world = mx_world()
    srv = world.server("192.0.2.1", 25, happy())
    cfg = config(smtp_generic_maps="inline:{{sender@example.org=outside@example.com}}")
    report = deliver(request(cfg=cfg, content=MESSAGE), world)
    assert report.outcomes[0].action is Action.RELAYED
    data = srv.text.split("DATA\r\n", 1)[1]
    assert "From: Sender <outside@example.com>\r\n" in data
    assert "To: rcpt@example.net\r\n" in data


def test_multi_valued_result_is_a_warning() -> None:
    world = mx_world()
    srv = world.server("192.0.2.1", 25, happy())
    cfg = config(smtp_generic_maps={"rcpt@example.net": "one@example.com, two@example.com"})
    report = deliver(request(cfg=cfg), world)
    assert "RCPT TO:<one@example.com>" in srv.text
    assert (
        report.events.count("warning: multi-valued smtp_generic_maps result for rcpt@example.net")
        == 2
    )  # the envelope, then the To: header
    assert report.outcomes[0].recipient == "rcpt@example.net"


def test_envelope_lookup_error_defers_everyone_without_connecting() -> None:
    world = mx_world()
    world.server("192.0.2.1", 25, happy(2))

    def broken(key: str) -> str | None:
        raise LookupTableError("python:broken", key, "backend down")

    cfg = config(smtp_generic_maps=broken)
    report = deliver(request(["a@example.net", "b@example.net"], cfg=cfg, queue_id="4QX"), world)
    expected = (
        "smtp_generic_maps map lookup problem: python:broken = 'sender@example.org': backend down"
    )
    assert [(o.action, o.status, o.reason, o.relay) for o in report] == [
        (Action.DEFERRED, "4.3.0", expected, "none")
    ] * 2
    assert report.events[0] == f"warning: {expected}"
    assert world.of(Connect) == []
    assert [o.recipient for o in report] == ["a@example.net", "b@example.net"]


def test_a_result_that_is_no_envelope_address_defers_too() -> None:
    world = mx_world()
    cfg = config(smtp_generic_maps={"rcpt@example.net": "a@b..c"})
    report = deliver(request(cfg=cfg), world)
    assert (report.outcomes[0].action, report.outcomes[0].status) == (Action.DEFERRED, "4.3.0")
    assert "result for rcpt@example.net is not a valid address" in report.outcomes[0].reason
    assert world.of(Connect) == []


def test_a_recipient_mapped_to_the_null_address_defers() -> None:
    # A lone "@" is the empty address (rewrite.c): Postfix would send
    # "RCPT TO:<>"; a recipient cannot be null here.
    world = mx_world()
    cfg = config(smtp_generic_maps={"rcpt@example.net": "<@>"})
    report = deliver(request(cfg=cfg), world)
    assert (report.outcomes[0].action, report.outcomes[0].status) == (Action.DEFERRED, "4.3.0")
    assert report.outcomes[0].reason.startswith("smtp_generic_maps map lookup problem: ")
    assert world.of(Connect) == []


def test_header_lookup_error_is_a_local_data_error() -> None:
    world = mx_world()
    srv = world.server("192.0.2.1", 25, happy())

    # No address in the result: Postfix stops with "map lookup problem".
    cfg = config(smtp_generic_maps={"sender@example.org": "(just a comment)"})
    content = b"To: sender@example.org\r\n\r\nbody\r\n"
    report = deliver(request(cfg=cfg, content=content, sender="other@example.org"), world)
    outcome = report.outcomes[0]
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.3.0")
    assert outcome.reason == "local data error while talking to mx.example.net[192.0.2.1]"
    assert any("smtp_generic_maps map lookup problem" in e for e in report.events)
    assert not srv.text.endswith("\r\n.\r\n")
    assert "QUIT" not in srv.text
    assert len(world.of(Close)) == 1


def test_lmtp_uses_the_lmtp_parameter_names() -> None:
    cfg = Config(
        protocol="lmtp",
        lmtp_generic_maps="inline:{{a@example.net=b@example.net}}",
        lmtp_header_checks="inline:{{x=WARN}}",
    )
    opts = delivery_options(cfg)
    assert opts.generic_maps is not None
    assert opts.generic_maps.parameter == "lmtp_generic_maps"
    assert opts.content_checks is not None
    assert opts.content_checks.prefix == "lmtp"
