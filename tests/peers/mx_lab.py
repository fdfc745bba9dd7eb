"""Two MX hosts on distinct loopback addresses, found through the DNS lab.

``mx_lab`` (session scope) runs its own NSD + unbound pair (the DNS lab of
:mod:`tests.peers.dns`, built with extra records) whose signed zone
``example.test`` also holds:

* ``twomx.example.test``: ``MX 10 mx1.twomx`` (A ``127.0.0.2``) and
  ``MX 20 mx2.twomx`` (A ``127.0.0.3``);
* ``onemx.example.test``: ``MX 10 mx1.twomx`` only.

A test puts a dead, refusing or faulty server on ``127.0.0.2:PORT`` and a
working one on ``127.0.0.3:PORT`` and delivers to ``twomx.example.test:PORT``
(a nexthop with MX lookup and a port): the client must move on to the second
MX. :meth:`MxLab.common_port` picks a port free on both addresses.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.peers.certs import LabCerts
from tests.peers.dns import SIGNED, DnsLab, make_dns_lab

TWO_MX = f"twomx.{SIGNED}"
ONE_MX = f"onemx.{SIGNED}"
MX1 = f"mx1.{TWO_MX}"
MX2 = f"mx2.{TWO_MX}"
MX1_ADDRESS = "127.0.0.2"
MX2_ADDRESS = "127.0.0.3"

EXTRA_RECORDS = (
    "twomx             IN MX    10 mx1.twomx",
    "twomx             IN MX    20 mx2.twomx",
    f"mx1.twomx         IN A     {MX1_ADDRESS}",
    f"mx2.twomx         IN A     {MX2_ADDRESS}",
    "onemx             IN MX    10 mx1.twomx",
)


@dataclass
class MxLab:
    """The DNS lab with the two-MX names, and where the MX hosts must listen."""

    dns: DnsLab
    domain: str = TWO_MX
    single_mx_domain: str = ONE_MX
    mx1: str = MX1
    mx2: str = MX2
    mx1_address: str = MX1_ADDRESS
    mx2_address: str = MX2_ADDRESS

    def common_port(self) -> int:
        """A TCP port free on both MX addresses right now."""
        for _ in range(50):
            with socket.socket() as first:
                first.bind((self.mx1_address, 0))
                port = int(first.getsockname()[1])
                with socket.socket() as second:
                    try:
                        second.bind((self.mx2_address, port))
                    except OSError:
                        continue
                    return port
        raise RuntimeError(f"no port free on both {self.mx1_address} and {self.mx2_address}")


@pytest.fixture(scope="session")
def mx_lab(tmp_path_factory: pytest.TempPathFactory, lab_certs: LabCerts) -> Iterator[MxLab]:
    """A DNS lab whose example.test zone has the two-MX names (session scope)."""
    lab = make_dns_lab(
        tmp_path_factory.mktemp("mx-dns"), lab_certs, extra_records={SIGNED: EXTRA_RECORDS}
    )
    try:
        yield MxLab(lab)
    finally:
        lab.stop()
