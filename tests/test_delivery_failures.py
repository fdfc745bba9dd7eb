"""Postfix's outcome rules for failures at every stage (scripted servers).

Replies are worded as Postfix smtpd words them; texts of the outcomes are
Postfix smtp(8)'s (smtp_proto.c, smtp_trouble.c).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pyfix_smtp.delivery import Action
from pyfix_smtp.delivery.effects import Close, Connect
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

MX1 = "mx1.example.net[192.0.2.1]"
MX2 = "mx2.example.net[192.0.2.2]"
GO_AHEAD = b"354 End data with <CR><LF>.<CR><LF>\r\n"
RSET_QUIT = b"250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"


def two_mx() -> World:
    return (
        World()
        .mx("example.net", (10, "mx1.example.net"), (20, "mx2.example.net"))
        .a("mx1.example.net", "192.0.2.1")
        .a("mx2.example.net", "192.0.2.2")
    )


def one_mx() -> World:
    return World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")


# -- a reply refuses a stage -------------------------------------------------------------

STAGE_REPLIES = [
    pytest.param(
        [
            (
                "S",
                b"550 5.7.1 <sender@example.org>: Sender address rejected\r\n"
                b"503 5.5.1 Error: need MAIL command\r\n503 5.5.1 Error: need RCPT command\r\n",
            ),
            ("S", RSET_QUIT),
        ],
        "550 5.7.1 <sender@example.org>: Sender address rejected (in reply to MAIL FROM command)",
        id="mail",
    ),
    pytest.param(
        [
            (
                "S",
                b"250 2.1.0 Ok\r\n550 5.1.1 <rcpt@example.net>: Recipient address rejected\r\n"
                b"554 5.5.1 Error: no valid recipients\r\n",
            ),
            ("S", RSET_QUIT),
        ],
        "550 5.1.1 <rcpt@example.net>: Recipient address rejected (in reply to RCPT TO command)",
        id="rcpt",
    ),
    pytest.param(
        [
            ("S", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n554 5.3.0 Error: no DATA today\r\n"),
            ("S", RSET_QUIT),
        ],
        "554 5.3.0 Error: no DATA today (in reply to DATA command)",
        id="data",
    ),
    pytest.param(
        [
            ("S", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" + GO_AHEAD),
            ("S", b"554 5.7.1 Message rejected as spam\r\n221 2.0.0 Bye\r\n"),
        ],
        "554 5.7.1 Message rejected as spam (in reply to end of DATA command)",
        id="dot",
    ),
]


@pytest.mark.parametrize(("replies", "said"), STAGE_REPLIES)
def test_hard_reply_at_any_stage_bounces(replies: list[tuple[object, ...]], said: str) -> None:
    world = two_mx()
    mx1 = world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO), *replies])
    mx2 = world.server("192.0.2.2", 25, happy())
    report = deliver(request(), world)
    (outcome,) = report.outcomes
    assert outcome.action is Action.BOUNCED
    assert outcome.reason == f"host {MX1} said: {said}"
    assert outcome.status == said.split()[1]
    assert outcome.relay == f"{MX1}:25"
    assert mx2.connections == 0  # a hard error bounces at once, even at a non-final MX
    assert mx1.done


@pytest.mark.parametrize(
    ("replies", "said"),
    [
        pytest.param(
            [("S", b"451 4.3.0 Temporary lookup failure\r\n554 5.5.1 x\r\n")],
            "451 4.3.0 Temporary lookup failure (in reply to MAIL FROM command)",
            id="mail",
        ),
        pytest.param(
            [
                (
                    "S",
                    b"250 2.1.0 Ok\r\n450 4.2.0 <rcpt@example.net>: greylisted\r\n"
                    b"554 5.5.1 Error: no valid recipients\r\n",
                )
            ],
            "450 4.2.0 <rcpt@example.net>: greylisted (in reply to RCPT TO command)",
            id="rcpt",
        ),
        pytest.param(
            [("S", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n451 4.3.0 try later\r\n")],
            "451 4.3.0 try later (in reply to DATA command)",
            id="data",
        ),
        pytest.param(
            [
                ("S", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" + GO_AHEAD),
                ("S", b"452 4.3.1 Insufficient system storage\r\n"),
            ],
            "452 4.3.1 Insufficient system storage (in reply to end of DATA command)",
            id="dot",
        ),
    ],
)
def test_soft_reply_moves_on_then_defers_at_the_final_server(
    replies: list[tuple[object, ...]], said: str
) -> None:
    # non-final server: keep for the next MX, which delivers
    world = two_mx()
    world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO), *replies])
    mx2 = world.server("192.0.2.2", 25, happy())
    report = deliver(request(), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert report.outcomes[0].relay == f"{MX2}:25"
    assert f"host {MX1} said: {said}" in report.events
    assert mx2.done
    # final server: deferred with the server's status
    world = one_mx()
    world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO), *replies])
    (outcome,) = deliver(request(), world).outcomes
    assert outcome.action is Action.DEFERRED
    assert outcome.reason == f"host {MX1} said: {said}"
    assert outcome.status == said.split()[1]


def test_some_recipients_rejected_others_delivered() -> None:
    world = one_mx()
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO),
            (
                "S",
                b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <b@example.net>: unknown\r\n"
                b"450 4.2.0 <c@example.net>: greylisted\r\n" + GO_AHEAD,
            ),
            ("S", b"250 2.0.0 Ok: queued as 1\r\n"),
        ],
    )
    report = deliver(request(["a@example.net", "b@example.net", "c@example.net"]), world)
    assert [o.action for o in report] == [Action.RELAYED, Action.BOUNCED, Action.DEFERRED]
    assert [o.recipient for o in report] == ["a@example.net", "b@example.net", "c@example.net"]


def test_soft_rcpt_failure_retries_only_that_recipient_at_the_next_mx() -> None:
    world = two_mx()
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO),
            (
                "S",
                b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n450 4.2.0 <b@example.net>: later\r\n" + GO_AHEAD,
            ),
            ("S", b"250 2.0.0 Ok: queued as 1\r\n"),
        ],
    )
    mx2 = world.server("192.0.2.2", 25, happy(1))
    report = deliver(request(["a@example.net", "b@example.net"]), world)
    assert [o.relay for o in report] == [f"{MX1}:25", f"{MX2}:25"]
    assert "RCPT TO:<a@example.net>" not in mx2.text
    assert "RCPT TO:<b@example.net>" in mx2.text


# -- greeting and hello ------------------------------------------------------------------


def test_421_greeting_skips_to_the_next_mx() -> None:
    world = two_mx()
    mx1 = world.server("192.0.2.1", 25, [("S", b"421 4.3.2 mx1 busy, try later\r\n")])
    world.server("192.0.2.2", 25, happy())
    report = deliver(request(), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert f"host {MX1} refused to talk to me: 421 4.3.2 mx1 busy, try later" in report.events
    # smtp_connect.c: smtp_quit() after smtp_helo() failed, 421 included
    # (Postfix 3.7: tests/transcripts/postfix/greeting_421.json)
    assert mx1.received == b"QUIT\r\n"


@pytest.mark.parametrize(
    ("skip", "action", "status"),
    [(True, Action.DEFERRED, "4.7.1"), (False, Action.BOUNCED, "5.7.1")],
)
def test_5xx_greeting_is_skipped_as_4xx(skip: bool, action: Action, status: str) -> None:
    world = one_mx()
    mx1 = world.server("192.0.2.1", 25, [("S", b"554 5.7.1 go away\r\n")])
    report = deliver(request(cfg=config(smtp_skip_5xx_greeting=skip)), world)
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status) == (action, status)
    assert outcome.reason == f"host {MX1} refused to talk to me: 554 5.7.1 go away"
    assert mx1.text == "QUIT\r\n"


def test_5xx_greeting_at_a_non_final_mx_moves_on() -> None:
    world = two_mx()
    world.server("192.0.2.1", 25, [("S", b"554 5.7.1 go away\r\n")])
    world.server("192.0.2.2", 25, happy())
    assert deliver(request(), world).outcomes[0].action is Action.RELAYED


@pytest.mark.parametrize("code", [b"354", b"199", b"600"])
def test_greeting_code_outside_2xx_5xx_bounces_5_5_0(code: bytes) -> None:
    world = two_mx()
    world.server("192.0.2.1", 25, [("S", code + b" hello there\r\n")])
    mx2 = world.server("192.0.2.2", 25, happy())
    (outcome,) = deliver(request(), world).outcomes
    assert (outcome.action, outcome.status) == (Action.BOUNCED, "5.5.0")
    assert outcome.reason.endswith(f"refused to talk to me: {code.decode()} hello there")
    assert mx2.connections == 0


def test_ehlo_rejected_falls_back_to_helo() -> None:
    world = one_mx()
    mx1 = world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", b"502 5.5.2 Error: command not recognized\r\n"),
            ("S", b"250 mx.example.net\r\n"),
            ("S", b"250 2.1.0 Ok\r\n"),
            ("S", b"250 2.1.5 Ok\r\n"),
            ("S", GO_AHEAD),
            ("S", b"250 2.0.0 Ok: queued as 2\r\n"),
            ("S", b"221 2.0.0 Bye\r\n"),
        ],
    )
    report = deliver(request(), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert mx1.text.startswith("EHLO client.example.org\r\nHELO client.example.org\r\nMAIL FROM:")


def test_helo_rejected_hard_bounces_even_at_a_non_final_mx() -> None:
    world = two_mx()
    world.server(
        "192.0.2.1",
        25,
        [("S", GREETING), ("S", b"502 5.5.2 no EHLO\r\n"), ("S", b"550 5.7.1 no HELO either\r\n")],
    )
    mx2 = world.server("192.0.2.2", 25, happy())
    (outcome,) = deliver(request(), world).outcomes
    assert outcome.action is Action.BOUNCED
    assert outcome.reason == f"host {MX1} refused to talk to me: 550 5.7.1 no HELO either"
    assert mx2.connections == 0


def test_421_to_ehlo_moves_on_without_helo() -> None:
    world = two_mx()
    mx1 = world.server("192.0.2.1", 25, [("S", GREETING), ("S", b"421 4.7.0 closing\r\n")])
    world.server("192.0.2.2", 25, happy())
    assert deliver(request(), world).outcomes[0].action is Action.RELAYED
    assert mx1.text == "EHLO client.example.org\r\nQUIT\r\n"  # transcripts: ehlo_421


# -- loops -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("best", "status", "action"),
    [(True, "5.4.6", Action.BOUNCED), (False, "4.4.6", Action.DEFERRED)],
)
def test_ehlo_with_my_own_name_is_a_mail_loop(best: bool, status: str, action: Action) -> None:
    looping = [("S", GREETING), ("S", b"250-client.example.org\r\n250 PIPELINING\r\n")]
    world = two_mx()
    if best:
        world.server("192.0.2.1", 25, looping)
        world.server("192.0.2.2", 25, happy())
    else:
        world.refuse("192.0.2.1", 25)
        world.server("192.0.2.2", 25, looping)
    (outcome,) = deliver(request(), world).outcomes
    assert (outcome.action, outcome.status) == (action, status)
    assert outcome.reason == "mail for example.net loops back to myself"


def test_own_name_in_the_greeting_is_only_logged() -> None:
    world = one_mx()
    world.server("192.0.2.1", 25, [("S", b"220 client.example.org ESMTP\r\n"), *happy()[1:]])
    report = deliver(request(), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert (
        f"warning: host {MX1}:25 greeted me with my own hostname client.example.org"
        in report.events
    )


def test_loop_detection_only_on_port_25() -> None:
    world = World()
    world.server(
        "192.0.2.9", 587, [("S", GREETING), ("S", b"250 client.example.org\r\n"), *transaction()]
    )
    report = deliver(request(nexthop="[192.0.2.9]:587"), world)
    assert report.outcomes[0].action is Action.RELAYED


def test_we_are_an_mx_host_so_lower_preference_hosts_are_not_tried() -> None:
    world = (
        World()
        .mx("example.net", (10, "mx1.example.net"), (20, "me.example.org"), (30, "mx3.example.net"))
        .a("mx1.example.net", "192.0.2.1")
        .a("me.example.org", "192.0.2.200")
        .a("mx3.example.net", "192.0.2.3")
    )
    world.server("192.0.2.1", 25, [("S", b"421 4.3.2 busy\r\n")])
    mx3 = world.server("192.0.2.3", 25, happy())
    cfg = config(smtp_fallback_relay="[192.0.2.50]")
    world.server("192.0.2.50", 25, happy())
    (outcome,) = deliver(request(cfg=cfg), world).outcomes
    assert outcome.action is Action.DEFERRED  # mx1 was the final server
    assert mx3.connections == 0
    assert [e.endpoint.address for e in world.of(Connect)] == ["192.0.2.1"]  # type: ignore[attr-defined]


# -- connections, timeouts, lost connections ---------------------------------------------


def test_connection_refused_everywhere_defers_with_the_last_error() -> None:
    world = two_mx()
    world.refuse("192.0.2.1", 25)
    world.refuse("192.0.2.2", 25, "No route to host")
    report = deliver(request(), world)
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.4.1")
    assert outcome.reason == f"connect to {MX2}:25: No route to host"
    assert outcome.relay == "none"
    assert f"connect to {MX1}:25: Connection refused" in report.events


LOST = [
    pytest.param([("EOF",)], "receiving the initial server greeting", id="greeting"),
    pytest.param([("S", GREETING), ("EOF",)], "performing the EHLO handshake", id="ehlo"),
    pytest.param([("S", GREETING), ("S", EHLO), ("EOF",)], "sending MAIL FROM", id="mail"),
    pytest.param(
        [("S", GREETING), ("S", EHLO), ("S", b"250 2.1.0 Ok\r\n"), ("EOF",)],
        "sending RCPT TO",
        id="rcpt",
    ),
    pytest.param(
        [("S", GREETING), ("S", EHLO), ("S", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"), ("EOF",)],
        "sending DATA command",
        id="data",
    ),
    pytest.param(
        [
            ("S", GREETING),
            ("S", EHLO),
            ("S", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" + GO_AHEAD),
            ("EOF",),
        ],
        "sending end of data -- message may be sent more than once",
        id="dot",
    ),
]


@pytest.mark.parametrize(("steps", "doing"), LOST)
@pytest.mark.parametrize("how", ["EOF", "TIMEOUT", "RESET"])
def test_lost_connection_or_timeout_names_the_stage(
    steps: list[tuple[object, ...]], doing: str, how: str
) -> None:
    script = [*steps[:-1], (how,)]
    world = two_mx()
    world.server("192.0.2.1", 25, script)
    world.server("192.0.2.2", 25, happy())
    report = deliver(request(), world)
    assert report.outcomes[0].action is Action.RELAYED  # 4.4.2 at a non-final MX: next MX
    what = "conversation with" if how == "TIMEOUT" else "lost connection with"
    verb = "timed out while" if how == "TIMEOUT" else "while"
    assert f"{what} {MX1} {verb} {doing}" in report.events
    # at the final server it defers
    world = one_mx()
    world.server("192.0.2.1", 25, script)
    (outcome,) = deliver(request(), world).outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.4.2")
    assert outcome.reason == f"{what} {MX1} {verb} {doing}"
    assert world.of(Close)[-1] == Close(abort=True)


@pytest.mark.parametrize(
    ("size", "reply", "action", "status", "reason"),
    [
        # a premature 4xx/5xx explains the failed write (Postfix smtp_loop())
        (
            100,
            b"552 5.3.4 Message size exceeds fixed limit\r\n",
            Action.BOUNCED,
            "5.3.4",
            f"host {MX1} said: 552 5.3.4 Message size exceeds fixed limit"
            " (in reply to end of DATA command)",
        ),
        # Postfix would log a premature 2xx as delivered; the end of data may
        # never have been sent, so it is a lost connection (docs/differences.md)
        (
            10_000,
            b"250 2.0.0 Ok: queued as ABC\r\n",
            Action.DEFERRED,
            "4.4.2",
            f"lost connection with {MX1} while sending message body",
        ),
        (
            100,
            b"250 2.0.0 Ok: queued as ABC\r\n",
            Action.DEFERRED,
            "4.4.2",
            f"lost connection with {MX1} while sending end of data"
            " -- message may be sent more than once",
        ),
    ],
)
def test_write_error_in_the_body_reads_a_premature_reply(
    size: int, reply: bytes, action: Action, status: str, reason: str
) -> None:
    world = one_mx()
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO),
            ("S", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" + GO_AHEAD),
            ("SEND-EOF",),
            ("S", reply),
        ],
    )
    content = b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n"
    content = content * (size // len(content) + 1)
    (outcome,) = deliver(request(content=content), world).outcomes
    assert (outcome.action, outcome.status, outcome.reason) == (action, status, reason)


@pytest.mark.parametrize(
    ("size", "doing"),
    [
        # the whole message, "." and QUIT in one write: Postfix reports the end of data
        (100, "sending end of data -- message may be sent more than once"),
        # a bigger message breaks while its body is being written: the last
        # 4096 octets go out with "." (Postfix VSTREAM_BUFSIZE)
        (10_000, "sending message body"),
        (1_000_000, "sending message body"),
    ],
)
def test_write_error_in_the_body_without_a_reply(size: int, doing: str) -> None:
    world = one_mx()
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO),
            ("S", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" + GO_AHEAD),
            ("SEND-EOF",),
            ("EOF",),
        ],
    )
    content = b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n" * 1
    content = content * (size // len(content) + 1)
    (outcome,) = deliver(request(content=content), world).outcomes
    assert outcome.status == "4.4.2"
    assert outcome.reason == f"lost connection with {MX1} while {doing}"


def test_421_after_rcpt_ends_the_session() -> None:
    world = two_mx()
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO),
            ("S", b"250 2.1.0 Ok\r\n421 4.7.0 mx1 Error: too many errors\r\n"),
        ],
    )
    world.server("192.0.2.2", 25, happy())
    report = deliver(request(), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert report.outcomes[0].relay == f"{MX2}:25"


def test_size_too_big_bounces_without_mail_and_without_quit() -> None:
    world = two_mx()
    mx1 = world.server(
        "192.0.2.1", 25, [("S", GREETING), ("S", b"250-mx1.example.net\r\n250 SIZE 10\r\n")]
    )
    mx2 = world.server("192.0.2.2", 25, happy())
    (outcome,) = deliver(request(), world).outcomes
    assert (outcome.action, outcome.status) == (Action.BOUNCED, "5.3.4")
    assert outcome.reason == f"message size 87 exceeds size limit 10 of server {MX1}"
    assert mx1.text == "EHLO client.example.org\r\n"
    assert mx2.connections == 0


# -- soft_bounce -------------------------------------------------------------------------


def test_soft_bounce_defers_hard_errors_at_the_final_server() -> None:
    world = one_mx()
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO),
            ("S", b"250 2.1.0 Ok\r\n550 5.1.1 <rcpt@example.net>: unknown\r\n554 5.5.1 no\r\n"),
        ],
    )
    report = deliver(request(cfg=config(soft_bounce=True)), world)
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status, outcome.soft_bounce) == (Action.DEFERRED, "4.1.1", True)
    assert ", dsn=4.1.1, status=SOFTBOUNCE (host " in outcome.log_line()


def test_soft_bounce_leaves_a_probe_undeliverable() -> None:
    # global/bounce.c bounce_append_intern(): the probe goes to the verify
    # service before soft_bounce is looked at (a message would be SOFTBOUNCE).
    world = one_mx()
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO),
            ("S", b"250 2.1.0 Ok\r\n550 5.1.1 <rcpt@example.net>: no\r\n"),
        ],
    )
    report = deliver(request(cfg=config(soft_bounce=True), verify_probe=True), world)
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status, outcome.soft_bounce) == (Action.BOUNCED, "5.1.1", False)
    assert ", dsn=5.1.1, status=undeliverable (host " in outcome.log_line()


def test_soft_bounce_keeps_hard_errors_for_the_next_mx() -> None:
    world = two_mx()
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO),
            ("S", b"250 2.1.0 Ok\r\n550 5.1.1 <rcpt@example.net>: unknown\r\n554 5.5.1 no\r\n"),
        ],
    )
    world.server("192.0.2.2", 25, happy())
    report = deliver(request(cfg=config(soft_bounce=True)), world)
    assert report.outcomes[0].action is Action.RELAYED


# -- smtp_delivery_status_filter (Postfix global/dsn_filter.c) ---------------------------

FILTER = r"""
/^5\.1\.1 (.*no such user.*)$/  4.7.1 filtered: $1
/^4\.2\.0 (.*)$/                5.2.0 filtered: $1
/^2\.0\.0 (250 .*)$/            2.0.0 filtered: $1
/^5\.7\.1 /                     2.0.0 a success for a bounce
/^4\.3\.2 /                     4.3.3
/^5\.5\.5 /                     5.5.5x not a status
"""
NO_USER = b"550 5.1.1 <rcpt@example.net>: no such user\r\n"
MX1_SAID = "host mx1.example.net[192.0.2.1] said:"


@pytest.mark.parametrize(
    ("rcpt_reply", "settings", "action", "status", "reason", "warning"),
    [
        # a bounce becomes a deferral (bounce.c bounce_append())
        (NO_USER, {}, Action.DEFERRED, "4.7.1",
         f"filtered: {MX1_SAID} 550 5.1.1 <rcpt@example.net>: no such user"
         " (in reply to RCPT TO command)", None),
        # a deferral becomes a bounce (defer.c defer_append())
        (b"450 4.2.0 busy\r\n", {}, Action.BOUNCED, "5.2.0",
         f"filtered: {MX1_SAID} 450 4.2.0 busy (in reply to RCPT TO command)", None),
        # a success keeps its kind, gets the new text (sent.c sent())
        (b"250 2.1.5 Ok\r\n", {}, Action.RELAYED, "2.0.0",
         "filtered: 250 2.0.0 Ok: queued as 4ABC", None),
        # a status only: the text is empty (dsn_split())
        (b"450 4.3.2 later\r\n", {}, Action.DEFERRED, "4.3.3", "", None),
        # failure <-> success, or no valid status: a warning, nothing changes
        (b"550 5.7.1 denied\r\n", {}, Action.BOUNCED, "5.7.1",
         f"{MX1_SAID} 550 5.7.1 denied (in reply to RCPT TO command)",
         "smtp_delivery_status_filter: bad status code: 2.0.0 a success for a bounce"),
        (b"550 5.5.5 odd\r\n", {}, Action.BOUNCED, "5.5.5",
         f"{MX1_SAID} 550 5.5.5 odd (in reply to RCPT TO command)",
         "smtp_delivery_status_filter: bad status code: 5.5.5x not a status"),
        # soft_bounce applies after the filter (bounce_append_intern())
        (b"450 4.2.0 busy\r\n", {"soft_bounce": True}, Action.DEFERRED, "4.2.0",
         f"filtered: {MX1_SAID} 450 4.2.0 busy (in reply to RCPT TO command)", None),
    ],
)  # fmt: skip
def test_delivery_status_filter(
    tmp_path: Path,
    rcpt_reply: bytes,
    settings: dict[str, object],
    action: Action,
    status: str,
    reason: str,
    warning: str | None,
) -> None:
    table = tmp_path / "dsn_filter"
    table.write_text(FILTER)
    world = one_mx()
    ok = rcpt_reply.startswith(b"2")
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", EHLO),
            ("S", b"250 2.1.0 Ok\r\n" + rcpt_reply + (b"354 go\r\n" if ok else b"554 no\r\n")),
            *([("S", b"250 2.0.0 Ok: queued as 4ABC\r\n")] if ok else []),
        ],
    )
    cfg = config(smtp_delivery_status_filter=f"regexp:{table}", **settings)
    report = deliver(request(cfg=cfg), world)
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status, outcome.reason) == (action, status, reason)
    assert outcome.soft_bounce is bool(settings.get("soft_bounce"))
    warnings = [e for e in report.events if e.startswith("warning: ")]
    assert warnings == ([f"warning: {warning}"] if warning else [])


def test_delivery_status_filter_defaults_to_default_delivery_status_filter(
    tmp_path: Path,
) -> None:
    table = tmp_path / "dsn_filter"
    table.write_text(FILTER)
    world = one_mx()
    world.server(
        "192.0.2.1",
        25,
        [("S", GREETING), ("S", EHLO), ("S", b"250 2.1.0 Ok\r\n" + NO_USER + b"554 no\r\n")],
    )
    cfg = config(default_delivery_status_filter=f"regexp:{table}")
    (outcome,) = deliver(request(cfg=cfg, verify_probe=True), world).outcomes
    assert (outcome.status, outcome.reason[:9]) == ("4.7.1", "filtered:")
    assert ", status=undeliverable (filtered: " in outcome.log_line()  # probes too
