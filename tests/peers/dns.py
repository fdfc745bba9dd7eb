"""NSD (authoritative) + unbound (validating resolver): the DNSSEC lab (PEERS.md §3).

``dns_lab`` signs the lab zones at setup (signatures depend on the clock),
starts NSD and unbound on free loopback ports, and stops both at the end of
the session. Zones, from ``tests/data/dns/lab.zone.in``:

* ``example.test`` - signed, its DS is unbound's trust anchor: authentic;
* ``unsigned.test`` - the same data, not signed: insecure (AD=0);
* ``bogus.test`` - the same data, signed, but the anchor is another key:
  every answer is SERVFAIL;
* ``broken.test`` - delegated to NSD, which does not serve it (REFUSED):
  SERVFAIL from a broken delegation.

The TLSA records ``_25._tcp.mx`` and ``_10025._tcp.mx`` carry ``3 1 1`` (leaf
SPKI) and ``2 0 1`` (CA) digests of the ``lab_certs`` certificate.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from pyfix_smtp.dns.resolve import AsyncDnsResolver, DnsResolver
from tests.peers import Process, binary_or_skip, free_port, start_process
from tests.peers.certs import LabCerts

ZONE_TEMPLATE = Path(__file__).resolve().parent.parent / "data" / "dns" / "lab.zone.in"
SIGNED = "example.test"
UNSIGNED = "unsigned.test"
BOGUS = "bogus.test"
BROKEN = "broken.test"


@dataclass
class DnsLab:
    """A running NSD + unbound pair and how to reach it."""

    directory: Path
    host: str
    port: int  # unbound, the validating resolver
    authority_port: int  # NSD, the authoritative server
    signed_zone: str = SIGNED
    unsigned_zone: str = UNSIGNED
    bogus_zone: str = BOGUS
    broken_zone: str = BROKEN
    processes: list[Process] = field(default_factory=list)

    @property
    def nameservers(self) -> list[str]:
        """The resolver's address, as dnspython wants it."""
        return [self.host]

    def resolver(self, *, timeout: float = 2.0, lifetime: float = 4.0) -> DnsResolver:
        """Our blocking adapter, pointed at the lab's validating resolver."""
        return DnsResolver(
            nameservers=self.nameservers, port=self.port, timeout=timeout, lifetime=lifetime
        )

    def async_resolver(self, *, timeout: float = 2.0, lifetime: float = 4.0) -> AsyncDnsResolver:
        """Our asyncio adapter, pointed at the lab's validating resolver."""
        return AsyncDnsResolver(
            nameservers=self.nameservers, port=self.port, timeout=timeout, lifetime=lifetime
        )

    def authority_resolver(self) -> DnsResolver:
        """Our adapter pointed straight at NSD (no recursion, no validation)."""
        return DnsResolver(nameservers=self.nameservers, port=self.authority_port, lifetime=4.0)

    def stop(self) -> None:
        """Stop unbound and NSD."""
        while self.processes:
            self.processes.pop().stop()


def _run(argv: Sequence[str], cwd: Path) -> str:
    done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout.strip()


def _keygen(keygen: str, zone: str, cwd: Path, *, ksk: bool) -> str:
    argv = [keygen, "-a", "ECDSAP256SHA256"]
    if ksk:
        argv.append("-k")
    return _run([*argv, zone], cwd)


def _zone_text(origin: str, certs: LabCerts, extra: Sequence[str]) -> str:
    text = ZONE_TEMPLATE.read_text().format(
        tlsa_311=certs.leaf_spki_sha256.hex(), tlsa_201=certs.ca_sha256.hex()
    )
    return f"$ORIGIN {origin}.\n" + text + "".join(line + "\n" for line in extra)


def _answers(host: str, port: int, zone: str) -> bool:
    query = dns.message.make_query(zone, "SOA")
    try:
        reply = dns.query.udp(query, host, port=port, timeout=0.2)
    except (OSError, dns.exception.DNSException):
        return False
    return reply.rcode() == dns.rcode.NOERROR


def make_dns_lab(
    directory: Path,
    certs: LabCerts,
    *,
    extra_records: Mapping[str, Sequence[str]] | None = None,
    extra_interfaces: Sequence[str] = (),
) -> DnsLab:
    """Sign the zones and start NSD and unbound under *directory*.

    *extra_records* adds zone-file lines per zone (``{"example.test": ["x A
    127.0.0.9"]}``) for tests that need more data. *extra_interfaces* makes
    unbound listen on more addresses too (``"127.0.0.153@53"``): the libc
    resolver that Postfix uses only knows port 53.
    """
    nsd = binary_or_skip("nsd")
    unbound = binary_or_skip("unbound")
    keygen = binary_or_skip("ldns-keygen")
    signzone = binary_or_skip("ldns-signzone")
    extra = extra_records or {}
    directory.mkdir(parents=True, exist_ok=True)

    anchors: list[str] = []
    zonefiles: dict[str, str] = {}
    for zone in (SIGNED, UNSIGNED, BOGUS):
        path = directory / f"{zone}.zone"
        path.write_text(_zone_text(zone, certs, extra.get(zone, ())))
        if zone == UNSIGNED:
            zonefiles[zone] = path.name
            continue
        ksk = _keygen(keygen, zone, directory, ksk=True)
        zsk = _keygen(keygen, zone, directory, ksk=False)
        _run([signzone, "-n", path.name, zsk, ksk], directory)  # NSEC3, valid 4 weeks
        zonefiles[zone] = path.name + ".signed"
        if zone == BOGUS:  # anchor a key that signed nothing
            other = _keygen(keygen, zone, directory, ksk=True)
            anchors.append((directory / f"{other}.ds").read_text().strip())
        else:
            anchors.append((directory / f"{ksk}.ds").read_text().strip())
    (directory / "anchors.conf").write_text("\n".join(anchors) + "\n")

    host = "127.0.0.1"
    nsd_port = free_port(host)
    unbound_port = free_port(host)
    while unbound_port == nsd_port:
        unbound_port = free_port(host)

    nsd_conf = directory / "nsd.conf"
    nsd_conf.write_text(
        "server:\n"
        f"  ip-address: {host}@{nsd_port}\n"
        '  username: ""\n'
        '  database: ""\n'
        f"  zonelistfile: {directory}/zone.list\n"
        f"  xfrdfile: {directory}/xfrd.state\n"
        f"  pidfile: {directory}/nsd.pid\n"
        f"  logfile: {directory}/nsd.log\n"
        f"  zonesdir: {directory}\n"
        "  verbosity: 1\n"
        "  rrl-ratelimit: 0\n"  # NSD's default 200/s per client makes unbound retransmit
        "remote-control:\n"
        "  control-enable: no\n"
        + "".join(
            f"zone:\n  name: {zone}\n  zonefile: {name}\n" for zone, name in zonefiles.items()
        )
    )
    stubs = "".join(
        f'stub-zone:\n  name: "{zone}"\n  stub-addr: {host}@{nsd_port}\n'
        for zone in (*zonefiles, BROKEN)  # broken.test: NSD refuses, a broken delegation
    )
    unbound_conf = directory / "unbound.conf"
    unbound_conf.write_text(
        "server:\n"
        f"  interface: {host}@{unbound_port}\n"
        + "".join(f"  interface: {extra}\n" for extra in extra_interfaces)
        + "  access-control: 127.0.0.0/8 allow\n"
        '  username: ""\n'
        '  chroot: ""\n'
        f"  directory: {directory}\n"
        f"  pidfile: {directory}/unbound.pid\n"
        f"  logfile: {directory}/unbound.log\n"
        "  do-not-query-localhost: no\n"
        '  local-zone: "test." nodefault\n'
        f"  trust-anchor-file: {directory}/anchors.conf\n"
        '  module-config: "validator iterator"\n'
        "  cache-max-ttl: 5\n"
        "  do-ip6: no\n"
        "remote-control:\n"
        "  control-enable: no\n" + stubs
    )
    lab = DnsLab(directory, host, unbound_port, nsd_port)
    try:
        lab.processes.append(
            start_process(
                "nsd",
                [nsd, "-d", "-c", str(nsd_conf)],
                ready=lambda: _answers(host, nsd_port, SIGNED),
                cwd=directory,
            )
        )
        lab.processes.append(
            start_process(
                "unbound",
                [unbound, "-d", "-c", str(unbound_conf)],
                ready=lambda: _answers(host, unbound_port, SIGNED),
                cwd=directory,
            )
        )
    except Exception:
        lab.stop()
        raise
    return lab


@pytest.fixture(scope="session")
def dns_lab(tmp_path_factory: pytest.TempPathFactory, lab_certs: LabCerts) -> Iterator[DnsLab]:
    """NSD + validating unbound on free loopback ports, zones signed at setup."""
    lab = make_dns_lab(tmp_path_factory.mktemp("dns"), lab_certs)
    try:
        yield lab
    finally:
        lab.stop()
