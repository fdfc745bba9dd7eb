"""LMTP delivery to a real Dovecot, over TCP and over its UNIX socket (PEERS.md §2).

Dovecot answers each recipient after the end of data (RFC 2033 §4.2): the
test mailboxes make that answer differ per recipient, so one transaction
ends with one outcome of each kind: ``alice`` delivered, ``full``
bounced (552 5.2.2 quota), ``tfull`` deferred (452 4.2.2). The message
must be in alice's maildir, byte for byte, and in nobody else's.
"""

from __future__ import annotations

import uuid

import pytest

from pyfix_smtp import Action, Config, Envelope
from tests.peers.certs import LabCerts
from tests.peers.delivery import (
    MYHOSTNAME,
    Deliverer,
    check_outcomes,
)
from tests.peers.dovecot import QUOTA_FULL, QUOTA_TEMPFAIL, DovecotLmtp

pytestmark = pytest.mark.peers

ALICE = "alice@example.test"
RECIPIENTS = [ALICE, QUOTA_FULL, QUOTA_TEMPFAIL]
LMTP = Config(protocol="lmtp", myhostname=MYHOSTNAME, lmtp_tls_loglevel="1")


def message(tag: str) -> bytes:
    return (
        f"From: sender@example.org\r\nTo: {ALICE}\r\nSubject: lmtp {tag}\r\n"
        f"Message-ID: <{tag}@example.org>\r\n\r\n"
        "Hello over LMTP.\r\n.a line that starts with a dot\r\n..and two\r\n"
    ).encode()


def mailbox_copies(dovecot: DovecotLmtp, address: str, tag: str) -> list[bytes]:
    marker = f"Message-ID: <{tag}@example.org>".encode()
    return [m for m in dovecot.messages(address) if marker in m]


def nexthop(dovecot: DovecotLmtp, transport: str) -> str:
    if transport == "unix":
        return f"unix:{dovecot.unix_socket}"
    return f"inet:{dovecot.host}:{dovecot.port}"


def relay(dovecot: DovecotLmtp, transport: str) -> tuple[str, str]:
    """Postfix's relay= and host text: smtp_connect_local() names a socket myhostname[path]."""
    if transport == "unix":
        name = f"{MYHOSTNAME}[{dovecot.unix_socket}]"
        return name, name
    name = f"{dovecot.host}[{dovecot.host}]"
    return f"{name}:{dovecot.port}", name


@pytest.mark.parametrize("transport", ["tcp", "unix"])
@pytest.mark.parametrize("assume_final", [False, True])
def test_per_recipient_results(
    deliverer: Deliverer,
    dovecot_lmtp: DovecotLmtp,
    transport: str,
    assume_final: bool,
) -> None:
    tag = uuid.uuid4().hex
    content = message(tag)
    config = LMTP.replace(lmtp_assume_final=assume_final)
    report = deliverer(
        Envelope("sender@example.org", RECIPIENTS),
        content,
        nexthop(dovecot_lmtp, transport),
        config,
    )
    saved = [r for r in RECIPIENTS if mailbox_copies(dovecot_lmtp, r, tag)]
    outcomes = check_outcomes(report, RECIPIENTS, saved)
    relay_label, host = relay(dovecot_lmtp, transport)

    alice = outcomes[ALICE]
    # lmtp_assume_final = yes and no DSN offered: "delivered" (Postfix smtp_rcpt_done())
    assert alice.action is (Action.DELIVERED if assume_final else Action.RELAYED)
    assert alice.status == "2.0.0"
    assert alice.reason.startswith(f"250 2.0.0 <{ALICE}> ")
    assert alice.reason.endswith(" Saved")
    assert alice.relay == relay_label

    full = outcomes[QUOTA_FULL]
    assert (full.action, full.status, full.reason) == (
        Action.BOUNCED,
        "5.2.2",
        f"host {host} said: 552 5.2.2 <{QUOTA_FULL}> Quota exceeded (mailbox for user is full)"
        " (in reply to end of DATA command)",
    )
    tfull = outcomes[QUOTA_TEMPFAIL]
    assert (tfull.action, tfull.status, tfull.reason) == (
        Action.DEFERRED,
        "4.2.2",
        f"host {host} said: 452 4.2.2 <{QUOTA_TEMPFAIL}> Quota exceeded"
        " (mailbox for user is full) (in reply to end of DATA command)",
    )

    # Dovecot prepends Return-Path and Received and stores LF line ends.
    [stored] = mailbox_copies(dovecot_lmtp, ALICE, tag)
    assert stored.startswith(b"Return-Path: <sender@example.org>\n")
    assert stored.endswith(b"\n" + content.replace(b"\r\n", b"\n")), stored


def test_starttls_to_dovecot(
    deliverer: Deliverer, dovecot_lmtp: DovecotLmtp, lab_certs: LabCerts
) -> None:
    tag = uuid.uuid4().hex
    config = LMTP.replace(lmtp_tls_security_level="verify", lmtp_tls_CAfile=str(lab_certs.ca_pem))
    report = deliverer(
        Envelope("sender@example.org", [ALICE]), message(tag), nexthop(dovecot_lmtp, "tcp"), config
    )
    check_outcomes(report, [ALICE], [ALICE] if mailbox_copies(dovecot_lmtp, ALICE, tag) else [])
    assert report.outcomes[0].action is Action.RELAYED
    assert any(e.startswith("Verified TLS connection established to ") for e in report.events)
    [stored] = mailbox_copies(dovecot_lmtp, ALICE, tag)
    assert b"by lmtp.example.test with LMTPS" in stored  # Dovecot saw TLS


def test_missing_unix_socket_defers(deliverer: Deliverer) -> None:
    # A socket that does not exist: the connection fails, the recipient is
    # deferred (Postfix smtp_connect_sock(): "connect to %s[%s]: %m", the
    # name being myhostname and the address the path).
    report = deliverer(
        Envelope("sender@example.org", [ALICE]),
        message("nosocket"),
        "unix:/nonexistent/pyfix/lmtp",
        LMTP,
    )
    [outcome] = check_outcomes(report, [ALICE], []).values()
    assert outcome.action is Action.DEFERRED
    assert outcome.status == "4.4.1"
    assert outcome.reason == (
        f"connect to {MYHOSTNAME}[/nonexistent/pyfix/lmtp]: No such file or directory"
    )
