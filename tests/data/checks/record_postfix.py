"""Record what Postfix's smtp(8) sends with header/body checks and generic maps.

Run as root on a machine with Debian's Postfix (see PEERS.md)::

    .venv/bin/python tests/data/checks/record_postfix.py

Each scenario below submits ``postfix/<name>.msg`` with sendmail(1) to a
private Postfix instance whose transport table sends the recipient domain to
an smtp(8) service with the scenario's ``-o`` settings (tables from this
directory), relaying to a small capturing server. The capture (everything
after ``DATA`` up to the final ``.``, minus the ``Received:`` header pickup
adds) is written to ``postfix/<name>.wire``; the MAIL/RCPT commands and the
smtp(8) log lines go to ``postfix/cases.json``. The messages were written so
that cleanup(8) leaves them as they are (fully qualified addresses, Date and
Message-Id present). ``tests/test_header_checks_postfix.py`` replays them.
"""

from __future__ import annotations

import json
import re
import socketserver
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from tests.peers import free_port  # noqa: E402
from tests.peers.postfix_client import start_postfix_client  # noqa: E402

CHECKS = {
    "smtp_header_checks": "header_checks.regexp",
    "smtp_mime_header_checks": "mime_header_checks.regexp",
    "smtp_nested_header_checks": "nested_header_checks.regexp",
    "smtp_body_checks": "body_checks.regexp",
}
DOWNGRADE = {
    "smtp_header_checks": "downgrade_header_checks.regexp",
    "smtp_mime_header_checks": "downgrade_mime_header_checks.regexp",
    "smtp_body_checks": "downgrade_body_checks.regexp",
}

#: name, message, recipient domain, tables (parameter -> file), other -o settings,
#: sender, recipients (local parts), server offers 8BITMIME
SCENARIOS: list[dict[str, object]] = [
    {"name": "all-classes", "message": "all-classes", "domain": "classes.test", "tables": CHECKS},
    {
        "name": "header-only",
        "message": "all-classes",
        "domain": "header.test",
        "tables": {"smtp_header_checks": "header_checks.regexp"},
    },
    {
        "name": "body-only",
        "message": "all-classes",
        "domain": "body.test",
        "tables": {"smtp_body_checks": "body_checks.regexp"},
    },
    {
        "name": "downgrade-leaf",
        "message": "downgrade-leaf",
        "domain": "leaf.test",
        "tables": DOWNGRADE,
        "eightbit": False,
    },
    {
        "name": "downgrade-multipart",
        "message": "downgrade-multipart",
        "domain": "multi.test",
        "tables": DOWNGRADE,
        "eightbit": False,
    },
    {
        "name": "no-downgrade-leaf",
        "message": "downgrade-leaf",
        "domain": "leaf8.test",
        "tables": DOWNGRADE,
    },
    {
        "name": "generic",
        "message": "generic",
        "domain": "generic.test",
        "tables": {"smtp_generic_maps": "generic.texthash"},
        "sender": "sender+x@pyfix.test",
        "rcpts": ["r1", "r1+ext", "r2"],
    },
    {
        "name": "generic-propagate",
        "message": "generic",
        "domain": "propagate.test",
        "tables": {"smtp_generic_maps": "generic.texthash"},
        "opts": {"propagate_unmatched_extensions": "canonical,virtual,generic"},
        "sender": "sender+x@pyfix.test",
        "rcpts": ["r1", "r1+ext"],
    },
    {
        "name": "generic-and-checks",
        "message": "generic",
        "domain": "both.test",
        "tables": {
            "smtp_generic_maps": "generic.texthash",
            "smtp_header_checks": "generic_header_checks.regexp",
        },
        "rcpts": ["r1"],
    },
    {
        "name": "generic-regexp",
        "message": "generic",
        "domain": "regexp.test",
        "tables": {"smtp_generic_maps": "generic.regexp"},
        "sender": "alice+x@pyfix.test",
    },
]
MAIN_CF = {"recipient_delimiter": "+"}


class _Capture(socketserver.StreamRequestHandler):
    """One SMTP session: record MAIL/RCPT and the DATA octets."""

    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        write = self.wfile.write
        write(b"220 capture.test ESMTP\r\n")
        commands: list[str] = []
        while line := self.rfile.readline():
            verb = line.rstrip(b"\r\n").upper()
            if verb.startswith(b"EHLO"):
                features = [b"250-capture.test", b"250-PIPELINING"]
                if server.eightbit:
                    features += [b"250-8BITMIME", b"250-SMTPUTF8"]
                write(b"\r\n".join([*features, b"250 ENHANCEDSTATUSCODES"]) + b"\r\n")
            elif verb.startswith((b"MAIL", b"RCPT")):
                commands.append(line.rstrip(b"\r\n").decode())
                write(b"250 2.0.0 ok\r\n")
            elif verb == b"DATA":
                write(b"354 go\r\n")
                self.wfile.flush()
                data = bytearray()
                while piece := self.rfile.readline():
                    data += piece
                    if piece == b".\r\n" and (len(data) == 3 or data[-5:-3] == b"\r\n"):
                        break
                server.captures.append((commands, bytes(data)))
                commands = []
                write(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                write(b"221 bye\r\n")
                break
            else:
                commands = [] if verb == b"RSET" else commands
                write(b"250 ok\r\n")
            self.wfile.flush()


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port: int, eightbit: bool) -> None:
        super().__init__(("127.0.0.1", port), _Capture)
        self.eightbit = eightbit
        self.captures: list[tuple[list[str], bytes]] = []


def main() -> None:
    """Record every scenario and write the results next to this script."""
    servers = {flag: _Server(free_port(), flag) for flag in (True, False)}
    for server in servers.values():
        threading.Thread(target=server.serve_forever, daemon=True).start()
    services: dict[str, dict[str, str]] = {}
    routes: dict[str, str] = {}
    for index, case in enumerate(SCENARIOS):
        tables = case["tables"]
        assert isinstance(tables, dict)
        opts = {param: f"{file.split('.')[-1]}:{HERE / file}" for param, file in tables.items()}
        extra = case.get("opts", {})
        assert isinstance(extra, dict)
        services[f"s{index}"] = opts | extra
        port = servers[bool(case.get("eightbit", True))].server_address[1]
        routes[str(case["domain"])] = f"s{index}:[127.0.0.1]:{port}"
    client = start_postfix_client(services=services, routes=routes, main_cf=MAIN_CF)
    try:
        everyone = []
        for case in SCENARIOS:
            locals_ = case.get("rcpts", ["r"])
            assert isinstance(locals_, list)
            rcpts = [f"{r}@{case['domain']}" for r in locals_]
            everyone += rcpts
            message = (HERE / "postfix" / f"{case['message']}.msg").read_bytes()
            sender = str(case.get("sender", "sender@pyfix.test"))
            client.submit(sender, rcpts, message)
        client.wait(everyone, timeout=60)
        time.sleep(0.5)
        log = client.log()
    finally:
        client.stop()
    captures = servers[True].captures + servers[False].captures
    results = []
    for case in SCENARIOS:
        domain = re.escape(str(case["domain"]))
        queue_ids = set(re.findall(rf"postfix/smtp\[\d+\]: (\w+): to=<[^>]*@{domain}>", log))
        pids = set(re.findall(rf"postfix/smtp\[(\d+)\]: \w+: to=<[^>]*@{domain}>", log))
        (commands, data) = next(
            c for c in captures if any(f"id {q};".encode() in c[1] for q in queue_ids)
        )
        # Drop pickup's "Received:" header (two lines) and keep what smtp(8) made.
        start = data.index(b"\r\n", data.index(b"\r\n") + 2) + 2
        (HERE / "postfix" / f"{case['name']}.wire").write_bytes(data[start:])
        lines = [
            line.split("]: ", 1)[1]
            for line in log.splitlines()
            if any(f"postfix/smtp[{pid}]:" in line for pid in pids) and ": to=<" not in line
        ]
        lines = [re.sub(r"^[0-9A-F]{6,}: ", "", line) for line in lines]
        results.append({**case, "commands": commands, "log": lines})
    (HERE / "postfix" / "cases.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"recorded {len(results)} scenarios")


if __name__ == "__main__":
    main()
