"""REQUIRETLS (RFC 8689) end to end, against SinkServers found through real DNS.

Postfix 3.7's smtpd does not offer REQUIRETLS, so the servers are
:class:`pyfix_smtp.testing.SinkServer` instances (STARTTLS, and REQUIRETLS
offered over TLS only) on the two MX hosts of the ``mx_lab``
(``twomx.example.test``: mx1 on 127.0.0.2, mx2 on 127.0.0.3). The nexthop is
a domain outside ``$mydomain``, so Postfix 3.11's default
``smtp_requiretls_policy`` gives ``enforce``; the client runs at ``verify``
with the servers' CA, so a certificate can be matched.

Expected outcomes are Postfix 3.11's (no Postfix here has REQUIRETLS):

=======================================  ======  =====================================
server                                   status  Postfix 3.11 source
=======================================  ======  =====================================
no REQUIRETLS after STARTTLS             5.7.30  smtp_proto.c smtp_helo()
STARTTLS not offered                     5.7.30  smtp_proto.c smtp_helo()
STARTTLS refused                         5.7.10  smtp_proto.c smtp_helo()
certificate name not matched             5.7.10  smtp_proto.c smtp_start_tls()
certificate not trusted                  5.7.10  smtp_proto.c smtp_start_tls()
our level cannot match certificates      5.7.10  smtp_connect.c smtp_get_effective_tls_level()
=======================================  ======  =====================================

The session failures are ``SMTP_MISC_FAIL_SOFT_NON_FINAL``: at the first MX
the recipient is kept for the second, and only the last server's failure
bounces.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyfix_smtp import Action, Config, DeliveryReport, Envelope
from pyfix_smtp.testing import Certificates, SinkServer, generate_certificates
from tests.peers.delivery import MYHOSTNAME, Deliverer, check_outcomes, wait_for
from tests.peers.mx_lab import MxLab

pytestmark = pytest.mark.peers

RCPT = "bob@example.net"
MESSAGE = (
    b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: REQUIRETLS\r\n"
    b"Message-ID: <requiretls@example.org>\r\n\r\nOnly over verified TLS.\r\n"
)
EXTENSIONS = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN")


@dataclass(frozen=True)
class Pki:
    """A CA file, a certificate for both MX names, and two bad certificates."""

    ca_file: Path
    good: Certificates
    wrong_name: Certificates  # same CA, another name
    untrusted: Certificates  # right names, unknown CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory, mx_lab: MxLab) -> Pki:
    good = generate_certificates(mx_lab.mx1, mx_lab.mx2)
    ca_file = tmp_path_factory.mktemp("requiretls") / "ca.pem"
    ca_file.write_bytes(good.ca_pem)
    return Pki(
        ca_file,
        good,
        generate_certificates("other.example.net", ca=good),
        generate_certificates(mx_lab.mx1, mx_lab.mx2),
    )


def server_options(kind: str, pki: Pki) -> dict[str, object]:
    """SinkServer options for a good server or one failure kind."""
    tls: dict[str, object] = {"starttls": True, "certificates": pki.good, "requiretls": True}
    options: dict[str, dict[str, object]] = {
        "good": tls,
        "no REQUIRETLS": tls | {"requiretls": False},
        "no STARTTLS": {"requiretls": True},
        "STARTTLS refused": tls | {"script": {"STARTTLS": "454 4.7.0 TLS not available"}},
        "certificate name not matched": tls | {"certificates": pki.wrong_name},
        "certificate not trusted": tls | {"certificates": pki.untrusted},
    }
    return options[kind]


#: failure kind -> (status, reason for host H)
FAILURES = {
    "no REQUIRETLS": (
        "5.7.30",
        "Sender requested REQUIRETLS, but no server was found that supports REQUIRETLS."
        " The last attempted server was {H}",
    ),
    "no STARTTLS": (
        "5.7.30",
        "Sender requested REQUIRETLS, but TLS service was not offered by host {H}",
    ),
    "STARTTLS refused": (
        "5.7.10",
        "Sender requested REQUIRETLS, but host {H} refused to start TLS:"
        " 454 4.7.0 TLS not available",
    ),
    "certificate name not matched": (
        "5.7.10",
        "Sender requested REQUIRETLS, but no matching server certificate was found."
        " The last attempted server was {H}",
    ),
    "certificate not trusted": (
        "5.7.10",
        "Sender requested REQUIRETLS, but no trusted server certificate was found."
        " The last attempted server was {H}",
    ),
}


@dataclass
class TwoMx:
    """The SinkServers on both MX hosts and where to deliver."""

    first: SinkServer
    second: SinkServer
    nexthop: str
    lab: MxLab

    def host(self, server: SinkServer) -> str:
        """``name[address]`` as Postfix names a host in its texts."""
        name = self.lab.mx1 if server is self.first else self.lab.mx2
        return f"{name}[{server.host}]"


StartTwo = Callable[[str, str], TwoMx]


@pytest.fixture
def two_mx(mx_lab: MxLab, pki: Pki) -> Iterator[StartTwo]:
    """``two_mx(first_kind, second_kind)`` starts a SinkServer on each MX host."""
    started: list[SinkServer] = []

    def start(first: str, second: str) -> TwoMx:
        port = mx_lab.common_port()
        servers = [
            SinkServer(
                host=address,
                port=port,
                hostname=name,
                extensions=EXTENSIONS,
                **server_options(kind, pki),  # type: ignore[arg-type]
            ).start()
            for kind, address, name in (
                (first, mx_lab.mx1_address, mx_lab.mx1),
                (second, mx_lab.mx2_address, mx_lab.mx2),
            )
        ]
        started.extend(servers)
        return TwoMx(servers[0], servers[1], f"{mx_lab.domain}:{port}", mx_lab)

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def config(pki: Pki, level: str = "verify", **settings: str) -> Config:
    return Config(
        myhostname=MYHOSTNAME,
        smtp_tls_security_level=level,
        smtp_tls_CAfile=str(pki.ca_file),
        smtp_helo_timeout=10,
        smtp_starttls_timeout=10,
        smtp_tls_loglevel="1",  # the TLS summary line the tests read
        **settings,  # type: ignore[arg-type]
    )


def deliver(deliverer: Deliverer, servers: TwoMx, cfg: Config) -> DeliveryReport:
    return deliverer(
        Envelope("alice@example.org", [RCPT], requiretls=True, ret="FULL"),
        MESSAGE,
        servers.nexthop,
        cfg,
        dns=servers.lab.dns,
    )


def assert_no_mail(server: SinkServer) -> None:
    """The server had one session, which ended without a MAIL command."""
    (session,) = server.sessions
    wait_for(lambda: session.closed, what="the session to end")
    assert not any(c.upper().startswith("MAIL") for c in session.commands), session.commands


def accepted(*servers: SinkServer) -> list[str]:
    return [r for s in servers for m in s.messages for r in m.recipients]


def test_sink_server_offers_requiretls_only_over_tls() -> None:
    # RFC 8689 §3, as pyfix_smtp.testing.SinkServer(requiretls=True) models it.
    with (
        SinkServer(starttls=True, requiretls=True) as server,
        smtplib.SMTP(*server.address, timeout=5) as client,
    ):
        client.ehlo()
        assert not client.has_extn("requiretls")
        client.starttls(context=server.client_context())
        client.ehlo()
        assert client.has_extn("requiretls")


def test_requiretls_over_verified_tls(deliverer: Deliverer, two_mx: StartTwo, pki: Pki) -> None:
    servers = two_mx("good", "good")
    report = deliver(deliverer, servers, config(pki))
    (outcome,) = check_outcomes(report, [RCPT], accepted(servers.first, servers.second)).values()
    assert (outcome.action, outcome.status) == (Action.RELAYED, "2.0.0")
    assert outcome.relay == f"{servers.host(servers.first)}:{servers.first.port}"
    (received,) = servers.first.messages
    assert received.tls
    # smtp_proto.c smtp_loop(): REQUIRETLS, and the sender's RET kept
    assert received.mail_parameters == {"REQUIRETLS": None, "RET": "FULL"}
    assert received.content == MESSAGE
    assert any(e.startswith("Verified TLS connection established to") for e in report.events)
    assert servers.second.sessions == []


@pytest.mark.parametrize("kind", list(FAILURES))
def test_failure_at_the_last_mx_bounces(
    deliverer: Deliverer, two_mx: StartTwo, pki: Pki, kind: str
) -> None:
    servers = two_mx(kind, kind)
    report = deliver(deliverer, servers, config(pki))
    (outcome,) = check_outcomes(report, [RCPT], accepted(servers.first, servers.second)).values()
    status, reason = FAILURES[kind]
    assert (outcome.action, outcome.status, outcome.reason) == (
        Action.BOUNCED,
        status,
        reason.format(H=servers.host(servers.second)),
    )
    # the first MX's failure was soft: logged, and the second MX was tried
    assert reason.format(H=servers.host(servers.first)) in report.events
    for server in (servers.first, servers.second):
        assert_no_mail(server)


@pytest.mark.parametrize("kind", list(FAILURES))
def test_failure_at_a_non_final_mx_is_soft(
    deliverer: Deliverer, two_mx: StartTwo, pki: Pki, kind: str
) -> None:
    servers = two_mx(kind, "good")
    report = deliver(deliverer, servers, config(pki))
    (outcome,) = check_outcomes(report, [RCPT], accepted(servers.first, servers.second)).values()
    assert outcome.action is Action.RELAYED
    assert outcome.relay == f"{servers.host(servers.second)}:{servers.second.port}"
    assert FAILURES[kind][1].format(H=servers.host(servers.first)) in report.events
    (received,) = servers.second.messages
    assert received.tls
    assert "REQUIRETLS" in received.mail_parameters
    assert servers.first.messages == []


@pytest.mark.parametrize("level", ["may", "encrypt"])
def test_level_that_cannot_match_certificates(
    deliverer: Deliverer, two_mx: StartTwo, pki: Pki, level: str
) -> None:
    # smtp_connect.c smtp_get_effective_tls_level(): enforce needs a level
    # that matches certificates (TLS_MUST_MATCH); each host is skipped before
    # connecting, and the hard status of the last one remains.
    servers = two_mx("good", "good")
    report = deliver(deliverer, servers, config(pki, level))
    (outcome,) = check_outcomes(report, [RCPT], []).values()
    assert (outcome.action, outcome.status, outcome.relay, outcome.reason) == (
        Action.BOUNCED,
        "5.7.10",
        "none",
        f"Sender requested REQUIRETLS, but my configured TLS security level '{level}'"
        f" disables certificate matching. The last attempted server was {servers.lab.mx2}",
    )
    assert servers.first.sessions == []
    assert servers.second.sessions == []


@pytest.mark.parametrize(
    ("policy", "server", "expected"),
    [
        # opportunistic: REQUIRETLS only where offered; a server without it
        # gets RET=HDRS (smtp_proto.c smtp_loop(), "Fix 20250825")
        ("opportunistic", "no REQUIRETLS", {"RET": "HDRS"}),
        ("opportunistic", "no STARTTLS", {"RET": "HDRS"}),  # plaintext is fine
        ("opportunistic", "good", {"REQUIRETLS": None, "RET": "FULL"}),
        # opportunistic+starttls: TLS required, REQUIRETLS not
        ("opportunistic+starttls", "no REQUIRETLS", {"RET": "HDRS"}),
        ("opportunistic+starttls", "no STARTTLS", None),  # 5.7.30
        # disable: as if the sender had not asked
        ("disable", "good", {"RET": "FULL"}),
    ],
)
def test_policy_actions(
    deliverer: Deliverer,
    two_mx: StartTwo,
    pki: Pki,
    policy: str,
    server: str,
    expected: dict[str, str | None] | None,
) -> None:
    servers = two_mx(server, server)
    report = deliver(deliverer, servers, config(pki, "may", smtp_requiretls_policy=policy))
    (outcome,) = check_outcomes(report, [RCPT], accepted(servers.first, servers.second)).values()
    if expected is None:
        assert (outcome.action, outcome.status) == (Action.BOUNCED, "5.7.30")
        assert outcome.reason == FAILURES["no STARTTLS"][1].format(H=servers.host(servers.second))
        return
    assert outcome.action is Action.RELAYED
    (received,) = servers.first.messages
    assert dict(received.mail_parameters) == expected
    assert received.tls == (server != "no STARTTLS")
