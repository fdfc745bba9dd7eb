"""The ``pyfix-smtp`` command line without external peers: parsing, errors, exit statuses.

The CLI runs in-process (``main(argv)`` with stdout/stderr captured) except
for one run as a real subprocess. Destinations here need no DNS (address
literals, LMTP UNIX sockets) and servers come from :mod:`pyfix_smtp.testing`.
Tests against the DNS lab, Postfix and smtp-sink are in test_cli_lab.py.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pyfix_smtp.cli import main
from pyfix_smtp.cli.common import (
    EX_CONFIG,
    EX_NOINPUT,
    EX_TEMPFAIL,
    EX_UNAVAILABLE,
    EX_USAGE,
    UsageError,
    parse_override,
    parse_resolver,
)
from pyfix_smtp.cli.send import exit_status, group_by_domain
from pyfix_smtp.delivery.report import Action, RecipientOutcome
from pyfix_smtp.protocol.envelope import Recipient
from pyfix_smtp.testing import SinkServer

ROOT = Path(__file__).resolve().parent.parent


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``pyfix-smtp argv`` in-process: (status, stdout, stderr)."""
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# -- a real subprocess, once -------------------------------------------------------


def test_python_m_help_in_a_subprocess() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pyfix_smtp", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: pyfix-smtp ")
    for command in ("plan", "policy", "probe", "send"):
        assert f"    {command} " in done.stdout
    for option in ("--config", "-o NAME=VALUE", "--lmtp", "--resolver HOST[:PORT]", "--verbose"):
        assert option in done.stdout
    assert "78 the\nconfiguration is unusable" in done.stdout


def test_help_imports_no_heavy_layer() -> None:
    # Start-up stays fast: --help loads neither dnspython nor ssl nor the delivery core.
    code = (
        "import sys, contextlib, io\n"
        "from pyfix_smtp.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['--help'])\n"
        "print(sorted(m for m in ('dns.resolver', 'ssl', 'pyfix_smtp.delivery.core',"
        " 'pyfix_smtp.transport.sync') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "[]"


# -- small parsers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", None)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("ns.example:53", ("ns.example", 53)),
        ("::1", ("::1", None)),
        ("[::1]:5353", ("::1", 5353)),
        ("[fd00::1]", ("fd00::1", None)),
        (" 10.0.0.1:1 ", ("10.0.0.1", 1)),
    ],
)
def test_parse_resolver(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_resolver(text) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (":53", "empty host"),
        ("[::1", "expected [ADDRESS]:PORT"),
        ("[::1]x", "expected [ADDRESS]:PORT"),
        ("host:0", "bad port '0'"),
        ("host:65536", "bad port '65536'"),
        ("host:dns", "bad port 'dns'"),
    ],
)
def test_parse_resolver_rejects(text: str, complaint: str) -> None:
    with pytest.raises(UsageError, match=re.escape(f"--resolver {text!r}: {complaint}")):
        parse_resolver(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("smtp_tcp_port=2525", ("smtp_tcp_port", "2525")),
        (" myhostname = a.example ", ("myhostname", "a.example")),
        ("smtp_tls_policy_maps=inline:{a=b}", ("smtp_tls_policy_maps", "inline:{a=b}")),
        ("relayhost=", ("relayhost", "")),
    ],
)
def test_parse_override(text: str, expected: tuple[str, str]) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["relayhost", "=value", " =x"])
def test_parse_override_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="expected name=value"):
        parse_override(text)


def _outcome(action: Action) -> RecipientOutcome:
    status = {"relayed": "2.0.0", "delivered": "2.0.0", "deferred": "4.2.0"}
    return RecipientOutcome("r@example.org", action, status.get(action.value, "5.1.1"), "x")


@pytest.mark.parametrize(
    ("actions", "status"),
    [
        ([Action.RELAYED], 0),
        ([Action.DELIVERED, Action.RELAYED], 0),
        ([Action.RELAYED, Action.DEFERRED], EX_TEMPFAIL),
        ([Action.DEFERRED], EX_TEMPFAIL),
        ([Action.BOUNCED], EX_UNAVAILABLE),
        ([Action.DEFERRED, Action.BOUNCED, Action.RELAYED], EX_UNAVAILABLE),
    ],
)
def test_send_exit_status(actions: list[Action], status: int) -> None:
    assert exit_status([_outcome(a) for a in actions]) == status


def test_group_by_domain_keeps_order_and_routes_literals() -> None:
    rcpts = [
        Recipient("a@Example.ORG"),
        Recipient("b@other.test"),
        Recipient("c@example.org"),
        Recipient("d@[192.0.2.7]"),
        Recipient("e@bücher.example"),
    ]
    groups = group_by_domain(rcpts)
    assert list(groups) == ["example.org", "other.test", "[192.0.2.7]", "xn--bcher-kva.example"]
    assert [r.address.unquoted for r in groups["example.org"]] == [
        "a@Example.ORG",
        "c@example.org",
    ]


# -- errors: one line, the right status ---------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (
            ["plan", "-o", "smtp_connect_timeout=abc", "[192.0.2.1]"],
            EX_CONFIG,
            "smtp_connect_timeout = 'abc': bad time value",
        ),
        (
            ["-o", "smtp_conect_timeout=1", "plan", "[192.0.2.1]"],
            EX_CONFIG,
            "did you mean 'smtp_connect_timeout'?",
        ),
        (
            ["plan", "-o", "smtp_tls_security_level=bogus", "[192.0.2.1]"],
            EX_CONFIG,
            "smtp_tls_security_level = 'bogus'",
        ),
        (["plan", "-o", "relayhost", "[192.0.2.1]"], EX_USAGE, "-o 'relayhost': expected"),
        (["plan", "[192.0.2.1"], EX_USAGE, 'missing "]"'),
        (["plan", "[192.0.2.1]:99999"], EX_USAGE, "99999"),
        (["plan", "--resolver", "[::1", "x.test"], EX_USAGE, "--resolver '[::1'"),
        (["-c", "/nonexistent/main.cf", "plan", "x.test"], EX_CONFIG, "cannot read"),
        (
            ["send", "--from", "a b@example.org", "--to", "c@example.org", "--nexthop", "[::1]"],
            EX_USAGE,
            "not allowed in unquoted local part",
        ),
        (
            ["send", "--from", "a@example.org", "--to", "c@@example.org"],
            EX_USAGE,
            "'c@@example.org'",
        ),
        (
            ["send", "--from", "a@example.org", "--to", "postmaster"],
            EX_USAGE,
            "recipient 'postmaster' has no domain: give --nexthop",
        ),
        (
            ["send", "--from", "a@example.org", "--to", "c@example.org", "--nexthop", "[x"],
            EX_USAGE,
            'missing "]"',
        ),
    ],
)
def test_errors_are_one_line_with_the_right_status(
    capsys: pytest.CaptureFixture[str], argv: list[str], status: int, message: str
) -> None:
    got, out, err = cli(capsys, *argv)
    assert got == status
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("pyfix-smtp: error: ")
    assert message in err
    assert "Traceback" not in err


def test_lmtp_parameter_in_an_smtp_config_is_a_config_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = cli(capsys, "plan", "-o", "lmtp_lhlo_name=x.example", "[192.0.2.1]")
    assert status == EX_CONFIG
    assert "lmtp_lhlo_name" in err
    assert "configures the LMTP client" in err


def test_argparse_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capsys, "plan")
    assert status == EX_USAGE
    assert "the following arguments are required: DESTINATION" in err
    status, _, err = cli(capsys, "send", "--to", "a@example.org")
    assert status == EX_USAGE
    assert "--from" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from pyfix_smtp import __version__

    status, out, _ = cli(capsys, "--version")
    assert (status, out) == (0, f"pyfix-smtp {__version__}\n")


def test_missing_message_file_is_ex_noinput(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, _ = cli(
        capsys,
        "send",
        "--from", "a@example.org",
        "--to", "b@example.org",
        "--nexthop", "[127.0.0.1]:9",
        str(tmp_path / "missing.eml"),
    )  # fmt: skip
    assert status == EX_NOINPUT
    assert out == f"cannot read message {tmp_path / 'missing.eml'}: No such file or directory\n"


# -- plan without DNS -------------------------------------------------------------------------


def test_plan_of_an_address_literal(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capsys, "plan", "[192.0.2.1]:2525")
    assert status == 0
    assert out.splitlines() == [
        "nexthop [192.0.2.1]:2525: host lookup, no MX",
        "  #  pref  host       address    port",
        "  1  0     192.0.2.1  192.0.2.1  2525",
    ]


def test_plan_json_of_a_list_with_a_fallback_relay(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(
        capsys, "plan", "--json", "-o", "smtp_fallback_relay=[192.0.2.9]:26", "[192.0.2.1]"
    )
    assert status == 0
    data = json.loads(out)
    assert data["nexthop"] == "[192.0.2.1]"
    assert data["protocol"] == "smtp"
    assert data["failure"] is None
    sites = data["sites"]
    assert [s["nexthop"] for s in sites] == ["[192.0.2.1]", "[192.0.2.9]:26"]
    assert [s["is_fallback"] for s in sites] == [False, True]
    assert [(c["address"], c["port"], c["origin"]) for s in sites for c in s["candidates"]] == [
        ("192.0.2.1", 25, "numeric"),
        ("192.0.2.9", 26, "numeric"),
    ]
    assert sites[1]["candidates"][0]["from_fallback"] is True


def test_plan_of_a_local_address_on_port_25_loops_back(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Postfix's best-MX-is-myself check: 127.0.0.1 is one of our inet_interfaces.
    status, out, _ = cli(capsys, "plan", "[127.0.0.1]")
    assert status == EX_UNAVAILABLE
    assert "no server: 5.4.6 mail for 127.0.0.1 loops back to myself" in out
    status, out, _ = cli(capsys, "plan", "-o", "inet_interfaces=192.0.2.200", "[127.0.0.1]")
    assert status == 0


def test_plan_lmtp_unix_socket_and_main_cf_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # -c takes a main.cf or, as Postfix's -c, the directory that holds it.
    (tmp_path / "main.cf").write_text("myhostname = lmtp-client.example\n")
    status, out, _ = cli(capsys, "--lmtp", "-c", str(tmp_path), "plan", "unix:/run/lmtp")
    assert status == 0
    assert out.splitlines() == [
        "nexthop unix:/run/lmtp: UNIX-domain socket",
        "  #  pref  host                 address    port",
        "  1  0     lmtp-client.example  /run/lmtp  -",
    ]


def test_lmtp_names_configure_the_lmtp_client(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(
        capsys, "--lmtp", "plan", "--json", "-o", "lmtp_tcp_port=2424", "inet:[192.0.2.1]"
    )
    assert status == 0
    [site] = json.loads(out)["sites"]
    assert (site["nexthop"], site["port"], site["loop_detection"]) == ("[192.0.2.1]", 2424, False)


def test_o_overrides_main_cf_in_order(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    main_cf = tmp_path / "main.cf"
    main_cf.write_text("smtp_tcp_port = 2525\n")
    status, out, _ = cli(capsys, "-c", str(main_cf), "plan", "--json", "[192.0.2.1]")
    assert json.loads(out)["sites"][0]["port"] == 2525
    status, out, _ = cli(
        capsys, "-c", str(main_cf), "-o", "smtp_tcp_port=26", "plan", "--json",
        "-o", "smtp_tcp_port=submission", "[192.0.2.1]",
    )  # fmt: skip
    assert status == 0
    assert json.loads(out)["sites"][0]["port"] == 587
    # -o before and after the subcommand both count
    status, out, _ = cli(
        capsys, "-o", "smtp_tcp_port=26", "plan", "-o", "smtp_fallback_relay=[192.0.2.9]",
        "--json", "[192.0.2.1]",
    )  # fmt: skip
    sites = json.loads(out)["sites"]
    assert [(s["nexthop"], s["port"]) for s in sites] == [("[192.0.2.1]", 26), ("[192.0.2.9]", 26)]


# -- policy without DNS -----------------------------------------------------------------------


def test_policy_explains_a_policy_table_entry(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(
        capsys,
        "policy",
        "-o", "smtp_tls_policy_maps=inline:{[192.0.2.1]:587=encrypt}",
        "[192.0.2.1]:587",
    )  # fmt: skip
    assert status == 0
    assert out.splitlines()[:4] == [
        "TLS policy for 192.0.2.1 port 587 (nexthop [192.0.2.1]:587):",
        "  - smtp_tls_security_level: global level may",
        "  - smtp_tls_policy_maps: '[192.0.2.1]:587' -> 'encrypt'",
        "  - policy: site level encrypt",
    ]
    assert "=> level encrypt" in out
    assert out.rstrip().endswith("addresses: 192.0.2.1")


def test_policy_json_bad_entry_skips_the_server(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(
        capsys,
        "policy",
        "--json",
        "-o", "smtp_tls_policy_maps=inline:{[192.0.2.1]:587=bogus}",
        "[192.0.2.1]:587",
    )  # fmt: skip
    assert status == EX_TEMPFAIL  # no usable server
    [server] = json.loads(out)["servers"]
    assert server["skip"] is True
    assert server["failure"] == {
        "status": "4.7.5",
        "reason": "client TLS configuration problem",
        "soft": True,
    }
    assert server["addresses"] == ["192.0.2.1"]
    assert 'invalid security level "bogus"' in server["reasons"][-1]["text"]


# -- probe and send with pyfix_smtp.testing.SinkServer ----------------------------------------


def test_probe_sink_server_with_starttls_verify(capsys: pytest.CaptureFixture[str]) -> None:
    with SinkServer(starttls=True) as server:
        status, out, _ = cli(
            capsys,
            "probe",
            "-o", "smtp_tls_security_level=verify",
            "-o", f"smtp_tls_CAfile={server.ca_file}",
            "-o", "smtp_helo_name=probe.example",
            server.nexthop,
        )  # fmt: skip
        commands = server.sessions[0].commands
    assert status == 0, out
    assert commands == ["EHLO probe.example", "STARTTLS", "EHLO probe.example", "QUIT"]
    assert server.messages == []  # no mail transaction
    assert f"Verified TLS connection established to 127.0.0.1[127.0.0.1]:{server.port}:" in out
    assert "certificate check at level verify: verified by OpenSSL; matched name 127.0.0.1" in out


def test_send_from_a_pipe_on_stdin_to_sink_server(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Pipe(io.RawIOBase):
        """A non-seekable byte stream, like a shell pipe."""

        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            chunk = self.data.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    body = b"From: a@example.org\nSubject: pipe\n\n.leading dot\nline\n"
    stdin = io.TextIOWrapper(io.BufferedReader(Pipe(body)))
    monkeypatch.setattr(sys, "stdin", stdin)
    script = {"RCPT": lambda c: "550 5.1.1 No such user" if "<gone@" in c.argument else None}
    with SinkServer(script=script) as server:
        status, out, _ = cli(
            capsys,
            "send",
            "--from", "a@example.org",
            "--to", "b@example.org",
            "--to", "gone@example.org",
            "--nexthop", server.nexthop,
            "--queue-id", "4CLI1",
        )  # fmt: skip
        [message] = server.messages
    assert status == EX_UNAVAILABLE
    assert message.recipients == ("b@example.org",)
    assert (
        message.content == b"From: a@example.org\r\nSubject: pipe\r\n\r\n.leading dot\r\nline\r\n"
    )
    lines = out.splitlines()
    assert lines[0].startswith(
        f"4CLI1: to=<b@example.org>, relay=127.0.0.1[127.0.0.1]:{server.port}, delay="
    )
    assert lines[0].endswith(", dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 0000000001)")
    assert lines[1].startswith("4CLI1: to=<gone@example.org>, relay=127.0.0.1[127.0.0.1]:")
    assert lines[1].endswith(
        ", dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 No such user"
        " (in reply to RCPT TO command))"
    )
    assert lines[2] == "summary: 2 recipient(s): 1 relayed, 1 bounced"
    assert len(lines) == 3
