"""A private Postfix smtp(8) *client* as the reference for delivery tests.

:func:`start_postfix_client` writes and starts a Postfix instance whose only
job is to deliver what ``sendmail`` submits: a transport table routes each
recipient domain to ``<service>:<nexthop>``, each service being smtp(8)
with its own ``-o`` settings (TLS level, fingerprints ...). Its log lines
(``to=<...>, relay=..., dsn=..., status=... (reason)``) are what pyfix_smtp
must reproduce.

DNS: Postfix asks the libc resolver, which only knows ``/etc/resolv.conf``
and port 53. With *resolver* (an address where the DNS lab's unbound also
listens on port 53, see ``make_dns_lab(extra_interfaces=...)``) the smtp(8)
services run chrooted in the queue directory, whose ``etc/resolv.conf``
names that address (with ``options trust-ad``, or glibc drops the AD bit and
DANE never sees a validated answer). The machine's own resolver is untouched.

Holding: a message with an ``X-Pyfix-Hold: yes`` header is put on hold by
``header_checks``; :meth:`PostfixClient.release` sends it on later, so its
arrival time lies in the past (Postfix's ``PLAINTEXT_FALLBACK_OK`` tests
how long a message waited before this delivery attempt).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.peers import Process, binary_or_skip, is_root, require_peer, start_process

MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

#: Addresses tried for a port-53 listener of the lab resolver (chrooted Postfix).
RESOLVER_CANDIDATES = ("127.0.0.153", "127.0.0.154", "127.0.0.155", "127.0.0.156")

HOLD_HEADER = "X-Pyfix-Hold: yes"

LOG_LINE = re.compile(
    r"postfix/\w+\[\d+\]: \w+: to=<(?P<rcpt>[^>]+)>, relay=(?P<relay>\S+), (?:conn_use=\d+, )?"
    r"delay=[\d.]+, delays=[\d./]+, dsn=(?P<dsn>[\d.]+), status=(?P<status>\w+) \((?P<reason>.*)\)$"
)
_PID = re.compile(r"postfix/\w+\[(\d+)\]: ")
TLS_LINE = re.compile(
    r"(?P<trust>Anonymous|Untrusted|Trusted|Verified) TLS connection established"
    r" to (?P<peer>\S+): (?P<version>\S+) with cipher"
)


@dataclass(frozen=True)
class PostfixResult:
    """One ``to=<...>`` log line of Postfix's smtp(8)."""

    relay: str
    dsn: str
    status: str  # sent, deferred, bounced
    reason: str
    tls: tuple[str, ...] = ()  # "Verified TLSv1.3" ... for the handshakes of this delivery


def free_port_53(candidates: Iterable[str] = RESOLVER_CANDIDATES) -> str | None:
    """The first candidate address where UDP and TCP port 53 are free (root only)."""
    if not is_root():
        return None
    for address in candidates:
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
            ):
                udp.bind((address, 53))
                tcp.bind((address, 53))
        except OSError:
            continue
        return address
    return None


@dataclass
class PostfixClient:
    """A running private Postfix that delivers what :meth:`submit` hands it."""

    directory: Path
    etc: Path
    process: Process

    @property
    def maillog(self) -> Path:
        """Postfix's log file."""
        return self.directory / "maillog"

    def log(self) -> str:
        """Everything logged so far."""
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def submit(
        self,
        sender: str,
        recipients: Iterable[str],
        content: bytes = b"",
        *,
        hold: bool = False,
        verify: bool = False,
    ) -> None:
        """Submit a message with ``sendmail``.

        *hold* prepends the hold header; *verify* (``sendmail -bv``) asks for
        an address verification instead: no message, RCPT only, logged as
        ``status=deliverable`` or ``undeliverable``.
        """
        sendmail = binary_or_skip("sendmail")
        if hold:
            content = HOLD_HEADER.encode() + b"\r\n" + content
        mode = ["-bv"] if verify else []
        subprocess.run(
            [sendmail, "-C", str(self.etc), *mode, "-i", "-f", sender, "--", *recipients],
            input=b"" if verify else content,
            check=True,
            timeout=30,
        )

    def release(self) -> None:
        """Release every held message and ask the queue manager to deliver it now."""
        postsuper = binary_or_skip("postsuper")
        postqueue = binary_or_skip("postqueue")
        subprocess.run([postsuper, "-c", str(self.etc), "-H", "ALL"], check=True, timeout=30)
        subprocess.run([postqueue, "-c", str(self.etc), "-f"], check=True, timeout=30)

    def held(self) -> int:
        """How many messages wait in the hold queue."""
        hold = self.directory / "spool" / "hold"
        return sum(1 for _ in hold.iterdir()) if hold.is_dir() else 0

    def results(self) -> dict[str, list[PostfixResult]]:
        """Every ``to=<...>`` line so far, by recipient, in log order.

        Each result carries the TLS summaries its smtp(8) process logged
        since that process's previous ``to=`` line: with one recipient per
        delivery, the handshakes of that delivery.
        """
        found: dict[str, list[PostfixResult]] = {}
        pending: dict[str, list[str]] = {}  # smtp(8) PID -> TLS summaries
        for line in self.log().splitlines():
            pid = _PID.search(line)
            key = pid[1] if pid else ""
            tls = TLS_LINE.search(line)
            if tls:
                pending.setdefault(key, []).append(f"{tls['trust']} {tls['version']}")
                continue
            match = LOG_LINE.search(line)
            if match:
                found.setdefault(match["rcpt"], []).append(
                    PostfixResult(
                        match["relay"],
                        match["dsn"],
                        match["status"],
                        match["reason"],
                        tuple(pending.pop(key, ())),
                    )
                )
        return found

    def wait(
        self, recipients: Iterable[str], *, count: int = 1, timeout: float = 30.0
    ) -> dict[str, list[PostfixResult]]:
        """Wait until each recipient has at least *count* log lines; return them all."""
        wanted = set(recipients)
        deadline = time.monotonic() + timeout
        while True:
            found = self.results()
            if all(len(found.get(r, ())) >= count for r in wanted):
                return found
            if time.monotonic() > deadline:
                missing = sorted(r for r in wanted if len(found.get(r, ())) < count)
                raise AssertionError(
                    f"Postfix logged no result for {missing}:\n{self.log()[-4000:]}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the instance and remove its directory."""
        self.process.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postfix_client(
    *,
    services: Mapping[str, Mapping[str, str]],
    routes: Mapping[str, str],
    main_cf: Mapping[str, str] | None = None,
    resolver: str | None = None,
    myhostname: str = "client.pyfix.test",
) -> PostfixClient:
    """Write a private client-only instance and start it.

    Args:
        services: master.cf smtp(8) services: name -> ``-o`` settings.
        routes: transport(5) entries: recipient domain -> ``service:nexthop``.
        main_cf: more main.cf settings (``smtp_tls_CAfile`` ...).
        resolver: an address whose port 53 answers DNS (the lab's unbound):
            the services then run chrooted with that resolver.
        myhostname: the client's name (EHLO).
    """
    postfix = binary_or_skip("postfix")
    binary_or_skip("sendmail")
    if not is_root():
        require_peer("a private Postfix instance needs root")
    directory = Path(tempfile.mkdtemp(prefix="pyfix-pfclient-"))
    directory.chmod(0o755)
    etc = directory / "etc"
    etc.mkdir()
    spool = directory / "spool"
    spool.mkdir()
    (directory / "data").mkdir()
    shutil.chown(directory / "data", "postfix")
    if resolver is not None:
        (spool / "etc").mkdir()
        (spool / "etc" / "resolv.conf").write_text(
            f"nameserver {resolver}\noptions trust-ad attempts:1 timeout:2\n"
        )
        for name in ("hosts", "services", "localtime", "nsswitch.conf"):
            with contextlib.suppress(OSError):
                shutil.copyfile(Path("/etc") / name, spool / "etc" / name)
    (etc / "transport").write_text("".join(f"{d} {r}\n" for d, r in routes.items()))
    (etc / "header_checks").write_text(f"/^{HOLD_HEADER}$/ HOLD held for a later attempt\n")
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": str(spool),
        "data_directory": str(directory / "data"),
        "command_directory": "/usr/sbin",
        "daemon_directory": "/usr/lib/postfix/sbin",
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        "myhostname": myhostname,
        "mydomain": "pyfix.test",
        "myorigin": "pyfix.test",
        "mydestination": "",
        "inet_interfaces": "loopback-only",
        "inet_protocols": "ipv4",
        "maillog_file": str(directory / "maillog"),
        "maillog_file_prefixes": str(directory),
        "transport_maps": f"texthash:{etc / 'transport'}",
        "default_transport": "error:no route",
        "header_checks": f"regexp:{etc / 'header_checks'}",
        "smtp_tls_loglevel": "1",
        "message_size_limit": "0",
        "smtputf8_enable": "yes",
    }
    settings |= dict(main_cf or {})
    (etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
    chroot = "y" if resolver is not None else "n"
    lines = [
        f"{name} unix - - {chroot} - - smtp " + " ".join(f"-o {k}={v}" for k, v in opts.items())
        for name, opts in services.items()
    ]
    (etc / "master.cf").write_text(MASTER_CF + "".join(line + "\n" for line in lines))
    maillog = directory / "maillog"
    try:
        proc = start_process(
            "postfix client",
            [postfix, "-c", str(etc), "start-fg"],
            ready=lambda: maillog.exists() and "daemon started" in maillog.read_text(),
            timeout=30.0,
            pid_file=spool / "pid" / "master.pid",
        )
    except Exception:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return PostfixClient(directory, etc, proc)
