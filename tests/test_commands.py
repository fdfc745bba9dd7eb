"""MAIL/RCPT/XFORWARD/AUTH builders: Postfix smtp_loop() parameter rules."""

from __future__ import annotations

import base64

import pytest

from pyfix_smtp.address import Mailbox
from pyfix_smtp.errors import AddressError, CommandError
from pyfix_smtp.protocol.commands import (
    auth_command,
    auth_response,
    envelope_failure,
    hello_command,
    mail_command,
    mime_downgrade_applies,
    rcpt_command,
    smtputf8_in_use,
    xforward_commands,
)
from pyfix_smtp.protocol.envelope import (
    BodyType,
    Envelope,
    Notify,
    OriginalRecipient,
    Recipient,
    Ret,
    Xforward,
)
from pyfix_smtp.protocol.extensions import Extensions
from pyfix_smtp.status import Reply

HELLO = Reply(250, "2.0.0", ("mx",))


def ext(**features: object) -> Extensions:
    return Extensions("EHLO", HELLO, **features)  # type: ignore[arg-type]


FULL = ext(size=True, eightbitmime=True, dsn=True, smtputf8=True, pipelining=True, auth=True)


@pytest.mark.parametrize(
    ("envelope", "extensions", "kwargs", "expected"),
    [
        # plain, no extensions (HELO session)
        (
            Envelope("a@example.org", ["b@example.net"], size=10),
            ext(),
            {},
            b"MAIL FROM:<a@example.org>",
        ),
        # SIZE only when announced and a size is known
        (
            Envelope("a@example.org", ["b@x.net"], size=10),
            ext(size=True, eightbitmime=True),
            {},
            b"MAIL FROM:<a@example.org> SIZE=10",
        ),
        (
            Envelope("a@example.org", ["b@x.net"]),
            ext(size=True, eightbitmime=True),
            {},
            b"MAIL FROM:<a@example.org>",
        ),
        # no SIZE when a MIME downgrade applies (no 8BITMIME, not declared 7bit)
        (
            Envelope("a@example.org", ["b@x.net"], size=10),
            ext(size=True),
            {},
            b"MAIL FROM:<a@example.org>",
        ),
        (
            Envelope("a@example.org", ["b@x.net"], size=10, body=BodyType.EIGHT_BIT),
            ext(size=True),
            {},
            b"MAIL FROM:<a@example.org>",
        ),
        (
            Envelope("a@example.org", ["b@x.net"], size=10, body=BodyType.SEVEN_BIT),
            ext(size=True),
            {},
            b"MAIL FROM:<a@example.org> SIZE=10",
        ),
        (
            Envelope("a@example.org", ["b@x.net"], size=10),
            ext(size=True),
            {"disable_mime_output_conversion": True},
            b"MAIL FROM:<a@example.org> SIZE=10",
        ),
        # BODY from the declaration only, when 8BITMIME is offered
        (
            Envelope("a@example.org", ["b@x.net"], body=BodyType.EIGHT_BIT),
            ext(eightbitmime=True),
            {},
            b"MAIL FROM:<a@example.org> BODY=8BITMIME",
        ),
        (
            Envelope("a@example.org", ["b@x.net"], body=BodyType.SEVEN_BIT),
            ext(eightbitmime=True),
            {},
            b"MAIL FROM:<a@example.org> BODY=7BIT",
        ),
        (
            Envelope("a@example.org", ["b@x.net"], body=BodyType.EIGHT_BIT),
            ext(),
            {},
            b"MAIL FROM:<a@example.org>",
        ),
        # DSN: ENVID (xtext) and RET only when given and offered
        (
            Envelope("a@example.org", ["b@x.net"], envid="env+id=x", ret=Ret.HDRS),
            ext(dsn=True),
            {},
            b"MAIL FROM:<a@example.org> ENVID=env+2Bid+3Dx RET=HDRS",
        ),
        (
            Envelope("a@example.org", ["b@x.net"], envid="e", ret="full"),
            ext(),
            {},
            b"MAIL FROM:<a@example.org>",
        ),
        (
            Envelope("a@example.org", ["b@x.net"], envid="sp ace\u00e9"),
            ext(dsn=True),
            {},
            b"MAIL FROM:<a@example.org> ENVID=sp+20ace+C3+A9",
        ),
        # REQUIRETLS requested: on the MAIL when offered, else RET=HDRS forced
        (
            Envelope("a@example.org", ["b@x.net"], requiretls=True, ret=Ret.FULL),
            ext(dsn=True, requiretls=True),
            {},
            b"MAIL FROM:<a@example.org> RET=FULL REQUIRETLS",
        ),
        (
            Envelope("a@example.org", ["b@x.net"], requiretls=True, ret=Ret.FULL),
            ext(dsn=True),
            {},
            b"MAIL FROM:<a@example.org> RET=HDRS",
        ),
        (
            Envelope("a@example.org", ["b@x.net"], requiretls=True),
            ext(),
            {},
            b"MAIL FROM:<a@example.org>",
        ),
        # SMTPUTF8 when requested and offered
        (
            Envelope("a@example.org", ["b@x.net"], smtputf8=True),
            ext(smtputf8=True),
            {},
            b"MAIL FROM:<a@example.org> SMTPUTF8",
        ),
        (
            Envelope("a@example.org", ["b@x.net"], smtputf8=True),
            ext(),
            {},
            b"MAIL FROM:<a@example.org>",
        ),
        # AUTH=<> with smtp_send_dummy_mail_auth
        (
            Envelope("a@example.org", ["b@x.net"]),
            ext(auth=True),
            {"send_dummy_mail_auth": True},
            b"MAIL FROM:<a@example.org> AUTH=<>",
        ),
        (
            Envelope("a@example.org", ["b@x.net"]),
            ext(),
            {"send_dummy_mail_auth": True},
            b"MAIL FROM:<a@example.org>",
        ),
        # null sender, quoted local part, everything in Postfix's order
        (Envelope("", ["b@x.net"]), ext(), {}, b"MAIL FROM:<>"),
        (
            Envelope('"john doe"@example.org', ["b@x.net"]),
            ext(),
            {},
            b'MAIL FROM:<"john doe"@example.org>',
        ),
        (
            Envelope(
                "a@example.org",
                ["b@x.net"],
                size=5,
                body=BodyType.EIGHT_BIT,
                envid="i",
                ret=Ret.FULL,
                smtputf8=True,
            ),
            FULL,
            {"send_dummy_mail_auth": True},
            b"MAIL FROM:<a@example.org> SIZE=5 BODY=8BITMIME ENVID=i RET=FULL SMTPUTF8 AUTH=<>",
        ),
    ],
)
def test_mail_command(
    envelope: Envelope, extensions: Extensions, kwargs: dict[str, bool], expected: bytes
) -> None:
    assert mail_command(envelope, extensions, **kwargs) == expected + b"\r\n"


@pytest.mark.parametrize(
    ("recipient", "extensions", "smtputf8", "expected"),
    [
        (Recipient("b@example.net"), ext(dsn=True), False, b"RCPT TO:<b@example.net>"),
        (
            Recipient("b@example.net", orcpt="b@example.net"),
            ext(dsn=True),
            False,
            b"RCPT TO:<b@example.net> ORCPT=rfc822;b@example.net",
        ),
        (
            Recipient("b@example.net", orcpt="b+x=y@example.net"),
            ext(dsn=True),
            False,
            b"RCPT TO:<b@example.net> ORCPT=rfc822;b+2Bx+3Dy@example.net",
        ),
        (
            Recipient("b@example.net", orcpt="b@example.net", notify=Notify.NEVER),
            ext(dsn=True),
            False,
            b"RCPT TO:<b@example.net> ORCPT=rfc822;b@example.net NOTIFY=NEVER",
        ),
        (
            Recipient("b@example.net", notify="delay,failure,success"),
            ext(dsn=True),
            False,
            b"RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE,DELAY",
        ),
        # no DSN on the server: neither ORCPT nor NOTIFY
        (
            Recipient("b@example.net", orcpt="b@example.net", notify="FAILURE"),
            ext(),
            False,
            b"RCPT TO:<b@example.net>",
        ),
        # UTF-8 original recipient: utf-8 type with utf-8-addr-xtext
        (
            Recipient("b@example.net", orcpt="j\u00f6rg@example.net"),
            ext(dsn=True),
            False,
            b"RCPT TO:<b@example.net> ORCPT=utf-8;j\\x{F6}rg@example.net",
        ),
        # an upstream ORCPT relayed as received
        (
            Recipient("b@example.net", orcpt=OriginalRecipient("rfc822", "x y@z")),
            ext(dsn=True),
            False,
            b"RCPT TO:<b@example.net> ORCPT=rfc822;x+20y@z",
        ),
        # UTF-8 address with SMTPUTF8 in use, and without (sent as is)
        (
            Recipient("j\u00f6rg@example.net"),
            ext(smtputf8=True),
            True,
            "RCPT TO:<j\u00f6rg@example.net>".encode(),
        ),
        (
            Recipient("j\u00f6rg@example.net"),
            ext(),
            False,
            "RCPT TO:<j\u00f6rg@example.net>".encode(),
        ),
        # a U-label domain without SMTPUTF8 goes out as A-labels
        (Recipient("a@b\u00fccher.example"), ext(), False, b"RCPT TO:<a@xn--bcher-kva.example>"),
        (Recipient("postmaster"), ext(), False, b"RCPT TO:<postmaster>"),
    ],
)
def test_rcpt_command(
    recipient: Recipient, extensions: Extensions, smtputf8: bool, expected: bytes
) -> None:
    assert rcpt_command(recipient, extensions, smtputf8=smtputf8) == expected + b"\r\n"


def test_unquoted_envelope_option() -> None:
    env = Envelope('"john doe"@example.org', ["b@x.net"])
    assert (
        mail_command(env, ext(), quote_rfc821_envelope=False)
        == b"MAIL FROM:<john doe@example.org>\r\n"
    )


@pytest.mark.parametrize(
    ("attrs", "announced", "expected"),
    [
        (
            Xforward(
                name="client.example",
                addr="192.0.2.1",
                port="4711",
                proto="ESMTP",
                helo="h",
                ident="Q1",
                source="REMOTE",
            ),
            frozenset({"NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"}),
            (
                b"XFORWARD NAME=client.example ADDR=192.0.2.1 PORT=4711\r\n",
                b"XFORWARD PROTO=ESMTP HELO=h IDENT=Q1 SOURCE=REMOTE\r\n",
            ),
        ),
        # "unknown" is not forwarded for NAME/ADDR/PORT/PROTO; unannounced attributes neither
        (
            Xforward(name="unknown", addr="192.0.2.1", proto="UNKNOWN", helo="h"),
            frozenset({"NAME", "ADDR", "PROTO"}),
            (b"XFORWARD ADDR=192.0.2.1\r\n", None),
        ),
        (
            Xforward(source="LOCAL"),
            frozenset({"NAME", "SOURCE"}),
            (None, b"XFORWARD SOURCE=LOCAL\r\n"),
        ),
        (Xforward(), frozenset({"NAME"}), (None, None)),
        # xtext: "+" and spaces encoded, "=" kept (xtext_quote_append(..., ""))
        (Xforward(helo="a+b =c"), frozenset({"HELO"}), (None, b"XFORWARD HELO=a+2Bb+20=c\r\n")),
    ],
)
def test_xforward_commands(
    attrs: Xforward, announced: frozenset[str], expected: tuple[bytes | None, bytes | None]
) -> None:
    assert xforward_commands(attrs, ext(xforward=announced)) == expected


def test_xforward_longer_than_512_is_refused() -> None:
    attrs = Xforward(helo="h" * 600)
    with pytest.raises(CommandError, match="longer than 512"):
        xforward_commands(attrs, ext(xforward=frozenset({"HELO"})))


def test_auth_command_initial_response_and_deferral() -> None:
    assert auth_command("PLAIN", b"\0u\0p") == (b"AUTH PLAIN AHUAcA==\r\n", None)
    assert auth_command("EXTERNAL", b"") == (b"AUTH EXTERNAL =\r\n", None)
    assert auth_command("LOGIN", None) == (b"AUTH LOGIN\r\n", None)
    big = b"x" * 400  # 536 base64 octets: the command would exceed 512
    cmd, deferred = auth_command("PLAIN", big)
    assert cmd == b"AUTH PLAIN\r\n"
    assert deferred == base64.b64encode(big) + b"\r\n"
    assert auth_response(b"secret") == b"c2VjcmV0\r\n"
    with pytest.raises(CommandError):
        auth_command("PL AIN", None)


@pytest.mark.parametrize("name", ["", "two words", "bad\r\nname", "tab\tname"])
def test_hello_names_are_validated(name: str) -> None:
    with pytest.raises(CommandError):
        hello_command("EHLO", name)


def test_hello_command() -> None:
    assert hello_command("LHLO", "client.example") == b"LHLO client.example\r\n"
    with pytest.raises(CommandError):
        hello_command("HELLO", "x")


def test_envelope_failure_size_and_smtputf8() -> None:
    big = Envelope("a@example.org", ["b@x.net"], size=2000)
    assert (
        envelope_failure(big, ext(size=True, size_limit=1000), server="mx[192.0.2.1]") is not None
    )
    failure = envelope_failure(big, ext(size=True, size_limit=1000), server="mx[192.0.2.1]")
    assert failure is not None
    assert (failure.status, failure.reason) == (
        "5.3.4",
        "message size 2000 exceeds size limit 1000 of server mx[192.0.2.1]",
    )
    assert envelope_failure(big, ext(size=True, size_limit=0), server="s") is None
    assert envelope_failure(big, ext(size=True, size_limit=2000), server="s") is None
    utf8 = Envelope("a@example.org", ["j\u00f6rg@x.net"], smtputf8=True)
    failure = envelope_failure(utf8, ext(), server="mx[192.0.2.1]")
    assert failure is not None
    assert failure.status == "5.6.7"
    assert failure.reason.endswith("The last attempted server was mx[192.0.2.1]")
    assert envelope_failure(utf8, ext(smtputf8=True), server="s") is None
    # UTF-8 without the request is sent as is
    assert (
        envelope_failure(Envelope("a@example.org", ["j\u00f6rg@x.net"]), ext(), server="s") is None
    )
    # requested, but nothing needs it
    assert (
        envelope_failure(Envelope("a@example.org", ["b@x.net"], smtputf8=True), ext(), server="s")
        is None
    )
    assert (
        envelope_failure(
            Envelope("a@example.org", ["b@x.net"], smtputf8=True, utf8_headers=True),
            ext(),
            server="s",
        )
        is not None
    )


def test_smtputf8_and_downgrade_helpers() -> None:
    env = Envelope("a@example.org", ["b@x.net"], smtputf8=True)
    assert smtputf8_in_use(env, ext(smtputf8=True))
    assert not smtputf8_in_use(env, ext())
    assert mime_downgrade_applies(env, ext())
    assert not mime_downgrade_applies(env, ext(eightbitmime=True))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"recipients": []}, CommandError),
        ({"envid": ""}, CommandError),
        ({"envid": "a\0b"}, CommandError),
        ({"ret": "SOME"}, CommandError),
        ({"size": -1}, CommandError),
        ({"sender": "bad\r\n@example.org"}, AddressError),
        ({"recipients": ["<>"]}, AddressError),
    ],
)
def test_envelope_validation(kwargs: dict[str, object], error: type[Exception]) -> None:
    args: dict[str, object] = {"sender": "a@example.org", "recipients": ["b@example.net"], **kwargs}
    with pytest.raises(error):
        Envelope(**args)  # type: ignore[arg-type]


def test_recipient_and_notify_validation() -> None:
    with pytest.raises(CommandError, match="NEVER"):
        Recipient("b@x.net", notify="NEVER,FAILURE")
    with pytest.raises(CommandError, match="unknown"):
        Notify.parse("SOMETIMES")
    with pytest.raises(CommandError):
        Recipient(Mailbox.null())
    with pytest.raises(CommandError):
        OriginalRecipient("rfc 822", "a@b")
    assert Notify.parse("failure, delay").wire == "FAILURE,DELAY"


def test_envelope_accepts_mailboxes_and_strings() -> None:
    env = Envelope(Mailbox("a", "example.org"), [Mailbox("b", "x.net"), "c@x.net"])
    assert [str(r.address) for r in env.recipients] == ["b@x.net", "c@x.net"]
    assert not env.requires_smtputf8
    assert Envelope("a@example.org", ["j\u00f6rg@x.net"]).has_utf8
