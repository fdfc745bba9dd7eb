"""MTA-STS end to end: TXT record → HTTPS policy → MX authorization → verified STARTTLS.

``example.test`` in the ``tls_lab`` has ``_mta-sts TXT "v=STSv1; id=..."``;
the ``mta_sts_server`` peer serves its policy over HTTPS with the lab
certificate (reached through the fetcher's host/port override, because
RFC 8461 fixes port 443). The MX ``mx.example.test`` is the Postfix smtpd
peer on the lab port (with a ``3 1 1`` TLSA record there, for the DANE
cases); ``mx2.example.test`` (127.0.0.2) listens on nothing.

Postfix has no native MTA-STS (it needs a policy daemon through
``smtp_tls_policy_maps``), so there is no Postfix reference here: the
expected outcomes are RFC 8461 §4 and §5 and the library's documented rules
(docs/tls.md "MTA-STS", docs/differences.md "TLS"): under ``mode: enforce``
an MX outside the ``mx:`` patterns is skipped (4.7.5) and TLS must verify
against the MX name (Postfix level ``secure``); ``mode: testing`` changes
nothing; DANE, where it applies, comes first; a domain with both never ends
at ``may``; ``TLS-Required: no`` switches MTA-STS off (RFC 8689 §5, Postfix
smtp_connect.c: "ignores ... DANE and MTA-STS").
"""

from __future__ import annotations

import re
import uuid

import pytest

from pyfix_smtp import Action, Config, DeliveryReport, Envelope
from tests.peers.delivery import MYHOSTNAME, check_outcomes
from tests.peers.dns import SIGNED
from tests.peers.mtasts import MtaStsServer
from tests.peers.tls_lab import LabDeliverer, TlsLab, sts_fetcher

pytestmark = pytest.mark.peers

SENDER = "sender@example.org"
MX = f"mx.{SIGNED}"
MX2 = f"mx2.{SIGNED}"
POLICY_URL = ("mta-sts.example.test", "/.well-known/mta-sts.txt")  # (Host header, path)


def policy(mode: str, *patterns: str) -> str:
    """An RFC 8461 §3.2 policy file."""
    mx = "".join(f"mx: {p}\n" for p in patterns)
    return f"version: STSv1\nmode: {mode}\n{mx}max_age: 86400\n"


def config(lab: TlsLab, level: str = "may") -> Config:
    return Config(
        myhostname=MYHOSTNAME,
        smtp_mta_sts_enable=True,
        smtp_tls_security_level=level,
        smtp_dns_support_level="dnssec",
        smtp_tls_CAfile=str(lab.certs.ca_pem),
        inet_protocols="ipv4",
        smtp_helo_timeout=10,
        smtp_tls_loglevel="1",  # the TLS summary line the tests read
    )


def message(tag: str) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: sts@example.test\r\nSubject: MTA-STS {tag}\r\n"
        f"Message-ID: <{tag}@example.org>\r\n\r\nOver MTA-STS.\r\n"
    ).encode()


def deliver(
    deliverer: LabDeliverer,
    lab: TlsLab,
    server: MtaStsServer,
    cfg: Config,
    *,
    port: int | None = None,
    requiretls: bool = False,
    **options: bool,
) -> tuple[DeliveryReport, str, str]:
    """Deliver one message to ``example.test:PORT``; return (report, recipient, tag)."""
    tag = uuid.uuid4().hex
    rcpt = f"sts-{tag}@example.test"
    report = deliverer(
        Envelope(SENDER, [rcpt], requiretls=requiretls),
        message(tag),
        f"{SIGNED}:{port or lab.port}",
        cfg,
        dns=lab.dns,
        fetcher=sts_fetcher(server, lab.certs),
        **options,
    )
    return report, rcpt, tag


def trust(report: DeliveryReport) -> list[str]:
    """The first word of every "... TLS connection established to HOST..." event."""
    return [e.split()[0] for e in report.events if " TLS connection established to " in e]


def fetched(report: DeliveryReport, mode: str) -> bool:
    return f"MTA-STS {SIGNED}: fetched policy: mode {mode}, max_age 86400" in report.events


@pytest.mark.parametrize("pattern", [MX, f"*.{SIGNED}"])
def test_enforce_verified_delivery(
    lab_deliverer: LabDeliverer, tls_lab: TlsLab, mta_sts_server: MtaStsServer, pattern: str
) -> None:
    # RFC 8461 §4.1: an exact name or "*." matching exactly one label.
    mta_sts_server.serve(policy("enforce", pattern))
    report, rcpt, tag = deliver(lab_deliverer, tls_lab, mta_sts_server, config(tls_lab))
    copies = tls_lab.arrived(tag, [rcpt])
    (outcome,) = check_outcomes(report, [rcpt], copies).values()
    assert (outcome.action, outcome.status) == (Action.RELAYED, "2.0.0")
    assert outcome.relay == f"{MX}[127.0.0.1]:{tls_lab.port}"
    assert trust(report) == ["Verified"]  # secure level: chain and MX name checked
    assert fetched(report, "enforce")
    assert mta_sts_server.requests == [POLICY_URL]  # SNI/Host name, not the test address
    assert b"with ESMTPS id" in copies[rcpt]


def test_enforce_skips_mx_hosts_outside_the_policy(
    lab_deliverer: LabDeliverer, tls_lab: TlsLab, mta_sts_server: MtaStsServer
) -> None:
    # RFC 8461 §4.1/§5: a host that matches no mx pattern is not a candidate.
    # Both MX hosts are skipped before connecting; docs/differences.md: we
    # give the skip a 4.7.5 status (a Postfix policy plugin only warns).
    mta_sts_server.serve(policy("enforce", "other.example.test"))
    report, rcpt, tag = deliver(lab_deliverer, tls_lab, mta_sts_server, config(tls_lab))
    (outcome,) = check_outcomes(report, [rcpt], tls_lab.stored(tag)).values()
    assert (outcome.action, outcome.status, outcome.relay) == (Action.DEFERRED, "4.7.5", "none")
    assert outcome.reason == f"MX host {MX2} does not match the MTA-STS policy of {SIGNED}"
    for host in (MX, MX2):
        assert any(
            e.endswith(f"/{host}: MX host {host} does not match the MTA-STS policy of {SIGNED}")
            for e in report.events
        ), report.events
    assert trust(report) == []  # no connection was made


def test_testing_mode_delivers_despite_a_mismatch(
    lab_deliverer: LabDeliverer, tls_lab: TlsLab, mta_sts_server: MtaStsServer
) -> None:
    # RFC 8461 §5: in testing mode failures are only reported, never enforced.
    mta_sts_server.serve(policy("testing", "other.example.test"))
    report, rcpt, tag = deliver(lab_deliverer, tls_lab, mta_sts_server, config(tls_lab))
    copies = tls_lab.arrived(tag, [rcpt])
    (outcome,) = check_outcomes(report, [rcpt], copies).values()
    assert outcome.relay == f"{MX}[127.0.0.1]:{tls_lab.port}"
    assert fetched(report, "testing")
    assert trust(report) == ["Trusted"]  # level may: our CA file trusts it, no name check


def test_no_policy_file_is_opportunistic(
    lab_deliverer: LabDeliverer, tls_lab: TlsLab, mta_sts_server: MtaStsServer
) -> None:
    # RFC 8461 §3.3: without a valid policy (here 404) and nothing cached,
    # the domain is treated as having no policy.
    mta_sts_server.serve("not found", status=404)
    report, rcpt, tag = deliver(lab_deliverer, tls_lab, mta_sts_server, config(tls_lab))
    copies = tls_lab.arrived(tag, [rcpt])
    (outcome,) = check_outcomes(report, [rcpt], copies).values()
    assert outcome.relay == f"{MX}[127.0.0.1]:{tls_lab.port}"
    assert mta_sts_server.requests == [POLICY_URL]
    assert trust(report) == ["Trusted"]


def test_dane_takes_precedence(
    lab_deliverer: LabDeliverer, tls_lab: TlsLab, mta_sts_server: MtaStsServer
) -> None:
    # RFC 8461 §2: DANE, where it applies, wins. mx.example.test has a
    # validated 3 1 1 TLSA record for the lab port, so the enforce policy
    # that would reject its name is not consulted for it.
    mta_sts_server.serve(policy("enforce", "other.example.test"))
    report, rcpt, tag = deliver(lab_deliverer, tls_lab, mta_sts_server, config(tls_lab, "dane"))
    copies = tls_lab.arrived(tag, [rcpt])
    (outcome,) = check_outcomes(report, [rcpt], copies).values()
    assert outcome.relay == f"{MX}[127.0.0.1]:{tls_lab.port}"
    assert trust(report) == ["Verified"]


def test_dane_without_tlsa_does_not_fall_back_to_may(
    lab_deliverer: LabDeliverer, tls_lab: TlsLab, mta_sts_server: MtaStsServer
) -> None:
    # Postfix smtpd's plain port offers no STARTTLS and has no TLSA record:
    # DANE alone would give "may" and deliver in plaintext (the control
    # delivery below); with an enforce policy the level is "secure", so
    # smtp_proto.c smtp_helo() gives up: 4.7.4 "TLS is required, but was not
    # offered by host". mx2 matches the policy too, but nothing listens there.
    plain = tls_lab.smtpd.plain_port
    mta_sts_server.serve(policy("enforce", f"*.{SIGNED}"))
    report, rcpt, tag = deliver(
        lab_deliverer, tls_lab, mta_sts_server, config(tls_lab, "dane"), port=plain
    )
    (outcome,) = check_outcomes(report, [rcpt], tls_lab.stored(tag)).values()
    assert outcome.action is Action.DEFERRED
    assert (outcome.status, outcome.relay, outcome.reason) == (
        "4.4.1",
        "none",  # smtp_connect.c: the last failure was a connect failure
        f"connect to {MX2}[127.0.0.2]:{plain}: Connection refused",
    )
    assert f"TLS is required, but was not offered by host {MX}[127.0.0.1]" in report.events, (
        report.events
    )

    mta_sts_server.serve("not found", status=404)
    control, rcpt, tag = deliver(
        lab_deliverer, tls_lab, mta_sts_server, config(tls_lab, "dane"), port=plain
    )
    copies = tls_lab.arrived(tag, [rcpt])
    (outcome,) = check_outcomes(control, [rcpt], copies).values()
    assert outcome.relay == f"{MX}[127.0.0.1]:{plain}"
    assert trust(control) == []
    assert b"with ESMTP id" in copies[rcpt]  # plaintext


def test_tls_required_no_switches_mta_sts_off(
    lab_deliverer: LabDeliverer, tls_lab: TlsLab, mta_sts_server: MtaStsServer
) -> None:
    # Postfix 3.11 smtp_tls_policy.c policy_create(): with "TLS-Required: no"
    # no policy is looked up and the level is capped at may.
    mta_sts_server.serve(policy("enforce", "other.example.test"))
    report, rcpt, tag = deliver(
        lab_deliverer, tls_lab, mta_sts_server, config(tls_lab), tls_required_no=True
    )
    copies = tls_lab.arrived(tag, [rcpt])
    (outcome,) = check_outcomes(report, [rcpt], copies).values()
    assert outcome.relay == f"{MX}[127.0.0.1]:{tls_lab.port}"
    assert mta_sts_server.requests == []
    assert trust(report) == ["Trusted"]


def test_requiretls_overrides_tls_required_no_for_mta_sts(
    lab_deliverer: LabDeliverer, tls_lab: TlsLab, mta_sts_server: MtaStsServer
) -> None:
    # Postfix 3.11 smtp.h STATE_TLS_NOT_REQUIRED(): "TLS-Required: no" counts
    # only when the sender did not request REQUIRETLS. So the enforce policy
    # still raises the level to "secure", REQUIRETLS's level check passes
    # (smtp_connect.c smtp_get_effective_tls_level()), and Postfix smtpd 3.7,
    # which does not offer REQUIRETLS, ends it with 5.7.30 (smtp_proto.c
    # smtp_helo()) -- with or without the header.
    mta_sts_server.serve(policy("enforce", MX))
    results = []
    for header in (False, True):
        report, rcpt, tag = deliver(
            lab_deliverer,
            tls_lab,
            mta_sts_server,
            config(tls_lab),
            requiretls=True,
            tls_required_no=header,
        )
        (outcome,) = check_outcomes(report, [rcpt], tls_lab.stored(tag)).values()
        results.append(outcome)
        assert any(
            re.fullmatch(
                "Sender requested REQUIRETLS, but no server was found that supports"
                rf" REQUIRETLS\. The last attempted server was {re.escape(MX)}\[127\.0\.0\.1\]",
                e,
            )
            for e in report.events
        ), (header, report.events)
    assert results[0].status == results[1].status
