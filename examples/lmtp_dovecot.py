"""Deliver a message to mailboxes over LMTP, as Postfix's lmtp(8) hands mail to Dovecot.

Examples::

    # Dovecot's UNIX socket (Postfix: mailbox_transport = lmtp:unix:private/dovecot-lmtp)
    python examples/lmtp_dovecot.py --socket /var/run/dovecot/lmtp alice@example.com bob@example.com

    # over TCP, with STARTTLS required
    python examples/lmtp_dovecot.py --host 127.0.0.1 --port 24 --tls encrypt alice@example.com

LMTP answers once per recipient after the message (RFC 2033), so one
transaction can end differently for each mailbox: saved, over quota
(bounced), or temporarily full (deferred). With ``--assume-final`` a saved
recipient counts as finally delivered (``lmtp_assume_final = yes``).
"""

from __future__ import annotations

import argparse
import email.utils
import sys
from pathlib import Path

import pyfix_smtp


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipients", nargs="+", help="mailbox addresses")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", type=Path, help="LMTP UNIX-domain socket")
    where.add_argument("--host", help="LMTP server host (with --port)")
    parser.add_argument("--port", type=int, default=24, help="LMTP TCP port (default 24)")
    parser.add_argument("--from", dest="sender", default="postmaster@localhost", help="sender")
    parser.add_argument("--tls", default="", help="lmtp_tls_security_level (TCP only)")
    parser.add_argument("--ca-file", type=Path, help="lmtp_tls_CAfile")
    parser.add_argument("--assume-final", action="store_true", help="lmtp_assume_final = yes")
    parser.add_argument("--message", type=Path, help="message file (default: a test message)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    settings: dict[str, object] = {"protocol": "lmtp", "lmtp_assume_final": args.assume_final}
    if args.tls:
        settings["lmtp_tls_security_level"] = args.tls
        settings["lmtp_tls_loglevel"] = "1"  # log the TLS connection summary
    if args.ca_file:
        settings["lmtp_tls_CAfile"] = str(args.ca_file)
    config = pyfix_smtp.Config(**settings)  # type: ignore[arg-type]
    host = f"[{args.host}]" if args.host and ":" in args.host else args.host
    nexthop = f"unix:{args.socket}" if args.socket else f"inet:{host}:{args.port}"
    if args.message:
        content = args.message.read_bytes()
    else:
        content = (
            f"From: {args.sender}\r\nTo: {', '.join(args.recipients)}\r\n"
            f"Subject: LMTP test\r\nDate: {email.utils.formatdate()}\r\n"
            f"Message-ID: {email.utils.make_msgid()}\r\n\r\nDelivered over LMTP by pyfix_smtp.\r\n"
        ).encode()
    report = pyfix_smtp.deliver(
        pyfix_smtp.Envelope(args.sender, args.recipients), content, nexthop, config
    )
    pyfix_smtp.close_connections()
    for line in report.events:
        print(line)
    for outcome in report:
        print(f"{outcome.recipient}: {outcome.action.value} {outcome.status} {outcome.reason}")
    return 0 if report.all_done else 75


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
