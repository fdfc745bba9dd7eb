"""Every example in examples/ runs, as a user would run it, and prints what it promises.

Each example runs in a fresh interpreter (``python examples/x.py ...``).
Examples that need a peer (Dovecot, the DNS lab) get it from the peer
fixtures and are given its socket or port as arguments; the others run
standalone, with servers of their own from :mod:`pyfix_smtp.testing`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pyfix_smtp.testing import SinkServer
from tests.peers.certs import LabCerts
from tests.peers.dns import DnsLab
from tests.peers.dovecot import QUOTA_FULL, QUOTA_TEMPFAIL, DovecotLmtp
from tests.peers.mx_lab import MxLab

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TESTED = {
    "demo.py",
    "send_sync.py",
    "fanout_async.py",
    "lmtp_dovecot.py",
    "retry_loop.py",
    "plan_domain.py",
    "explain_tls_policy.py",
}


def run(name: str, *args: str, status: int = 0, timeout: float = 60) -> str:
    """Run examples/*name* with *args*; check its exit status; return its output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == status, output
    return output


def test_every_example_has_a_test() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == TESTED


@pytest.mark.parametrize("extra", [[], ["--async"], ["--level", "secure"]])
def test_demo(extra: list[str]) -> None:
    out = run("demo.py", *extra)
    assert "Verified TLS connection established to 127.0.0.1[127.0.0.1]:" in out
    assert re.search(
        r"4DEMO1: to=<bob@example\.net>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, ", out
    )
    assert re.search(r"to=<bob@example\.net>.*, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok", out)
    assert re.search(r"to=<carol@example\.net>.*, dsn=4\.2\.2, status=deferred \(host ", out)
    assert re.search(r"to=<dave@example\.net>.*, dsn=5\.1\.1, status=bounced \(host ", out)
    assert "over TLS" in out
    assert "identical to what was sent: True" in out
    assert out.rstrip().endswith("demo: OK")


def test_send_sync_streams_a_file_over_starttls(tmp_path: Path) -> None:
    message = tmp_path / "message.eml"
    message.write_bytes(b"From: a@example.org\nSubject: file\n\nLF line ends\n.dot\n")
    script = {"RCPT": lambda c: "450 4.2.0 Try later" if "<later@" in c.argument else None}
    with SinkServer(starttls=True, script=script) as server:
        out = run(
            "send_sync.py",
            "--from", "a@example.org",
            "--to", "b@example.net",
            "--to", "later@example.net",
            "--nexthop", server.nexthop,
            "--set", "smtp_tls_security_level = verify",
            "--set", f"smtp_tls_CAfile = {server.ca_file}",
            "--set", "smtp_tls_loglevel = 1",
            str(message),
            status=75,  # one recipient deferred, none bounced
        )  # fmt: skip
        [received] = server.messages
    assert "Verified TLS connection established" in out
    assert "b@example.net: relayed 2.0.0 250 2.0.0 Ok: queued as" in out
    assert "later@example.net: deferred 4.2.0 host 127.0.0.1[127.0.0.1] said: 450 4.2.0" in out
    assert received.recipients == ("b@example.net",)
    assert received.tls
    # sent as SMTP requires: CRLF line ends (the dot-stuffing is undone by the server)
    assert (
        received.content == b"From: a@example.org\r\nSubject: file\r\n\r\nLF line ends\r\n.dot\r\n"
    )


def test_send_sync_from_main_cf(tmp_path: Path) -> None:
    main_cf = tmp_path / "main.cf"
    main_cf.write_text("myhostname = client.example.org\nsmtp_tls_security_level = none\n")
    with SinkServer(script={"RCPT": "550 5.1.1 No such user"}) as server:
        out = run(
            "send_sync.py",
            "--main-cf", str(main_cf),
            "--from", "a@example.org",
            "--to", "nobody@example.net",
            "--nexthop", server.nexthop,
            status=1,
        )  # fmt: skip
        assert server.sessions[0].commands[0] == "EHLO client.example.org"
    assert "nobody@example.net: bounced 5.1.1" in out


def test_fanout_async_demo() -> None:
    out = run("fanout_async.py", "--demo", "20")
    assert "20 domains, 41 recipients in " in out
    assert ": 1 bounced, 40 relayed" in out
    assert "the servers accepted 40 recipients" in out


def test_fanout_async_with_mx_lookups(mx_lab: MxLab) -> None:
    # twomx.example.test: the first MX (127.0.0.2) is down, the second answers.
    port = mx_lab.common_port()
    with (
        SinkServer(host=mx_lab.mx2_address, port=port, hostname=mx_lab.mx2) as mx2,
        SinkServer() as other,
    ):
        out = run(
            "fanout_async.py",
            "--nameserver", mx_lab.dns.host,
            "--dns-port", str(mx_lab.dns.port),
            "--smtp-port", str(port),
            "--route", f"other.test={other.nexthop}",
            "--set", "smtp_tls_security_level = none",
            "--set", "smtp_connect_timeout = 2s",
            f"ann@{mx_lab.domain}", f"ben@{mx_lab.domain}", "cid@other.test",
        )  # fmt: skip
        assert mx2.messages[0].recipients == (f"ann@{mx_lab.domain}", f"ben@{mx_lab.domain}")
        assert other.messages[0].recipients == ("cid@other.test",)
    assert f"relay={mx_lab.mx2}[{mx_lab.mx2_address}]:{port}" in out
    assert "2 domains, 3 recipients in " in out
    assert ": 3 relayed" in out


@pytest.mark.peers
def test_lmtp_dovecot_unix_socket(dovecot_lmtp: DovecotLmtp) -> None:
    out = run(
        "lmtp_dovecot.py",
        "--socket", str(dovecot_lmtp.unix_socket),
        "--assume-final",
        "alice@example.test", QUOTA_FULL, QUOTA_TEMPFAIL,
        status=75,  # tfull is deferred
    )  # fmt: skip
    assert re.search(
        r"alice@example\.test: delivered 2\.0\.0 250 2\.0\.0 <alice@example\.test> \S+ Saved", out
    )
    assert f"{QUOTA_FULL}: bounced 5.2.2 host " in out
    assert f"{QUOTA_TEMPFAIL}: deferred 4.2.2 host " in out


@pytest.mark.peers
def test_lmtp_dovecot_tcp_with_starttls(dovecot_lmtp: DovecotLmtp, lab_certs: LabCerts) -> None:
    out = run(
        "lmtp_dovecot.py",
        "--host", dovecot_lmtp.host,
        "--port", str(dovecot_lmtp.port),
        "--tls", "verify",
        "--ca-file", str(lab_certs.ca_pem),
        "alice@example.test",
    )  # fmt: skip
    assert "Verified TLS connection established to 127.0.0.1[127.0.0.1]:" in out
    assert "alice@example.test: relayed 2.0.0 250 2.0.0 <alice@example.test>" in out


def test_retry_loop_demo() -> None:
    out = run("retry_loop.py", "--demo")
    assert "sender non-delivery notification for dave@example.net" in out
    assert "bob@example.net: relayed 2.0.0 after 1 attempt\n" in out
    assert "dave@example.net: bounced 5.1.1 after 1 attempt\n" in out
    assert "carol@example.net: relayed 2.0.0 after 3 attempts" in out
    assert "the server accepted: bob@example.net, carol@example.net" in out
    # later attempts count the delay from the message's arrival
    [last] = re.findall(r"to=<carol@example\.net>.*delay=([\d.]+), .*status=sent", out)
    assert float(last) >= 0.5  # two back-offs: 0.2 s, then 0.4 s


@pytest.mark.peers
def test_plan_domain(dns_lab: DnsLab) -> None:
    out = run(
        "plan_domain.py", "example.test",
        "--nameserver", dns_lab.host, "--port", str(dns_lab.port),
        "--dnssec", "--seed", "1",
    )  # fmt: skip
    assert "nexthop example.test: mx lookup, MX/SRV RRset validated" in out
    assert re.search(r"1\. pref 10 +mx\.example\.test\[", out)


def test_explain_tls_policy_offline() -> None:
    out = run(
        "explain_tls_policy.py", "example.com", "--level", "dane",
        "--answer", "MX example.com 10 mx.example.com",
        "--answer", "A mx.example.com 192.0.2.1",
        "--answer", "TLSA _25._tcp.mx.example.com 3 1 1 " + "01" * 32,
    )  # fmt: skip
    assert out.startswith("TLS policy for mx.example.com port 25")
    assert "=> level dane" in out
