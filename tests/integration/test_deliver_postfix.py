"""Delivery to a real Postfix smtpd: STARTTLS, implicit TLS, SASL via Dovecot (PEERS.md §1, §2).

One private Postfix instance for the module, its AUTH backed by the Dovecot
peer's auth socket (AUTH only after TLS). Postfix refuses recipients by
name (``temp-fail@`` 450 4.2.0, ``perm-fail@`` 550 5.1.1) and stores what it
accepts in one maildir, one file per recipient, with its own headers
(Return-Path, X-Original-To, Delivered-To, Received) in front of the
message: everything after them must be our message byte for byte (LF line
ends), including a 20 MB one.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyfix_smtp import Action, AsyncClient, Config, Envelope
from tests.peers.certs import LabCerts
from tests.peers.delivery import (
    MYHOSTNAME,
    OWN_ADDRESSES,
    Deliverer,
    check_outcomes,
    wait_for,
)
from tests.peers.dovecot import PASSWORD, DovecotLmtp
from tests.peers.postfix import PostfixSmtpd, start_postfix_smtpd

pytestmark = pytest.mark.peers

ALICE = "alice@example.test"
TEMP_FAIL = "temp-fail@example.test"
PERM_FAIL = "perm-fail@example.test"
SENDER = "sender@example.org"
HOST = "127.0.0.1[127.0.0.1]"
BASE = Config(myhostname=MYHOSTNAME, smtp_helo_timeout=10, smtp_tls_loglevel="1")
# Postfix's own headers in front of each stored message (virtual(8) + smtpd(8)).
PREPENDED = re.compile(
    rb"\AReturn-Path: <[^\n]*>\nX-Original-To: [^\n]*\nDelivered-To: [^\n]*\n"
    rb"Received: [^\n]*\n(?:\t[^\n]*\n)*"
)


@pytest.fixture(scope="module")
def postfix(lab_certs: LabCerts, dovecot_lmtp: DovecotLmtp) -> Iterator[PostfixSmtpd]:
    """Postfix smtpd with SASL through Dovecot and room for a 20 MB message."""
    server = start_postfix_smtpd(
        lab_certs,
        sasl_path=str(dovecot_lmtp.auth_socket),
        main_cf={"message_size_limit": "40000000", "virtual_mailbox_limit": "0"},
    )
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


def message(tag: str, body: bytes = b"") -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {ALICE}\r\nSubject: postfix {tag}\r\n"
        "Date: Wed, 25 Nov 2026 12:00:00 +0000\r\n"
        f"Message-ID: <{tag}@example.org>\r\n\r\n"
        "Hello through Postfix.\r\n.a line that starts with a dot\r\n.\r\n..\r\n"
    ).encode() + body


def stored(postfix: PostfixSmtpd, tag: str) -> dict[str, bytes]:
    """The stored copies of message *tag*, by Delivered-To recipient."""
    marker = f"Message-ID: <{tag}@example.org>".encode()
    copies: dict[str, bytes] = {}
    if not postfix.maildir.is_dir():
        return copies
    for path in postfix.maildir.iterdir():
        with path.open("rb") as f:
            head = f.read(4096)
            if marker not in head:
                continue
            data = head + f.read()
        match = re.search(rb"^Delivered-To: (\S+)$", head, re.M)
        assert match is not None, head
        copies[match.group(1).decode()] = data
    return copies


def arrived(postfix: PostfixSmtpd, tag: str, recipients: list[str]) -> dict[str, bytes]:
    """Wait until Postfix has stored a copy for each of *recipients*; return all copies."""
    wait_for(lambda: set(recipients) <= set(stored(postfix, tag)), what=f"mail {tag}")
    return stored(postfix, tag)


def assert_byte_for_byte(copy: bytes, content: bytes) -> None:
    match = PREPENDED.match(copy)
    assert match is not None, copy[:500]
    assert copy[match.end() :] == content.replace(b"\r\n", b"\n")


@pytest.mark.parametrize("level", ["encrypt", "verify"])
def test_starttls_per_recipient_results(
    deliverer: Deliverer, postfix: PostfixSmtpd, lab_certs: LabCerts, level: str
) -> None:
    tag = uuid.uuid4().hex
    content = message(tag)
    recipients = [ALICE, TEMP_FAIL, PERM_FAIL]
    config = BASE.replace(smtp_tls_security_level=level)
    if level == "verify":
        config = config.replace(smtp_tls_CAfile=str(lab_certs.ca_pem))
    report = deliverer(
        Envelope(SENDER, recipients), content, f"[127.0.0.1]:{postfix.starttls_port}", config
    )
    copies = arrived(postfix, tag, [ALICE])
    outcomes = check_outcomes(report, recipients, copies)

    alice = outcomes[ALICE]
    assert (alice.action, alice.status) == (Action.RELAYED, "2.0.0")
    assert re.fullmatch(r"250 2\.0\.0 Ok: queued as \w+", alice.reason), alice.reason
    assert alice.relay == f"{HOST}:{postfix.starttls_port}"
    temp = outcomes[TEMP_FAIL]
    assert (temp.action, temp.status, temp.reason) == (
        Action.DEFERRED,
        "4.2.0",
        f"host {HOST} said: 450 4.2.0 <{TEMP_FAIL}>: Recipient address rejected:"
        " temporary failure for testing (in reply to RCPT TO command)",
    )
    perm = outcomes[PERM_FAIL]
    assert (perm.action, perm.status, perm.reason) == (
        Action.BOUNCED,
        "5.1.1",
        f"host {HOST} said: 550 5.1.1 <{PERM_FAIL}>: Recipient address rejected:"
        " permanent failure for testing (in reply to RCPT TO command)",
    )
    trust = "Verified" if level == "verify" else "Untrusted"
    assert any(e.startswith(f"{trust} TLS connection established to ") for e in report.events)
    assert_byte_for_byte(copies[ALICE], content)
    assert b"with ESMTPS id" in copies[ALICE]  # Postfix received it over TLS


def big_body(size: int) -> bytes:
    """*size* octets of 76-column lines, with lines that need dot-stuffing."""
    raw = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
    dotted = b".\r\n..\r\n.dot at the start\r\n"
    middle = len(raw) // 2 - (len(raw) // 2) % 78  # a line boundary
    return raw[:middle] + dotted + raw[middle:] + dotted


def test_twenty_megabytes_streamed_from_a_file(
    deliverer: Deliverer, postfix: PostfixSmtpd, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex
    content = message(tag, big_body(20 * 1024 * 1024))
    source = tmp_path / "big.eml"
    source.write_bytes(content)
    with source.open("rb") as file:  # a file is streamed, never loaded whole
        report = deliverer(
            Envelope(SENDER, [ALICE]),
            file,
            f"[127.0.0.1]:{postfix.starttls_port}",
            BASE.replace(smtp_tls_security_level="encrypt"),
        )
    copies = arrived(postfix, tag, [ALICE])
    [alice] = check_outcomes(report, [ALICE], copies).values()
    assert alice.action is Action.RELAYED
    assert len(content) > 20_000_000
    assert_byte_for_byte(copies[ALICE], content)


def test_twenty_megabytes_from_memory_size_announced(
    deliverer: Deliverer, postfix: PostfixSmtpd
) -> None:
    tag = uuid.uuid4().hex
    content = message(tag, big_body(20 * 1024 * 1024))
    report = deliverer(
        Envelope(SENDER, [ALICE]),
        content,
        f"[127.0.0.1]:{postfix.plain_port}",
        BASE.replace(smtp_tls_security_level="none"),
    )
    copies = arrived(postfix, tag, [ALICE])
    check_outcomes(report, [ALICE], copies)
    assert_byte_for_byte(copies[ALICE], content)


def test_implicit_tls(deliverer: Deliverer, postfix: PostfixSmtpd, lab_certs: LabCerts) -> None:
    tag = uuid.uuid4().hex
    content = message(tag)
    config = BASE.replace(
        smtp_tls_wrappermode=True,
        smtp_tls_security_level="verify",
        smtp_tls_CAfile=str(lab_certs.ca_pem),
    )
    report = deliverer(
        Envelope(SENDER, [ALICE]), content, f"[127.0.0.1]:{postfix.tls_port}", config
    )
    copies = arrived(postfix, tag, [ALICE])
    [alice] = check_outcomes(report, [ALICE], copies).values()
    assert alice.action is Action.RELAYED
    assert_byte_for_byte(copies[ALICE], content)


def test_ipv6_loopback(deliverer: Deliverer, postfix: PostfixSmtpd) -> None:
    if not postfix.ipv6:
        pytest.skip("no IPv6 loopback here")
    tag = uuid.uuid4().hex
    content = message(tag)
    report = deliverer(
        Envelope(SENDER, [ALICE]),
        content,
        f"[ipv6:::1]:{postfix.starttls_port}",
        BASE.replace(smtp_tls_security_level="encrypt", inet_protocols="all"),
    )
    copies = arrived(postfix, tag, [ALICE])
    [alice] = check_outcomes(report, [ALICE], copies).values()
    assert alice.relay == f"::1[::1]:{postfix.starttls_port}"
    assert_byte_for_byte(copies[ALICE], content)


# -- SASL ---------------------------------------------------------------------

# Dovecot's anvil delays repeated AUTH failures from one client address by
# seconds (PEERS.md): every bad-password delivery binds its own source address.
BAD_AUTH_SOURCE = {
    ("sync", True): "127.0.0.61",
    ("async", True): "127.0.0.62",
    ("sync", False): "127.0.0.63",
    ("async", False): "127.0.0.64",
}


def sasl_config(password: str, **overrides: object) -> Config:
    return BASE.replace(
        smtp_tls_security_level="encrypt",
        smtp_sasl_auth_enable=True,
        smtp_sasl_password_maps=f"inline:{{ 127.0.0.1={ALICE}:{password} }}",
        # Postfix offers PLAIN and LOGIN only; the defaults (noplaintext) exclude both.
        smtp_sasl_security_options="noanonymous",
        smtp_sasl_tls_security_options="noanonymous",
        **overrides,
    )


def test_sasl_after_starttls(deliverer: Deliverer, postfix: PostfixSmtpd) -> None:
    tag = uuid.uuid4().hex
    content = message(tag)
    report = deliverer(
        Envelope(SENDER, [ALICE]),
        content,
        f"[127.0.0.1]:{postfix.starttls_port}",
        sasl_config(PASSWORD),
    )
    copies = arrived(postfix, tag, [ALICE])
    [alice] = check_outcomes(report, [ALICE], copies).values()
    assert alice.action is Action.RELAYED
    assert b"with ESMTPSA id" in copies[ALICE]  # S = TLS, A = authenticated
    assert_byte_for_byte(copies[ALICE], content)
    wait_for(
        lambda: f"sasl_username={ALICE}" in postfix.maillog.read_text(errors="replace"),
        what="Postfix logging the SASL login",
    )


@pytest.mark.parametrize("soft_bounce", [True, False])
def test_sasl_wrong_password(
    deliverer: Deliverer, postfix: PostfixSmtpd, soft_bounce: bool
) -> None:
    tag = uuid.uuid4().hex
    config = sasl_config(
        "wrong-" + PASSWORD,
        smtp_sasl_auth_soft_bounce=soft_bounce,
        smtp_bind_address=BAD_AUTH_SOURCE[deliverer.mode, soft_bounce],
    )
    report = deliverer(
        Envelope(SENDER, [ALICE]), message(tag), f"[127.0.0.1]:{postfix.starttls_port}", config
    )
    [outcome] = check_outcomes(report, [ALICE], stored(postfix, tag)).values()
    # Postfix smtp_sasl_glue.c: a 535 is soft with smtp_sasl_auth_soft_bounce.
    expected = (Action.DEFERRED, "4.7.8") if soft_bounce else (Action.BOUNCED, "5.7.8")
    assert (outcome.action, outcome.status) == expected
    # The reply keeps its 535 (Postfix changes only the DSN status).
    assert outcome.reason == (
        f"SASL authentication failed; server {HOST} said: 535 5.7.8"
        " Error: authentication failed: (reason unavailable)"
    )
    assert stored(postfix, tag) == {}


async def test_concurrent_deliveries_reuse_cached_connections(postfix: PostfixSmtpd) -> None:
    # One event loop, one client: 20 deliveries at once open 20 connections
    # and leave them in the cache; the next 20 reuse them (after an RSET
    # probe), with STARTTLS because smtp_tls_connection_reuse = yes.
    config = BASE.replace(smtp_tls_security_level="encrypt", smtp_tls_connection_reuse=True)
    nexthop = f"[127.0.0.1]:{postfix.starttls_port}"
    tags = [[uuid.uuid4().hex for _ in range(20)] for _ in range(2)]
    async with AsyncClient(config, own_addresses=OWN_ADDRESSES) as client:
        waves = []
        for wave in tags:
            waves.append(
                await asyncio.gather(
                    *(
                        client.deliver(Envelope(SENDER, [ALICE]), message(tag), nexthop)
                        for tag in wave
                    )
                )
            )
    for wave, reports in zip(tags, waves, strict=True):
        for tag, report in zip(wave, reports, strict=True):
            copies = arrived(postfix, tag, [ALICE])
            [alice] = check_outcomes(report, [ALICE], copies).values()
            assert alice.action is Action.RELAYED
            assert_byte_for_byte(copies[ALICE], message(tag))
    assert {o.conn_use for r in waves[0] for o in r} == {1}
    assert {o.conn_use for r in waves[1] for o in r} == {2}
