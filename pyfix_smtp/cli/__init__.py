"""The ``pyfix-smtp`` command line (``python -m pyfix_smtp``); see docs/cli.md.

Subcommands:

* ``plan DESTINATION`` - the servers smtp(8) would try, in order, with DNSSEC facts;
* ``policy DESTINATION`` - the TLS policy of each server and why (DANE, MTA-STS ...);
* ``probe DESTINATION`` - connect, STARTTLS, show the certificate chain and the
  policy verdict, QUIT (like Postfix's posttls-finger);
* ``send`` - deliver a message and print Postfix's log lines.

Common options (before or after the subcommand): ``-c`` main.cf, ``-o
name=value`` (repeatable), ``--lmtp``, ``--resolver HOST[:PORT]``, ``-v``.

Only argparse is imported up front; each subcommand imports its layers when
it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]

PROG = "pyfix-smtp"

_EPILOG = """\
exit status: 0 success; 2 usage error (bad option, address or destination);
69 a recipient bounced / the destination fails for good; 75 a recipient was
deferred / no usable server now; 66 the message cannot be read; 78 the
configuration is unusable (main.cf or -o).
"""


def _common(suppress: bool) -> argparse.ArgumentParser:
    """The common options; in subcommands their defaults are suppressed, so
    options given before the subcommand are kept."""
    parser = argparse.ArgumentParser(add_help=False)

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("common options")
    group.add_argument(
        "-c",
        "--config",
        type=Path,
        metavar="FILE",
        default=default(None),
        help="read parameters from this main.cf (or the main.cf in this directory)",
    )
    group.add_argument(
        "-o",
        # argparse gives a subcommand a fresh namespace: keep both lists, merged in order
        dest="sub_overrides" if suppress else "overrides",
        action="append",
        metavar="NAME=VALUE",
        default=default([]),
        help="set one parameter, after main.cf (repeatable, like Postfix's -o)",
    )
    group.add_argument(
        "--lmtp",
        action="store_true",
        default=default(False),
        help="act as lmtp(8): lmtp_* parameters, LHLO, no MX lookups",
    )
    group.add_argument(
        "--resolver",
        metavar="HOST[:PORT]",
        default=default(None),
        help="send DNS queries to this resolver (default: the system's)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="log DNS queries and library messages to stderr",
    )
    group.add_argument(
        "--sts-cafile",
        type=Path,
        metavar="FILE",
        default=default(None),
        help="trust this CA file for MTA-STS policy fetches (default: the system's CAs)",
    )
    group.add_argument(
        "--sts-connect",
        metavar="HOST:PORT",
        default=default(None),
        help="fetch MTA-STS policies from HOST:PORT instead of mta-sts.DOMAIN:443",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pyfix-smtp``."""
    from pyfix_smtp import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Postfix's smtp(8)/lmtp(8) client as a tool: "
        "plan, explain the TLS policy, probe a server, send a message.",
        epilog=_EPILOG,
        parents=[_common(False)],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common(True)

    def seed(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--seed", type=int, help="seed for the address shuffle (a reproducible order)"
        )

    plan = sub.add_parser(
        "plan",
        parents=[common],
        help="print the servers smtp(8) would try, in order",
        description="Print the DNS plan for DESTINATION (Postfix nexthop syntax): "
        "sites, then candidate servers in order with MX host, preference, address, "
        "port and DNSSEC status, or the failure with Postfix's status and text.",
    )
    plan.add_argument("destination", metavar="DESTINATION", help="e.g. example.com, [mx]:587")
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    seed(plan)

    policy = sub.add_parser(
        "policy",
        parents=[common],
        help="explain the TLS policy for each server",
        description="Explain the TLS policy for each server of DESTINATION: level, "
        "policy table entry, DANE (TLSA lookups), MTA-STS when smtp_mta_sts_enable = yes.",
    )
    policy.add_argument("destination", metavar="DESTINATION")
    policy.add_argument("--json", action="store_true", help="machine-readable output")
    seed(policy)

    probe = sub.add_parser(
        "probe",
        parents=[common],
        help="connect, STARTTLS, show the certificate and the verdict (posttls-finger)",
        description="Connect to the first reachable server of DESTINATION (or --all), "
        "show the greeting, EHLO, STARTTLS, the TLS session and certificate chain, "
        "the policy verdict, then QUIT. No mail is sent.",
    )
    probe.add_argument("destination", metavar="DESTINATION")
    probe.add_argument("--all", action="store_true", help="probe every candidate server")
    seed(probe)

    send = sub.add_parser(
        "send",
        parents=[common],
        help="deliver a message and print Postfix's log lines",
        description="Deliver MESSAGE (a file, or - for standard input) as smtp(8) would.",
        epilog=_EPILOG,
    )
    send.add_argument(
        "message", metavar="MESSAGE", nargs="?", default="-", help="RFC 5322 file, - for stdin"
    )
    send.add_argument("--from", dest="sender", required=True, metavar="ADDR", help="sender")
    send.add_argument(
        "--to",
        dest="recipients",
        action="append",
        required=True,
        metavar="ADDR",
        help="recipient (repeatable)",
    )
    send.add_argument(
        "--nexthop",
        metavar="DEST",
        help="where to send (default: each recipient's domain, by MX lookup)",
    )
    send.add_argument("--queue-id", default="", help="prefix log lines with this queue id")
    return parser


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2

    from pyfix_smtp.cli import common
    from pyfix_smtp.errors import (
        AddressError,
        CommandError,
        ConfigError,
        DestinationError,
        PyfixError,
        TlsPolicyError,
    )

    handler = common.setup_logging(args.verbose)
    try:
        if args.resolver is not None:
            common.parse_resolver(args.resolver)
        if args.sts_connect is not None:
            common.parse_resolver(args.sts_connect, "--sts-connect")
        env = common.Environment(args, common.load_config(args), sys.stdout)
        if args.command == "plan":
            from pyfix_smtp.cli import plan as command
        elif args.command == "policy":
            from pyfix_smtp.cli import policy as command  # type: ignore[no-redef]
        elif args.command == "probe":
            from pyfix_smtp.cli import probe as command  # type: ignore[no-redef]
        else:
            from pyfix_smtp.cli import send as command  # type: ignore[no-redef]
        return command.run(env)
    except (common.UsageError, AddressError, DestinationError, CommandError) as exc:
        return _fail(str(exc), common.EX_USAGE)
    except (ConfigError, TlsPolicyError) as exc:
        return _fail(str(exc), common.EX_CONFIG)
    except PyfixError as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    finally:
        common.teardown_logging(handler)
