"""DANE and MTA-STS lab: the DNS lab with TLSA records for the Postfix peer's real port.

The ``postfix_smtpd`` peer listens on a free port ``P``, so the lab zones'
fixed ``_25._tcp``/``_10025._tcp`` TLSA records cannot name it. ``tls_lab``
(session scope) starts its own NSD + unbound pair (:func:`make_dns_lab` with
extra records) whose zones hold, for that port (all hosts are 127.0.0.1,
where Postfix smtpd offers STARTTLS with the ``lab_certs`` certificate):

============================  =================================  ==========================
nexthop (``NAME:P``)          MX host and ``_P._tcp`` TLSA        meaning
============================  =================================  ==========================
``dane.example.test``         ``mx.dane``: ``3 1 1`` leaf SPKI    DANE-EE matches
``badtlsa.example.test``      ``mx.badtlsa``: ``3 1 1`` wrong     no TLSA record matches
``ta.example.test``           ``mta-sts``: ``2 0 1`` CA           DANE-TA, name in the cert
``taname.example.test``       ``mx.taname``: ``2 0 1`` CA         DANE-TA, name not in cert
``unusable.example.test``     ``mx.unusable``: ``0 0 1`` CA       PKIX-TA: unusable for DANE
``tlsafail.example.test``     ``mx.tlsafail``: TLSA SERVFAIL      TLSA lookup error
``example.test``              ``mx``: ``3 1 1``; ``mx2`` dead     DANE beside ``_mta-sts``
``unsigned.test``             ``mx.unsigned.test``, no DNSSEC     not a DNSSEC destination
``halfdane.unsigned.test``    ``mx.dane.example.test``            insecure MX, secure TLSA
``bogus.test``                SERVFAIL                            MX lookup fails
============================  =================================  ==========================

``example.test`` also has the ``_mta-sts`` TXT record and ``mta-sts`` A
record; the ``mta_sts_server`` peer serves its policy, reached through
:func:`sts_fetcher` (RFC 8461 fixes port 443).

When port 53 is free on one of a few loopback addresses, unbound listens
there too (:attr:`TlsLab.resolver_address`), so a private Postfix smtp(8)
(:mod:`tests.peers.postfix_client`, chrooted with its own resolv.conf) sees
the same DNS: the reference for DANE.

:class:`LabDeliverer` delivers like :class:`tests.peers.delivery.Deliverer`
(sync or asyncio, no connection cache) but can also point the client's
MTA-STS fetcher at the policy server.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import pyfix_smtp
from pyfix_smtp import AsyncClient, Client, DeliveryReport, Envelope
from pyfix_smtp.transport.sync import StsFetcher, fetch_sts
from tests.peers.certs import LabCerts
from tests.peers.delivery import OWN_ADDRESSES, wait_for
from tests.peers.dns import BROKEN, SIGNED, UNSIGNED, DnsLab, make_dns_lab
from tests.peers.mtasts import MtaStsServer
from tests.peers.postfix import PostfixSmtpd
from tests.peers.postfix_client import free_port_53

DANE = f"dane.{SIGNED}"
BAD_TLSA = f"badtlsa.{SIGNED}"
DANE_TA = f"ta.{SIGNED}"
DANE_TA_NAME = f"taname.{SIGNED}"
UNUSABLE = f"unusable.{SIGNED}"
TLSA_FAIL = f"tlsafail.{SIGNED}"
HALF_DANE = f"halfdane.{UNSIGNED}"
#: A TLSA digest that matches nothing (the right length for SHA-256).
WRONG_DIGEST = "ab" * 32


def extra_records(port: int, certs: LabCerts) -> dict[str, list[str]]:
    """Zone lines for *port*, per zone (names relative to the zone)."""
    good, ca = certs.leaf_spki_sha256.hex(), certs.ca_sha256.hex()
    tlsa = f"_{port}._tcp"
    return {
        SIGNED: [
            f"{tlsa}.mx IN TLSA 3 1 1 {good}",
            "dane IN MX 10 mx.dane",
            "mx.dane IN A 127.0.0.1",
            f"{tlsa}.mx.dane IN TLSA 3 1 1 {good}",
            "badtlsa IN MX 10 mx.badtlsa",
            "mx.badtlsa IN A 127.0.0.1",
            f"{tlsa}.mx.badtlsa IN TLSA 3 1 1 {WRONG_DIGEST}",
            "ta IN MX 10 mta-sts",  # mta-sts.example.test is in the certificate
            f"{tlsa}.mta-sts IN TLSA 2 0 1 {ca}",
            "taname IN MX 10 mx.taname",
            "mx.taname IN A 127.0.0.1",
            f"{tlsa}.mx.taname IN TLSA 2 0 1 {ca}",
            "unusable IN MX 10 mx.unusable",
            "mx.unusable IN A 127.0.0.1",
            f"{tlsa}.mx.unusable IN TLSA 0 0 1 {ca}",  # PKIX-TA: not for DANE
            "tlsafail IN MX 10 mx.tlsafail",
            "mx.tlsafail IN A 127.0.0.1",
            # An insecure delegation to a server that refuses: the TLSA query fails.
            f"{tlsa}.mx.tlsafail IN NS ns.{BROKEN}.",
        ],
        UNSIGNED: [f"halfdane IN MX 10 mx.dane.{SIGNED}."],
    }


@dataclass
class TlsLab:
    """The DNS lab with TLSA records for the Postfix smtpd peer's STARTTLS port."""

    dns: DnsLab
    smtpd: PostfixSmtpd
    certs: LabCerts
    resolver_address: str | None  # unbound on port 53 too, for a chrooted Postfix

    @property
    def port(self) -> int:
        """The port every lab MX host listens on (Postfix smtpd, STARTTLS)."""
        return self.smtpd.starttls_port

    def nexthop(self, domain: str) -> str:
        """``domain:PORT``: MX lookup, then connect to the lab port."""
        return f"{domain}:{self.port}"

    def stored(self, tag: str) -> dict[str, bytes]:
        """The stored copies of the message whose Message-ID is ``<tag@...>``, by Delivered-To."""
        return stored_copies(self.smtpd, tag)

    def arrived(self, tag: str, recipients: list[str]) -> dict[str, bytes]:
        """Wait until Postfix stored a copy for each of *recipients*; return all copies."""
        wait_for(lambda: set(recipients) <= set(self.stored(tag)), what=f"mail {tag}")
        return self.stored(tag)


_DELIVERED_TO = re.compile(rb"^Delivered-To: (\S+)$", re.M)


def stored_copies(smtpd: PostfixSmtpd, tag: str) -> dict[str, bytes]:
    """Messages in the smtpd peer's maildir with ``Message-ID: <tag@``, by Delivered-To."""
    marker = f"Message-ID: <{tag}@".encode()
    copies: dict[str, bytes] = {}
    if not smtpd.maildir.is_dir():
        return copies
    for path in smtpd.maildir.iterdir():
        try:
            with path.open("rb") as f:
                head = f.read(8192)  # Postfix's headers, then ours
                if marker not in head:
                    continue
                data = head + f.read()
        except FileNotFoundError:  # moved while we looked
            continue
        match = _DELIVERED_TO.search(data)
        if match is not None:
            copies[match.group(1).decode("utf-8", "replace")] = data
    return copies


@pytest.fixture(scope="session")
def tls_lab(
    tmp_path_factory: pytest.TempPathFactory, lab_certs: LabCerts, postfix_smtpd: PostfixSmtpd
) -> Iterator[TlsLab]:
    """NSD + unbound with TLSA records for the ``postfix_smtpd`` STARTTLS port."""
    resolver = free_port_53()
    lab = make_dns_lab(
        tmp_path_factory.mktemp("tls-dns"),
        lab_certs,
        extra_records=extra_records(postfix_smtpd.starttls_port, lab_certs),
        extra_interfaces=[f"{resolver}@53"] if resolver else [],
    )
    try:
        yield TlsLab(lab, postfix_smtpd, lab_certs, resolver)
    finally:
        lab.stop()


def sts_fetcher(server: MtaStsServer, certs: LabCerts) -> StsFetcher:
    """The stdlib MTA-STS fetcher, sent to the lab policy server, trusting the lab CA."""
    context = ssl.create_default_context(cafile=str(certs.ca_pem))
    return functools.partial(fetch_sts, context=context, connect_to=(server.host, server.port))


@dataclass(frozen=True)
class LabDeliverer:
    """Delivers through ``pyfix_smtp.deliver`` or ``deliver_async`` with the lab resolver.

    Like :class:`tests.peers.delivery.Deliverer`, plus an MTA-STS fetcher.
    """

    mode: str

    def __call__(
        self,
        envelope: Envelope,
        content: object,
        nexthop: str,
        config: pyfix_smtp.Config,
        *,
        dns: DnsLab,
        fetcher: StsFetcher | None = None,
        **kwargs: object,
    ) -> DeliveryReport:
        """Deliver and return the report."""
        if self.mode == "sync":
            with Client(
                config,
                resolver=dns.resolver(),
                cache_size=0,
                own_addresses=OWN_ADDRESSES,
                sts_fetcher=fetcher,
            ) as client:
                return pyfix_smtp.deliver(
                    envelope,
                    content,
                    nexthop,
                    config,
                    client=client,
                    **kwargs,  # type: ignore[arg-type]
                )

        async def run() -> DeliveryReport:
            async with AsyncClient(
                config,
                resolver=dns.async_resolver(),
                cache_size=0,
                own_addresses=OWN_ADDRESSES,
                sts_fetcher=fetcher,
            ) as client:
                return await pyfix_smtp.deliver_async(
                    envelope,
                    content,
                    nexthop,
                    config,
                    client=client,
                    **kwargs,  # type: ignore[arg-type]
                )

        return asyncio.run(run())


@pytest.fixture
def lab_deliverer(deliver_mode: str) -> LabDeliverer:
    """Delivers sync or asyncio (parametrized by ``deliver_mode``)."""
    return LabDeliverer(deliver_mode)
