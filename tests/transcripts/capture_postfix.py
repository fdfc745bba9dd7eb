"""Record what real Postfix smtp(8)/lmtp(8) puts on the wire: tests/transcripts/postfix/*.json.

How the transcripts were captured (run as root; needs Debian's postfix)::

    .venv/bin/python -m tests.transcripts.capture_postfix [scenario ...]

1. A private Postfix instance is created in a temporary directory
   (``postfix -c DIR start``) with no listening services: only pickup,
   cleanup, qmgr and the smtp/lmtp delivery agents matter. Each scenario has
   its own recipient domain, routed by ``transport_maps`` to its own
   loopback address (``smtp:[127.0.0.N]:PORT`` or
   ``lmtp:inet:[127.0.0.N]:PORT``), so a failing scenario cannot throttle
   the next one.
2. For each scenario a small scripted SMTP/LMTP server listens there. It
   answers like Postfix smtpd would (replies buffered while pipelined input
   is waiting, flushed when the input buffer is empty) and records every
   byte: ``C`` entries are what the client sent between two server flushes,
   ``S`` entries are one flush.
3. A message is injected with ``sendmail -C DIR`` (DSN options, SMTPUTF8 ...
   from the scenario) and the script waits until the client hangs up.

The JSON files keep the Postfix version, the scenario, the envelope that
was injected and the steps. tests/test_connection_postfix.py replays the
server side against ``ClientConnection`` and requires byte-identical
client output, write group by write group.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "postfix"
POSTFIX = "/usr/sbin/postfix"
SENDMAIL = "/usr/sbin/sendmail"
POSTCONF = "/usr/sbin/postconf"
SENDER = "sender@bounces.test"  # bounces go to discard: (transport_maps)
GREETING = "220 capture.example.test ESMTP"
DEFAULT_EHLO = ("PIPELINING", "SIZE 10240000", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN")

PLAIN_MESSAGE = (
    b"Subject: capture\n"
    b"Message-ID: <capture@example.test>\n"
    b"Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
    b"From: sender@bounces.test\n"
    b"\n"
    b"line one\n"
    b".leading dot\n"
    b"last line\n"
)
EIGHTBIT_MESSAGE = (
    b"Subject: capture 8bit\n"
    b"Message-ID: <capture8@example.test>\n"
    b"Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
    b"From: sender@bounces.test\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: 8bit\n"
    b"\n"
    b"caf\xc3\xa9 cr\xc3\xa8me\n"
)


@dataclass
class Scenario:
    """One capture: server behaviour plus the message Postfix is asked to send."""

    name: str
    description: str
    recipients: list[str]
    ehlo: tuple[str, ...] | None = DEFAULT_EHLO  # None: EHLO is refused
    lmtp: bool = False
    sendmail_args: list[str] = field(default_factory=list)
    message: bytes = PLAIN_MESSAGE
    mail_reply: str = "250 2.1.0 Ok"
    rcpt_replies: dict[int, str] = field(default_factory=dict)
    data_reply: str | None = None  # None: 354, or 554 without accepted recipients
    dot_replies: list[str] = field(default_factory=list)  # LMTP: one per recipient
    dot_reply: str = "250 2.0.0 Ok: queued as CAPTURE"
    main_cf: dict[str, str] = field(default_factory=dict)
    greeting: str | None = None  # instead of the 220 banner
    ehlo_reply: str | None = None  # instead of the EHLO/LHLO keywords


def _domain(name: str) -> str:
    return f"{name.replace('_', '-')}.example"


SCENARIOS = [
    Scenario(
        "pipelined_plain",
        "PIPELINING server, one recipient: EHLO, then MAIL+RCPT+DATA in one write, "
        "content + . + QUIT in one write",
        ["rcpt@pipelined-plain.example"],
    ),
    Scenario(
        "pipelined_dsn",
        "DSN: ENVID (xtext), RET, NOTIFY and ORCPT=rfc822 on every RCPT",
        ["one@pipelined-dsn.example", "two+tag@pipelined-dsn.example"],
        sendmail_args=["-N", "success,delay,failure", "-V", "env+id=x", "-R", "hdrs"],
    ),
    Scenario(
        "no_dsn_server",
        "server without DSN: no ENVID, RET, NOTIFY or ORCPT",
        ["rcpt@no-dsn-server.example"],
        ehlo=("PIPELINING", "SIZE 10240000", "8BITMIME"),
        sendmail_args=["-N", "failure", "-V", "envid1", "-R", "full"],
    ),
    Scenario(
        "no_pipelining",
        "server without PIPELINING: one command per write",
        ["a@no-pipelining.example", "b@no-pipelining.example"],
        ehlo=("SIZE 10240000", "8BITMIME", "DSN"),
    ),
    Scenario(
        "some_rcpt_rejected",
        "second of three recipients rejected; the others get the message",
        [
            "a@some-rcpt-rejected.example",
            "b@some-rcpt-rejected.example",
            "c@some-rcpt-rejected.example",
        ],
        rcpt_replies={1: "550 5.1.1 <b@some-rcpt-rejected.example>: Recipient address rejected"},
    ),
    Scenario(
        "all_rcpt_rejected_pipelined",
        "PIPELINING: every RCPT rejected, DATA already sent and refused: RSET+QUIT",
        ["a@all-rcpt-rejected-pipelined.example", "b@all-rcpt-rejected-pipelined.example"],
        rcpt_replies={0: "550 5.1.1 no such user", 1: "450 4.2.1 try later"},
    ),
    Scenario(
        "all_rcpt_rejected_no_pipelining",
        "no PIPELINING: every RCPT rejected, so RSET instead of DATA",
        ["a@all-rcpt-rejected-no-pipelining.example"],
        ehlo=("SIZE 10240000", "8BITMIME"),
        rcpt_replies={0: "550 5.1.1 no such user"},
    ),
    Scenario(
        "mail_rejected_pipelined",
        "PIPELINING: MAIL rejected; RCPT and DATA replies ignored; RSET+QUIT",
        ["a@mail-rejected-pipelined.example"],
        mail_reply="553 5.7.1 <sender@bounces.test>: Sender address rejected",
    ),
    Scenario(
        "mail_rejected_no_pipelining",
        "no PIPELINING: MAIL rejected, so RSET instead of RCPT",
        ["a@mail-rejected-no-pipelining.example"],
        ehlo=("SIZE 10240000",),
        mail_reply="451 4.3.0 try again",
    ),
    Scenario(
        "data_rejected",
        "DATA refused after an accepted RCPT: RSET+QUIT",
        ["a@data-rejected.example"],
        data_reply="554 5.5.1 Error: no valid recipients",
    ),
    Scenario(
        "dot_rejected",
        "end of data refused with a multi-line reply",
        ["a@dot-rejected.example"],
        dot_reply="550-5.7.1 first line of the reason\r\n550 5.7.1 second line",
    ),
    Scenario(
        "helo_fallback",
        "EHLO refused: HELO, then no ESMTP parameters at all",
        ["a@helo-fallback.example"],
        ehlo=None,
        sendmail_args=["-N", "failure"],
    ),
    Scenario(
        "eightbit",
        "declared 8bit message to an 8BITMIME server: BODY=8BITMIME",
        ["a@eightbit.example"],
        message=EIGHTBIT_MESSAGE,
    ),
    Scenario(
        "eightbit_no_8bitmime",
        "declared 8bit message to a server without 8BITMIME: no SIZE (MIME downgrade)",
        ["a@eightbit-no-8bitmime.example"],
        ehlo=("PIPELINING", "SIZE 10240000", "DSN"),
        message=EIGHTBIT_MESSAGE,
    ),
    Scenario(
        "many_recipients",
        "200 recipients with PIPELINING: MAIL and RCPTs up to 4096 octets per write",
        [f"recipient{i:03d}@many-recipients.example" for i in range(200)],
    ),
    Scenario(
        "size_too_big",
        "server SIZE limit below the message size: no MAIL, no QUIT",
        ["a@size-too-big.example"],
        ehlo=("PIPELINING", "SIZE 100", "8BITMIME"),
    ),
    Scenario(
        "smtputf8",
        "UTF-8 recipient via sendmail (smtputf8_autodetect_classes makes it a "
        "SMTPUTF8 request), server offers SMTPUTF8",
        ["j\u00f6rg@smtputf8.example"],
        ehlo=("PIPELINING", "SIZE 10240000", "8BITMIME", "DSN", "SMTPUTF8"),
    ),
    Scenario(
        "xforward",
        "smtp_send_xforward_command = yes and a server that offers XFORWARD: a local "
        "submission has no client attributes: only SOURCE=LOCAL",
        ["a@xforward.example"],
        ehlo=(
            "PIPELINING",
            "SIZE 10240000",
            "8BITMIME",
            "XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT",
        ),
    ),
    Scenario(
        "greeting_421",
        "greeting 421: the session ends; QUIT unless the stream already saw EOF "
        "(smtp_connect.c: smtp_helo() failed, smtp_quit())",
        ["a@greeting-421.example"],
        greeting="421 4.3.2 capture.example.test Service not available",
    ),
    Scenario(
        "ehlo_421",
        "EHLO answered 421: no HELO fallback, the session ends with QUIT",
        ["a@ehlo-421.example"],
        ehlo_reply="421 4.7.0 capture.example.test Error: too many errors",
    ),
    Scenario(
        "lmtp_partial",
        "LMTP: three recipients, one rejected at RCPT, one failing after the data",
        ["a@lmtp-partial.example", "b@lmtp-partial.example", "c@lmtp-partial.example"],
        lmtp=True,
        ehlo=("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"),
        rcpt_replies={1: "550 5.1.1 <b@lmtp-partial.example> User doesn't exist"},
        dot_replies=[
            "250 2.0.0 <a@lmtp-partial.example> Saved",
            "552 5.2.2 <c@lmtp-partial.example> Quota exceeded",
        ],
    ),
]


class CaptureServer:
    """A scripted SMTP/LMTP server that records both directions."""

    def __init__(self, scenario: Scenario, address: tuple[str, int]) -> None:
        self.scenario = scenario
        self.listener = socket.create_server(address)
        self.listener.settimeout(60)
        self.steps: list[list[str]] = []
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _record(self, direction: str, data: bytes) -> None:
        text = data.decode("utf-8", "surrogateescape")
        if self.steps and self.steps[-1][0] == direction:
            self.steps[-1][1] += text
        else:
            self.steps.append([direction, text])

    def _run(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(60)
                self._session(conn)
        except BaseException as exc:
            self.error = exc
        finally:
            self.listener.close()
            self.done.set()

    def _session(self, conn: socket.socket) -> None:
        sc = self.scenario
        buf = bytearray()
        out: list[bytes] = []

        def flush() -> None:
            if out:
                data = b"".join(out)
                out.clear()
                self._record("S", data)
                conn.sendall(data)

        def reply(text: str) -> None:
            out.append(text.encode() + b"\r\n")

        if sc.greeting is not None:
            reply(sc.greeting)
        else:
            reply(GREETING if not sc.lmtp else "220 capture.example.test LMTP")
        mail_ok = False
        accepted = 0
        rcpt_index = 0
        in_data = False
        quit_seen = False
        while True:
            if in_data:
                end = buf.find(b"\r\n.\r\n")
                start_dot = buf.startswith(b".\r\n")
                if end < 0 and not start_dot:
                    line = None
                else:
                    cut = 3 if start_dot else end + 5
                    del buf[:cut]
                    in_data = False
                    if sc.lmtp:
                        for i in range(accepted):
                            reply(sc.dot_replies[i] if i < len(sc.dot_replies) else "250 2.0.0 Ok")
                    else:
                        reply(sc.dot_reply)
                    mail_ok = False
                    accepted = 0
                    rcpt_index = 0
                    continue
            else:
                nl = buf.find(b"\r\n")
                line = None if nl < 0 else bytes(buf[:nl])
                if line is not None:
                    del buf[: nl + 2]
            if line is None:
                flush()
                if quit_seen:
                    return
                data = conn.recv(65536)
                if not data:
                    return
                self._record("C", data)
                buf += data
                continue
            verb = line.split(b" ", 1)[0].upper()
            if verb in (b"EHLO", b"LHLO"):
                if sc.ehlo_reply is not None:
                    reply(sc.ehlo_reply)
                elif sc.ehlo is None:
                    reply("502 5.5.2 Error: command not recognized")
                else:
                    lines = ["capture.example.test", *sc.ehlo]
                    for i, kw in enumerate(lines):
                        reply(f"250{'-' if i < len(lines) - 1 else ' '}{kw}")
            elif verb == b"HELO":
                reply("250 capture.example.test")
            elif verb == b"XFORWARD":
                reply("250 2.0.0 Ok")
            elif verb == b"MAIL":
                reply(sc.mail_reply)
                mail_ok = sc.mail_reply.startswith("2")
            elif verb == b"RCPT":
                if not mail_ok:
                    reply("503 5.5.1 Error: need MAIL command")
                else:
                    text = sc.rcpt_replies.get(rcpt_index, "250 2.1.5 Ok")
                    rcpt_index += 1
                    if text.startswith("2"):
                        accepted += 1
                    reply(text)
            elif verb == b"DATA":
                if not mail_ok:
                    reply("503 5.5.1 Error: need RCPT command")
                elif sc.data_reply is not None:
                    reply(sc.data_reply)
                elif accepted == 0:
                    reply("554 5.5.1 Error: no valid recipients")
                else:
                    reply("354 End data with <CR><LF>.<CR><LF>")
                    in_data = True
            elif verb == b"RSET":
                mail_ok = False
                accepted = rcpt_index = 0
                reply("250 2.0.0 Ok")
            elif verb == b"QUIT":
                reply("221 2.0.0 Bye")
                quit_seen = True
            else:
                reply("502 5.5.2 Error: command not recognized")


MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def _postfix_version() -> str:
    out = subprocess.run([POSTCONF, "-d", "-h", "mail_version"], capture_output=True, text=True)
    return out.stdout.strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(base: Path, port: int, scenarios: list[tuple[Scenario, str]]) -> Path:
    base.chmod(0o755)  # the postfix user must reach the queue directory
    etc = base / "etc"
    etc.mkdir(parents=True)
    (base / "spool").mkdir()
    (base / "data").mkdir()
    shutil.chown(base / "data", "postfix")
    transport = ", ".join(
        f"{_domain(sc.name)}={'lmtp:inet' if sc.lmtp else 'smtp'}:[{ip}]:{port}"
        for sc, ip in scenarios
    )
    main_cf = {
        "compatibility_level": "3.6",
        "queue_directory": str(base / "spool"),
        "data_directory": str(base / "data"),
        "command_directory": "/usr/sbin",
        "daemon_directory": "/usr/lib/postfix/sbin",
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        "myhostname": "client.example.test",
        "mydomain": "example.test",
        "mydestination": "",
        "inet_interfaces": "loopback-only",
        "inet_protocols": "ipv4",
        "alias_maps": "",
        "local_recipient_maps": "",
        "maillog_file": str(base / "maillog"),
        "maillog_file_prefixes": str(base),
        "transport_maps": "inline:{bounces.test=discard:, " + transport + "}",
        "smtp_tls_security_level": "none",
        "smtputf8_enable": "yes",
        "smtp_address_preference": "ipv4",
        "smtp_destination_recipient_limit": "1000",
        "smtp_send_xforward_command": "yes",
    }
    for sc, _ in scenarios:
        main_cf.update(sc.main_cf)
    (etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main_cf.items()))
    (etc / "master.cf").write_text(MASTER_CF)
    return etc


def capture(selected: list[Scenario]) -> None:
    if os.geteuid() != 0:
        sys.exit("capture_postfix: run as root (a private Postfix instance needs it)")
    version = _postfix_version()
    port = _free_port()
    with_ips = [(sc, f"127.0.0.{10 + i}") for i, sc in enumerate(selected)]
    base = Path(tempfile.mkdtemp(prefix="pyfix-capture-"))
    etc = _write_config(base, port, with_ips)
    subprocess.run([POSTFIX, "-c", str(etc), "start"], check=True, capture_output=True)
    OUT_DIR.mkdir(exist_ok=True)
    try:
        for sc, ip in with_ips:
            server = CaptureServer(sc, (ip, port))
            argv = [SENDMAIL, "-C", str(etc), "-f", SENDER, *sc.sendmail_args, *sc.recipients]
            subprocess.run(argv, input=sc.message, check=True)
            if not server.done.wait(90):
                raise RuntimeError(f"{sc.name}: no session within 90 s (see {base}/maillog)")
            if server.error is not None:
                raise RuntimeError(f"{sc.name}: capture server failed") from server.error
            record = {
                "scenario": sc.name,
                "description": sc.description,
                "captured_with": f"Postfix {version} {'lmtp' if sc.lmtp else 'smtp'}(8), "
                "tests/transcripts/capture_postfix.py",
                "myhostname": "client.example.test",
                "lmtp": sc.lmtp,
                "sender": SENDER,
                "recipients": sc.recipients,
                "sendmail_args": sc.sendmail_args,
                "steps": server.steps,
            }
            path = OUT_DIR / f"{sc.name}.json"
            path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
            print(f"captured {path.relative_to(HERE.parent.parent)}: {len(server.steps)} steps")
            time.sleep(0.2)
    finally:
        subprocess.run([POSTFIX, "-c", str(etc), "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="scenarios to capture (default: all)")
    args = parser.parse_args()
    by_name = {sc.name: sc for sc in SCENARIOS}
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        sys.exit(f"unknown scenarios: {', '.join(unknown)}; known: {', '.join(by_name)}")
    capture([by_name[n] for n in args.names] if args.names else SCENARIOS)


if __name__ == "__main__":
    main()
