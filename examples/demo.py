"""Deliver a real message end to end on this machine, as Postfix's smtp(8) would.

``make demo`` runs this. It needs nothing but the installed package:

1. it starts a loopback SMTP server (:class:`pyfix_smtp.testing.SinkServer`)
   that offers STARTTLS with a certificate from a private CA made on the
   spot, and that refuses two of the three recipients (one temporarily,
   one permanently);
2. it delivers one message through :func:`pyfix_smtp.deliver` with
   ``smtp_tls_security_level = verify`` and that CA as ``smtp_tls_CAfile``;
3. it prints Postfix's log lines (the ``pyfix_smtp`` logger), the delivery
   report, and what the server received.

Run ``python examples/demo.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import pyfix_smtp
from pyfix_smtp.testing import Command, Response, SinkServer

SENDER = "alice@example.org"
RECIPIENTS = ("bob@example.net", "carol@example.net", "dave@example.net")
MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.net>, Carol <carol@example.net>, Dave <dave@example.net>\r\n"
    b"Subject: Hello from pyfix_smtp\r\n"
    b"Date: Wed, 25 Nov 2026 12:00:00 +0000\r\n"
    b"Message-ID: <demo.1@example.org>\r\n"
    b"\r\n"
    b"This message went through pyfix_smtp.deliver() over STARTTLS.\r\n"
    b".This line starts with a dot, so it travels dot-stuffed.\r\n"
)


def refuse_some(command: Command) -> Response:
    """The server's RCPT policy: carol is over quota for now, dave is unknown."""
    if "<carol@" in command.argument:
        return "452 4.2.2 <carol@example.net>: mailbox full, try again later"
    if "<dave@" in command.argument:
        return "550 5.1.1 <dave@example.net>: Recipient address rejected: User unknown"
    return None  # the default: 250 2.1.5 Ok


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--level",
        choices=["may", "encrypt", "verify", "secure"],
        default="verify",
        help="smtp_tls_security_level (default: verify, with the demo CA)",
    )
    parser.add_argument("--async", dest="use_async", action="store_true", help="use asyncio")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # Postfix-style log lines: "postfix/smtp[pid]: QUEUEID: to=<...>, relay=..."
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s demo pyfix/smtp[{os.getpid()}]: %(message)s")
    )
    logger = logging.getLogger("pyfix_smtp")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    with SinkServer(
        starttls=True, hostname="mx.example.net", script={"RCPT": refuse_some}
    ) as server:
        print(f"loopback server: {server.nexthop} (STARTTLS, CA {server.ca_file})")
        config = pyfix_smtp.Config(
            myhostname="demo.example.org",
            smtp_tls_security_level=args.level,
            smtp_tls_CAfile=str(server.ca_file),
            # the server's certificate names mx.example.net and 127.0.0.1
            smtp_tls_secure_cert_match="nexthop",
            # log the "Verified TLS connection established" summary (Postfix's
            # default level 0 logs nothing about TLS)
            smtp_tls_loglevel="1",
        )
        envelope = pyfix_smtp.Envelope(SENDER, RECIPIENTS)
        started = time.perf_counter()
        if args.use_async:
            import asyncio

            report = asyncio.run(
                pyfix_smtp.deliver_async(
                    envelope, MESSAGE, server.nexthop, config, queue_id="4DEMO1"
                )
            )
        else:
            report = pyfix_smtp.deliver(
                envelope, MESSAGE, server.nexthop, config, queue_id="4DEMO1"
            )
        elapsed = time.perf_counter() - started

        print()
        print(f"delivery report ({elapsed * 1000:.0f} ms):")
        for outcome in report:
            action = outcome.action.value
            print(f"  {outcome.recipient:<20} {action:<9} {outcome.status}  {outcome.reason}")
        print()
        print("the server received:")
        for message in server.messages:
            print(f"  MAIL FROM:<{message.sender}> over {'TLS' if message.tls else 'plain text'}")
            for rcpt in message.recipients:
                print(f"  RCPT TO:<{rcpt}>")
            print(
                f"  {len(message.content)} octets, identical to what was sent: "
                f"{message.content == MESSAGE}"
            )
        print(f"  commands: {' | '.join(server.sessions[0].commands)}")

    logger.removeHandler(handler)
    sent = [o for o in report if o.action is pyfix_smtp.Action.RELAYED]
    ok = (
        [o.recipient for o in sent] == [RECIPIENTS[0]]
        and len(server.messages) == 1
        and server.messages[0].content == MESSAGE
        and server.messages[0].tls
    )
    print()
    print("demo: OK" if ok else "demo: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
