"""The Cisco PIX ``delay_dotcrlf`` workaround: content, a pause, then the final ".".

Postfix 3.11 smtp_proto.c: smtp_helo() turns the workaround on for a
greeting made only of "2", "0", space and "*" (the PIX "smtp fixup" banner)
when ``delay_dotcrlf`` is among ``smtp_pix_workarounds`` (or the
``smtp_pix_workaround_maps`` entry for the server address) and the message
arrived at least ``smtp_pix_workaround_threshold_time`` ago (whole seconds:
``incoming_arrival.tv_sec > vstream_ftime() - var_smtp_pix_thresh`` turns it
off again). smtp_loop() then flushes everything before ".", sleeps
``smtp_pix_workaround_delay_time`` and sends "." (and a pipelined QUIT).

Scripted tests look at the effects the core yields and the bytes the
server got; the last tests run both drivers against a loopback
:class:`~pyfix_smtp.testing.SinkServer` greeting with a PIX banner.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from pyfix_smtp import AsyncClient, Client, Config, Envelope
from pyfix_smtp.delivery import Action
from pyfix_smtp.delivery.effects import Send, Sleep
from pyfix_smtp.delivery.report import DeliveryReport
from pyfix_smtp.testing import SinkServer
from tests.test_delivery_support import (
    EHLO,
    GREETING,
    MESSAGE,
    Server,
    World,
    config,
    deliver,
    request,
)

PIX = b"220 ****************************************\r\n"
MX = "mx.example.net[192.0.2.1]"
OLD = 600.0  # seconds before "now": older than the default 500s threshold
#: MESSAGE as it goes out after DATA (dot-stuffed), without the final "."
BODY = (
    b"Subject: test\r\nFrom: sender@example.org\r\nTo: rcpt@example.net\r\n\r\n"
    b"Hello.\r\n..leading dot\r\n"
)


def world(steps: list[tuple[object, ...]]) -> tuple[World, Server]:
    """One MX host at 192.0.2.1 with *steps*; the clock moves only when the core sleeps."""
    w = World(tick=0.0).mx("example.net", (10, "mx.example.net")).a("mx.example.net", "192.0.2.1")
    srv = w.server("192.0.2.1", 25, steps)
    srv.strict = True
    return w, srv


def helo_session(*, rcpts: int = 1) -> list[tuple[object, ...]]:
    """A PIX banner, HELO (disable_esmtp) and MAIL/RCPT/DATA one at a time, up to 354."""
    steps: list[tuple[object, ...]] = [
        ("S", PIX),
        ("C", b"HELO client.example.org\r\n"),
        ("S", b"250 mx.example.net\r\n"),
        ("C", b"MAIL FROM:<sender@example.org>\r\n"),
        ("S", b"250 2.1.0 Ok\r\n"),
    ]
    for i in range(rcpts):
        steps += [("C", f"RCPT TO:<r{i}@example.net>\r\n".encode()), ("S", b"250 2.1.5 Ok\r\n")]
    return [*steps, ("C", b"DATA\r\n"), ("S", b"354 End data with <CR><LF>.<CR><LF>\r\n")]


def after_data(w: World) -> list[object]:
    """The Sends and Sleeps after the DATA command: data or seconds, in order."""
    out: list[object] = []
    started = False
    for effect in w.effects:
        if isinstance(effect, Send):
            if started:
                out.append(effect.data)
            started = started or effect.data.endswith(b"DATA\r\n")
        elif isinstance(effect, Sleep):
            out.append(effect.seconds)
    return out


def sends(w: World) -> list[Send]:
    """Every Send effect, in order."""
    return [e for e in w.effects if isinstance(e, Send)]


def sleeps(w: World) -> list[float]:
    """The seconds of every Sleep effect, in order."""
    return [e.seconds for e in w.effects if isinstance(e, Sleep)]


def rcpt_list(n: int) -> list[str]:
    return [f"r{i}@example.net" for i in range(n)]


# -- the workaround on ----------------------------------------------------------------


def test_old_message_behind_pix_waits_before_the_dot() -> None:
    w, srv = world(
        [
            *helo_session(),
            ("C", BODY),
            ("SLEEP",),  # the whole body was written before the pause
            ("C", b".\r\n"),
            ("S", b"250 2.0.0 Ok: queued as 4ABC\r\n"),
            ("C", b"QUIT\r\n"),
            ("S", b"221 2.0.0 Bye\r\n"),
        ]
    )
    report = deliver(request(rcpt_list(1), arrival=w.clock - OLD), w)
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status) == (Action.RELAYED, "2.0.0")
    # content, smtp_pix_workaround_delay_time (10s), then "." alone; QUIT is not pipelined (HELO)
    assert after_data(w) == [BODY, 10.0, b".\r\n", b"QUIT\r\n"]
    assert srv.client_checked
    # the body goes out under smtp_data_xfer_timeout, "." under smtp_data_done_timeout
    content = [e.timeout for e in sends(w) if e.data in (BODY, b".\r\n")]
    assert content == [180.0, 600.0]
    # the pause is part of the transmission time (Postfix delays=a/b/c/d: d)
    times = outcome.times
    assert times is not None
    assert times.setup_done is not None
    assert times.done - times.setup_done == pytest.approx(10.0)


def test_pipelining_server_gets_dot_and_quit_together_after_the_pause() -> None:
    # Without disable_esmtp a PIX banner still gets EHLO (smtp_always_send_ehlo = yes).
    w, _ = world(
        [
            ("S", PIX),
            ("S", EHLO),
            ("S", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
            ("SLEEP",),
            ("S", b"250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"),
        ]
    )
    cfg = config(smtp_pix_workarounds="delay_dotcrlf", smtp_pix_workaround_delay_time="3s")
    (outcome,) = deliver(request(rcpt_list(1), cfg=cfg, arrival=w.clock - OLD), w).outcomes
    assert outcome.action is Action.RELAYED
    writes = [e.data for e in sends(w)]
    assert writes[0].startswith(b"EHLO ")
    assert writes[-2:] == [BODY, b".\r\nQUIT\r\n"]
    assert sleeps(w) == [3.0]


# -- when it applies: message age, banner, workaround lists -----------------------------


@pytest.mark.parametrize(
    ("age", "overrides", "pause"),
    [
        (600.0, {}, 10.0),
        (500.0, {}, 10.0),  # exactly the threshold: arrival <= now - threshold
        (499.5, {}, 10.0),  # whole seconds, as Postfix (tv_sec): 999500 <= 999500
        (499.0, {}, None),
        (10.0, {}, None),
        (10.0, {"smtp_pix_workaround_threshold_time": "5s"}, 10.0),
        (86400.0, {"smtp_pix_workaround_delay_time": "2s"}, 2.0),
        # No arrival time: the message arrived when the attempt started (as for
        # delay=), so only a threshold of 0 lets it pause. Postfix always has an
        # arrival time (the queue file's); a library caller that gives none
        # sends a new message.
        (None, {}, None),
        (None, {"smtp_pix_workaround_threshold_time": "0"}, 10.0),
    ],
)
def test_message_age_and_delay(
    age: float | None, overrides: dict[str, str], pause: float | None
) -> None:
    w, srv = world([*helo_session(), ("S", b"250 2.0.0 Ok\r\n")])
    arrival = None if age is None else w.clock - age
    cfg = config(**overrides)
    (outcome,) = deliver(request(rcpt_list(1), cfg=cfg, arrival=arrival), w).outcomes
    assert outcome.action is Action.RELAYED
    if pause is None:
        assert after_data(w) == [BODY + b".\r\n", b"QUIT\r\n"]
    else:
        assert after_data(w) == [BODY, pause, b".\r\n", b"QUIT\r\n"]
    assert srv.client_checked


@pytest.mark.parametrize(
    ("banner", "overrides", "pauses"),
    [
        (PIX, {}, True),
        (b"220 ***\r\n", {}, True),
        (b"220 2002 ** 0\r\n", {}, True),  # only "2", "0", space, "*" (strspn())
        (GREETING, {}, False),
        (b"220 **** mx.example.net ESMTP\r\n", {}, False),
        (PIX, {"smtp_pix_workarounds": "disable_esmtp"}, False),
        (PIX, {"smtp_pix_workarounds": ""}, False),
        (PIX, {"smtp_pix_workarounds": "DELAY_DOTCRLF, disable_esmtp"}, True),
    ],
)
def test_banner_and_workaround_list(banner: bytes, overrides: dict[str, str], pauses: bool) -> None:
    w, _ = world(
        [
            ("S", banner),
            ("S", b"250 mx.example.net\r\n"),  # HELO or EHLO without extensions
            ("S", b"250 2.1.0 Ok\r\n"),
            ("S", b"250 2.1.5 Ok\r\n"),
            ("S", b"354 go ahead\r\n"),
            ("S", b"250 2.0.0 Ok\r\n"),
        ]
    )
    cfg = config(**overrides)
    (outcome,) = deliver(request(rcpt_list(1), cfg=cfg, arrival=w.clock - OLD), w).outcomes
    assert outcome.action is Action.RELAYED
    assert bool(sleeps(w)) is pauses
    writes = after_data(w)
    assert writes[0] == (BODY if pauses else BODY + b".\r\n")


@pytest.mark.parametrize(
    ("global_list", "table", "pauses", "logged"),
    [
        # the entry for the server address replaces smtp_pix_workarounds
        (
            "disable_esmtp",
            "inline:{{192.0.2.1=delay_dotcrlf,disable_esmtp}}",
            True,
            "disable_esmtp delay_dotcrlf",  # pix_bug_table order
        ),
        ("disable_esmtp", "inline:{{192.0.2.1=delay_dotcrlf}}", True, "delay_dotcrlf"),
        (
            "disable_esmtp,delay_dotcrlf",
            "inline:{{192.0.2.1=disable_esmtp}}",
            False,
            "disable_esmtp",
        ),
        # no entry for this address: smtp_pix_workarounds
        (
            "disable_esmtp,delay_dotcrlf",
            "inline:{{192.0.2.9=disable_esmtp}}",
            True,
            "disable_esmtp delay_dotcrlf",
        ),
        ("disable_esmtp", "inline:{{192.0.2.9=delay_dotcrlf}}", False, "disable_esmtp"),
    ],
)
def test_pix_workaround_maps(global_list: str, table: str, pauses: bool, logged: str) -> None:
    w, _ = world(
        [
            ("S", PIX),
            ("S", b"250 mx.example.net\r\n"),
            ("S", b"250 2.1.0 Ok\r\n"),
            ("S", b"250 2.1.5 Ok\r\n"),
            ("S", b"354 go ahead\r\n"),
            ("S", b"250 2.0.0 Ok\r\n"),
        ]
    )
    cfg = config(smtp_pix_workarounds=global_list, smtp_pix_workaround_maps=table)
    report = deliver(request(rcpt_list(1), cfg=cfg, arrival=w.clock - OLD), w)
    assert report.outcomes[0].action is Action.RELAYED
    assert sleeps(w) == ([10.0] if pauses else [])
    # smtp_helo() logs the workarounds it turned on for this server
    assert f"enabling PIX workarounds: {logged} for {MX}:25" in report.events


def test_young_message_is_logged_without_delay_dotcrlf() -> None:
    # smtp_helo() drops delay_dotcrlf from the mask before it logs it
    w, _ = world([*helo_session(), ("S", b"250 2.0.0 Ok\r\n")])
    report = deliver(request(rcpt_list(1), arrival=w.clock - 10), w)
    assert report.outcomes[0].action is Action.RELAYED
    assert sleeps(w) == []
    assert f"enabling PIX workarounds: disable_esmtp for {MX}:25" in report.events


def test_lmtp_behind_pix_pauses_too() -> None:
    # smtp_helo() sets the PIX features for LMTP as well (only disable_esmtp
    # is SMTP-only: LMTP always sends LHLO).
    w = World(tick=0.0)
    srv = w.server(
        "/run/lmtp",
        0,
        [
            ("S", PIX),
            ("C", b"LHLO client.example.org\r\n"),
            ("S", b"250 lmtp.example.net\r\n"),
            ("C", b"MAIL FROM:<sender@example.org>\r\n"),
            ("S", b"250 2.1.0 Ok\r\n"),
            ("C", b"RCPT TO:<r0@example.net>\r\n"),
            ("S", b"250 2.1.5 Ok\r\n"),
            ("C", b"DATA\r\n"),
            ("S", b"354 go ahead\r\n"),
            ("C", BODY),
            ("SLEEP",),
            ("C", b".\r\n"),
            ("S", b"250 2.0.0 Ok\r\n"),
            ("C", b"QUIT\r\n"),
            ("S", b"221 2.0.0 Bye\r\n"),
        ],
    )
    srv.strict = True
    cfg = Config(protocol="lmtp", myhostname="client.example.org")
    req = request(rcpt_list(1), nexthop="unix:/run/lmtp", cfg=cfg, arrival=w.clock - OLD)
    (outcome,) = deliver(req, w).outcomes
    assert outcome.status == "2.0.0"
    assert sleeps(w) == [10.0]
    assert srv.client_checked


def test_large_message_same_bytes_only_the_last_write_is_split() -> None:
    line = b"x" * 76 + b"\r\n"
    content = b"Subject: big\r\n\r\n" + line * 9000  # ~700 KB: several content writes
    received = []
    for workarounds in ("disable_esmtp", "disable_esmtp,delay_dotcrlf"):
        w, srv = world([*helo_session(), ("S", b"250 2.0.0 Ok\r\n")])
        cfg = config(smtp_pix_workarounds=workarounds)
        (outcome,) = deliver(
            request(rcpt_list(1), cfg=cfg, content=content, arrival=w.clock - OLD), w
        ).outcomes
        assert outcome.action is Action.RELAYED
        received.append(bytes(srv.received))
        writes = after_data(w)
        if "delay_dotcrlf" in workarounds:
            assert writes[-3:] == [10.0, b".\r\n", b"QUIT\r\n"]
            assert all(isinstance(x, bytes) for x in writes[:-3])
            last_content = writes[-4]
            assert isinstance(last_content, bytes)
            assert last_content.endswith(b"\r\n")
        else:
            assert 10.0 not in writes
    assert received[0] == received[1]  # the workaround changes timing, never bytes


# -- one outcome per recipient on every path --------------------------------------------


def test_recipients_refused_and_accepted_around_the_pause() -> None:
    steps: list[tuple[object, ...]] = [
        ("S", PIX),
        ("S", b"250 mx.example.net\r\n"),
        ("S", b"250 2.1.0 Ok\r\n"),
        ("S", b"250 2.1.5 Ok\r\n"),
        ("S", b"550 5.1.1 <r1@example.net>: unknown\r\n"),
        ("S", b"250 2.1.5 Ok\r\n"),
        ("S", b"354 go ahead\r\n"),
        ("SLEEP",),
        ("S", b"250 2.0.0 Ok\r\n"),
    ]
    w, _ = world(steps)
    report = deliver(request(rcpt_list(3), arrival=w.clock - OLD), w)
    assert [(o.recipient, o.action) for o in report] == [
        ("r0@example.net", Action.RELAYED),
        ("r1@example.net", Action.BOUNCED),
        ("r2@example.net", Action.RELAYED),
    ]
    assert sleeps(w) == [10.0]


@pytest.mark.parametrize(
    ("after_failure", "status", "action"),
    [
        ((), "4.4.2", Action.DEFERRED),
        # a 2xx read after the failed write cannot confirm the end of data
        ((("S", b"250 2.0.0 Ok\r\n"),), "4.4.2", Action.DEFERRED),
        # a premature refusal explains the failure (smtp_loop())
        ((("S", b"554 5.7.1 rejected\r\n"),), "5.7.1", Action.BOUNCED),
    ],
)
def test_lost_connection_on_the_dot_after_the_pause(
    after_failure: tuple[tuple[object, ...], ...], status: str, action: Action
) -> None:
    outcomes = []
    for workarounds in ("disable_esmtp,delay_dotcrlf", "disable_esmtp"):
        steps: list[tuple[object, ...]] = [*helo_session(rcpts=2)]
        if "delay_dotcrlf" in workarounds:
            steps.append(("SLEEP",))  # the body write before the pause succeeds
        steps += [("SEND-EOF",), *after_failure]
        w, srv = world(steps)
        cfg = config(smtp_pix_workarounds=workarounds)
        report = deliver(request(rcpt_list(2), cfg=cfg, arrival=w.clock - OLD), w)
        assert [o.recipient for o in report] == rcpt_list(2)
        for outcome in report:
            assert (outcome.action, outcome.status) == (action, status)
        if status == "4.4.2":
            assert {o.reason for o in report} == {
                f"lost connection with {MX} while sending end of data -- "
                "message may be sent more than once"
            }
        assert len(srv.closes) == 1
        outcomes.append([(o.action, o.status, o.reason, srv.closes) for o in report])
    # the same verdicts (and close) as a failed final write without the workaround
    assert outcomes[0] == outcomes[1]


def test_lost_connection_on_the_body_write_never_pauses() -> None:
    w, _ = world([*helo_session(), ("SEND-EOF",)])
    (outcome,) = deliver(request(rcpt_list(1), arrival=w.clock - OLD), w).outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.4.2")
    assert outcome.reason == f"lost connection with {MX} while sending message body"
    assert sleeps(w) == []


def test_body_write_timeout_never_pauses() -> None:
    w, _ = world([*helo_session(), ("SEND-TIMEOUT",)])
    (outcome,) = deliver(request(rcpt_list(1), arrival=w.clock - OLD), w).outcomes
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.4.2")
    assert outcome.reason == f"conversation with {MX} timed out while sending message body"
    assert sleeps(w) == []


def test_reused_connection_judges_each_message() -> None:
    # Postfix decides at the greeting and keeps the flag with a cached
    # connection; pyfix_smtp judges every message by its own age.
    w, _ = world(
        [
            *helo_session(),
            ("SLEEP",),
            ("S", b"250 2.0.0 Ok\r\n"),
            ("S", b"250 2.0.0 Ok\r\n"),  # RSET probe of the reused connection
            ("S", b"250 2.1.0 Ok\r\n"),
            ("S", b"250 2.1.5 Ok\r\n"),
            ("S", b"354 go ahead\r\n"),
            ("S", b"250 2.0.0 Ok\r\n"),
        ]
    )
    first = deliver(request(rcpt_list(1), arrival=w.clock - OLD, connection_cache=True), w)
    assert first.outcomes[0].action is Action.RELAYED
    second = deliver(request(rcpt_list(1), arrival=w.clock - 1, connection_cache=True), w)
    assert second.outcomes[0].action is Action.RELAYED
    assert sleeps(w) == [10.0]


def test_sleep_effect_refuses_negative_and_nan() -> None:
    assert Sleep(0.0).seconds == 0.0
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="seconds"):
            Sleep(bad)


# -- both drivers, against a loopback server with a PIX banner --------------------------


def _pix_config() -> Config:
    # smtp_pix_workaround_delay_time takes whole seconds, at least 1s (Postfix's minimum)
    return Config(
        myhostname="client.example.org",
        smtp_tls_security_level="none",
        smtp_pix_workaround_delay_time="1s",
    )


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_drivers_pause_before_the_dot(kind: str) -> None:
    envelope = Envelope("sender@example.org", ["rcpt@example.net"])
    with SinkServer(script={"CONNECT": "220 ***************************"}) as server:
        started = time.monotonic()
        if kind == "sync":
            with Client() as client:
                report = client.deliver(
                    envelope, MESSAGE, server.nexthop, _pix_config(), arrival=time.time() - OLD
                )
        else:

            async def run() -> DeliveryReport:
                async with AsyncClient() as client:
                    return await client.deliver(
                        envelope, MESSAGE, server.nexthop, _pix_config(), arrival=time.time() - OLD
                    )

            report = asyncio.run(run())
        elapsed = time.monotonic() - started
        assert [o.action for o in report] == [Action.RELAYED]
        assert elapsed >= 1.0
        (message,) = server.messages
        assert message.content == MESSAGE
        assert server.sessions[0].helo == "client.example.org"
        assert server.sessions[0].commands[0] == "HELO client.example.org"
