"""Our client mechanisms against Dovecot's real SASL server implementations.

Dovecot's auth service is what Postfix smtpd uses for ``smtpd_sasl_type =
dovecot``; speaking its auth-client protocol (VERSION/CPID/AUTH/CONT, the
same lines Postfix xsasl_dovecot_server.c sends) exercises the server side of
PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1 and SCRAM-SHA-256 without an SMTP server.
"""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyfix_smtp.errors import SaslError
from pyfix_smtp.sasl import choose_mechanism, create_mechanism, parse_security_options
from tests.peers import binary_or_skip, is_root, require_peer, running

pytestmark = pytest.mark.peers

PASSWORD = "secret"
MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256")

CONFIG = """\
protocols = lmtp
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
ssl = no
auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256
auth_failure_delay = 0
disable_plaintext_auth = no
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={dir}/mail/%d/%n
}}
service lmtp {{
  inet_listener lmtp {{
    port = 0
  }}
}}
service auth {{
  unix_listener auth {{
    mode = 0666
  }}
}}
"""


@pytest.fixture(scope="module")
def auth_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    dovecot = binary_or_skip("dovecot")
    if not is_root():
        require_peer("dovecot needs root to start here")
    base = tmp_path_factory.mktemp("dovecot-sasl")
    conf = base / "dovecot.conf"
    conf.write_text(CONFIG.format(dir=base, password=PASSWORD))
    sock = base / "run" / "auth"
    with running("dovecot", [dovecot, "-F", "-c", str(conf)], ready=sock.exists):
        yield sock


_REMOTE = iter(range(2, 250))


def remote_ip() -> str:
    """A fresh client address per request: Dovecot's anvil delays repeated
    failures from one IP by seconds (PEERS.md), so no two requests share one."""
    return f"127.0.1.{next(_REMOTE)}"


class AuthClient:
    """The client half of Dovecot's auth protocol (v1.2), one request at a time."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rb")
        self.sock.sendall(b"VERSION\t1\t2\nCPID\t%d\n" % os.getpid())
        self.mechanisms: list[str] = []
        while (line := self.readline()) != "DONE":
            if line.startswith("MECH\t"):
                self.mechanisms.append(line.split("\t")[1])
        self.next_id = 1

    def readline(self) -> str:
        return self.file.readline().decode().rstrip("\n")

    def authenticate(self, name: str, password: str) -> tuple[str, list[str]]:
        """Run one exchange; return Dovecot's verdict (OK/FAIL) and what happened."""
        mech = create_mechanism(name, "alice@example.test", password)
        req = self.next_id
        self.next_id += 1
        command = f"AUTH\t{req}\t{name}\tservice=smtp\tnologin\trip={remote_ip()}".encode()
        initial = mech.start()
        if initial is not None:
            command += b"\tresp=" + base64.b64encode(initial)
        self.sock.sendall(command + b"\n")
        events: list[str] = []
        while True:
            verb, _, rest = self.readline().partition("\t")
            if verb != "CONT":
                break
            challenge = base64.b64decode(rest.partition("\t")[2])
            events.append(f"challenge {len(challenge)}")
            response = mech.step(challenge)
            self.sock.sendall(f"CONT\t{req}\t".encode() + base64.b64encode(response) + b"\n")
        if verb == "OK":
            mech.done()  # SCRAM: the server signature arrived as a CONT and was verified
        return verb, events

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def client(auth_socket: Path) -> Iterator[AuthClient]:
    conn = AuthClient(auth_socket)
    yield conn
    conn.close()


def test_dovecot_offers_what_we_implement(client: AuthClient) -> None:
    assert set(MECHANISMS) <= set(client.mechanisms)
    # With Postfix's default options the strongest offered mechanism wins.
    defaults = parse_security_options("noplaintext, noanonymous")
    assert choose_mechanism(client.mechanisms, security_options=defaults) == "SCRAM-SHA-256"


@pytest.mark.parametrize("name", MECHANISMS)
def test_right_password_is_accepted(client: AuthClient, name: str) -> None:
    verdict, events = client.authenticate(name, PASSWORD)
    assert verdict == "OK"
    expected_challenges = {"PLAIN": 0, "LOGIN": 2, "CRAM-MD5": 1}.get(name, 2)
    assert len(events) == expected_challenges


@pytest.mark.parametrize("name", MECHANISMS)
def test_wrong_password_is_refused(client: AuthClient, name: str) -> None:
    verdict, _ = client.authenticate(name, "not-" + PASSWORD)
    assert verdict == "FAIL"


def test_scram_server_signature_is_checked_against_dovecot(auth_socket: Path) -> None:
    # Flip one bit of Dovecot's server-final message: our client must refuse it.
    conn = AuthClient(auth_socket)
    try:
        mech = create_mechanism("SCRAM-SHA-256", "alice@example.test", PASSWORD)
        initial = mech.start()
        assert initial is not None
        conn.sock.sendall(
            f"AUTH\t9\tSCRAM-SHA-256\tservice=smtp\tnologin\trip={remote_ip()}\tresp=".encode()
            + base64.b64encode(initial)
            + b"\n"
        )
        verb, _, rest = conn.readline().partition("\t")
        assert verb == "CONT"
        final = mech.step(base64.b64decode(rest.partition("\t")[2]))
        conn.sock.sendall(b"CONT\t9\t" + base64.b64encode(final) + b"\n")
        verb, _, rest = conn.readline().partition("\t")
        assert verb == "CONT"
        server_final = base64.b64decode(rest.partition("\t")[2])
        assert server_final.startswith(b"v=")
        signature = bytearray(base64.b64decode(server_final[2:]))
        signature[0] ^= 1
        with pytest.raises(SaslError, match="wrong server signature"):
            mech.step(b"v=" + base64.b64encode(bytes(signature)))
    finally:
        conn.close()
