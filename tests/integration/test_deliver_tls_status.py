"""The ``tls=`` field (``smtp_log_tls_feature_status``) on real TLS and plaintext deliveries.

Postfix 3.10+ logs the TLS feature status between ``delays=`` and ``dsn=``
(global/log_adhoc.c, global/pol_stats.c). The Debian Postfix here is 3.7,
which has no such field, so the expected values are those of Postfix
3.11's smtp_connect.c / smtp_proto.c for each situation: the Postfix smtpd
peer with STARTTLS (``may``, ``verify`` and a name that does not match),
implicit TLS, a server without STARTTLS (``may:none``, ``!encrypt``) and a
port where nothing listens (activated, never decided: ``may?``).
"""

from __future__ import annotations

import logging
import re
import socket
import uuid

import pytest

from pyfix_smtp import Config, Envelope
from pyfix_smtp.testing import SinkServer
from tests.peers.certs import LabCerts
from tests.peers.delivery import MYHOSTNAME, Deliverer
from tests.peers.postfix import PostfixSmtpd

pytestmark = pytest.mark.peers

SENDER = "sender@example.org"


def message() -> bytes:
    tag = uuid.uuid4().hex
    return f"From: {SENDER}\r\nSubject: tls= {tag}\r\nMessage-ID: <{tag}@x>\r\n\r\nHi.\r\n".encode()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("where", "settings", "tls"),
    [
        ("starttls", {"smtp_tls_security_level": "may"}, "may"),
        ("starttls", {"smtp_tls_security_level": "verify"}, "verify"),
        (
            "starttls",
            {"smtp_tls_security_level": "verify", "smtp_tls_verify_cert_match": "other.example"},
            "!verify",
        ),
        (
            "implicit",
            {"smtp_tls_security_level": "encrypt", "smtp_tls_wrappermode": True},
            "encrypt",
        ),
        ("sink", {"smtp_tls_security_level": "may"}, "may:none"),
        ("sink", {"smtp_tls_security_level": "encrypt"}, "!encrypt"),
        ("sink", {"smtp_tls_security_level": "may", "smtp_log_tls_feature_status": False}, None),
        ("nothing", {"smtp_tls_security_level": "may"}, "may?"),
    ],
)
def test_tls_field(
    deliverer: Deliverer,
    postfix_smtpd: PostfixSmtpd,
    lab_certs: LabCerts,
    caplog: pytest.LogCaptureFixture,
    where: str,
    settings: dict[str, object],
    tls: str | None,
) -> None:
    cfg = Config(
        myhostname=MYHOSTNAME,
        smtp_tls_CAfile=str(lab_certs.ca_pem),
        smtp_helo_timeout=10,
        **settings,  # type: ignore[arg-type]
    )
    rcpt = "tls-status@example.test"
    with SinkServer() as sink, caplog.at_level(logging.INFO, logger="pyfix_smtp.delivery"):
        port = {
            "starttls": postfix_smtpd.starttls_port,
            "implicit": postfix_smtpd.tls_port,
            "sink": sink.port,
            "nothing": closed_port(),
        }[where]
        report = deliverer(Envelope(SENDER, [rcpt]), message(), f"[127.0.0.1]:{port}", cfg)
    (outcome,) = report.outcomes
    assert outcome.tls == tls, outcome.log_line()
    (logged,) = [r.getMessage() for r in caplog.records if "to=<" in r.getMessage()]
    if tls is None:
        assert ", tls=" not in logged
    else:
        assert re.search(rf", delays=[\d./]+, tls={re.escape(tls)}, dsn=", logged), logged
