"""Outcomes, delay formatting and Postfix log lines (global/log_adhoc.c)."""

from __future__ import annotations

import pytest

from pyfix_smtp.delivery.report import (
    Action,
    DeliveryReport,
    MessageTimes,
    RecipientOutcome,
    external_address,
    format_delay,
    internal_address,
)
from pyfix_smtp.status import Reply


# Postfix util/format_tv.c behaviour: two significant digits, at most
# max_digits decimals, round half up, no trailing zeros.
@pytest.mark.parametrize(
    ("seconds", "sig", "maxd", "expected"),
    [
        (1110, 2, 6, "1110"),
        (111, 2, 6, "111"),
        (11.1, 2, 6, "11"),
        (1.11, 2, 6, "1.1"),
        (0.111, 2, 6, "0.11"),
        (0.0111, 2, 6, "0.011"),
        (0.000111, 2, 6, "0.00011"),
        (1000, 2, 6, "1000"),
        (0.1, 2, 6, "0.1"),
        (0.001, 2, 6, "0.001"),
        (996, 2, 6, "996"),
        (99.6, 2, 6, "100"),
        (9.96, 2, 6, "10"),
        (0.996, 2, 6, "1"),
        (0.0996, 2, 6, "0.1"),
        (1.11, 1, 6, "1"),
        (0.111, 1, 6, "0.1"),
        (0.0111, 2, 2, "0.01"),
        (0.004, 2, 2, "0"),
        (0.005, 2, 2, "0.01"),
        (0, 2, 2, "0"),
        (1.234, 2, 2, "1.2"),
        (0.123, 2, 0, "0"),
        (0.5, 2, 0, "1"),
    ],
)
def test_format_delay_matches_postfix_format_tv(
    seconds: float, sig: int, maxd: int, expected: str
) -> None:
    assert format_delay(seconds, sig, maxd) == expected


def test_format_delay_rejects_bad_digit_counts() -> None:
    with pytest.raises(ValueError):
        format_delay(1.0, 0, 2)
    with pytest.raises(ValueError):
        format_delay(1.0, 2, 7)


def test_delays_split_like_msg_stats() -> None:
    times = MessageTimes(arrival=100.0, handoff=100.5, setup_done=101.0, done=101.25)
    assert times.delays == (0.5, 0.0, 0.5, 0.25)
    assert times.total == 1.25
    no_setup = MessageTimes(arrival=100.0, handoff=100.0, setup_done=None, done=102.0)
    assert no_setup.delays == (0.0, 0.0, 0.0, 2.0)


def test_log_line_for_a_relayed_recipient() -> None:
    reply = Reply(250, "2.0.0", ("2.0.0 Ok: queued as 4ZxYz",))
    outcome = RecipientOutcome(
        recipient="bob@example.net",
        original_recipient="bob@example.net",
        action=Action.RELAYED,
        status="2.0.0",
        reason=str(reply),
        reply=reply,
        relay="mx.example.net[192.0.2.25]:25",
        times=MessageTimes(arrival=10.0, handoff=10.0, setup_done=10.31, done=10.52),
    )
    assert outcome.log_line("ABC123") == (
        "ABC123: to=<bob@example.net>, relay=mx.example.net[192.0.2.25]:25, "
        "delay=0.52, delays=0/0/0.31/0.21, dsn=2.0.0, "
        "status=sent (250 2.0.0 Ok: queued as 4ZxYz)"
    )


def test_log_line_shows_orig_to_and_conn_use() -> None:
    outcome = RecipientOutcome(
        recipient="bob@example.net",
        original_recipient="Robert@Example.NET",
        action=Action.BOUNCED,
        status="5.1.1",
        reason="host mx[192.0.2.1] said: 550 5.1.1 unknown (in reply to RCPT TO command)",
        relay="mx[192.0.2.1]:25",
        conn_use=3,
    )
    line = outcome.log_line()
    assert line.startswith("to=<bob@example.net>, orig_to=<Robert@Example.NET>, ")
    assert ", conn_use=3, " in line
    assert line.endswith(
        "dsn=5.1.1, status=bounced (host mx[192.0.2.1] said: 550 5.1.1 "
        "unknown (in reply to RCPT TO command))"
    )


def test_orig_to_left_out_when_equal_ignoring_case() -> None:
    outcome = RecipientOutcome(
        recipient="bob@example.net",
        original_recipient="BOB@example.net",
        action=Action.DEFERRED,
        status="4.4.1",
        reason="connect to mx[192.0.2.1]:25: Connection refused",
    )
    assert "orig_to" not in outcome.log_line()
    assert outcome.log_line().endswith(
        "status=deferred (connect to mx[192.0.2.1]:25: Connection refused)"
    )


@pytest.mark.parametrize(
    ("action", "status"),
    [
        (Action.RELAYED, "4.0.0"),
        (Action.DELIVERED, "5.1.1"),
        (Action.DEFERRED, "5.1.1"),
        (Action.DEFERRED, "2.0.0"),
        (Action.BOUNCED, "4.4.1"),
    ],
)
def test_action_and_status_class_must_agree(action: Action, status: str) -> None:
    with pytest.raises(ValueError):
        RecipientOutcome("a@b.example", action, status, "x")


def test_action_words() -> None:
    assert [a.log_status for a in Action] == ["sent", "sent", "deferred", "bounced"]
    assert [a.dsn_action for a in Action] == ["delivered", "relayed", "delayed", "failed"]
    assert [a.done for a in Action] == [True, True, False, True]


@pytest.mark.parametrize(
    ("action", "status", "word"),
    [
        (Action.RELAYED, "2.1.5", "deliverable"),  # global/sent.c
        (Action.DELIVERED, "2.1.5", "deliverable"),
        (Action.DEFERRED, "4.2.0", "undeliverable"),  # global/defer.c
        (Action.BOUNCED, "5.1.1", "undeliverable"),  # global/bounce.c
    ],
)
def test_probe_outcomes_use_the_verify_words(action: Action, status: str, word: str) -> None:
    outcome = RecipientOutcome("a@b.example", action, status, "reply text", probe=True)
    assert outcome.log_line().endswith(f"dsn={status}, status={word} (reply text)")


def test_a_probe_is_never_a_soft_bounce() -> None:
    with pytest.raises(ValueError, match="soft bounce"):
        RecipientOutcome("a@b.example", Action.DEFERRED, "4.1.1", "x", soft_bounce=True, probe=True)


# Postfix global/quote_822_local.c (QUOTE_FLAG_8BITCLEAN): internal -> external.
@pytest.mark.parametrize(
    ("internal", "external"),
    [
        ("bob@example.net", "bob@example.net"),
        ("john doe@example.com", '"john doe"@example.com'),
        ("a.b+tag@example.com", "a.b+tag@example.com"),
        (".lead@example.com", '".lead"@example.com'),
        ("trail.@example.com", '"trail."@example.com'),
        ("two..dots@example.com", '"two..dots"@example.com'),
        ("a@b@example.com", '"a@b"@example.com'),  # the last "@" ends the local part
        ('say"hi@example.com', '"say\\"hi"@example.com'),
        ("back\\slash@example.com", '"back\\\\slash"@example.com'),
        ("rené@example.com", "rené@example.com"),  # 8-bit text is left alone
        ("semi;colon@example.com", '"semi;colon"@example.com'),
        ("@r1,@r2:john doe@example.com", '@r1,@r2:"john doe"@example.com'),  # source route
        ("@example.com", '""@example.com'),
        ("postmaster", "postmaster"),
        ("", ""),
    ],
)
def test_external_and_internal_address_forms(internal: str, external: str) -> None:
    assert external_address(internal) == external
    assert internal_address(external) == internal


def test_internal_form_of_unusual_quoting() -> None:
    # unquote_822_local(): quotes anywhere in the local part, a trailing backslash dropped
    assert internal_address('"john"." doe"@example.com') == "john. doe@example.com"
    assert internal_address("odd\\") == "odd"


@pytest.mark.parametrize(
    ("address_format", "to", "orig_to"),
    [
        ("external", '"john doe"@example.com', '"Mary Smith"@example.com'),
        ("internal", "john doe@example.com", "Mary Smith@example.com"),
    ],
)
def test_log_line_address_format(address_format: str, to: str, orig_to: str) -> None:
    # global/log_adhoc.c: info_log_addr_form_recipient() for to= and orig_to=
    outcome = RecipientOutcome(
        "john doe@example.com",
        Action.RELAYED,
        "2.0.0",
        "250 ok",
        original_recipient="Mary Smith@example.com",
    )
    line = outcome.log_line(address_format=address_format)
    assert line.startswith(f"to=<{to}>, orig_to=<{orig_to}>, relay=none, ")
    report = DeliveryReport((outcome,), address_format=address_format)
    assert report.log_lines() == [line]


def test_log_line_rejects_an_unknown_address_format() -> None:
    outcome = RecipientOutcome("a@b.example", Action.RELAYED, "2.0.0", "250 ok")
    with pytest.raises(ValueError, match="external or internal"):
        outcome.log_line(address_format="quoted")


def test_report_views() -> None:
    ok = RecipientOutcome("a@x.example", Action.RELAYED, "2.0.0", "250 ok")
    later = RecipientOutcome("b@x.example", Action.DEFERRED, "4.2.0", "450 busy")
    report = DeliveryReport((ok, later), queue_id="Q1")
    assert list(report) == [ok, later]
    assert len(report) == 2
    assert report.recipients == (ok, later)
    assert report.with_action(Action.DEFERRED) == (later,)
    assert not report.all_done
    assert report.log_lines()[0].startswith("Q1: to=<a@x.example>")
