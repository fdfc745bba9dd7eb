"""TLSRPT end to end: a DANE delivery to the lab's Postfix smtpd, reported to tlsrpt-collectd.

The lab zones publish no ``_smtp._tls`` record, so the resolver here adds
one (a TXT answer for ``_smtp._tls.<domain>``) and passes every other
question to the lab's validating unbound. The client sends each result to
the collector's socket after the delivery; the test reads what
``tlsrpt-collectd`` stored in its sqlite database.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

import pyfix_smtp
from pyfix_smtp import Action, AsyncClient, Client, Config, DeliveryReport, Envelope
from pyfix_smtp.dns.records import Answer, Query, Rcode, TxtRecord
from pyfix_smtp.dns.resolve import AsyncDnsResolver, DnsResolver
from pyfix_smtp.tls.tlsrpt import PolicyType, ResultType
from tests.peers.delivery import MYHOSTNAME, OWN_ADDRESSES
from tests.peers.tls_lab import BAD_TLSA, DANE, TlsLab

# The fixture is imported here until tests/conftest.py lists tests.peers.tlsrpt.
from tests.peers.tlsrpt import Collectd

pytestmark = pytest.mark.peers

RECORD = "v=TLSRPTv1; rua=mailto:tlsrpt@example.test"


def _policy_answer(query: Query) -> Answer | None:
    if query.rdtype == "TXT" and query.name.startswith("_smtp._tls."):
        return Answer(query, Rcode.NOERROR, (TxtRecord((RECORD.encode(),)),))
    return None


class PolicyResolver:
    """The lab resolver plus a TLSRPT policy for every domain."""

    def __init__(self, inner: DnsResolver) -> None:
        self.inner = inner

    def lookup(self, query: Query) -> Answer:
        return _policy_answer(query) or self.inner.lookup(query)


class AsyncPolicyResolver:
    """The asyncio lab resolver plus a TLSRPT policy for every domain."""

    def __init__(self, inner: AsyncDnsResolver) -> None:
        self.inner = inner

    async def lookup(self, query: Query) -> Answer:
        return _policy_answer(query) or await self.inner.lookup(query)


def deliver(mode: str, lab: TlsLab, domain: str, collectd: Collectd) -> DeliveryReport:
    cfg = Config(
        myhostname=MYHOSTNAME,
        inet_protocols="ipv4",
        smtp_dns_support_level="dnssec",
        smtp_tls_security_level="dane",
        smtp_tls_CAfile=str(lab.certs.ca_pem),
        smtp_tlsrpt_enable=True,
        smtp_tlsrpt_socket_name=str(collectd.socket),
    )
    tag = uuid.uuid4().hex
    envelope = Envelope("sender@example.org", [f"tlsrpt-{tag}@example.test"])
    content = f"Subject: TLSRPT {tag}\r\nMessage-ID: <{tag}@example.org>\r\n\r\nHi.\r\n".encode()
    if mode == "sync":
        with Client(
            cfg,
            resolver=PolicyResolver(lab.dns.resolver()),
            cache_size=0,
            own_addresses=OWN_ADDRESSES,
        ) as client:
            return pyfix_smtp.deliver(envelope, content, lab.nexthop(domain), cfg, client=client)

    async def run() -> DeliveryReport:
        async with AsyncClient(
            cfg,
            resolver=AsyncPolicyResolver(lab.dns.async_resolver()),
            cache_size=0,
            own_addresses=OWN_ADDRESSES,
        ) as client:
            return await pyfix_smtp.deliver_async(
                envelope, content, lab.nexthop(domain), cfg, client=client
            )

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["sync", "asyncio"])
def test_dane_success_is_stored_by_tlsrpt_collectd(
    mode: str,
    tls_lab: TlsLab,
    tlsrpt_collectd: Collectd,
) -> None:
    report = deliver(mode, tls_lab, DANE, tlsrpt_collectd)
    assert report.outcomes[0].action is Action.RELAYED
    (result,) = report.tlsrpt
    assert result.success
    assert result.policy.policy_type is PolicyType.TLSA
    (row,) = tlsrpt_collectd.rows("finalresults", 1)
    policy = json.loads(row["policy"])
    assert (row["domain"], row["tlsrptrecord"]) == (DANE, RECORD)
    assert policy["policy-type"] == PolicyType.TLSA.code
    assert policy["policy-domain"] == f"mx.{DANE}"
    leaf = tls_lab.certs.leaf_spki_sha256.hex().upper()
    assert policy["policy-string"] == [f"3 1 1 {leaf}"]
    assert (row["cntrtotal"], row["cntrfailure"]) == (1, 0)
    assert tlsrpt_collectd.rows("failures", 0, timeout=0) == []


@pytest.mark.parametrize("mode", ["sync", "asyncio"])
def test_dane_failure_is_stored_with_its_failure_details(
    mode: str,
    tls_lab: TlsLab,
    tlsrpt_collectd: Collectd,
) -> None:
    report = deliver(mode, tls_lab, BAD_TLSA, tlsrpt_collectd)
    assert report.outcomes[0].action is Action.DEFERRED
    assert report.outcomes[0].reason == "Server certificate not verified"
    (row,) = tlsrpt_collectd.rows("finalresults", 1)
    assert (row["domain"], row["cntrtotal"], row["cntrfailure"]) == (BAD_TLSA, 1, 1)
    (failure,) = tlsrpt_collectd.rows("failures", 1)
    reason = json.loads(failure["reason"])
    assert reason["c"] == ResultType.CERTIFICATE_NOT_TRUSTED.code
    assert (reason["n"], reason["r"]) == (f"mx.{BAD_TLSA}", "127.0.0.1")
    assert reason["s"] == "127.0.0.1"  # our end of the connection (getsockname())
    assert reason["h"].startswith("250-")  # the server's EHLO reply before STARTTLS
    assert failure["cntr"] == 1
