"""A private Postfix smtpd (PEERS.md section 1): STARTTLS, implicit TLS and no-TLS ports.

``postfix_smtpd`` (session scope) starts one instance; :func:`start_postfix_smtpd`
starts more (with other main.cf settings). Every listener gets a free
loopback port, so concurrent test runs do not collide.

The instance uses the ``lab_certs`` server certificate (leaf + CA, so
DANE-TA ``2 0 1`` can match), accepts mail for ``example.test`` into one
maildir (``DIR/mail/all/new``) and rejects per recipient through
``rcpt_access``: ``temp-fail@...`` gets ``450 4.2.0``, ``perm-fail@...``
``550 5.1.1``.

SNI: ``tls_server_sni_maps`` gives clients that send SNI ``sni.example.test``
a second certificate (:attr:`PostfixSmtpd.sni_leaf_der`), so tests can see
which name a client sent.

SASL hook: pass ``sasl_path`` (a Dovecot ``auth`` socket) to enable AUTH
(after TLS only, as in PEERS.md); without it AUTH is off.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.peers import (
    Process,
    binary_or_skip,
    find_binary,
    free_port,
    is_root,
    port_open,
    require_peer,
    start_process,
)
from tests.peers.certs import LabCerts

HOSTNAME = "mx.example.test"
DOMAIN = "example.test"
SNI_NAME = "sni.example.test"  # tls_server_sni_maps serves a second certificate for it

MASTER_CF = """\
{listen4}:{starttls} inet n - n - - smtpd
{listen6}
127.0.0.1:{tls} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
127.0.0.1:{plain} inet n - n - - smtpd -o smtpd_tls_security_level=none -o smtpd_sasl_auth_enable=no
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

RCPT_ACCESS = "/^temp-fail@/ 450 4.2.0 temporary failure for testing\n" + (
    "/^perm-fail@/ 550 5.1.1 permanent failure for testing\n"
)


@dataclass
class PostfixSmtpd:
    """A running private Postfix smtpd.

    Attributes:
        directory: the instance directory (``etc``, ``spool``, ``data``, ``mail``).
        host: the IPv4 listen address.
        starttls_port: smtpd offering STARTTLS (``smtpd_tls_security_level = may``).
        tls_port: implicit TLS (``smtpd_tls_wrappermode = yes``).
        plain_port: no TLS, no AUTH.
        ipv6: the STARTTLS port also listens on ``[::1]``.
        certs: the lab PKI whose server certificate the instance presents.
    """

    directory: Path
    host: str
    starttls_port: int
    tls_port: int
    plain_port: int
    ipv6: bool
    certs: LabCerts
    process: Process
    main_cf: dict[str, str] = field(default_factory=dict)
    sni_leaf_der: bytes = b""  # the certificate sent for SNI_NAME (empty: no SNI map)

    @property
    def sni_name(self) -> str:
        """The SNI name that selects the second certificate."""
        return SNI_NAME

    @property
    def maildir(self) -> Path:
        """Where accepted mail lands (``new`` of the single virtual mailbox)."""
        return self.directory / "mail" / "all" / "new"

    @property
    def maillog(self) -> Path:
        """Postfix's log file."""
        return self.directory / "maillog"

    def messages(self) -> list[bytes]:
        """Every delivered message, oldest first."""
        if not self.maildir.is_dir():
            return []
        files = sorted(self.maildir.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        return [p.read_bytes() for p in files]

    def stop(self) -> None:
        """Stop the master (by its PID file) and reap the foreground process."""
        self.process.stop()


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def _port_free_v6(port: int) -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", port))
    except OSError:
        return False
    return True


def start_postfix_smtpd(
    certs: LabCerts,
    *,
    directory: Path | None = None,
    sasl_path: str | None = None,
    main_cf: Mapping[str, str] | None = None,
) -> PostfixSmtpd:
    """Write a private instance and start it in the foreground.

    Args:
        certs: the lab PKI (server.pem = leaf + CA); copied into the instance.
        directory: where the instance lives. Default: a new directory under
            /tmp. Every parent must be searchable by the ``postfix`` user
            (pytest's tmp_path is not), so the default avoids it.
        sasl_path: a Dovecot auth socket for ``smtpd_sasl_path``; None: no AUTH.
        main_cf: extra or overriding main.cf settings.
    """
    postfix = binary_or_skip("postfix")
    if not is_root():
        require_peer("a private Postfix instance needs root")
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="pyfix-postfix-"))
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    etc = directory / "etc"
    etc.mkdir(exist_ok=True)
    server_pem, server_key = etc / "server.pem", etc / "server.key"
    shutil.copyfile(certs.server_pem, server_pem)
    shutil.copyfile(certs.server_key, server_key)
    server_key.chmod(0o600)
    (directory / "spool").mkdir(exist_ok=True)
    data = directory / "data"
    data.mkdir(exist_ok=True)
    shutil.chown(data, "postfix")
    mail = directory / "mail"
    mail.mkdir(exist_ok=True)
    shutil.chown(mail, "nobody")
    (etc / "rcpt_access").write_text(RCPT_ACCESS)

    host = "127.0.0.1"
    starttls, tls, plain = free_port(host), free_port(host), free_port(host)
    while len({starttls, tls, plain}) < 3:
        tls, plain = free_port(host), free_port(host)
    ipv6 = _ipv6_available() and _port_free_v6(starttls)
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": str(directory / "spool"),
        "data_directory": str(data),
        "command_directory": "/usr/sbin",
        "daemon_directory": "/usr/lib/postfix/sbin",
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        "myhostname": HOSTNAME,
        "mydomain": DOMAIN,
        "maillog_file": str(directory / "maillog"),
        "maillog_file_prefixes": str(directory),
        "mydestination": "",
        "alias_maps": "",
        "local_recipient_maps": "",
        "inet_interfaces": "loopback-only",
        "inet_protocols": "all" if ipv6 else "ipv4",
        "mynetworks": "127.0.0.0/8 [::1]/128",
        "virtual_mailbox_domains": DOMAIN,
        "virtual_mailbox_base": str(mail),
        "virtual_mailbox_maps": "static:all/",
        "virtual_uid_maps": "static:65534",
        "virtual_gid_maps": "static:65534",
        "smtpd_recipient_restrictions": (
            f"check_recipient_access regexp:{etc / 'rcpt_access'},"
            " permit_mynetworks, reject_unauth_destination"
        ),
        "smtpd_tls_security_level": "may",
        "smtpd_tls_chain_files": f"{server_key}, {server_pem}",
        "default_transport": "discard:lab",
        "relay_transport": "discard:lab",
        "smtpd_sasl_auth_enable": "yes" if sasl_path else "no",
        "smtpd_tls_auth_only": "yes",
    }
    if sasl_path:  # hook for the Dovecot helper: AUTH PLAIN/LOGIN after STARTTLS
        settings |= {"smtpd_sasl_type": "dovecot", "smtpd_sasl_path": sasl_path}
    settings |= dict(main_cf or {})
    (etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
    sni_der = _write_sni_map(etc, certs)  # postmap needs main.cf
    if sni_der and "tls_server_sni_maps" not in settings:
        settings["tls_server_sni_maps"] = f"hash:{etc / 'sni'}"
        with (etc / "main.cf").open("a") as main:
            main.write(f"tls_server_sni_maps = {settings['tls_server_sni_maps']}\n")
    listen6 = f"[::1]:{starttls} inet n - n - - smtpd" if ipv6 else ""
    (etc / "master.cf").write_text(
        MASTER_CF.format(listen4=host, listen6=listen6, starttls=starttls, tls=tls, plain=plain)
    )
    proc = start_process(
        "postfix smtpd",
        [postfix, "-c", str(etc), "start-fg"],
        ready=lambda: port_open(host, starttls) and port_open(host, tls) and port_open(host, plain),
        timeout=30.0,
        pid_file=directory / "spool" / "pid" / "master.pid",
    )
    return PostfixSmtpd(directory, host, starttls, tls, plain, ipv6, certs, proc, settings, sni_der)


def _write_sni_map(etc: Path, certs: LabCerts) -> bytes:
    """An SNI table: SNI_NAME gets its own certificate (proves the client's SNI).

    Postfix reads SNI chains from an indexed table built with ``postmap -F``.
    Returns the DER of that certificate, or b"" when postmap is missing.
    """
    postmap = find_binary("postmap")
    if postmap is None:
        return b""
    leaf = certs.ca.issue_cert(SNI_NAME)
    chain = etc / "sni.pem"
    chain.write_bytes(
        leaf.private_key_pem.bytes() + b"".join(c.bytes() for c in leaf.cert_chain_pems)
    )
    chain.chmod(0o600)
    (etc / "sni").write_text(f"{SNI_NAME} {chain}\n")
    subprocess.run(
        [postmap, "-c", str(etc), "-F", f"hash:{etc / 'sni'}"], check=True, capture_output=True
    )
    pem = leaf.cert_chain_pems[0].bytes()
    return ssl.PEM_cert_to_DER_cert(pem.decode())


@pytest.fixture(scope="session")
def postfix_smtpd(lab_certs: LabCerts) -> Iterator[PostfixSmtpd]:
    """One private Postfix smtpd for the session (STARTTLS, implicit TLS, plain)."""
    server = start_postfix_smtpd(lab_certs)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)
