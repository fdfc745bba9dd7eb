"""SMTPUTF8 (RFC 6531) end to end: real servers with and without the extension.

* Postfix smtpd offers SMTPUTF8 (``smtputf8_enable = yes``, the default since
  compatibility level 1): a message with UTF-8 addresses and headers is
  delivered, and the maildir shows the UTF-8 addresses as sent.
* Postfix smtp-sink does not offer SMTPUTF8: a message that *requires* it
  (Postfix smtp.h ``DELIVERY_REQUIRES_SMTPUTF8``: requested and UTF-8
  present in an address or a header) is not sent there. Postfix 3.11
  smtp_proto.c ``smtp_helo()`` fails it with 5.6.7 "message requires
  SMTPUTF8, but no server was found that supports SMTPUTF8. The last
  attempted server was host[addr]", *soft at a non-final server*
  (``SMTP_MISC_FAIL_SOFT_NON_FINAL``, "Fix 20250824: try multiple servers
  before giving up"), so with two MX hosts the second one gets the message.

Debian's Postfix 3.7 bounces at the first MX with other text ("SMTPUTF8 is
required, but was not offered by host"), so it cannot be the reference
here; the expected outcomes are 3.11's.
"""

from __future__ import annotations

import uuid

import pytest

from pyfix_smtp import Action, Config, Envelope
from pyfix_smtp.testing import SinkServer
from tests.peers.delivery import MYHOSTNAME, Deliverer, check_outcomes, wait_for
from tests.peers.mx_lab import MxLab
from tests.peers.postfix import PostfixSmtpd
from tests.peers.sink import SinkFactory
from tests.peers.tls_lab import stored_copies

pytestmark = pytest.mark.peers

CONFIG = Config(myhostname=MYHOSTNAME, smtp_helo_timeout=10)
PLAIN = CONFIG.replace(smtp_tls_security_level="none")
#: SinkServer's default extensions without SMTPUTF8
NO_SMTPUTF8 = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN")
UTF8_SENDER = "sénder@example.org"


def message(tag: str, subject: str = "naïve café") -> bytes:
    return (
        f"From: {UTF8_SENDER}\r\nTo: jösé@example.test\r\nSubject: {subject}\r\n"
        "Date: Wed, 25 Nov 2026 12:00:00 +0000\r\n"
        f"Message-ID: <{tag}@example.org>\r\n\r\nGrüße, 日本語.\r\n"
    ).encode()


def requires_5_6_7(server: str) -> str:
    """Postfix 3.11 smtp_proto.c smtp_helo(): the SMTPUTF8 failure text."""
    return (
        "message requires SMTPUTF8, but no server was found that supports SMTPUTF8."
        f" The last attempted server was {server}"
    )


def assert_only_ehlo(server: SinkServer) -> None:
    """One session: EHLO, then QUIT (smtp_connect.c sends QUIT after a failed helo)."""
    (session,) = server.sessions
    wait_for(lambda: session.closed, what="the session to end")
    assert [c.split()[0] for c in session.commands] == ["EHLO", "QUIT"]


def test_utf8_addresses_and_headers_to_postfix(
    deliverer: Deliverer, postfix_smtpd: PostfixSmtpd
) -> None:
    tag = uuid.uuid4().hex
    rcpt = f"jösé-{tag}@example.test"
    content = message(tag)
    envelope = Envelope(UTF8_SENDER, [rcpt], smtputf8=True, utf8_headers=True)
    report = deliverer(envelope, content, f"[127.0.0.1]:{postfix_smtpd.starttls_port}", CONFIG)
    wait_for(lambda: rcpt in stored_copies(postfix_smtpd, tag), what=f"mail {tag}")
    copies = stored_copies(postfix_smtpd, tag)
    (outcome,) = check_outcomes(report, [rcpt], copies).values()
    assert (outcome.action, outcome.status) == (Action.RELAYED, "2.0.0")
    stored = copies[rcpt]
    assert f"Delivered-To: {rcpt}\n".encode() in stored  # the UTF-8 address, as sent
    assert f"Return-Path: <{UTF8_SENDER}>\n".encode() in stored
    assert b"with UTF8SMTPS id" in stored  # Postfix smtpd: SMTPUTF8 over TLS
    assert stored.endswith(content.replace(b"\r\n", b"\n"))  # headers and body intact


def test_required_smtputf8_at_the_only_server_bounces(
    deliverer: Deliverer, sink_factory: SinkFactory
) -> None:
    sink = sink_factory.start(dump=True)  # smtp-sink offers no SMTPUTF8
    assert sink.dump_dir is not None
    rcpt = "jösé@example.test"
    report = deliverer(
        Envelope(UTF8_SENDER, [rcpt], smtputf8=True),
        message(uuid.uuid4().hex),
        f"[127.0.0.1]:{sink.port}",
        PLAIN,
    )
    (outcome,) = check_outcomes(report, [rcpt], []).values()
    assert (outcome.action, outcome.status, outcome.reason) == (
        Action.BOUNCED,
        "5.6.7",
        requires_5_6_7("127.0.0.1[127.0.0.1]"),
    )
    assert outcome.relay == f"127.0.0.1[127.0.0.1]:{sink.port}"
    assert not any(p.is_file() for p in sink.dump_dir.rglob("*"))  # no message reached it


@pytest.mark.parametrize(
    ("sender", "recipient", "utf8_headers"),
    [
        (UTF8_SENDER, "bob@example.test", False),  # UTF-8 in the sender only
        ("alice@example.org", "bob@example.test", True),  # in a header only
    ],
)
def test_any_utf8_makes_smtputf8_required(
    deliverer: Deliverer, sender: str, recipient: str, utf8_headers: bool
) -> None:
    # smtp.h DELIVERY_REQUIRES_SMTPUTF8: REQUESTED and any DERIVED flag
    # (sender, recipient or header).
    with SinkServer(extensions=NO_SMTPUTF8) as server:
        report = deliverer(
            Envelope(sender, [recipient], smtputf8=True, utf8_headers=utf8_headers),
            message(uuid.uuid4().hex),
            server.nexthop,
            PLAIN,
        )
        (outcome,) = check_outcomes(report, [recipient], []).values()
        assert (outcome.action, outcome.status, outcome.reason) == (
            Action.BOUNCED,
            "5.6.7",
            requires_5_6_7("127.0.0.1[127.0.0.1]"),
        )
        assert_only_ehlo(server)


def test_requested_but_not_needed_is_delivered_without_smtputf8(deliverer: Deliverer) -> None:
    # SMTPUTF8 requested, but everything is ASCII: nothing requires it, and
    # MAIL FROM carries SMTPUTF8 only when the server offers it (smtp_proto.c
    # smtp_loop()).
    with SinkServer(extensions=NO_SMTPUTF8) as server:
        rcpt = "bob@example.test"
        report = deliverer(
            Envelope("alice@example.org", [rcpt], smtputf8=True),
            b"Subject: ascii\r\n\r\nplain\r\n",
            server.nexthop,
            PLAIN,
        )
        (outcome,) = check_outcomes(report, [rcpt], [rcpt]).values()
        assert outcome.action is Action.RELAYED
        assert "SMTPUTF8" not in server.messages[0].mail_parameters


def test_first_mx_without_smtputf8_is_soft(
    deliverer: Deliverer, sink_factory: SinkFactory, mx_lab: MxLab
) -> None:
    port = mx_lab.common_port()
    first = sink_factory.start(host=mx_lab.mx1_address, port=port, dump=True)
    assert first.dump_dir is not None
    rcpt = "jösé@example.test"
    content = message(uuid.uuid4().hex)
    with SinkServer(host=mx_lab.mx2_address, port=port, hostname=mx_lab.mx2) as second:
        report = deliverer(
            Envelope(UTF8_SENDER, [rcpt], smtputf8=True),
            content,
            f"{mx_lab.domain}:{port}",
            PLAIN,
            dns=mx_lab.dns,
        )
        (outcome,) = check_outcomes(report, [rcpt], [rcpt]).values()
        assert outcome.action is Action.RELAYED
        assert outcome.relay == f"{mx_lab.mx2}[{mx_lab.mx2_address}]:{port}"
        assert requires_5_6_7(f"{mx_lab.mx1}[{mx_lab.mx1_address}]") in report.events
        (received,) = second.messages
        assert received.recipients == (rcpt,)
        assert received.sender == UTF8_SENDER
        assert "SMTPUTF8" in received.mail_parameters
        assert received.content == content
    assert not any(p.is_file() for p in first.dump_dir.rglob("*"))


def test_no_mx_with_smtputf8_bounces_at_the_last(deliverer: Deliverer, mx_lab: MxLab) -> None:
    port = mx_lab.common_port()
    rcpt = "jösé@example.test"
    with (
        SinkServer(
            host=mx_lab.mx1_address, port=port, hostname=mx_lab.mx1, extensions=NO_SMTPUTF8
        ) as first,
        SinkServer(
            host=mx_lab.mx2_address, port=port, hostname=mx_lab.mx2, extensions=NO_SMTPUTF8
        ) as second,
    ):
        report = deliverer(
            Envelope(UTF8_SENDER, [rcpt], smtputf8=True),
            message(uuid.uuid4().hex),
            f"{mx_lab.domain}:{port}",
            PLAIN,
            dns=mx_lab.dns,
        )
        (outcome,) = check_outcomes(report, [rcpt], []).values()
        assert (outcome.action, outcome.status, outcome.reason) == (
            Action.BOUNCED,
            "5.6.7",
            requires_5_6_7(f"{mx_lab.mx2}[{mx_lab.mx2_address}]"),
        )
        for server in (first, second):
            assert_only_ehlo(server)
