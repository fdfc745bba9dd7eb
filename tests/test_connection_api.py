"""ClientConnection API: misuse, ERROR state, timeouts, PIPELINING limits, properties."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyfix_smtp.errors import CommandError, LocalProtocolError, PyfixError
from pyfix_smtp.protocol.connection import (
    PIPELINING_BUFSIZE,
    ClientConnection,
    ClientOptions,
    State,
)
from pyfix_smtp.protocol.content import encode_data
from pyfix_smtp.protocol.envelope import Envelope, Xforward
from pyfix_smtp.protocol.events import (
    NEED_DATA,
    AuthChallenge,
    Closed,
    DataReady,
    Event,
    Extensions,
    Greeting,
    LmtpRecipientResult,
    MessageResult,
    NeedData,
    StartTlsReady,
    TransactionResult,
)
from pyfix_smtp.status import Failure

PEER = "mx[192.0.2.1]"
CONTENT = b"".join(encode_data(b"Subject: x\n\nbody\n"))


def pump(conn: ClientConnection, data: bytes = b"") -> list[Event]:
    """Feed *data* and collect events until the machine needs more."""
    if data:
        conn.receive_data(data)
    events: list[Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if isinstance(event, Closed):
            return events


def ready(pipelining: bool = True, **kw: object) -> ClientConnection:
    conn = ClientConnection(ClientOptions(helo_name="c.example", peer_name=PEER, **kw))  # type: ignore[arg-type]
    pump(conn, b"220 mx ESMTP\r\n")
    assert conn.data_to_send() == b"EHLO c.example\r\n"
    ehlo = b"250-mx\r\n250-PIPELINING\r\n250 SIZE\r\n" if pipelining else b"250-mx\r\n250 SIZE\r\n"
    events = pump(conn, ehlo)
    assert isinstance(events[-1], Extensions)
    assert conn.state is State.READY
    return conn


# -- misuse -----------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "state"),
    [
        (lambda c: c.start_transaction(Envelope("a@b.example", ["c@d.example"])), "GREETING"),
        (lambda c: c.send_data(b".\r\n", final=True), "GREETING"),
        (lambda c: c.start_tls(), "GREETING"),
        (lambda c: c.send_auth_response(b"x"), "GREETING"),
        (lambda c: c.quit(), "GREETING"),
        (lambda c: c.tls_established(), "GREETING"),
    ],
)
def test_calls_in_the_wrong_state_name_the_state(call, state: str) -> None:  # type: ignore[no-untyped-def]
    conn = ClientConnection()
    with pytest.raises(LocalProtocolError, match=state) as info:
        call(conn)
    assert info.value.state == state


def test_error_state_fails_fast() -> None:
    conn = ready()
    with pytest.raises(LocalProtocolError, match="READY"):
        conn.send_data(b"x")
    # a call refused before it changed anything leaves the state alone ...
    assert conn.state is State.READY
    conn.start_transaction(Envelope("a@b.example", ["c@d.example"]))
    pump(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    assert conn.state is State.DATA
    # ... but an exception inside an allowed call poisons the machine
    with pytest.raises(LocalProtocolError, match=r"CRLF \. CRLF"):
        conn.send_data(b"no terminator", final=True)
    assert conn.state is State.ERROR
    with pytest.raises(LocalProtocolError, match="earlier error"):
        conn.next_event()
    with pytest.raises(LocalProtocolError, match="earlier error"):
        conn.receive_data(b"250 ok\r\n")
    with pytest.raises(LocalProtocolError, match="earlier error"):
        conn.quit()


def test_bad_envelope_input_does_not_poison() -> None:
    bad = Envelope("a@b.example", ["c@d.example"], xforward=Xforward(helo="h" * 600))
    conn = ClientConnection(ClientOptions(send_xforward_command=True))
    pump(conn, b"220 mx\r\n")
    assert conn.data_to_send() == b"EHLO localhost\r\n"
    pump(conn, b"250-mx\r\n250 XFORWARD HELO\r\n")
    with pytest.raises(CommandError, match="512"):
        conn.start_transaction(bad)
    assert conn.state is State.READY
    good = Envelope("a@b.example", ["c@d.example"])
    assert conn.start_transaction(good).startswith(b"MAIL FROM:<a@b.example>")


def test_receive_data_during_tls_handshake_is_refused() -> None:
    conn = ClientConnection()
    pump(conn, b"220 mx\r\n")
    conn.data_to_send()
    pump(conn, b"250-mx\r\n250 STARTTLS\r\n")
    assert conn.start_tls() == b"STARTTLS\r\n"
    events = pump(conn, b"220 go ahead\r\n")
    assert isinstance(events[-1], StartTlsReady)
    assert conn.state is State.TLS_HANDSHAKE
    assert conn.timeout_parameter == "smtp_starttls_timeout"
    with pytest.raises(LocalProtocolError, match="TLS handshake"):
        conn.receive_data(b"250 injected\r\n")


@pytest.mark.parametrize("skip_reply", [True, False])
def test_quit_after_the_tls_handshake_instead_of_hello(skip_reply: bool) -> None:
    # A refused certificate: Postfix sends QUIT over the TLS session it will
    # not use (smtp_connect.c smtp_quit() after smtp_start_tls() failed).
    conn = ClientConnection(ClientOptions(skip_quit_response=skip_reply))
    pump(conn, b"220 mx\r\n")
    conn.data_to_send()
    pump(conn, b"250-mx\r\n250 STARTTLS\r\n")
    conn.start_tls()
    pump(conn, b"220 go ahead\r\n")
    assert conn.state is State.TLS_HANDSHAKE
    assert conn.quit() == b"QUIT\r\n"
    if skip_reply:
        assert conn.state is State.CLOSED
        assert pump(conn, b"") == [Closed()]
    else:
        assert conn.state is State.QUIT
        assert conn.timeout_parameter == "smtp_quit_timeout"
        [closed] = pump(conn, b"221 2.0.0 Bye\r\n")
        assert isinstance(closed, Closed)
        assert closed.reply is not None
        assert closed.reply.code == 221
    with pytest.raises(LocalProtocolError):
        conn.tls_established()


def test_starttls_forgets_extensions_and_requires_announcement() -> None:
    conn = ready()
    with pytest.raises(LocalProtocolError, match="STARTTLS"):
        conn.start_tls()
    conn = ClientConnection(ClientOptions(helo_name="c.example"))
    pump(conn, b"220 mx\r\n")
    conn.data_to_send()
    pump(conn, b"250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
    conn.start_tls()
    pump(conn, b"220 go\r\n")
    assert conn.tls_established() == b"EHLO c.example\r\n"
    assert conn.extensions is None
    assert conn.tls_active
    [ext] = pump(conn, b"250 mx\r\n")
    assert isinstance(ext, Extensions)
    assert not ext.pipelining


def test_send_data_needs_bytes_and_the_end_marker() -> None:
    conn = ready()
    conn.start_transaction(Envelope("a@b.example", ["c@d.example"]))
    events = pump(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    assert isinstance(events[-1], DataReady)
    with pytest.raises(TypeError):
        conn.send_data("text", final=True)  # type: ignore[arg-type]
    # chunks split anywhere, the end marker across chunks
    assert conn.send_data(b"a\r\n.") == b"a\r\n."
    assert conn.send_data(b".\r\n") == b".\r\n"
    out = conn.send_data(b"\r\n.\r\n", final=True)
    assert out == b"\r\n.\r\nQUIT\r\n"


def test_send_data_returns_the_same_object() -> None:
    conn = ready()
    conn.start_transaction(Envelope("a@b.example", ["c@d.example"]))
    pump(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    chunk = b"x" * 100000 + b"\r\n"
    assert conn.send_data(chunk) is chunk


def test_abort_data_fails_accepted_recipients() -> None:
    conn = ready()
    conn.start_transaction(Envelope("a@b.example", ["c@d.example", "e@f.example"]))
    pump(conn, b"250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n")
    conn.abort_data(Failure("5.6.0", "MIME nesting exceeds safety limit"))
    events = pump(conn)
    summary = next(e for e in events if isinstance(e, TransactionResult))
    assert [o.failure.status if o.failure else None for o in summary.outcomes] == ["5.6.0", "5.0.0"]
    assert isinstance(events[-1], Closed)
    assert conn.data_to_send() == b""


# -- timeouts and stage names -----------------------------------------


def test_timeout_parameter_follows_the_wait() -> None:
    conn = ClientConnection(ClientOptions(helo_name="c.example"))
    assert conn.timeout_parameter == "smtp_helo_timeout"
    pump(conn, b"220 mx\r\n")
    assert conn.timeout_parameter == "smtp_helo_timeout"
    pump(conn, b"250 mx\r\n")
    assert conn.timeout_parameter is None  # idle
    conn.start_transaction(Envelope("a@b.example", ["c@d.example"]))
    assert conn.timeout_parameter == "smtp_mail_timeout"
    pump(conn, b"250 ok\r\n")
    assert conn.timeout_parameter == "smtp_rcpt_timeout"
    pump(conn, b"250 ok\r\n")
    assert conn.timeout_parameter == "smtp_data_init_timeout"
    pump(conn, b"354 go\r\n")
    assert conn.timeout_parameter == "smtp_data_xfer_timeout"
    conn.send_data(CONTENT, final=True)
    assert conn.timeout_parameter == "smtp_data_done_timeout"


def test_timed_out_settles_with_postfix_text() -> None:
    conn = ready()
    conn.start_transaction(Envelope("a@b.example", ["c@d.example"]))
    pump(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    conn.send_data(CONTENT, final=True)
    conn.timed_out()
    events = pump(conn)
    summary = next(e for e in events if isinstance(e, TransactionResult))
    failure = summary.outcomes[0].failure
    assert failure is not None
    assert failure.reason == (
        f"conversation with {PEER} timed out while sending end of data -- "
        "message may be sent more than once"
    )
    last = events[-1]
    assert isinstance(last, Closed)
    assert last.timed_out
    assert last.lost
    assert conn.next_event() is last  # Closed repeats


def test_eof_while_idle_closes_without_recipients() -> None:
    conn = ready()
    conn.receive_data(b"")
    [event] = pump(conn)
    assert isinstance(event, Closed)
    assert event.lost
    assert event.stage is None


def test_premature_reply_during_content() -> None:
    conn = ready()
    conn.start_transaction(Envelope("a@b.example", ["c@d.example"]))
    pump(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    conn.send_data(b"partial content\r\n")
    assert pump(conn, b"554 5.7.1 go away\r\n") == []  # not read during content
    conn.receive_data(b"")
    events = pump(conn)
    summary = next(e for e in events if isinstance(e, TransactionResult))
    assert summary.outcomes[0].failure is not None
    assert summary.outcomes[0].failure.status == "5.7.1"
    assert "(in reply to end of DATA command)" in summary.outcomes[0].failure.reason


def test_premature_2xx_during_content_is_not_a_delivery() -> None:
    # The server never saw the end of the message: a 2xx cannot accept it
    # (a deliberate difference from Postfix, docs/differences.md).
    conn = ready()
    conn.start_transaction(Envelope("a@b.example", ["c@d.example"]))
    pump(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    conn.send_data(b"partial content\r\n")
    assert pump(conn, b"250 2.0.0 queued as X\r\n") == []
    conn.receive_data(b"")
    events = pump(conn)
    summary = next(e for e in events if isinstance(e, TransactionResult))
    [outcome] = summary.outcomes
    assert not outcome.delivered
    assert outcome.failure is not None
    assert outcome.failure.status == "4.4.2"
    assert outcome.failure.reason.startswith("lost connection with")
    assert isinstance(events[-1], Closed)
    assert events[-1].lost


def test_2xx_after_a_failed_final_write_is_not_a_delivery() -> None:
    conn = ready()
    conn.start_transaction(Envelope("a@b.example", ["c@d.example"]))
    pump(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    conn.send_data(b"content\r\n.\r\n", final=True)
    conn.write_failed()  # the "." may never have left
    conn.receive_data(b"250 2.0.0 queued\r\n")
    conn.receive_data(b"")
    events = pump(conn)
    summary = next(e for e in events if isinstance(e, TransactionResult))
    [outcome] = summary.outcomes
    assert outcome.failure is not None
    assert (outcome.delivered, outcome.failure.status) == (False, "4.4.2")
    assert outcome.failure.reason.endswith(
        "while sending end of data -- message may be sent more than once"
    )


def test_5xx_after_a_failed_final_write_is_used() -> None:
    conn = ready()
    conn.start_transaction(Envelope("a@b.example", ["c@d.example"]))
    pump(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    conn.send_data(b"content\r\n.\r\n", final=True)
    conn.write_failed()
    conn.receive_data(b"554 5.7.1 rejected\r\n")
    conn.receive_data(b"")
    summary = next(e for e in pump(conn) if isinstance(e, TransactionResult))
    [outcome] = summary.outcomes
    assert outcome.failure is not None
    assert outcome.failure.status == "5.7.1"


# -- PIPELINING limits ------------------------------------------------


def test_pipelining_stops_at_4096_octets() -> None:
    conn = ready()
    rcpts = [f"recipient{i:04d}@example.net" for i in range(300)]
    first = conn.start_transaction(Envelope("a@b.example", rcpts))
    mail = b"MAIL FROM:<a@b.example>\r\n"
    rcpt_len = len(b"RCPT TO:<recipient0000@example.net>\r\n")
    fits = (PIPELINING_BUFSIZE - len(mail)) // rcpt_len
    assert len(first) == len(mail) + fits * rcpt_len
    assert len(first) + rcpt_len > PIPELINING_BUFSIZE
    # the sender waits for every reply before it goes on
    assert pump(conn, b"250 ok\r\n" * fits) != []
    assert conn.data_to_send() == b""
    pump(conn, b"250 ok\r\n")
    second = conn.data_to_send()
    assert second.startswith(b"RCPT TO:<recipient%04d@" % fits)


def test_ten_seconds_without_io_flushes() -> None:
    conn2 = ClientConnection(ClientOptions(helo_name="c.example"))
    conn2.receive_data(b"220 mx\r\n", now=100.0)
    pump(conn2)
    conn2.data_to_send()
    conn2.receive_data(b"250-mx\r\n250 PIPELINING\r\n", now=100.0)
    pump(conn2)
    # 11 seconds later: MAIL goes alone, the rest after its reply
    out = conn2.start_transaction(Envelope("a@b.example", ["c@d.example"]), now=111.0)
    assert out == b"MAIL FROM:<a@b.example>\r\n"
    conn2.receive_data(b"250 ok\r\n", now=111.5)
    pump(conn2)
    assert conn2.data_to_send() == b"RCPT TO:<c@d.example>\r\nDATA\r\n"
    # within 10 seconds everything is pipelined
    conn3 = ClientConnection(ClientOptions(helo_name="c.example"))
    conn3.receive_data(b"220 mx\r\n", now=100.0)
    pump(conn3)
    conn3.data_to_send()
    conn3.receive_data(b"250-mx\r\n250 PIPELINING\r\n", now=100.0)
    pump(conn3)
    out = conn3.start_transaction(Envelope("a@b.example", ["c@d.example"]), now=105.0)
    assert out == b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"


def test_options_validation() -> None:
    with pytest.raises(CommandError):
        ClientOptions(helo_name="bad name")
    with pytest.raises(CommandError):
        ClientOptions(pix_workarounds=frozenset({"nonsense"}))


# -- properties: random server streams ---------------------------------

_LINES = st.one_of(
    st.builds(
        lambda code, sep, text, end: code + sep + text + end,
        st.sampled_from(
            [
                b"220",
                b"250",
                b"251",
                b"354",
                b"421",
                b"450",
                b"500",
                b"550",
                b"334",
                b"199",
                b"600",
                b"2",
            ]
        ),
        st.sampled_from([b" ", b"-", b""]),
        st.sampled_from(
            [
                b"",
                b"ok",
                b"2.0.0 ok",
                b"PIPELINING",
                b"STARTTLS",
                b"SIZE 10",
                b"CHUNKING",
                b"AUTH PLAIN",
                b"\xff\x00x",
            ]
        ),
        st.sampled_from([b"\r\n", b"\n", b"\r\n"]),
    ),
    st.binary(max_size=20),
)


def _drive(
    conn: ClientConnection, event: Event | NeedData, envelope: Envelope, rng: random.Random
) -> bytes:
    if isinstance(event, Extensions):
        if event.starttls and not conn.tls_active and rng.random() < 0.3:
            return conn.start_tls()
        return conn.start_transaction(envelope, keep_session=rng.random() < 0.3)
    if isinstance(event, StartTlsReady):
        return conn.tls_established()
    if isinstance(event, AuthChallenge):
        return conn.cancel_auth()
    if isinstance(event, DataReady):
        return conn.send_data(CONTENT, final=True)
    if isinstance(event, TransactionResult) and conn.state is State.READY:
        return conn.quit()
    return b""


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(_LINES, max_size=40),
    seed=st.integers(0, 2**32),
    lmtp=st.booleans(),
    chunking=st.booleans(),
)
def test_random_server_streams(lines: list[bytes], seed: int, lmtp: bool, chunking: bool) -> None:
    rng = random.Random(seed)
    data = b"".join(lines)
    conn = ClientConnection(
        ClientOptions(helo_name="c.example", lmtp=lmtp, chunking=chunking, line_length_limit=256)
    )
    envelope = Envelope("a@b.example", ["c@d.example", "e@f.example", "g@h.example"])
    started = 0
    results = 0
    pos = 0
    try:
        for _ in range(2000):
            event = conn.next_event()
            if event is NEED_DATA:
                conn.data_to_send()
                if pos < len(data):
                    n = rng.randint(1, 64)
                    conn.receive_data(data[pos : pos + n])
                    pos += n
                else:
                    conn.receive_data(b"")
                # bounded memory: at most one line prefix is held unparsed
                assert conn._parser.buffered <= len(data)
                continue
            if isinstance(event, TransactionResult):
                results += 1
            if isinstance(event, Closed):
                break
            before = conn.state
            out = _drive(conn, event, envelope, rng)
            if before is State.READY and conn.state is State.TRANSACTION:
                started += 1
            assert isinstance(out, bytes)
        else:
            pytest.fail("no Closed event")
    except PyfixError as exc:  # pragma: no cover - a failure shows the cause
        pytest.fail(f"the machine raised {exc!r}")
    assert conn.state is State.CLOSED
    assert results >= started  # every started transaction settled every recipient


@settings(max_examples=60, deadline=None)
@given(chunk=st.binary(min_size=1, max_size=5000), repeat=st.integers(1, 40))
def test_flooding_server_keeps_memory_bounded(chunk: bytes, repeat: int) -> None:
    conn = ClientConnection(ClientOptions(line_length_limit=512))
    for _ in range(repeat):
        conn.receive_data(chunk.replace(b"\n", b"x"))  # one endless line
        while conn.next_event() is not NEED_DATA:
            if conn.state is State.CLOSED:
                return
        assert conn._parser.buffered <= 512


# -- BDAT with several chunks -----------------------------------------


def bdat_ready(lmtp: bool = False) -> ClientConnection:
    conn = ClientConnection(ClientOptions(helo_name="c.example", chunking=True, lmtp=lmtp))
    pump(conn, b"220 mx\r\n")
    conn.data_to_send()
    pump(conn, b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
    assert conn.start_transaction(Envelope("a@b.example", ["c@d.example", "e@f.example"])) == (
        b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nRCPT TO:<e@f.example>\r\n"
    )
    events = pump(conn, b"250 ok\r\n250 ok\r\n250 ok\r\n")
    ready = events[-1]
    assert isinstance(ready, DataReady)
    assert ready.reply is None
    assert ready.framing.name == "BDAT"
    return conn


def test_bdat_chunks_are_pipelined_and_counted() -> None:
    conn = bdat_ready()
    assert conn.send_data(b"first\r\n") == b"BDAT 7\r\nfirst\r\n"
    assert conn.send_data(b"") == b""  # nothing to send, no empty chunk
    assert conn.send_data(b"last\r\n", final=True) == b"BDAT 6 LAST\r\nlast\r\nQUIT\r\n"
    events = pump(conn, b"250 2.0.0 7 octets\r\n250 2.0.0 queued\r\n")
    summary = next(e for e in events if isinstance(e, TransactionResult))
    assert [o.delivered for o in summary.outcomes] == [True, True]
    assert isinstance(events[-1], Closed)


def test_bdat_failed_chunk_stops_the_rest() -> None:
    conn = bdat_ready()
    assert conn.send_data(b"first\r\n").startswith(b"BDAT 7\r\n")
    # the driver reads the reply between chunks: the chunk failed
    events = pump(conn, b"552 5.3.4 message too big\r\n")
    assert events == []  # replies are read after the content
    conn.receive_data(b"")  # ... unless the connection is gone
    events = pump(conn)
    summary = next(e for e in events if isinstance(e, TransactionResult))
    assert {o.failure.status for o in summary.outcomes if o.failure} == {"5.3.4"}


def test_bdat_after_a_refused_chunk_resets() -> None:
    conn = bdat_ready()
    conn.send_data(b"one\r\n")
    conn.send_data(b"two\r\n")
    out = conn.send_data(b"three\r\n", final=True)
    assert out == b"BDAT 7 LAST\r\nthree\r\nQUIT\r\n"
    events = pump(conn, b"554 5.6.0 bad chunk\r\n503 5.5.1 no\r\n503 5.5.1 no\r\n")
    [message] = [e for e in events if isinstance(e, MessageResult)]
    assert message.stage.name == "BDAT"
    summary = next(e for e in events if isinstance(e, TransactionResult))
    assert all(
        "(in reply to BDAT command)" in (o.failure.reason if o.failure else "")
        for o in summary.outcomes
    )


def test_lmtp_bdat_replies_per_recipient() -> None:
    conn = bdat_ready(lmtp=True)
    conn.send_data(b"body\r\n", final=True)
    events = pump(conn, b"250 2.0.0 <c@d.example> ok\r\n452 4.2.2 <e@f.example> full\r\n")
    lmtp = [e for e in events if isinstance(e, LmtpRecipientResult)]
    assert [(e.index, e.accepted, e.stage.name) for e in lmtp] == [
        (0, True, "BDAT_LAST"),
        (1, False, "BDAT_LAST"),
    ]


def test_lmtp_bdat_failed_chunk_expects_one_last_reply() -> None:
    conn = bdat_ready(lmtp=True)
    conn.send_data(b"one\r\n")
    conn.send_data(b"two\r\n", final=True)
    events = pump(conn, b"554 5.6.0 bad chunk\r\n503 5.5.1 no transaction\r\n")
    assert isinstance(events[-1], Closed)
    summary = next(e for e in events if isinstance(e, TransactionResult))
    assert {o.failure.status for o in summary.outcomes if o.failure} == {"5.6.0"}


def test_options_from_config() -> None:
    from pyfix_smtp.config import Config

    cfg = Config(
        smtp_helo_name="out.example",
        smtp_discard_ehlo_keywords=("pipelining", "silent-discard"),
        smtp_send_xforward_command=True,
        smtp_sasl_auth_enable=True,
        smtp_send_dummy_mail_auth=True,
    )
    options = ClientOptions.from_config(cfg, peer_name=PEER)
    assert options.helo_name == "out.example"
    assert options.discard_ehlo_keywords.keywords == frozenset({"PIPELINING"})
    assert options.discard_ehlo_keywords.silent
    assert options.send_xforward_command
    assert options.send_dummy_mail_auth
    assert options.pix_workarounds == frozenset({"disable_esmtp", "delay_dotcrlf"})
    # an address map result replaces the keyword list
    per_server = ClientOptions.from_config(cfg, peer_name=PEER, discard_ehlo_keywords="dsn")
    assert per_server.discard_ehlo_keywords.keywords == frozenset({"DSN"})
    lmtp = ClientOptions.from_config(Config(protocol="lmtp"), peer_name="private/lmtp")
    assert lmtp.lmtp
    assert not lmtp.skip_quit_response  # lmtp_skip_quit_response = no


def test_reply_filter_from_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pyfix_smtp.config import Config

    table = tmp_path / "reply_filter"
    table.write_text("/^250 (.*PIPELINING.*)$/ 250 X-NOT-PIPELINING\n")
    cfg = Config(smtp_reply_filter=f"regexp:{table}")
    conn = ClientConnection(ClientOptions.from_config(cfg, peer_name=PEER))
    pump(conn, b"220 mx\r\n")
    events = pump(conn, b"250-mx\r\n250 PIPELINING\r\n")
    ext = next(e for e in events if isinstance(e, Extensions))
    assert not ext.pipelining
    assert ext.has("X-NOT-PIPELINING")


def test_quit_abandons_an_auth_exchange() -> None:
    conn = ClientConnection(ClientOptions(helo_name="c.example"))
    pump(conn, b"220 mx\r\n")
    conn.data_to_send()
    pump(conn, b"250-mx\r\n250 AUTH LOGIN\r\n")
    assert conn.start_auth("LOGIN") == b"AUTH LOGIN\r\n"
    with pytest.raises(LocalProtocolError, match="outstanding"):
        conn.quit()
    [challenge] = pump(conn, b"334 VXNlcm5hbWU6\r\n")
    assert isinstance(challenge, AuthChallenge)
    assert conn.quit() == b"QUIT\r\n"  # Postfix after a SASL failure
    assert conn.state is State.CLOSED


def test_transition_table_alone() -> None:
    from pyfix_smtp.protocol.connection import _TRANSITIONS

    def allowed(action: str) -> set[State]:
        return {state for (state, trigger) in _TRANSITIONS if trigger == action}

    assert allowed("start_transaction") == {State.READY}
    assert allowed("start_tls") == {State.READY}
    assert allowed("start_auth") == {State.READY}
    assert allowed("rset") == {State.READY}
    assert allowed("send_data") == {State.DATA}
    assert allowed("abort_data") == {State.DATA}
    assert allowed("tls_established") == {State.TLS_HANDSHAKE}
    assert allowed("send_auth_response") == allowed("cancel_auth") == {State.AUTH}
    assert allowed("quit") == {State.READY, State.AUTH, State.TLS_HANDSHAKE}
    # every state but the two final ones has a way on
    for state in State:
        leaving = [t for (s, t) in _TRANSITIONS if s is state]
        assert bool(leaving) == (state not in (State.CLOSED, State.ERROR)), state
    # nothing leads out of CLOSED or ERROR, nothing leads into ERROR by table
    assert State.ERROR not in _TRANSITIONS.values()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lengths=st.lists(st.integers(1, 64), min_size=1, max_size=120),
    keep=st.booleans(),
    rejected=st.sets(st.integers(0, 119)),
)
def test_the_one_write_start_equals_the_sender_loop(
    lengths: list[int], keep: bool, rejected: set[int]
) -> None:
    # start_transaction() sends MAIL, every RCPT and DATA at once when they
    # fit in PIPELINING_BUFSIZE (_pipeline_all); the general sender loop
    # must produce the same writes, events and outcomes.
    # up to 120 recipients of up to 64 octets: some starts exceed 4096 octets
    envelope = Envelope("a@b.example", [f"{'x' * n}@d{i}.example" for i, n in enumerate(lengths)])
    replies = b"250 ok\r\n" + b"".join(
        b"550 5.1.1 no\r\n" if i in rejected else b"250 ok\r\n" for i in range(len(lengths))
    )
    accepted = len(lengths) > len(rejected & set(range(len(lengths))))
    replies += b"354 go\r\n" if accepted else b"554 no valid recipients\r\n"

    def run(one_write: bool) -> tuple[list[bytes], list[Event]]:
        conn = ready()
        if not one_write:
            conn._pipeline_all = lambda t, ext: False  # type: ignore[method-assign]
        writes = [conn.start_transaction(envelope, keep_session=keep)]
        events = pump(conn, replies)
        writes.append(conn.data_to_send())
        if events and isinstance(events[-1], DataReady):
            writes.append(conn.send_data(CONTENT, final=True))
            events += pump(conn, b"250 2.0.0 queued\r\n")
            writes.append(conn.data_to_send())
        return writes, events

    assert run(True) == run(False)


@pytest.mark.parametrize(
    ("always", "never", "banner", "hello"),
    [
        (True, False, b"220 mx ESMTP\r\n", b"EHLO"),
        (True, False, b"220 mx\r\n", b"EHLO"),  # smtp_always_send_ehlo
        (False, False, b"220 mx ESMTP\r\n", b"EHLO"),  # the banner says ESMTP
        (False, False, b"220 mx\r\n", b"HELO"),
        (True, True, b"220 mx ESMTP\r\n", b"HELO"),  # smtp_never_send_ehlo wins
        (False, True, b"220 mx ESMTP\r\n", b"HELO"),
        (True, False, b"220 ** *\r\n", b"HELO"),  # PIX banner: disable_esmtp
    ],
)
def test_ehlo_or_helo_after_the_greeting(
    always: bool, never: bool, banner: bytes, hello: bytes
) -> None:
    # Postfix smtp_helo(): ESMTP from the banner, always/never_send_ehlo, PIX.
    conn = ClientConnection(
        ClientOptions(helo_name="c.example", always_send_ehlo=always, never_send_ehlo=never)
    )
    [greeting] = pump(conn, banner)
    assert isinstance(greeting, Greeting)
    assert greeting.esmtp is (hello == b"EHLO")
    assert conn.data_to_send() == hello + b" c.example\r\n"
