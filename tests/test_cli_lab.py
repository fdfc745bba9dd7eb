"""The ``pyfix-smtp`` command line against real peers.

* ``plan`` and ``policy`` through the DNS lab (NSD + validating unbound:
  signed ``example.test`` with MX and TLSA, ``unsigned.test``, ``bogus.test``),
  reached with ``--resolver 127.0.0.1:PORT``;
* ``policy`` with MTA-STS from the lab's HTTPS policy server;
* ``probe`` against Postfix smtpd (STARTTLS, implicit TLS, no TLS) and
  smtp-sink (no STARTTLS at all), and DANE through the lab's TLSA records;
* ``send`` into smtp-sink (its dump files), into Postfix (per-recipient
  450/550, the maildir) and, by MX lookup, into :class:`SinkServer`.

Each peer skips its tests when it is missing (fails under PYFIX_REQUIRE_PEERS=1).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import time
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from pyfix_smtp.cli import main
from pyfix_smtp.cli.common import EX_TEMPFAIL, EX_UNAVAILABLE
from pyfix_smtp.testing import Certificates, SinkServer
from tests.peers.certs import LabCerts
from tests.peers.dns import DnsLab
from tests.peers.dovecot import DovecotLmtp
from tests.peers.mtasts import MtaStsServer
from tests.peers.postfix import PostfixSmtpd
from tests.peers.sink import Sink, SinkFactory

pytestmark = pytest.mark.peers

DNSSEC = ("-o", "smtp_dns_support_level=dnssec")
PORT_10025 = ("-o", "smtp_tcp_port=10025")  # the lab's TLSA names carry 10025; no loop check


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``pyfix-smtp argv`` in-process: (status, stdout, stderr)."""
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def lab(dns_lab: DnsLab) -> tuple[str, str]:
    return ("--resolver", f"{dns_lab.host}:{dns_lab.port}")


def colon(digest: bytes) -> str:
    return ":".join(f"{b:02X}" for b in digest)


# -- plan -----------------------------------------------------------------------------


def test_plan_signed_domain(capsys: pytest.CaptureFixture[str], dns_lab: DnsLab) -> None:
    status, out, _ = cli(
        capsys, "plan", *lab(dns_lab), *DNSSEC, *PORT_10025, "--seed", "1", "example.test"
    )
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "nexthop example.test: MX lookup, MX RRset DNSSEC-validated: yes"
    assert lines[1].split() == ["#", "pref", "host", "address", "port", "dnssec"]
    rows = [line.split() for line in lines[2:]]
    # equal preference first (shuffled within it), the backup MX last
    assert [r[1:3] for r in rows] == [
        ["10", "mx.example.test"],
        ["10", "mx.example.test"],
        ["20", "mx2.example.test"],
    ]
    assert sorted(r[3] for r in rows[:2]) == ["127.0.0.1", "::1"]
    assert rows[2][3:] == ["127.0.0.2", "10025", "yes"]
    assert all(r[5] == "yes" for r in rows)


def test_plan_json_unsigned_and_cname(capsys: pytest.CaptureFixture[str], dns_lab: DnsLab) -> None:
    status, out, _ = cli(
        capsys, "plan", "--json", *lab(dns_lab), *DNSSEC, *PORT_10025, "unsigned.test"
    )
    assert status == 0
    [site] = json.loads(out)["sites"]
    assert (site["source"], site["mx_authentic"]) == ("mx", False)
    assert {(c["host"], c["address"]) for c in site["candidates"]} == {
        ("mx.unsigned.test", "127.0.0.1"),
        ("mx.unsigned.test", "::1"),
        ("mx2.unsigned.test", "127.0.0.2"),
    }
    assert not any(c["authentic"] for c in site["candidates"])

    status, out, _ = cli(
        capsys, "plan", *lab(dns_lab), *DNSSEC, *PORT_10025, "mxcname.example.test"
    )
    assert status == 0
    assert "  cname.example.test: CNAME mx.example.test" in out.splitlines()


@pytest.mark.parametrize(
    ("destination", "status", "failure"),
    [
        (
            "nullmx.example.test",
            EX_UNAVAILABLE,
            "5.1.0 Domain nullmx.example.test does not accept mail (nullMX)",
        ),
        (
            "bogus.test",
            EX_TEMPFAIL,
            "4.4.3 Host or domain name not found. Name service error for name=bogus.test"
            " type=MX: Host not found, try again",
        ),
        (
            "nx.example.test",
            EX_UNAVAILABLE,
            "5.4.4 Host or domain name not found. Name service error for name=nx.example.test"
            " type=AAAA: Host not found",
        ),
    ],
)
def test_plan_failures_carry_postfix_status(
    capsys: pytest.CaptureFixture[str], dns_lab: DnsLab, destination: str, status: int, failure: str
) -> None:
    got, out, err = cli(capsys, "plan", *lab(dns_lab), destination)
    assert (got, err) == (status, "")
    assert f"  no server: {failure}" in out.splitlines()
    assert out.splitlines()[-1] == f"delivery would fail: {failure}"


def test_plan_port_25_mx_on_this_host_loops_back(
    capsys: pytest.CaptureFixture[str], dns_lab: DnsLab
) -> None:
    # mx.example.test is 127.0.0.1 and ::1: at port 25 this host is the best MX.
    status, out, _ = cli(capsys, "plan", "--json", *lab(dns_lab), "example.test")
    assert status == EX_UNAVAILABLE
    data = json.loads(out)
    assert data["failure"]["status"] == "5.4.6"
    assert data["failure"]["reason"] == "mail for example.test loops back to myself"
    assert data["sites"][0]["i_am_mx"] is True


def test_verbose_logs_dns_queries(capsys: pytest.CaptureFixture[str], dns_lab: DnsLab) -> None:
    status, _, err = cli(capsys, "-v", "plan", *lab(dns_lab), *DNSSEC, "nullmx.example.test")
    assert status == EX_UNAVAILABLE
    assert err.splitlines() == ["pyfix_smtp.cli: nullmx.example.test MX -> NOERROR (authentic)"]


# -- policy ---------------------------------------------------------------------------------------


def test_policy_dane_from_the_lab_tlsa(
    capsys: pytest.CaptureFixture[str], dns_lab: DnsLab, lab_certs: LabCerts
) -> None:
    status, out, _ = cli(
        capsys,
        "policy", *lab(dns_lab), *DNSSEC, *PORT_10025,
        "-o", "smtp_tls_security_level=dane",
        "example.test",
    )  # fmt: skip
    assert status == 0
    first, second = out.split("\n\n")
    spki, ca = lab_certs.leaf_spki_sha256.hex(), lab_certs.ca_sha256.hex()
    assert (
        first.splitlines()[0] == "TLS policy for mx.example.test port 10025 (nexthop example.test):"
    )
    assert "  - DNSSEC: MX RRset of example.test is DNSSEC-validated" in first
    assert "=> level dane" in first
    [tlsa] = [x for x in first.splitlines() if x.startswith("   TLSA: ")]
    assert set(tlsa[9:].split("; ")) == {f"3 1 1 {spki}", f"2 0 1 {ca}"}  # RRset: any order
    assert "   SNI mx.example.test" in first
    assert sorted(first.splitlines()[-1].split(": ")[1].split(", ")) == ["127.0.0.1", "::1"]
    # mx2 publishes no TLSA: opportunistic
    assert second.splitlines()[0].startswith("TLS policy for mx2.example.test port 10025")
    assert "  - DANE: no TLSA records found: level may" in second
    assert "=> level may" in second


def test_policy_json_dane_only_unsigned_domain_is_skipped(
    capsys: pytest.CaptureFixture[str], dns_lab: DnsLab
) -> None:
    status, out, _ = cli(
        capsys,
        "policy", "--json", *lab(dns_lab), *DNSSEC, *PORT_10025,
        "-o", "smtp_tls_security_level=dane-only",
        "unsigned.test",
    )  # fmt: skip
    assert status == EX_TEMPFAIL  # every server skipped: nothing to deliver to now
    servers = json.loads(out)["servers"]
    assert [s["host"] for s in servers] == ["mx.unsigned.test", "mx2.unsigned.test"]
    assert all(s["skip"] and s["failure"]["status"] == "4.7.5" for s in servers)


def test_policy_mta_sts_enforce(
    capsys: pytest.CaptureFixture[str],
    dns_lab: DnsLab,
    lab_certs: LabCerts,
    mta_sts_server: MtaStsServer,
) -> None:
    sts = ("--sts-connect", f"{mta_sts_server.host}:{mta_sts_server.port}")
    status, out, _ = cli(
        capsys,
        "policy", *lab(dns_lab), *PORT_10025, *sts,
        "--sts-cafile", str(lab_certs.ca_pem),
        "-o", "smtp_mta_sts_enable=yes",
        "example.test",
    )  # fmt: skip
    assert status == 0
    assert mta_sts_server.requests == [("mta-sts.example.test", "/.well-known/mta-sts.txt")]
    blocks = out.split("\n\n")
    assert blocks[0] == (
        "MTA-STS example.test: TXT record found; fetched policy: mode enforce, max_age 86400"
    )
    assert "=> level secure" in blocks[1]
    assert "   MTA-STS mx: mx.example.test" in blocks[1]
    assert (
        "=> skip this server: 4.7.5 MX host mx2.example.test does not match the MTA-STS"
        " policy of example.test"
    ) in blocks[2]

    # Without the lab CA the policy server is not trusted: no policy, level may.
    status, out, _ = cli(
        capsys, "policy", *lab(dns_lab), *PORT_10025, *sts,
        "-o", "smtp_mta_sts_enable=yes", "--json", "example.test",
    )  # fmt: skip
    data = json.loads(out)
    [outcome] = data["mta_sts"]
    assert (outcome["source"], outcome["failure"]) == ("none", "sts-webpki-invalid")
    assert {s["level"] for s in data["servers"]} == {"may"}


def test_policy_unreadable_sts_cafile_is_a_config_error(
    capsys: pytest.CaptureFixture[str], dns_lab: DnsLab, tmp_path: Path
) -> None:
    missing = tmp_path / "missing-ca.pem"
    status, out, err = cli(
        capsys, "policy", *lab(dns_lab), *PORT_10025, "-o", "smtp_mta_sts_enable=yes",
        "--sts-cafile", str(missing), "example.test",
    )  # fmt: skip
    assert (status, out) == (78, "")
    assert err == f"pyfix-smtp: error: --sts-cafile = '{missing}': No such file or directory\n"


# -- probe -----------------------------------------------------------------------------------------


def test_probe_postfix_starttls(
    capsys: pytest.CaptureFixture[str], postfix_smtpd: PostfixSmtpd, lab_certs: LabCerts
) -> None:
    nexthop = f"[{postfix_smtpd.host}]:{postfix_smtpd.starttls_port}"
    label = f"127.0.0.1[127.0.0.1]:{postfix_smtpd.starttls_port}"
    status, out, _ = cli(
        capsys, "probe", "-o", "smtp_helo_name=probe.example",
        "-o", "smtp_tls_fingerprint_digest=sha1", nexthop,
    )  # fmt: skip
    assert status == 0, out
    lines = out.splitlines()
    assert lines[:3] == [
        f"probe {label} (nexthop {nexthop}, TLS level may)",
        f"Connected to {label}",
        "< 220 mx.example.test ESMTP Postfix",
    ]
    sent = [line for line in lines if line.startswith("> ")]
    assert sent == ["> EHLO probe.example", "> STARTTLS", "> EHLO probe.example", "> QUIT"]
    assert "< 250-STARTTLS" in lines
    assert "< 220 2.0.0 Ready to start TLS" in lines
    assert lines[-1] == "< 221 2.0.0 Bye"
    # the chain as Postfix sends it (leaf + CA), fingerprints with the configured digest
    leaf = x509.load_der_x509_certificate(lab_certs.leaf_der)
    assert f"certificate chain sent by {label} (2):" in lines
    assert f"  depth=0 subject={leaf.subject.rfc4514_string()}" in lines
    assert f"          issuer={leaf.issuer.rfc4514_string()}" in lines
    assert f"          sha1 fingerprint={colon(leaf.fingerprint(hashes.SHA1()))}" in lines
    assert f"          sha1 fingerprint={colon(hashlib.sha1(lab_certs.ca_der).digest())}" in lines
    assert re.search(
        rf"^Untrusted TLS connection established to {re.escape(label)}: TLSv1\.[23] with cipher ",
        out,
        re.MULTILINE,
    )


@pytest.mark.parametrize(
    ("settings", "status", "verdict", "outcome"),
    [
        (
            ("smtp_tls_security_level=verify",),
            0,
            "Verified",
            "certificate check at level verify: verified by OpenSSL; matched name 127.0.0.1",
        ),
        (
            ("smtp_tls_security_level=secure", "smtp_tls_secure_cert_match=other.example"),
            EX_TEMPFAIL,
            "Trusted",
            "=> 4.7.5 Server certificate not verified",
        ),
        (
            (),
            0,
            "Trusted",  # at may, Postfix labels a chain that our CA file verifies
            "level may: the certificate need not match"
            " (chain trusted by smtp_tls_CAfile/CApath: yes)",
        ),
    ],
)
def test_probe_postfix_verdicts(
    capsys: pytest.CaptureFixture[str],
    postfix_smtpd: PostfixSmtpd,
    lab_certs: LabCerts,
    settings: tuple[str, ...],
    status: int,
    verdict: str,
    outcome: str,
) -> None:
    options = [x for s in settings for x in ("-o", s)]
    got, out, _ = cli(
        capsys, "probe", *options, "-o", f"smtp_tls_CAfile={lab_certs.ca_pem}",
        f"[127.0.0.1]:{postfix_smtpd.starttls_port}",
    )  # fmt: skip
    assert got == status, out
    assert f"\n{verdict} TLS connection established to 127.0.0.1[127.0.0.1]:" in out
    assert outcome in out.splitlines()


def test_probe_fingerprint_level(
    capsys: pytest.CaptureFixture[str], postfix_smtpd: PostfixSmtpd, lab_certs: LabCerts
) -> None:
    pin = colon(hashlib.sha256(lab_certs.leaf_der).digest())
    status, out, _ = cli(
        capsys, "probe",
        "-o", "smtp_tls_security_level=fingerprint",
        "-o", f"smtp_tls_fingerprint_cert_match={pin}",
        f"[127.0.0.1]:{postfix_smtpd.starttls_port}",
    )  # fmt: skip
    assert status == 0, out
    assert "\nVerified TLS connection established to 127.0.0.1[127.0.0.1]:" in out


def test_probe_encrypt_without_starttls(
    capsys: pytest.CaptureFixture[str], postfix_smtpd: PostfixSmtpd
) -> None:
    label = f"127.0.0.1[127.0.0.1]:{postfix_smtpd.plain_port}"
    status, out, _ = cli(
        capsys, "probe", "-o", "smtp_tls_security_level=encrypt",
        f"[127.0.0.1]:{postfix_smtpd.plain_port}",
    )  # fmt: skip
    assert status == EX_TEMPFAIL
    lines = out.splitlines()
    assert "< 250-STARTTLS" not in lines
    assert f"=> 4.7.4 TLS is required, but was not offered by host {label}" in lines
    assert lines[-2:] == ["> QUIT", "< 221 2.0.0 Bye"]


def test_probe_implicit_tls(
    capsys: pytest.CaptureFixture[str], postfix_smtpd: PostfixSmtpd
) -> None:
    status, out, _ = cli(
        capsys, "probe", "-o", "smtp_tls_wrappermode=yes", "-o", "smtp_tls_security_level=encrypt",
        f"[127.0.0.1]:{postfix_smtpd.tls_port}",
    )  # fmt: skip
    assert status == 0, out
    lines = out.splitlines()
    established = next(i for i, x in enumerate(lines) if "TLS connection established" in x)
    greeting = lines.index("< 220 mx.example.test ESMTP Postfix")
    assert established < greeting  # TLS from the first byte
    assert "> STARTTLS" not in lines


def test_probe_smtp_sink_has_no_starttls(
    capsys: pytest.CaptureFixture[str], smtp_sink: Sink
) -> None:
    nexthop = f"[{smtp_sink.host}]:{smtp_sink.port}"
    status, out, _ = cli(capsys, "probe", nexthop)
    assert status == 0
    lines = out.splitlines()
    assert "< 220 sink.example.test ESMTP" in lines
    assert "STARTTLS not offered: plaintext at level may" in lines
    assert lines[-2:] == ["> QUIT", "< 221 Bye"]
    status, out, _ = cli(capsys, "probe", "-o", "smtp_tls_security_level=encrypt", nexthop)
    assert status == EX_TEMPFAIL
    assert "=> 4.7.4 TLS is required, but was not offered by host" in out


def test_probe_moves_on_or_probes_all(capsys: pytest.CaptureFixture[str], smtp_sink: Sink) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = unused.getsockname()[1]
    nexthop = f"[127.0.0.1]:{dead}, [{smtp_sink.host}]:{smtp_sink.port}"
    status, out, _ = cli(capsys, "probe", nexthop)
    assert status == 0  # the first reachable server passed
    assert f"connect to 127.0.0.1[127.0.0.1]:{dead}: Connection refused" in out
    assert f"Connected to 127.0.0.1[127.0.0.1]:{smtp_sink.port}" in out
    # --all: every server; one was unreachable
    status, out, _ = cli(
        capsys, "probe", "--all", f"[{smtp_sink.host}]:{smtp_sink.port}, [127.0.0.1]:{dead}"
    )
    assert status == EX_TEMPFAIL
    assert out.startswith(f"probe 127.0.0.1[127.0.0.1]:{smtp_sink.port} ")
    assert f"\n\nprobe 127.0.0.1[127.0.0.1]:{dead} " in out  # probed after a good one


def test_probe_lmtp_dovecot_unix_socket_and_tcp(
    capsys: pytest.CaptureFixture[str], dovecot_lmtp: DovecotLmtp, lab_certs: LabCerts
) -> None:
    # UNIX socket: LHLO, and no opportunistic TLS there (Postfix smtp_connect_local()).
    status, out, _ = cli(
        capsys, "--lmtp", "probe", "-o", "lmtp_lhlo_name=probe.example",
        f"unix:{dovecot_lmtp.unix_socket}",
    )  # fmt: skip
    assert status == 0, out
    lines = out.splitlines()
    assert lines[0].endswith(
        f"[{dovecot_lmtp.unix_socket}] (nexthop unix:{dovecot_lmtp.unix_socket}, TLS level none)"
    )
    assert "> LHLO probe.example" in lines
    assert "> STARTTLS" not in lines
    assert "TLS level none: no STARTTLS" in lines
    # TCP: STARTTLS verified against the lab CA
    status, out, _ = cli(
        capsys, "--lmtp", "probe", "-o", "lmtp_tls_security_level=verify",
        "-o", f"lmtp_tls_CAfile={lab_certs.ca_pem}",
        f"inet:[{dovecot_lmtp.host}]:{dovecot_lmtp.port}",
    )  # fmt: skip
    assert status == 0, out
    assert "> STARTTLS" in out
    assert (
        f"\nVerified TLS connection established to 127.0.0.1[127.0.0.1]:{dovecot_lmtp.port}:" in out
    )


def test_probe_dane_through_the_lab(
    capsys: pytest.CaptureFixture[str], dns_lab: DnsLab, lab_certs: LabCerts
) -> None:
    # _10025._tcp.mx.example.test holds 3 1 1 and 2 0 1 for the lab certificate.
    certificates = Certificates(
        ca_pem=lab_certs.ca_pem.read_bytes(),
        chain_pem=lab_certs.server_pem.read_bytes(),
        key_pem=lab_certs.server_key.read_bytes(),
        names=("mx.example.test",),
    )
    try:
        server = SinkServer(port=10025, starttls=True, certificates=certificates).start()
    except OSError as exc:
        pytest.skip(f"port 10025 (named by the lab's TLSA records) is busy: {exc}")
    try:
        status, out, _ = cli(
            capsys, "probe", *lab(dns_lab), *DNSSEC,
            "-o", "smtp_tls_security_level=dane", "-o", "smtp_address_preference=ipv4",
            "[mx.example.test]:10025",
        )  # fmt: skip
    finally:
        server.stop()
    assert status == 0, out
    assert out.startswith(
        "probe mx.example.test[127.0.0.1]:10025 (nexthop [mx.example.test]:10025, TLS level dane)"
    )
    assert "SNI sent: mx.example.test" in out
    assert "\nVerified TLS connection established to mx.example.test[127.0.0.1]:10025:" in out


# -- send ---------------------------------------------------------------------------------


def _message(tmp_path: Path, subject: str) -> Path:
    path = tmp_path / "message.eml"
    path.write_bytes(f"From: a@example.org\nSubject: {subject}\n\nbody\n".encode())
    return path


def test_send_into_smtp_sink_dump(
    capsys: pytest.CaptureFixture[str], sink_factory: SinkFactory, tmp_path: Path
) -> None:
    sink = sink_factory.start(dump=True)
    assert sink.dump_dir is not None
    status, out, _ = cli(
        capsys, "send", "--from", "a@example.org", "--to", "b@example.test",
        "--to", "c@example.test", "--nexthop", f"[{sink.host}]:{sink.port}",
        str(_message(tmp_path, "cli to sink")),
    )  # fmt: skip
    assert status == 0
    lines = out.splitlines()
    assert [re.sub(r"delays?=[\d./]+, ", "", x) for x in lines] == [
        f"to=<b@example.test>, relay=127.0.0.1[127.0.0.1]:{sink.port}, tls=may:none,"
        " dsn=2.0.0, status=sent (250 2.0.0 Ok)",
        f"to=<c@example.test>, relay=127.0.0.1[127.0.0.1]:{sink.port}, tls=may:none,"
        " dsn=2.0.0,"
        " status=sent (250 2.0.0 Ok)",
        "summary: 2 recipient(s): 2 relayed",
    ]
    [dump] = [p for p in sink.dump_dir.rglob("*") if p.is_file()]
    data = dump.read_bytes()  # smtp-sink -d: the envelope as headers, LF line ends
    assert b"X-Mail-Args: <a@example.org>\n" in data
    assert b"X-Rcpt-Args: <b@example.test>\nX-Rcpt-Args: <c@example.test>\n" in data
    assert data.endswith(b"From: a@example.org\nSubject: cli to sink\n\nbody\n\n")


@pytest.mark.parametrize(
    ("flags", "status", "dsn"),
    [
        (["-r", "RCPT"], EX_TEMPFAIL, "dsn=4.3.0, status=deferred"),
        (["-f", "RCPT"], EX_UNAVAILABLE, "dsn=5.3.0, status=bounced"),
    ],
)
def test_send_rejected_by_smtp_sink(
    capsys: pytest.CaptureFixture[str],
    sink_factory: SinkFactory,
    tmp_path: Path,
    flags: list[str],
    status: int,
    dsn: str,
) -> None:
    sink = sink_factory.start(flags)
    got, out, _ = cli(
        capsys, "send", "--from", "a@example.org", "--to", "b@example.test",
        "--nexthop", f"[{sink.host}]:{sink.port}", str(_message(tmp_path, "refused")),
    )  # fmt: skip
    assert got == status
    assert dsn in out.splitlines()[0]


def test_send_to_postfix_per_recipient(
    capsys: pytest.CaptureFixture[str],
    postfix_smtpd: PostfixSmtpd,
    lab_certs: LabCerts,
    tmp_path: Path,
) -> None:
    subject = f"cli to postfix {uuid.uuid4()}"
    status, out, _ = cli(
        capsys, "send", "--from", "a@example.org",
        "--to", "ok@example.test", "--to", "temp-fail@example.test",
        "--to", "perm-fail@example.test",
        "--nexthop", f"[127.0.0.1]:{postfix_smtpd.starttls_port}",
        "-o", "smtp_tls_security_level=verify", "-o", f"smtp_tls_CAfile={lab_certs.ca_pem}",
        "-o", "smtp_tls_loglevel=1", str(_message(tmp_path, subject)),
    )  # fmt: skip
    assert status == EX_UNAVAILABLE  # a bounce outranks the deferral
    lines = out.splitlines()
    assert lines[0].startswith("Verified TLS connection established to 127.0.0.1[127.0.0.1]:")
    assert "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as " in lines[1]
    assert "dsn=4.2.0, status=deferred (host 127.0.0.1[127.0.0.1] said: 450 4.2.0" in lines[2]
    assert "dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1" in lines[3]
    assert lines[4] == "summary: 3 recipient(s): 1 relayed, 1 deferred, 1 bounced"
    # Postfix delivers to the maildir in the background
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = [m for m in postfix_smtpd.messages() if subject.encode() in m]
        if found:
            assert len(found) == 1
            assert b"Delivered-To: ok@example.test" in found[0]
            return
        time.sleep(0.05)
    pytest.fail(f"no message in {postfix_smtpd.maildir}; see {postfix_smtpd.maillog}")


def test_send_groups_recipients_by_domain_with_mx_lookups(
    capsys: pytest.CaptureFixture[str], dns_lab: DnsLab, tmp_path: Path
) -> None:
    # Both lab domains have MX 10 mx -> 127.0.0.1 (and ::1); one server takes both.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with SinkServer(port=port) as server:
        status, out, _ = cli(
            capsys, "send", *lab(dns_lab),
            "-o", f"smtp_tcp_port={port}", "-o", "smtp_address_preference=ipv4",
            "--from", "a@example.org",
            "--to", "x@example.test", "--to", "y@unsigned.test", "--to", "z@example.test",
            str(_message(tmp_path, "by domain")),
        )  # fmt: skip
        received = [m.recipients for m in server.messages]
    assert status == 0, out
    assert received == [("x@example.test", "z@example.test"), ("y@unsigned.test",)]
    lines = out.splitlines()
    assert lines[0].startswith(f"to=<x@example.test>, relay=mx.example.test[127.0.0.1]:{port}, ")
    assert lines[1].startswith(f"to=<z@example.test>, relay=mx.example.test[127.0.0.1]:{port}, ")
    # the second domain reuses the cached connection to the same address, as Postfix does
    assert re.match(
        rf"to=<y@unsigned\.test>, relay=\S+\[127\.0\.0\.1\]:{port}, conn_use=2, ", lines[2]
    )
    assert out.splitlines()[-1] == "summary: 3 recipient(s): 3 relayed"
