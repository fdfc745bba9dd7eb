"""A DNS lab for scenario 8: NSD serving a zone of many mail domains, unbound in front.

PEERS.md §3, without DNSSEC (an unsigned zone is enough to measure planning
speed). The zone ``bench.test`` holds ``count`` domains ``dNNNN.bench.test``,
each with ``MX 10 mx.dNNNN.bench.test`` and that host's ``A 127.0.0.1``, so
planning one domain takes an MX query and an A query.

NSD runs for the whole scenario; unbound is restarted before every measured
run (:meth:`DnsLab.fresh_resolver`) so that every client starts from a cold
cache and pays for the same recursion to NSD. With ``upstream_delay``, unbound
reaches NSD through :mod:`benchmarks.dnsdelay`, which holds each query that
long (an authoritative server across a network).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode

from benchmarks.sink import find_binary, free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent  # for python -m benchmarks.dnsdelay
ZONE = "bench.test"
HOST = "127.0.0.1"


def domain_names(count: int, zone: str = ZONE) -> tuple[str, ...]:
    """The *count* domains of the lab zone."""
    return tuple(f"d{i:04d}.{zone}" for i in range(count))


def zone_text(count: int, zone: str = ZONE) -> str:
    """A zone file with *count* mail domains (see the module docstring)."""
    lines = [
        f"$ORIGIN {zone}.",
        "$TTL 3600",
        f"@ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 3600",
        f"@ IN NS ns.{zone}.",
        f"ns IN A {HOST}",
    ]
    for name in domain_names(count, zone):
        label = name.removesuffix(f".{zone}")
        lines.append(f"{label} IN MX 10 mx.{label}")
        lines.append(f"mx.{label} IN A {HOST}")
    return "\n".join(lines) + "\n"


def answers(port: int, name: str = ZONE) -> bool:
    """True when the server on *port* answers a SOA query for *name*."""
    query = dns.message.make_query(name, "SOA")
    try:
        reply = dns.query.udp(query, HOST, port=port, timeout=0.2)
    except (OSError, dns.exception.DNSException):
        return False
    return reply.rcode() == dns.rcode.NOERROR


def _start(argv: list[str], ready_port: int, log: Path, what: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        popen = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT
        )
    deadline = time.monotonic() + 15.0
    while not answers(ready_port):
        if popen.poll() is not None or time.monotonic() > deadline:
            stop_process(popen)
            raise RuntimeError(f"{what} did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.01)
    return popen


class DnsLab:
    """NSD with the lab zone, and one unbound at a time in front of it."""

    def __init__(
        self, count: int, workdir: Path | None = None, upstream_delay: float = 0.0
    ) -> None:
        nsd = find_binary("nsd")
        unbound = find_binary("unbound")
        if nsd is None or unbound is None:
            raise FileNotFoundError("nsd and unbound are needed for scenario 8")
        self._unbound = unbound
        self.domains = domain_names(count)
        self.dir = Path(tempfile.mkdtemp(prefix="dnslab-", dir=workdir))
        (self.dir / f"{ZONE}.zone").write_text(zone_text(count))
        self.nsd_port = free_port(HOST)
        conf = self.dir / "nsd.conf"
        conf.write_text(
            "server:\n"
            f"  ip-address: {HOST}@{self.nsd_port}\n"
            '  username: ""\n'
            '  database: ""\n'
            f"  zonelistfile: {self.dir}/zone.list\n"
            f"  xfrdfile: {self.dir}/xfrd.state\n"
            f"  pidfile: {self.dir}/nsd.pid\n"
            f"  logfile: {self.dir}/nsd.log\n"
            f"  zonesdir: {self.dir}\n"
            "  rrl-ratelimit: 0\n"  # NSD rate-limits 200 answers/s per client by default
            "remote-control:\n"
            "  control-enable: no\n"
            f"zone:\n  name: {ZONE}\n  zonefile: {ZONE}.zone\n"
        )
        self._nsd = _start([nsd, "-d", "-c", str(conf)], self.nsd_port, self.dir / "nsd.out", "nsd")
        self._relay: subprocess.Popen[bytes] | None = None
        self.upstream_port = self.nsd_port
        if upstream_delay > 0:
            self.upstream_port = free_port(HOST, kind=socket.SOCK_DGRAM)
            argv = [sys.executable, "-m", "benchmarks.dnsdelay"]
            argv += [str(self.upstream_port), str(self.nsd_port), str(upstream_delay)]
            try:
                self._relay = _start(argv, self.upstream_port, self.dir / "relay.out", "relay")
            except Exception:
                stop_process(self._nsd)
                raise
        self._resolver: subprocess.Popen[bytes] | None = None
        self.port = 0

    def fresh_resolver(self) -> int:
        """(Re)start unbound with an empty cache; return its port."""
        self.stop_resolver()
        self.port = free_port(HOST, kind=socket.SOCK_DGRAM)
        conf = self.dir / "unbound.conf"
        conf.write_text(
            "server:\n"
            f"  interface: {HOST}@{self.port}\n"
            "  access-control: 127.0.0.0/8 allow\n"
            '  username: ""\n'
            '  chroot: ""\n'
            f"  directory: {self.dir}\n"
            f"  pidfile: {self.dir}/unbound.pid\n"
            f"  logfile: {self.dir}/unbound.log\n"
            "  do-not-query-localhost: no\n"  # PEERS.md §3: or unbound never asks 127.0.0.1
            '  local-zone: "test." nodefault\n'  # PEERS.md §3: RFC 6761 blocks test. otherwise
            '  module-config: "iterator"\n'
            "  do-ip6: no\n"
            "  num-queries-per-thread: 4096\n"
            "  qname-minimisation: no\n"  # one upstream query per question
            "remote-control:\n"
            "  control-enable: no\n"
            f'stub-zone:\n  name: "{ZONE}"\n  stub-addr: {HOST}@{self.upstream_port}\n'
        )
        self._resolver = _start(
            [self._unbound, "-d", "-c", str(conf)], self.port, self.dir / "unbound.out", "unbound"
        )
        return self.port

    def stop_resolver(self) -> None:
        """Stop the current unbound, if any."""
        if self._resolver is not None:
            stop_process(self._resolver)
            self._resolver = None

    def stop(self) -> None:
        """Stop unbound and NSD and remove the lab directory."""
        self.stop_resolver()
        if self._relay is not None:
            stop_process(self._relay)
        stop_process(self._nsd)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_lab(
    count: int, workdir: Path | None = None, upstream_delay: float = 0.0
) -> Iterator[DnsLab]:
    """A :class:`DnsLab` for the duration of the ``with`` block."""
    lab = DnsLab(count, workdir, upstream_delay)
    try:
        yield lab
    finally:
        lab.stop()
