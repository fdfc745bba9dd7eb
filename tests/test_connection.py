"""ClientConnection transcript tests: every stage, every failure, PIPELINING rules.

Each scenario is a transcript of server (``S``) and client (``C``) lines,
replayed with the server side fed whole, byte by byte and in random chunks
(and, where the protocol allows it, with the whole server stream available
at once). The client side must match byte for byte and write group by write
group; a check then looks at the events and the per-recipient outcomes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from pyfix_smtp.protocol.connection import ClientConnection, ClientOptions, State
from pyfix_smtp.protocol.content import encode_bdat, encode_data
from pyfix_smtp.protocol.envelope import (
    BodyType,
    Envelope,
    Notify,
    Recipient,
    Ret,
    Xforward,
)
from pyfix_smtp.protocol.events import (
    AuthChallenge,
    AuthResult,
    Closed,
    DataReady,
    Event,
    Extensions,
    Greeting,
    HelloRejected,
    LmtpRecipientResult,
    MessageResult,
    ProtocolWarning,
    RecipientResult,
    RsetResult,
    Stage,
    StartTlsReady,
    StartTlsRejected,
    TransactionResult,
    XforwardResult,
)
from pyfix_smtp.protocol.extensions import EhloDiscard
from tests.transcripts.replay import HANGUP, Hangup, Replayed, Step, replay

PEER = "mx.example.net[192.0.2.25]"
MESSAGE = b"Subject: test\n\nhello\n.dot line\n"
CONTENT = b"".join(encode_data(MESSAGE))
BDAT_CONTENT = b"".join(c.data for c in encode_bdat(MESSAGE))
EHLO_PIPE = ["S 250-mx.example.net", "S 250-PIPELINING", "S 250-SIZE 10240000", "S 250 8BITMIME"]
EHLO_PLAIN = ["S 250-mx.example.net", "S 250-SIZE 10240000", "S 250 8BITMIME"]
START = ["S 220 mx.example.net ESMTP", "C EHLO client.example"]


def T(*items: str | tuple[str, bytes]) -> list[Step]:
    """Build steps: ``"S text"`` / ``"C text"`` lines (CRLF added), merged per direction."""
    steps: list[Step] = []
    for item in items:
        if isinstance(item, tuple):
            direction, data = item
        else:
            direction, text = item[0], item[2:]
            if text == "<content>":
                data = CONTENT
            elif text == "<bdat>":
                data = b"BDAT %d LAST\r\n" % len(BDAT_CONTENT) + BDAT_CONTENT
            else:
                data = text.encode() + b"\r\n"
        if steps and steps[-1][0] == direction:
            steps[-1] = (direction, steps[-1][1] + data)
        else:
            steps.append((direction, data))
    return steps


@dataclass
class Scenario:
    """A transcript, the client's choices and a check of the result."""

    name: str
    steps: list[Step]
    envelope: Envelope = field(default_factory=lambda: Envelope("a@example.org", ["b@example.net"]))
    options: ClientOptions = field(default_factory=ClientOptions)
    starttls: bool = False
    auth: tuple[str, bytes | None] | None = None
    auth_answers: list[bytes | None] = field(default_factory=list)  # None: cancel
    keep_session: bool = False
    verify: str | None = None  # address verification probe target
    second: Envelope | None = None  # a second transaction on the same session
    all_at_once: bool = True  # the server stream may be fed in one go
    whole_only: bool = False  # meaningful only when each S step arrives in one read
    check: Callable[[Replayed, ClientConnection], None] | None = None


def opts(**kw: object) -> ClientOptions:
    base: dict[str, object] = {"helo_name": "client.example", "peer_name": PEER}
    base.update(kw)
    return ClientOptions(**base)  # type: ignore[arg-type]


def driver(sc: Scenario) -> Callable[[ClientConnection, Event], bytes | Hangup | None]:
    answers = list(sc.auth_answers)
    state = {"tls": False, "auth": False, "second": False}

    def drive(conn: ClientConnection, event: Event) -> bytes | Hangup | None:
        if isinstance(event, Extensions):
            if sc.starttls and not state["tls"] and event.starttls:
                state["tls"] = True
                return conn.start_tls()
            if sc.auth is not None and not state["auth"]:
                state["auth"] = True
                return conn.start_auth(*sc.auth)
            return conn.start_transaction(
                sc.envelope, keep_session=sc.keep_session, verify=sc.verify
            )
        if isinstance(event, StartTlsReady):
            return conn.tls_established()
        if isinstance(event, StartTlsRejected):
            return conn.start_transaction(sc.envelope, keep_session=sc.keep_session)
        if isinstance(event, AuthChallenge):
            answer = answers.pop(0)
            return conn.cancel_auth() if answer is None else conn.send_auth_response(answer)
        if isinstance(event, AuthResult):
            if not event.accepted:
                return conn.quit()
            return conn.start_transaction(sc.envelope, keep_session=sc.keep_session)
        if isinstance(event, DataReady):
            if event.framing.name == "BDAT":
                chunks = list(encode_bdat(MESSAGE, chunk_size=1 << 20))
                out = b""
                for chunk in chunks:
                    out += conn.send_data(chunk.data, final=chunk.last)
                return out
            return conn.send_data(CONTENT, final=True)
        if isinstance(event, TransactionResult) and conn.state is State.READY:
            if sc.second is not None and not state["second"]:
                state["second"] = True
                return conn.rset()
            return HANGUP
        if isinstance(event, RsetResult) and event.stage is Stage.RSET and sc.second is not None:
            return conn.start_transaction(sc.second)
        return None

    return drive


def outcomes(result: Replayed) -> list[tuple[bool, str | None, str | None]]:
    [summary] = result.of(TransactionResult)
    assert isinstance(summary, TransactionResult)
    return [
        (
            o.delivered,
            o.failure.status if o.failure else None,
            o.failure.reason if o.failure else None,
        )
        for o in summary.outcomes
    ]


def closed(result: Replayed) -> Closed:
    event = result.events[-1]
    assert isinstance(event, Closed)
    return event


def names(result: Replayed) -> list[str]:
    return [type(e).__name__ for e in result.events if not isinstance(e, ProtocolWarning)]


# -- checks ------------------------------------------------------------


def delivered_all(result: Replayed, conn: ClientConnection) -> None:
    assert all(d for d, _, _ in outcomes(result))
    assert conn.state is State.CLOSED
    assert not closed(result).lost


def check_rejected_at(stage: str, status: str, count: int | None = None):  # type: ignore[no-untyped-def]
    def check(result: Replayed, conn: ClientConnection) -> None:
        got = outcomes(result)
        failed = [o for o in got if not o[0]]
        assert failed, got
        if count is not None:
            assert len(failed) == count, got
        for _, st, reason in failed:
            assert st == status, got
            assert reason is not None
            assert f"(in reply to {stage})" in reason or f"while {stage}" in reason, reason

    return check


SCENARIOS: list[Scenario] = []


def scenario(*args: object, **kwargs: object) -> None:
    SCENARIOS.append(Scenario(*args, **kwargs))  # type: ignore[arg-type]


# 1. one command per write without PIPELINING; QUIT after the end-of-data reply
scenario(
    "plain_no_pipelining",
    T(
        *START,
        *EHLO_PLAIN,
        "C MAIL FROM:<a@example.org>",
        "S 250 2.1.0 Ok",
        "C RCPT TO:<b@example.net>",
        "S 250 2.1.5 Ok",
        "C DATA",
        "S 354 go ahead",
        "C <content>",
        "S 250 2.0.0 Ok: queued",
        "C QUIT",
    ),
    options=opts(),
    check=delivered_all,
)
# 2. MAIL, RCPTs and DATA in one write; content + . + QUIT in one write
scenario(
    "pipelined_two_recipients",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C RCPT TO:<c@example.net>",
        "C DATA",
        "S 250 2.1.0 Ok",
        "S 250 2.1.5 Ok",
        "S 250 2.1.5 Ok",
        "S 354 go ahead",
        "C <content>",
        "C QUIT",
        "S 250 2.0.0 Ok: queued as X",
        "S 221 bye",
    ),
    envelope=Envelope("a@example.org", ["b@example.net", "c@example.net"]),
    options=opts(),
    check=delivered_all,
)
# 3. EHLO refused: HELO fallback, no ESMTP parameters
scenario(
    "ehlo_refused_helo_fallback",
    T(
        *START,
        "S 502 5.5.2 Error: command not recognized",
        "C HELO client.example",
        "S 250 mx.example.net",
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 354 go",
        "C <content>",
        "S 250 ok",
        "C QUIT",
    ),
    envelope=Envelope(
        "a@example.org",
        [Recipient("b@example.net", notify="FAILURE", orcpt="b@example.net")],
        size=50,
    ),
    options=opts(),
    check=lambda r, c: (
        delivered_all(r, c),
        names(r)[:3] == ["Greeting", "HelloRejected", "Extensions"] or pytest.fail(str(names(r))),
    ),
)
# 4. smtp_never_send_ehlo
scenario(
    "never_send_ehlo",
    T(
        "S 220 mx ESMTP",
        "C HELO client.example",
        "S 250 mx",
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 354 go",
        "C <content>",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(never_send_ehlo=True),
    check=delivered_all,
)
# 5. no ESMTP in the banner and smtp_always_send_ehlo = no: HELO
scenario(
    "banner_without_esmtp",
    T(
        "S 220 mx Microsoft SMTP MAIL ready",
        "C HELO client.example",
        "S 250 mx",
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 354 go",
        "C <content>",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(always_send_ehlo=False),
    check=delivered_all,
)
# 6. Cisco PIX banner: disable_esmtp
scenario(
    "pix_banner_disables_esmtp",
    T(
        "S 220 ******************************",
        "C HELO client.example",
        "S 250 mx",
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 354 go",
        "C <content>",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(),
    check=lambda r, c: (delivered_all(r, c), c.pix_delay_dotcrlf or pytest.fail("pix")),
)
# 7. greeting refused: QUIT, session over
scenario(
    "greeting_refused",
    T("S 554 5.7.1 go away", "C QUIT"),
    options=opts(),
    check=lambda r, c: (
        names(r) == ["Greeting", "Closed"] or pytest.fail(str(names(r))),
        not r.of(Greeting)[0].accepted or pytest.fail("accepted"),  # type: ignore[attr-defined]
    ),
)
# 8. greeting 421: QUIT all the same (smtp_connect.c smtp_quit() after
# smtp_helo() failed; Postfix 3.7 does it, transcripts/postfix/greeting_421.json)
scenario(
    "greeting_421",
    T("S 421 4.3.2 too busy", "C QUIT"),
    options=opts(),
    check=lambda r, c: (
        (closed(r).reply is not None and closed(r).reply.code == 421) or pytest.fail("421")
    ),  # type: ignore[union-attr]
)
# 9. EHLO answered 421: no HELO fallback, QUIT (transcripts/postfix/ehlo_421.json)
scenario(
    "ehlo_421",
    T(*START, "S 421 4.7.0 closing", "C QUIT"),
    options=opts(),
    check=lambda r, c: (
        names(r) == ["Greeting", "HelloRejected", "Closed"] or pytest.fail(str(names(r))),
        not r.of(HelloRejected)[0].fallback or pytest.fail("fallback"),  # type: ignore[attr-defined]
    ),
)
# 10. EHLO and HELO refused: QUIT
scenario(
    "helo_refused",
    T(*START, "S 500 no", "C HELO client.example", "S 550 5.7.1 not you", "C QUIT"),
    options=opts(),
    check=lambda r, c: (
        names(r) == ["Greeting", "HelloRejected", "HelloRejected", "Closed"]
        or pytest.fail(str(names(r)))
    ),
)
# 11. MAIL refused without PIPELINING: RSET instead of RCPT (course correction)
scenario(
    "mail_refused_no_pipelining",
    T(
        *START,
        *EHLO_PLAIN,
        "C MAIL FROM:<a@example.org>",
        "S 553 5.7.1 sender rejected",
        "C RSET",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(),
    check=check_rejected_at("MAIL FROM command", "5.7.1", 1),
)
# 12. MAIL refused with PIPELINING: replies to RCPT/DATA ignored, RSET+QUIT
scenario(
    "mail_refused_pipelined",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C RCPT TO:<c@example.net>",
        "C DATA",
        "S 451 4.3.0 try later",
        "S 503 5.5.1 need MAIL",
        "S 503 5.5.1 need MAIL",
        "S 503 5.5.1 need RCPT",
        "C RSET",
        "C QUIT",
        "S 250 ok",
        "S 221 bye",
    ),
    envelope=Envelope("a@example.org", ["b@example.net", "c@example.net"]),
    options=opts(),
    check=lambda r, c: (
        check_rejected_at("MAIL FROM command", "4.3.0", 2)(r, c),
        r.of(RecipientResult) == [] or pytest.fail("rcpt events"),
    ),
)
# 13. some RCPTs refused, the rest get the message
scenario(
    "some_recipients_refused",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C RCPT TO:<c@example.net>",
        "C DATA",
        "S 250 ok",
        "S 550 5.1.1 <b@example.net>: no such user",
        "S 250 ok",
        "S 354 go",
        "C <content>",
        "C QUIT",
        "S 250 2.0.0 queued",
    ),
    envelope=Envelope("a@example.org", ["b@example.net", "c@example.net"]),
    options=opts(),
    check=lambda r, c: (
        outcomes(r)
        == [
            (
                False,
                "5.1.1",
                f"host {PEER} said: 550 5.1.1 <b@example.net>: no such user "
                "(in reply to RCPT TO command)",
            ),
            (True, None, None),
        ]
        or pytest.fail(str(outcomes(r)))
    ),
)
# 14. all RCPTs refused with PIPELINING: DATA refused too, RSET+QUIT in one write
scenario(
    "all_recipients_refused_pipelined",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C DATA",
        "S 250 ok",
        "S 550 5.1.1 no",
        "S 554 5.5.1 no valid recipients",
        "C RSET",
        "C QUIT",
        "S 250 ok",
    ),
    options=opts(),
    check=lambda r, c: (
        check_rejected_at("RCPT TO command", "5.1.1", 1)(r, c),
        r.of(MessageResult) == [] or pytest.fail("no MessageResult without recipients"),
    ),
)
# 15. all RCPTs refused but DATA accepted: just "." (RFC 2920), then QUIT
scenario(
    "all_recipients_refused_data_accepted",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C DATA",
        "S 250 ok",
        "S 450 4.2.1 later",
        "S 354 go",
        "C .",
        "C QUIT",
        "S 554 no transaction",
    ),
    options=opts(),
    check=lambda r, c: (
        check_rejected_at("RCPT TO command", "4.2.1", 1)(r, c),
        r.of(DataReady) == [] or pytest.fail("no content without recipients"),
    ),
)
# 16. all RCPTs refused without PIPELINING: RSET instead of DATA
scenario(
    "all_recipients_refused_no_pipelining",
    T(
        *START,
        *EHLO_PLAIN,
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 550 5.1.1 no",
        "C RSET",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(),
    check=check_rejected_at("RCPT TO command", "5.1.1", 1),
)
# 17. DATA refused after accepted RCPTs: RSET+QUIT
scenario(
    "data_refused",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C DATA",
        "S 250 ok",
        "S 250 ok",
        "S 451 4.3.0 local error",
        "C RSET",
        "C QUIT",
        "S 250 ok",
    ),
    options=opts(),
    check=check_rejected_at("DATA command", "4.3.0", 1),
)
# 18. end of data refused with a multi-line reply: every line in the report
scenario(
    "end_of_data_refused_multiline",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C DATA",
        "S 250 ok",
        "S 250 ok",
        "S 354 go",
        "C <content>",
        "C QUIT",
        "S 550-5.7.1 first line",
        "S 550-5.7.1 second line",
        "S 550 5.7.1 third line",
    ),
    options=opts(),
    check=lambda r, c: (
        outcomes(r)
        == [
            (
                False,
                "5.7.1",
                f"host {PEER} said: 550-5.7.1 first line 550-5.7.1 second line "
                "550 5.7.1 third line (in reply to end of DATA command)",
            ),
        ]
        or pytest.fail(str(outcomes(r)))
    ),
)
# 19. 421 at end of data: the message is deferred with it, session over
scenario(
    "end_of_data_421",
    T(
        *START,
        *EHLO_PLAIN,
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 354 go",
        "C <content>",
        "S 421 4.4.2 shutting down",
    ),
    options=opts(),
    check=lambda r, c: (
        check_rejected_at("end of DATA command", "4.4.2", 1)(r, c),
        closed(r).reply is not None or pytest.fail("421 reply"),
    ),
)
# 20. 421 to the first of three pipelined RCPTs; the server closes: the
# others are lost, nothing more is sent
scenario(
    "rcpt_421_pipelined",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C RCPT TO:<c@example.net>",
        "C RCPT TO:<d@example.net>",
        "C DATA",
        "S 250 ok",
        "S 421 4.7.0 too many errors",
    ),
    envelope=Envelope("a@example.org", ["b@example.net", "c@example.net", "d@example.net"]),
    options=opts(),
    check=lambda r, c: (
        outcomes(r)
        == [
            (
                False,
                "4.7.0",
                f"host {PEER} said: 421 4.7.0 too many errors (in reply to RCPT TO command)",
            ),
            (False, "4.4.2", f"lost connection with {PEER} while sending RCPT TO"),
            (False, "4.4.2", f"lost connection with {PEER} while sending RCPT TO"),
        ]
        or pytest.fail(str(outcomes(r)))
    ),
)
# 21. 421 without PIPELINING: the next RCPT is never sent
scenario(
    "rcpt_421_no_pipelining",
    T(
        *START,
        *EHLO_PLAIN,
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 421 4.3.2 shutdown",
    ),
    envelope=Envelope("a@example.org", ["b@example.net", "c@example.net"]),
    options=opts(),
    all_at_once=False,
    check=lambda r, c: (
        [o[1] for o in outcomes(r)] == ["4.3.2", "4.4.2"] or pytest.fail(str(outcomes(r)))
    ),
)
# 22. connection lost after the MAIL reply: every recipient lost "while sending RCPT TO"
scenario(
    "eof_after_mail_reply",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C DATA",
        "S 250 ok",
    ),
    options=opts(),
    check=lambda r, c: (
        outcomes(r) == [(False, "4.4.2", f"lost connection with {PEER} while sending RCPT TO")]
        or pytest.fail(str(outcomes(r))),
        closed(r).lost or pytest.fail("lost"),
    ),
)
# 23. connection lost before the greeting
scenario(
    "eof_before_greeting",
    T(("S", b"220 partial")),
    options=opts(),
    check=lambda r, c: (
        (closed(r).lost and closed(r).stage is Stage.GREETING) or pytest.fail(str(r.events))
    ),
)
# 24. connection lost while waiting for the end-of-data reply
scenario(
    "eof_waiting_for_end_of_data",
    T(
        *START,
        *EHLO_PLAIN,
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 354 go",
        "C <content>",
    ),
    options=opts(),
    check=lambda r, c: (
        outcomes(r)
        == [
            (
                False,
                "4.4.2",
                f"lost connection with {PEER} while sending end of data -- "
                "message may be sent more than once",
            ),
        ]
        or pytest.fail(str(outcomes(r)))
    ),
)
# 25. garbage lines are skipped; the reply counts; the session is marked
scenario(
    "garbage_lines_in_reply",
    T(
        *START,
        "S 250-mx.example.net",
        "S this line has no code",
        "S 250 PIPELINING",
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C DATA",
        "S 250 ok",
        "S 250 ok",
        "S 354 go",
        "C <content>",
        "C QUIT",
        "S 250 ok",
    ),
    options=opts(),
    check=lambda r, c: (
        delivered_all(r, c),
        c.protocol_error or pytest.fail("protocol_error"),
        any("non-SMTP" in w.text for w in r.of(ProtocolWarning)) or pytest.fail("warning"),  # type: ignore[attr-defined]
    ),
)
# 26. a 600 reply to RCPT: a protocol error, status 5.5.0
scenario(
    "rcpt_600",
    T(
        *START,
        *EHLO_PLAIN,
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 600 2.1.5 odd",
        "C RSET",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(),
    check=lambda r, c: (
        check_rejected_at("RCPT TO command", "5.5.0", 1)(r, c),
        c.protocol_error or pytest.fail("protocol_error"),
    ),
)
# 27. a 199 reply to MAIL is a rejection with 5.5.0
scenario(
    "mail_199",
    T(
        *START,
        *EHLO_PLAIN,
        "C MAIL FROM:<a@example.org>",
        "S 199 what",
        "C RSET",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(),
    check=check_rejected_at("MAIL FROM command", "5.5.0", 1),
)
# 28. class-mismatched enhanced code: 550 2.1.5 -> 5.0.0
scenario(
    "rcpt_class_mismatch",
    T(
        *START,
        *EHLO_PLAIN,
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 550 2.1.5 but no",
        "C RSET",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(),
    check=check_rejected_at("RCPT TO command", "5.0.0", 1),
)
# 29. DATA answered with 250 instead of 354: "Protocol error", 5.5.0
scenario(
    "data_answered_250",
    T(
        *START,
        *EHLO_PLAIN,
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 250 2.0.0 what",
        "C RSET",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(),
    check=lambda r, c: (
        outcomes(r)
        == [
            (
                False,
                "5.5.0",
                f"Protocol error: host {PEER} said: 250 2.0.0 what (in reply to DATA command)",
            ),
        ]
        or pytest.fail(str(outcomes(r)))
    ),
)
# 30. LMTP: per-recipient replies after the data; one refused at RCPT, one after
scenario(
    "lmtp_partial_failure",
    T(
        "S 220 lmtp.example LMTP",
        "C LHLO client.example",
        "S 250-lmtp.example",
        "S 250 PIPELINING",
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C RCPT TO:<c@example.net>",
        "C RCPT TO:<d@example.net>",
        "C DATA",
        "S 250 ok",
        "S 250 ok",
        "S 550 5.1.1 unknown",
        "S 250 ok",
        "S 354 go",
        "C <content>",
        "C QUIT",
        "S 250 2.0.0 <b@example.net> Saved",
        "S 552 5.2.2 <d@example.net> Quota exceeded",
    ),
    envelope=Envelope("a@example.org", ["b@example.net", "c@example.net", "d@example.net"]),
    options=opts(lmtp=True),
    check=lambda r, c: (
        [o[:2] for o in outcomes(r)] == [(True, None), (False, "5.1.1"), (False, "5.2.2")]
        or pytest.fail(str(outcomes(r))),
        [e.index for e in r.of(LmtpRecipientResult)] == [0, 2] or pytest.fail("lmtp order"),  # type: ignore[attr-defined]
    ),
)
# 31. LMTP: connection lost between per-recipient replies
scenario(
    "lmtp_eof_between_replies",
    T(
        "S 220 lmtp.example LMTP",
        "C LHLO client.example",
        "S 250-lmtp.example",
        "S 250 PIPELINING",
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C RCPT TO:<c@example.net>",
        "C DATA",
        "S 250 ok",
        "S 250 ok",
        "S 250 ok",
        "S 354 go",
        "C <content>",
        "C QUIT",
        "S 250 2.0.0 Saved",
    ),
    envelope=Envelope("a@example.org", ["b@example.net", "c@example.net"]),
    options=opts(lmtp=True),
    check=lambda r, c: (
        outcomes(r)
        == [
            (True, None, None),
            (
                False,
                "4.4.2",
                f"lost connection with {PEER} while sending end of data -- "
                "message may be sent more than once",
            ),
        ]
        or pytest.fail(str(outcomes(r)))
    ),
)
# 32. STARTTLS, then EHLO again with the new extensions
scenario(
    "starttls",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250-STARTTLS",
        "S 250 PIPELINING",
        "C STARTTLS",
        "S 220 2.0.0 Ready to start TLS",
        "C EHLO client.example",
        "S 250-mx.example.net",
        "S 250-PIPELINING",
        "S 250 REQUIRETLS",
        "C MAIL FROM:<a@example.org> REQUIRETLS",
        "C RCPT TO:<b@example.net>",
        "C DATA",
        "S 250 ok",
        "S 250 ok",
        "S 354 go",
        "C <content>",
        "C QUIT",
        "S 250 ok",
    ),
    envelope=Envelope("a@example.org", ["b@example.net"], requiretls=True),
    options=opts(),
    starttls=True,
    all_at_once=False,
    check=lambda r, c: (delivered_all(r, c), c.tls_active or pytest.fail("tls")),
)
# 33. STARTTLS response injection: plaintext after the 220 is dropped
scenario(
    "starttls_injection",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250 STARTTLS",
        "C STARTTLS",
        ("S", b"220 2.0.0 Ready to start TLS\r\n250-evil.example\r\n250 PIPELINING\r\n"),
        "C EHLO client.example",
        "S 250 mx.example.net",
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 354 go",
        "C <content>",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(),
    starttls=True,
    all_at_once=False,
    # The injected bytes arrive with the 220 in one read; split further,
    # they would reach the TLS layer instead (see test_connection_api.py).
    whole_only=True,
    check=lambda r, c: (
        delivered_all(r, c),
        r.of(StartTlsReady)[0].discarded == 34 or pytest.fail(str(r.of(StartTlsReady))),  # type: ignore[attr-defined]
        any("discarding 34 octets" in w.text for w in r.of(ProtocolWarning)) or pytest.fail("warn"),  # type: ignore[attr-defined]
    ),
)
# 34. STARTTLS refused: plaintext goes on
scenario(
    "starttls_refused",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250 STARTTLS",
        "C STARTTLS",
        "S 454 4.7.0 TLS not available",
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 354 go",
        "C <content>",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(),
    starttls=True,
    check=lambda r, c: (delivered_all(r, c), not c.tls_active or pytest.fail("tls")),
)
# 34b. 421 to STARTTLS: a refusal like any other (Postfix smtp_helo()); at
# may plaintext goes on, and the closed connection shows at MAIL
scenario(
    "starttls_421",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250 STARTTLS",
        "C STARTTLS",
        "S 421 4.3.2 Shutting down",
        "C MAIL FROM:<a@example.org>",
    ),
    options=opts(),
    starttls=True,
    check=lambda r, c: (
        outcomes(r) == [(False, "4.4.2", f"lost connection with {PEER} while sending MAIL FROM")]
        or pytest.fail(str(outcomes(r))),
        closed(r).lost or pytest.fail("lost"),
    ),
)
# 35. REQUIRETLS is only honoured over TLS: in plaintext RET=HDRS is forced
scenario(
    "requiretls_plaintext",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250-DSN",
        "S 250 REQUIRETLS",
        "C MAIL FROM:<a@example.org> RET=HDRS",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 354 go",
        "C <content>",
        "S 250 ok",
        "C QUIT",
    ),
    envelope=Envelope("a@example.org", ["b@example.net"], requiretls=True, ret=Ret.FULL),
    options=opts(),
    check=delivered_all,
)
# 36. AUTH PLAIN with an initial response
scenario(
    "auth_plain",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250 AUTH PLAIN LOGIN",
        "C AUTH PLAIN AHUAcA==",
        "S 235 2.7.0 Authentication successful",
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 354 go",
        "C <content>",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(),
    auth=("PLAIN", b"\0u\0p"),
    check=lambda r, c: (delivered_all(r, c), c.authenticated or pytest.fail("auth")),
)
# 37. AUTH LOGIN: two challenges relayed, answers base64-encoded
scenario(
    "auth_login_challenges",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250 AUTH LOGIN",
        "C AUTH LOGIN",
        "S 334 VXNlcm5hbWU6",
        "C dXNlcg==",
        "S 334 UGFzc3dvcmQ6",
        "C c2VjcmV0",
        "S 235 2.7.0 ok",
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 354 go",
        "C <content>",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(),
    auth=("LOGIN", None),
    auth_answers=[b"user", b"secret"],
    all_at_once=False,
    check=lambda r, c: (
        [e.challenge for e in r.of(AuthChallenge)] == [b"Username:", b"Password:"]  # type: ignore[attr-defined]
        or pytest.fail(str(r.of(AuthChallenge)))
    ),
)
# 38. AUTH refused: the caller quits
scenario(
    "auth_refused",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250 AUTH PLAIN",
        "C AUTH PLAIN AHUAcA==",
        "S 535 5.7.8 Error: authentication failed",
        "C QUIT",
    ),
    options=opts(),
    auth=("PLAIN", b"\0u\0p"),
    check=lambda r, c: (
        (not r.of(AuthResult)[0].accepted and not c.authenticated) or pytest.fail("auth")
    ),  # type: ignore[attr-defined]
)
# 39. AUTH cancelled by the caller with "*"
scenario(
    "auth_cancelled",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250 AUTH CRAM-MD5",
        "C AUTH CRAM-MD5",
        "S 334 PDEyMzQ+",
        "C *",
        "S 501 5.7.0 cancelled",
        "C QUIT",
    ),
    options=opts(),
    auth=("CRAM-MD5", None),
    auth_answers=[None],
    all_at_once=False,
    check=lambda r, c: (
        names(r)[-3:] == ["AuthChallenge", "AuthResult", "Closed"] or pytest.fail(str(names(r)))
    ),
)
# 40. AUTH with an initial response too long for one line: sent after an empty 334
scenario(
    "auth_deferred_initial_response",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250 AUTH PLAIN",
        "C AUTH PLAIN",
        "S 334 ",
        ("C", base64.b64encode(b"\0" + b"u" * 400 + b"\0p") + b"\r\n"),
        "S 235 ok",
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 354 go",
        "C <content>",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(),
    auth=("PLAIN", b"\0" + b"u" * 400 + b"\0p"),
    all_at_once=False,
    check=lambda r, c: (
        r.of(AuthChallenge) == [] or pytest.fail("no challenge event for the deferred response")
    ),
)
# 41. SMTPUTF8 requested and offered
scenario(
    "smtputf8",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250-PIPELINING",
        "S 250-8BITMIME",
        "S 250 SMTPUTF8",
        "C MAIL FROM:<a@example.org> SMTPUTF8",
        "C RCPT TO:<j\u00f6rg@b\u00fccher.example>",
        "C DATA",
        "S 250 ok",
        "S 250 ok",
        "S 354 go",
        "C <content>",
        "C QUIT",
        "S 250 ok",
    ),
    envelope=Envelope("a@example.org", ["j\u00f6rg@b\u00fccher.example"], smtputf8=True),
    options=opts(),
    check=delivered_all,
)
# 42. SMTPUTF8 required but not offered: no MAIL at all, 5.6.7
scenario(
    "smtputf8_not_offered",
    T(*START, *EHLO_PIPE),
    envelope=Envelope("a@example.org", ["j\u00f6rg@example.net"], smtputf8=True),
    options=opts(),
    check=lambda r, c: [o[1] for o in outcomes(r)] == ["5.6.7"] or pytest.fail(str(outcomes(r))),
)
# 43. message larger than the server's SIZE: no MAIL, 5.3.4, no QUIT
scenario(
    "size_too_big",
    T(*START, "S 250-mx.example.net", "S 250 SIZE 1000"),
    envelope=Envelope("a@example.org", ["b@example.net"], size=5000),
    options=opts(),
    check=lambda r, c: (
        outcomes(r)
        == [(False, "5.3.4", f"message size 5000 exceeds size limit 1000 of server {PEER}")]
        or pytest.fail(str(outcomes(r)))
    ),
)
# 44. DSN parameters
scenario(
    "dsn_parameters",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250-PIPELINING",
        "S 250-SIZE",
        "S 250-8BITMIME",
        "S 250 DSN",
        "C MAIL FROM:<a@example.org> SIZE=42 BODY=8BITMIME ENVID=QQ+2B1 RET=FULL",
        "C RCPT TO:<b@example.net> ORCPT=rfc822;B@Example.NET NOTIFY=SUCCESS,FAILURE",
        "C RCPT TO:<c@example.net> NOTIFY=NEVER",
        "C DATA",
        "S 250 ok",
        "S 250 ok",
        "S 250 ok",
        "S 354 go",
        "C <content>",
        "C QUIT",
        "S 250 ok",
    ),
    envelope=Envelope(
        "a@example.org",
        [
            Recipient(
                "b@example.net", orcpt="B@Example.NET", notify=Notify.SUCCESS | Notify.FAILURE
            ),
            Recipient("c@example.net", notify=Notify.NEVER),
        ],
        envid="QQ+1",
        ret=Ret.FULL,
        size=42,
        body=BodyType.EIGHT_BIT,
    ),
    options=opts(),
    check=delivered_all,
)
# 45. BDAT (RFC 3030) instead of DATA when configured and offered
scenario(
    "bdat",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250-PIPELINING",
        "S 250 CHUNKING",
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "S 250 ok",
        "C <bdat>",
        "C QUIT",
        "S 250 2.0.0 Ok: queued",
    ),
    options=opts(chunking=True),
    check=lambda r, c: (
        delivered_all(r, c),
        r.of(MessageResult)[0].stage is Stage.BDAT_LAST or pytest.fail("stage"),  # type: ignore[attr-defined]
    ),
)
# 46. BDAT refused at the last chunk
scenario(
    "bdat_refused",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250-PIPELINING",
        "S 250 CHUNKING",
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "S 250 ok",
        "C <bdat>",
        "C QUIT",
        "S 554 5.6.0 bad content",
    ),
    options=opts(chunking=True),
    check=check_rejected_at("BDAT LAST command", "5.6.0", 1),
)
# 47. CHUNKING without PIPELINING: DATA is used
scenario(
    "chunking_without_pipelining_uses_data",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250 CHUNKING",
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 354 go",
        "C <content>",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(chunking=True),
    check=delivered_all,
)
# 48. session kept for reuse: no QUIT; RSET probe, then a second transaction
scenario(
    "keep_session_and_reuse",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C DATA",
        "S 250 ok",
        "S 250 ok",
        "S 354 go",
        "C <content>",
        "S 250 ok",
        "C RSET",
        "S 250 ok",
        "C MAIL FROM:<x@example.org>",
        "C RCPT TO:<y@example.net>",
        "C DATA",
        "S 250 ok",
        "S 250 ok",
        "S 354 go",
        "C <content>",
        "C QUIT",
        "S 250 ok",
    ),
    options=opts(),
    keep_session=True,
    second=Envelope("x@example.org", ["y@example.net"]),
    all_at_once=False,
    check=lambda r, c: (
        len(r.of(TransactionResult)) == 2 or pytest.fail("two transactions"),
        c.state is State.CLOSED or pytest.fail(str(c.state)),
    ),
)
# 49. smtp_skip_quit_response = no: wait for the QUIT reply
scenario(
    "quit_reply_awaited",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C DATA",
        "S 250 ok",
        "S 250 ok",
        "S 354 go",
        "C <content>",
        "C QUIT",
        "S 250 ok",
        "S 221 2.0.0 Bye",
    ),
    options=opts(skip_quit_response=False),
    check=lambda r, c: (
        (closed(r).reply is not None and closed(r).reply.code == 221) or pytest.fail(str(closed(r)))
    ),  # type: ignore[union-attr]
)
# 50. XFORWARD before MAIL, pipelined
scenario(
    "xforward",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250-PIPELINING",
        "S 250 XFORWARD NAME ADDR PROTO HELO SOURCE",
        "C XFORWARD NAME=client.example ADDR=192.0.2.1",
        "C XFORWARD PROTO=ESMTP HELO=client SOURCE=REMOTE",
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C DATA",
        "S 250 ok",
        "S 550 5.7.1 no xforward",
        "S 250 ok",
        "S 250 ok",
        "S 354 go",
        "C <content>",
        "C QUIT",
        "S 250 ok",
    ),
    envelope=Envelope(
        "a@example.org",
        ["b@example.net"],
        xforward=Xforward(
            name="client.example",
            addr="192.0.2.1",
            port="25",
            proto="ESMTP",
            helo="client",
            source="REMOTE",
        ),
    ),
    options=opts(send_xforward_command=True),
    check=lambda r, c: (
        delivered_all(r, c),
        len(r.of(XforwardResult)) == 2 or pytest.fail("xforward"),
    ),
)
# 51. smtp_discard_ehlo_keywords = pipelining: one command at a time
scenario(
    "discard_pipelining",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<a@example.org>",
        "S 250 ok",
        "C RCPT TO:<b@example.net>",
        "S 250 ok",
        "C DATA",
        "S 354 go",
        "C <content>",
        "S 250 ok",
        "C QUIT",
    ),
    options=opts(discard_ehlo_keywords=EhloDiscard.parse("pipelining")),
    check=delivered_all,
)
# 52. smtp_tls_block_early_mail_reply: a reply before MAIL (over TLS) fails the transaction
scenario(
    "early_mail_reply_over_tls",
    T(
        *START,
        "S 250-mx.example.net",
        "S 250 PIPELINING",
        "S 250 2.1.0 early",
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C DATA",
        "S 250 ok",
        "S 250 ok",
        "C RSET",
        "C QUIT",
        "S 354 go",
    ),
    options=opts(tls_block_early_mail_reply=True, tls_wrappermode=True),
    whole_only=True,  # the early reply must be there before MAIL is sent
    all_at_once=False,
    check=lambda r, c: (
        outcomes(r)[0][1:] == ("4.7.0", "unexpected server message")
        or pytest.fail(str(outcomes(r))),
        c.protocol_error or pytest.fail("protocol_error"),
    ),
)
# 53. bare LF line ends and a CRLF split by the transport
scenario(
    "bare_lf_replies",
    T(
        ("S", b"220 mx ESMTP\n"),
        "C EHLO client.example",
        ("S", b"250-mx\n250 PIPELINING\n"),
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C DATA",
        ("S", b"250 ok\n250 ok\r\n354 go\n"),
        "C <content>",
        "C QUIT",
        ("S", b"250 queued\n"),
    ),
    options=opts(),
    check=delivered_all,
)
# 54. RSET probe refused: the session is not reusable
scenario(
    "rset_probe_refused",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<a@example.org>",
        "C RCPT TO:<b@example.net>",
        "C DATA",
        "S 250 ok",
        "S 250 ok",
        "S 354 go",
        "C <content>",
        "S 250 ok",
        "C RSET",
        "S 503 bad sequence",
    ),
    options=opts(),
    keep_session=True,
    second=Envelope("x@example.org", ["y@example.net"]),
    all_at_once=False,
    check=lambda r, c: (
        (not c.reusable) or pytest.fail("reusable"),
        r.of(RsetResult)[0].reply.code == 503 or pytest.fail("rset"),  # type: ignore[attr-defined]
    ),
)


# 55. address verification probe, target rcpt: RSET instead of DATA
scenario(
    "verify_rcpt",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<>",
        "C RCPT TO:<b@example.net>",
        "C RCPT TO:<c@example.net>",
        "C RSET",
        "C QUIT",
        "S 250 ok",
        "S 250 2.1.5 ok",
        "S 550 5.1.1 unknown user",
        "S 250 ok",
    ),
    envelope=Envelope("", ["b@example.net", "c@example.net"]),
    options=opts(),
    verify="rcpt",
    check=lambda r, c: (
        [o[:2] for o in outcomes(r)] == [(True, None), (False, "5.1.1")]
        or pytest.fail(str(outcomes(r)))
    ),
)
# 56. address verification probe, target data: the session ends after 354
scenario(
    "verify_data",
    T(
        *START,
        *EHLO_PIPE,
        "C MAIL FROM:<>",
        "C RCPT TO:<b@example.net>",
        "C DATA",
        "S 250 ok",
        "S 250 ok",
        "S 354 go",
    ),
    envelope=Envelope("", ["b@example.net"]),
    options=opts(),
    verify="data",
    check=lambda r, c: (
        outcomes(r) == [(True, None, None)] or pytest.fail(str(outcomes(r))),
        (c.state is State.CLOSED and not closed(r).lost) or pytest.fail(str(closed(r))),
    ),
)


# Scenarios marked whole_only depend on one read holding a whole server step:
# they are replayed whole only (no split cases are generated for them).
_SPLITS = [
    pytest.param(sc, split, id=f"{sc.name}-{split}")
    for sc in SCENARIOS
    for split in ("whole", "bytes", "random")
    if split == "whole" or not sc.whole_only
]


@pytest.mark.parametrize(("sc", "split"), _SPLITS)
def test_transcript(sc: Scenario, split: str) -> None:
    conn = ClientConnection(sc.options)
    if sc.name == "rset_probe_refused":
        # the driver must not start the second transaction after a refused probe
        def drive(c: ClientConnection, e: Event) -> bytes | Hangup | None:
            if isinstance(e, RsetResult):
                return HANGUP
            return driver(sc)(c, e)

        result = replay(sc.steps, conn, drive, split=split, seed=len(sc.name))
    else:
        result = replay(sc.steps, conn, driver(sc), split=split, seed=len(sc.name))
    if sc.check is not None:
        sc.check(result, conn)
    # whatever happened, every transaction settled every recipient
    for summary in result.of(TransactionResult):
        assert isinstance(summary, TransactionResult)
        assert [o.index for o in summary.outcomes] == list(range(len(summary.outcomes)))


@pytest.mark.parametrize("sc", [s for s in SCENARIOS if s.all_at_once], ids=lambda s: s.name)
def test_transcript_server_stream_at_once(sc: Scenario) -> None:
    """All server bytes available before the client speaks: same client bytes overall."""
    conn = ClientConnection(sc.options)
    server = b"".join(d for k, d in sc.steps if k == "S")
    expected = b"".join(d for k, d in sc.steps if k == "C")
    result = replay([("S", server), ("C", expected)], conn, driver(sc), eof_at_end=True)
    assert result.groups == [expected]


def test_enough_transcripts() -> None:
    assert len(SCENARIOS) >= 40
