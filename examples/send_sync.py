"""Send one message with the blocking API, configured like Postfix's smtp(8).

Examples::

    # to the MX hosts of example.net, opportunistic TLS (Postfix's default)
    python examples/send_sync.py --from alice@example.org --to bob@example.net message.eml

    # through a relay on the submission port, TLS required, with a password
    python examples/send_sync.py --from alice@example.org --to bob@example.net \\
        --nexthop "[smtp.example.org]:587" --set smtp_tls_security_level=encrypt \\
        --set smtp_sasl_auth_enable=yes \\
        --set "smtp_sasl_password_maps=inline:{ smtp.example.org=alice:secret }" message.eml

    # settings from a main.cf
    python examples/send_sync.py --main-cf /etc/postfix/main.cf --from ... --to ... message.eml

The message file is sent as it is (CRLF or LF line ends; it is streamed,
not loaded whole); without one a small test message is made up. The
nexthop defaults to the first recipient's domain (an MX lookup). Each
``--set name=value`` overrides one parameter, with Postfix's names and value
syntax. The exit status is 0 when every recipient was delivered, 75
(EX_TEMPFAIL) when some were deferred and none bounced, 1 otherwise.
"""

from __future__ import annotations

import argparse
import email.utils
import logging
import sys
from pathlib import Path

import pyfix_smtp


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("message", nargs="?", type=Path, help="message file (RFC 5322)")
    parser.add_argument("--from", dest="sender", required=True, help="envelope sender")
    parser.add_argument(
        "--to", dest="recipients", action="append", required=True, help="recipient (repeatable)"
    )
    parser.add_argument("--nexthop", help="Postfix nexthop (default: the recipient's domain)")
    parser.add_argument("--main-cf", type=Path, help="read parameters from this main.cf")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="one parameter"
    )
    parser.add_argument("--quiet", action="store_true", help="no Postfix log lines")
    return parser.parse_args(argv)


def make_config(args: argparse.Namespace) -> pyfix_smtp.Config:
    """main.cf (if any), then each --set, in Postfix's own syntax."""
    text = args.main_cf.read_text() if args.main_cf else ""
    for setting in args.set:
        name, eq, value = setting.partition("=")
        if not eq:
            raise SystemExit(f"--set {setting!r}: expected NAME=VALUE")
        text += f"\n{name.strip()} = {value.strip()}"
    return pyfix_smtp.Config.from_postconf(text)


def make_message(sender: str, recipients: list[str]) -> bytes:
    return (
        f"From: {sender}\r\nTo: {', '.join(recipients)}\r\n"
        f"Subject: pyfix_smtp test message\r\nDate: {email.utils.formatdate()}\r\n"
        f"Message-ID: {email.utils.make_msgid(domain=sender.rpartition('@')[2] or None)}\r\n"
        "\r\nThis is a test message sent with pyfix_smtp.\r\n"
    ).encode()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    config = make_config(args)
    nexthop = args.nexthop or args.recipients[0].rpartition("@")[2]
    envelope = pyfix_smtp.Envelope(args.sender, args.recipients)
    if args.message is not None:
        with args.message.open("rb") as content:
            report = pyfix_smtp.deliver(envelope, content, nexthop, config)
    else:
        report = pyfix_smtp.deliver(
            envelope, make_message(args.sender, args.recipients), nexthop, config
        )
    pyfix_smtp.close_connections()
    for outcome in report:
        print(f"{outcome.recipient}: {outcome.action.value} {outcome.status} {outcome.reason}")
    actions = {outcome.action for outcome in report}
    if actions <= {pyfix_smtp.Action.RELAYED, pyfix_smtp.Action.DELIVERED}:
        return 0
    if pyfix_smtp.Action.BOUNCED not in actions:
        return 75  # EX_TEMPFAIL, as sendmail-compatible programs report a deferral
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
