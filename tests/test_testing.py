"""pyfix_smtp.testing.SinkServer, driven by the standard library's smtplib.

smtplib is an independent client, so these tests check the server's wire
behaviour (replies, STARTTLS, AUTH, LMTP, scripts and faults) and what it
records, without depending on pyfix_smtp's own client.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
import time
from pathlib import Path

import pytest

from pyfix_smtp.testing import (
    Certificates,
    Command,
    Disconnect,
    Hang,
    Raw,
    Response,
    SinkServer,
    generate_certificates,
)

MESSAGE = b"Subject: hi\r\nFrom: a@example.org\r\n\r\nline\r\n.starts with a dot\r\n..two\r\n"


def test_plain_delivery_is_recorded_byte_for_byte() -> None:
    with SinkServer() as server, smtplib.SMTP(*server.address, timeout=5) as client:
        client.ehlo("client.example")
        assert client.has_extn("pipelining")
        assert client.has_extn("smtputf8")
        refused = client.sendmail(
            "a@example.org",
            ["b@example.net", "c@example.net"],
            MESSAGE,
            mail_options=["BODY=8BITMIME"],
            rcpt_options=["NOTIFY=NEVER"],
        )
        assert refused == {}
    [message] = server.messages
    assert message.sender == "a@example.org"
    assert message.recipients == ("b@example.net", "c@example.net")
    assert message.content == MESSAGE  # dot-stuffing undone, CRLF kept
    assert message.mail_parameters["BODY"] == "8BITMIME"
    assert message.mail_parameters["SIZE"] == str(len(MESSAGE))
    assert message.rcpt_parameters == ({"NOTIFY": "NEVER"}, {"NOTIFY": "NEVER"})
    assert message.helo == "client.example"
    assert not message.tls
    assert message.peer == "127.0.0.1"
    [session] = server.sessions
    assert session.commands[0] == "ehlo client.example"
    assert session.commands[-1] == "QUIT"  # smtplib.__exit__
    assert b"\r\n...two\r\n" in session.received  # raw octets keep the stuffing


def test_empty_message_and_null_sender() -> None:
    with SinkServer() as server, socket.create_connection(server.address, 5) as sock:
        reader = sock.makefile("rb")
        sock.sendall(b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<b@x>\r\nDATA\r\n.\r\n")
        replies = [reader.readline()[:3] for _ in range(6)]
        assert replies == [b"220", b"250", b"250", b"250", b"354", b"250"]
    assert server.messages[0].sender == ""
    assert server.messages[0].content == b""


def test_starttls_with_generated_certificate() -> None:
    with SinkServer(starttls=True, hostname="mx.pyfix.test") as server:
        assert server.ca_file.read_bytes() == server.certificates.ca_pem  # type: ignore[union-attr]
        with smtplib.SMTP(*server.address, timeout=5) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            context = server.client_context()
            client.starttls(context=context)
            client.ehlo()
            assert not client.has_extn("starttls")
            client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
            # the server name matches: verified by the default context
            assert client.sock.getpeercert()["subject"] == ((("commonName", "mx.pyfix.test"),),)  # type: ignore[union-attr]
    assert server.messages[0].tls
    assert server.sessions[0].tls_version.startswith("TLSv1")


def test_implicit_tls() -> None:
    with SinkServer(implicit_tls=True) as server:
        context = server.client_context()
        with smtplib.SMTP_SSL(*server.address, context=context, timeout=5) as client:
            client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
    assert server.messages[0].tls


def test_certificates_hold_every_name(tmp_path: Path) -> None:
    certs = generate_certificates("mx.example.test", "127.0.0.2")
    ca, chain, key = certs.write(tmp_path)
    context = ssl.create_default_context(cafile=str(ca))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(chain, key)
    assert chain.read_bytes().endswith(certs.ca_pem)  # leaf, then the CA
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    left, right = socket.socketpair()
    with left, right:
        right.settimeout(5)
        left.settimeout(5)
        wrapped: list[ssl.SSLSocket] = []

        def serve() -> None:
            wrapped.append(server_context.wrap_socket(right, server_side=True))

        import threading

        thread = threading.Thread(target=serve)
        thread.start()
        client = context.wrap_socket(left, server_hostname="mx.example.test")
        thread.join()
        names = [v for k, v in client.getpeercert()["subjectAltName"]]
        assert names == ["mx.example.test", "127.0.0.2"]
        client.close()
        wrapped[0].close()


def test_more_certificates_from_the_same_ca() -> None:
    first = generate_certificates("mx.example.test")
    other = generate_certificates("other.example", ca=first)
    assert other.ca_pem == first.ca_pem
    context = ssl.create_default_context(cadata=first.ca_pem.decode())

    def starttls(server: SinkServer, name: str) -> None:
        with socket.create_connection(server.address, 5) as sock:
            reader = sock.makefile("rb")
            reader.readline()
            sock.sendall(b"STARTTLS\r\n")
            assert reader.readline().startswith(b"220 ")
            context.wrap_socket(sock, server_hostname=name).close()

    with SinkServer(starttls=True, certificates=other) as server:
        starttls(server, "other.example")  # the first CA vouches for it
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            starttls(server, "mx.example.test")
    with pytest.raises(ValueError, match="ca_key_pem"):
        generate_certificates("x", ca=Certificates(first.ca_pem, b"", b"", ()))


def test_script_sequences_and_functions() -> None:
    def data_end(command: Command) -> Response:
        assert command.verb == "."
        return "554 5.7.1 content rejected" if command.session.helo == "bad" else None

    script = {
        "RCPT": ["250 2.1.5 first ok", "550 5.1.1 second unknown", "450 4.2.0 third later"],
        ".": data_end,
    }
    with SinkServer(script=script) as server:
        with smtplib.SMTP(*server.address, timeout=5) as client:
            client.ehlo("good")
            refused = client.sendmail("a@x.test", ["r1@x.test", "r2@x.test", "r3@x.test"], b"x")
        assert refused == {
            "r2@x.test": (550, b"5.1.1 second unknown"),
            "r3@x.test": (450, b"4.2.0 third later"),
        }
        assert server.messages[0].recipients == ("r1@x.test",)
        # the sequence is used up: RCPT falls back to the default answer
        with smtplib.SMTP(*server.address, timeout=5) as client:
            client.ehlo("bad")
            with pytest.raises(smtplib.SMTPDataError) as caught:
                client.sendmail("a@x.test", ["r4@x.test"], b"x")
            assert caught.value.smtp_code == 554
    assert len(server.messages) == 1  # a refused message is not recorded


def test_bad_script_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="'MIAL' is not a command or stage"):
        SinkServer(script={"MIAL": "250 ok"})
    with pytest.raises(ValueError, match="BODY"):
        SinkServer(script={"BODY": "250 ok"})
    with pytest.raises(ValueError, match="after_bytes"):
        Disconnect(after_bytes=-1)


def test_lmtp_replies_per_recipient_over_unix_socket(tmp_path: Path) -> None:
    replies = {"full@x.test": "552 5.2.2 <full@x.test> Quota exceeded"}
    path = tmp_path / "lmtp"
    with SinkServer(
        lmtp=True, unix_path=path, script={".": lambda c: replies.get(c.argument)}
    ) as server:
        assert server.nexthop == f"unix:{path}"
        client = smtplib.LMTP(str(path), timeout=5)
        try:
            client.ehlo_or_helo_if_needed()
            client.mail("a@x.test")
            for rcpt in ("alice@x.test", "full@x.test", "bob@x.test"):
                assert client.rcpt(rcpt)[0] == 250
            client.putcmd("data")
            assert client.getreply()[0] == 354
            client.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
            codes = [client.getreply()[0] for _ in range(3)]  # RFC 2033: one per recipient
        finally:
            client.close()
        assert codes == [250, 552, 250]
    assert server.messages[0].recipients == ("alice@x.test", "bob@x.test")
    assert server.messages[0].peer == ""


def test_lmtp_refuses_ehlo() -> None:
    with SinkServer(lmtp=True) as server, socket.create_connection(server.address, 5) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220 sink.pyfix.test LMTP")
        sock.sendall(b"EHLO me\r\n")
        assert reader.readline().startswith(b"500 ")


def test_size_limit() -> None:
    with SinkServer(size_limit=100) as server, smtplib.SMTP(*server.address, timeout=5) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "100"
        with pytest.raises(smtplib.SMTPSenderRefused) as caught:
            client.sendmail("a@x.test", ["b@x.test"], b"x" * 200)
        assert caught.value.smtp_code == 552
        client.rset()
        # without SIZE= the limit applies after the data
        client.mail("a@x.test")
        client.rcpt("b@x.test")
        assert client.data(b"y" * 200)[0] == 552
    assert server.messages == []


def test_auth_plain_and_login_only_after_tls() -> None:
    server = SinkServer(starttls=True, auth={"alice": "secret"}, auth_requires_tls=True)
    with server, smtplib.SMTP(*server.address, timeout=5) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        client.starttls(context=server.client_context())
        client.ehlo()
        assert client.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
            client.login("alice", "wrong")
        assert caught.value.smtp_code == 535
        client.user, client.password = "alice", "secret"
        assert client.auth("LOGIN", client.auth_login)[0] == 235
        client.sendmail("a@x.test", ["b@x.test"], b"x")
    assert server.messages[0].auth_user == "alice"


def test_greeting_554_allows_only_quit() -> None:
    server = SinkServer(script={"CONNECT": "554 5.3.2 No service"})
    with server, socket.create_connection(server.address, 5) as sock:
        reader = sock.makefile("rb")
        assert reader.readline() == b"554 5.3.2 No service\r\n"
        sock.sendall(b"EHLO me\r\nMAIL FROM:<a@x>\r\nQUIT\r\n")
        assert reader.readline().startswith(b"503 ")
        assert reader.readline().startswith(b"503 ")
        assert reader.readline().startswith(b"221 ")
        assert reader.readline() == b""


def test_hang_at_a_stage_then_stop_is_prompt() -> None:
    server = SinkServer(script={"MAIL": Hang()}).start()
    try:
        client = smtplib.SMTP(*server.address, timeout=0.3)
        client.ehlo()
        with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected)):
            client.mail("a@x.test")
        client.close()
        sock = socket.create_connection(server.address, 5)  # left hanging for stop()
        assert sock.recv(100).startswith(b"220")
        sock.sendall(b"EHLO x\r\nMAIL FROM:<a@x>\r\n")
        ehlo = b""
        while not ehlo.endswith(b"250 SMTPUTF8\r\n"):
            ehlo += sock.recv(65536)
    finally:
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2
    assert sock.recv(65536) == b""  # MAIL was never answered; stop() closed the session
    sock.close()
    assert server.sessions[1].commands == ["EHLO x", "MAIL FROM:<a@x>"]


def test_disconnect_mid_body_records_what_arrived() -> None:
    server = SinkServer(script={"BODY": Disconnect(after_bytes=1000, reset=True)})
    with server, smtplib.SMTP(*server.address, timeout=5) as client:
        client.ehlo()
        client.mail("a@x.test")
        client.rcpt("b@x.test")
        with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
            client.data(b"z" * 2_000_000)
    assert server.messages == []
    assert server.sessions[0].content_bytes >= 1000
    assert server.sessions[0].closed


def test_421_disconnect_and_raw_garbage() -> None:
    script = {"RCPT": Disconnect("421 4.3.2 Shutting down"), "MAIL": Raw(b"hello there\r\n")}
    with SinkServer(script=script) as server, socket.create_connection(server.address, 5) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"HELO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\n")
        assert reader.readline().startswith(b"250 ")
        assert reader.readline() == b"hello there\r\n"
        assert reader.readline() == b"421 4.3.2 Shutting down\r\n"
        assert reader.readline() == b""


def test_stray_plaintext_after_starttls_is_discarded() -> None:
    # RFC 3207 §6: a command pipelined behind STARTTLS must not run inside TLS.
    with SinkServer(starttls=True) as server, socket.create_connection(server.address, 5) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"EHLO x\r\n")
        while not reader.readline().startswith(b"250 "):
            pass
        sock.sendall(b"STARTTLS\r\nMAIL FROM:<injected@x>\r\n")
        assert reader.readline().startswith(b"220 ")
        tls = server.client_context().wrap_socket(sock, server_hostname="localhost")
        tls.sendall(b"MAIL FROM:<a@x>\r\n")
        assert tls.recv(100).startswith(b"503 ")  # no EHLO yet after TLS, nothing injected
        tls.close()
    assert "MAIL FROM:<injected@x>" not in server.sessions[0].commands


async def test_usable_from_asyncio() -> None:
    async with SinkServer() as server:
        reader, writer = await asyncio.open_connection(*server.address)
        assert (await reader.readline()).startswith(b"220")
        writer.write(b"HELO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n")
        for expected in (b"250", b"250", b"250", b"354"):
            assert (await reader.readline()).startswith(expected)
        writer.write(b"hello\r\n.\r\nQUIT\r\n")
        assert (await reader.readline()).startswith(b"250 2.0.0 Ok: queued as")
        assert (await reader.readline()).startswith(b"221")
        writer.close()
        await writer.wait_closed()
        assert server.messages[0].content == b"hello\r\n"


def test_second_address_on_loopback() -> None:
    with SinkServer(host="127.0.0.3") as server, smtplib.SMTP(*server.address, timeout=5) as c:
        c.sendmail("a@x.test", ["b@x.test"], b"x")
    assert server.nexthop.startswith("[127.0.0.3]:")
    assert len(server.messages) == 1
