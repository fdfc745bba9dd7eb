"""TLS session resumption against a real Postfix smtpd (PEERS.md §1), both drivers.

One private Postfix instance logs at ``smtpd_tls_loglevel = 2``, so its own
"Reusing old session" lines prove from the server side that the handshake
was resumed. Postfix's smtpd issues RFC 5077 session tickets by default
(``smtpd_tls_session_cache_timeout = 3600s``, keys from tlsmgr(8)).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator

import pytest

from pyfix_smtp import AsyncClient, Client, Config, DeliveryReport, Envelope
from pyfix_smtp.delivery.effects import TlsEstablished
from pyfix_smtp.transport.tls_sessions import TlsSessionCache
from tests.peers.certs import LabCerts
from tests.peers.delivery import MYHOSTNAME, OWN_ADDRESSES, wait_for
from tests.peers.postfix import PostfixSmtpd, start_postfix_smtpd
from tests.test_transport_tls import Runner, make, starttls_session

pytestmark = pytest.mark.peers

SENDER = "sender@example.org"
ALICE = "alice@example.test"
CONTENT = b"Subject: resumption\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def postfix(lab_certs: LabCerts) -> Iterator[PostfixSmtpd]:
    """Postfix smtpd that logs its TLS session cache use."""
    server = start_postfix_smtpd(lab_certs, main_cf={"smtpd_tls_loglevel": "2"})
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


def reused_by_server(postfix: PostfixSmtpd) -> int:
    """How often Postfix smtpd logged a resumed session so far."""
    if not postfix.maillog.exists():
        return 0
    return postfix.maillog.read_text(errors="replace").count("Reusing old session")


def handshakes(postfix: PostfixSmtpd) -> int:
    if not postfix.maillog.exists():
        return 0
    return postfix.maillog.read_text(errors="replace").count("TLS connection established from")


def run(
    driver: str, configs: list[Config], nexthop: str
) -> tuple[TlsSessionCache, list[DeliveryReport]]:
    """One delivery per config, all with ONE client."""
    env = Envelope(SENDER, [ALICE])
    if driver == "sync":
        with Client(configs[0], own_addresses=OWN_ADDRESSES) as client:
            reports = [client.deliver(env, CONTENT, nexthop, cfg) for cfg in configs]
            return client.contexts.sessions, reports

    async def main() -> tuple[TlsSessionCache, list[DeliveryReport]]:
        async with AsyncClient(configs[0], own_addresses=OWN_ADDRESSES) as client:
            reports = [await client.deliver(env, CONTENT, nexthop, cfg) for cfg in configs]
            return client.contexts.sessions, reports

    return asyncio.run(main())


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def base(lab_certs: LabCerts, **params: object) -> Config:
    settings: dict[str, object] = {
        "myhostname": MYHOSTNAME,
        "smtp_tls_loglevel": "1",
        "smtp_tls_security_level": "verify",
        "smtp_tls_CAfile": str(lab_certs.ca_pem),
        "smtp_tls_verify_cert_match": "127.0.0.1",
        "smtp_tls_session_cache_database": "btree:$data_directory/smtp_scache",
    }
    return Config(**(settings | params))  # type: ignore[arg-type]


def statuses(reports: list[DeliveryReport]) -> list[str]:
    return [o.status for r in reports for o in r.outcomes]


def trust(reports: list[DeliveryReport]) -> list[str]:
    return [
        e.split()[0] for r in reports for e in r.events if " TLS connection established to " in e
    ]


@pytest.mark.parametrize("protocols", ["", "<=TLSv1.2"])
def test_second_delivery_resumes(
    driver: str, postfix: PostfixSmtpd, lab_certs: LabCerts, protocols: str
) -> None:
    extra = {"smtp_tls_mandatory_protocols": protocols} if protocols else {}
    cfg = base(lab_certs, **extra)
    before = handshakes(postfix), reused_by_server(postfix)
    sessions, reports = run(driver, [cfg, cfg], f"[127.0.0.1]:{postfix.starttls_port}")
    assert statuses(reports) == ["2.0.0", "2.0.0"]
    assert (sessions.offered, sessions.resumed) == (1, 1)
    # Resumed or not, the certificate is checked: Verified both times.
    assert trust(reports) == ["Verified", "Verified"]
    wait_for(lambda: handshakes(postfix) >= before[0] + 2, what="smtpd TLS log lines")
    assert reused_by_server(postfix) == before[1] + 1  # the server agrees


def test_loglevel_2_logs_the_reused_session(
    driver: str, postfix: PostfixSmtpd, lab_certs: LabCerts
) -> None:
    # tls_client_post_connect(): "<server>: Reusing old session" at TLS_LOG_CACHE
    cfg = base(lab_certs, smtp_tls_loglevel="2")
    _, reports = run(driver, [cfg, cfg], f"[127.0.0.1]:{postfix.starttls_port}")
    assert statuses(reports) == ["2.0.0", "2.0.0"]
    label = f"127.0.0.1[127.0.0.1]:{postfix.starttls_port}"
    reused = [[e for e in r.events if e == f"{label}: Reusing old session"] for r in reports]
    assert [len(lines) for lines in reused] == [0, 1]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_resumed_handshake_reports_the_first_chain(kind: str, postfix: PostfixSmtpd) -> None:
    # A resumed handshake carries only the leaf; DANE-TA (2 0 1: a digest of
    # the CA certificate) needs the CA the server sent the first time, so
    # the driver reports the chain cached with the session.
    runner = Runner(kind)
    port = postfix.starttls_port
    pol = make(port, "encrypt", smtp_tls_session_cache_database="btree:x")
    first, second = runner.run(
        lambda: starttls_session(port, pol), lambda: starttls_session(port, pol)
    )
    assert isinstance(first, tuple)
    assert isinstance(second, tuple)
    one, two = first[0], second[0]
    assert isinstance(one, TlsEstablished)
    assert isinstance(two, TlsEstablished)
    assert (one.session_reused, two.session_reused) == (False, True)
    certs = postfix.certs
    assert one.chain == two.chain == (certs.leaf_der, certs.ca_der)
    assert runner.contexts.sessions.resumed == 1


def test_empty_database_never_resumes(
    driver: str, postfix: PostfixSmtpd, lab_certs: LabCerts
) -> None:
    cfg = base(lab_certs, smtp_tls_session_cache_database="")
    before = handshakes(postfix), reused_by_server(postfix)
    sessions, reports = run(driver, [cfg, cfg], f"[127.0.0.1]:{postfix.starttls_port}")
    assert statuses(reports) == ["2.0.0", "2.0.0"]
    assert (len(sessions), sessions.offered, sessions.resumed) == (0, 0, 0)
    wait_for(lambda: handshakes(postfix) >= before[0] + 2, what="smtpd TLS log lines")
    assert reused_by_server(postfix) == before[1]


def test_other_level_never_resumes(driver: str, postfix: PostfixSmtpd, lab_certs: LabCerts) -> None:
    cfgs = [base(lab_certs), base(lab_certs, smtp_tls_security_level="encrypt")]
    sessions, reports = run(driver, cfgs, f"[127.0.0.1]:{postfix.starttls_port}")
    assert statuses(reports) == ["2.0.0", "2.0.0"]
    assert (len(sessions), sessions.offered, sessions.resumed) == (2, 0, 0)
    assert trust(reports) == ["Verified", "Trusted"]  # encrypt: CA-checked for the label only
