"""A private Dovecot LMTP server and SASL auth service (PEERS.md §2).

``dovecot_lmtp`` (session scope) starts one instance: LMTP over TCP on a
free loopback port and over a UNIX socket (``DIR/run/lmtp``), STARTTLS with
the lab certificate, and an auth socket (``DIR/run/auth``) that Postfix
smtpd can use for ``smtpd_sasl_type = dovecot`` (any user, password
``secret``).

Per-recipient faults come from the userdb, after DATA (RFC 2033 §4.2, one
reply per recipient):

* ``alice@example.test`` (any other user too) - ``250 2.0.0 <...> Saved``;
* ``full@example.test`` - quota of one byte: ``552 5.2.2 ... Quota exceeded``;
* ``tfull@example.test`` - the same quota with ``quota_full_tempfail``:
  ``452 4.2.2 ...``.

Delivered mail lands in ``DIR/mail/<domain>/<user>/Maildir/new``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers import (
    Process,
    binary_or_skip,
    free_port,
    is_root,
    port_open,
    require_peer,
    start_process,
)
from tests.peers.certs import LabCerts

DOMAIN = "example.test"
HOSTNAME = "lmtp.example.test"  # greeting and LHLO name
PASSWORD = "secret"
QUOTA_FULL = f"full@{DOMAIN}"  # 552 5.2.2 after DATA (hard)
QUOTA_TEMPFAIL = f"tfull@{DOMAIN}"  # 452 4.2.2 after DATA (soft)

CONFIG = """\
protocols = lmtp
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
listen = 127.0.0.1
hostname = {hostname}
ssl = yes
ssl_cert = <{dir}/server.pem
ssl_key = <{dir}/server.key
auth_mechanisms = plain login
auth_failure_delay = 0
disable_plaintext_auth = no
lmtp_save_to_detail_mailbox = no
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = passwd-file
  args = {dir}/userdb
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={dir}/mail/%d/%n
}}
mail_location = maildir:~/Maildir
mail_plugins = $mail_plugins quota
plugin {{
  quota = count:User quota
  quota_vsizes = yes
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service auth {{
  unix_listener auth {{
    mode = 0666
  }}
}}
"""

# storage=0 would mean "unlimited" (PEERS.md), so the smallest real quota is 1 byte.
USERDB = """\
{full}::65534:65534::{dir}/mail/{domain}/full::userdb_quota_rule=*:storage=1B
{tfull}::65534:65534::{dir}/mail/{domain}/tfull::userdb_quota_rule=*:storage=1B \
userdb_quota_full_tempfail=yes
"""


@dataclass
class DovecotLmtp:
    """A running Dovecot: LMTP (TCP and UNIX socket) and its SASL auth socket.

    Attributes:
        directory: the instance directory.
        host: the LMTP TCP listen address (``127.0.0.1``).
        port: the LMTP TCP port.
        certs: the lab PKI whose server certificate Dovecot presents.
    """

    directory: Path
    host: str
    port: int
    certs: LabCerts
    process: Process

    @property
    def unix_socket(self) -> Path:
        """The LMTP UNIX-domain socket (``unix:`` nexthop)."""
        return self.directory / "run" / "lmtp"

    @property
    def auth_socket(self) -> Path:
        """The auth socket for Postfix ``smtpd_sasl_path`` (type dovecot)."""
        return self.directory / "run" / "auth"

    @property
    def log(self) -> Path:
        """Dovecot's log file."""
        return self.directory / "dovecot.log"

    def maildir(self, address: str) -> Path:
        """The ``new`` directory of *address*'s mailbox."""
        local, _, domain = address.partition("@")
        return self.directory / "mail" / domain / local / "Maildir" / "new"

    def messages(self, address: str) -> list[bytes]:
        """Every message delivered to *address*, oldest first."""
        new = self.maildir(address)
        if not new.is_dir():
            return []
        files = sorted(new.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [p.read_bytes() for p in files]

    def stop(self) -> None:
        """SIGTERM the master and wait for it (a restart before it exits fails)."""
        self.process.stop()


def start_dovecot_lmtp(certs: LabCerts, *, directory: Path | None = None) -> DovecotLmtp:
    """Write a private instance and start ``dovecot -F`` in the foreground.

    Args:
        certs: the lab PKI; its server certificate and key are copied in.
        directory: where the instance lives. Default: a new directory under
            /tmp whose parents the unprivileged ``nobody`` user (mail
            delivery) and ``postfix`` user (SASL socket) can search.
    """
    dovecot = binary_or_skip("dovecot")
    if not is_root():
        require_peer("a private Dovecot instance needs root here")
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="pyfix-dovecot-"))
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    shutil.copyfile(certs.server_pem, directory / "server.pem")
    shutil.copyfile(certs.server_key, directory / "server.key")
    (directory / "server.key").chmod(0o600)
    mail = directory / "mail"
    mail.mkdir(exist_ok=True)
    shutil.chown(mail, "nobody", "nogroup")
    (directory / "userdb").write_text(
        USERDB.format(full=QUOTA_FULL, tfull=QUOTA_TEMPFAIL, dir=directory, domain=DOMAIN)
    )
    host = "127.0.0.1"
    port = free_port(host)
    conf = directory / "dovecot.conf"
    conf.write_text(CONFIG.format(dir=directory, port=port, password=PASSWORD, hostname=HOSTNAME))
    lmtp_socket = directory / "run" / "lmtp"
    auth_socket = directory / "run" / "auth"
    proc = start_process(
        "dovecot",
        [dovecot, "-F", "-c", str(conf)],
        ready=lambda: port_open(host, port) and lmtp_socket.exists() and auth_socket.exists(),
    )
    return DovecotLmtp(directory, host, port, certs, proc)


@pytest.fixture(scope="session")
def dovecot_lmtp(lab_certs: LabCerts) -> Iterator[DovecotLmtp]:
    """One private Dovecot (LMTP on TCP and a UNIX socket, SASL auth) per session."""
    server = start_dovecot_lmtp(lab_certs)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)
