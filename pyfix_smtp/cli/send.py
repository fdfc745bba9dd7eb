"""``pyfix-smtp send``: deliver one message, as smtp(8) would, and log like Postfix.

The message comes from a file or standard input (``-``) and is streamed (a
pipe is spooled once, so it can be sent again to a second server). With
``--nexthop`` every recipient goes there; without it the recipients are
grouped by domain and each group goes to its domain (an MX lookup, as
smtp(8) is given the recipient domain by the queue manager), an address
literal ``user@[192.0.2.1]`` to that address.

Each Postfix-format log line is printed as it happens (TLS sessions, hosts
skipped, one ``to=<...>, relay=..., status=...`` line per recipient), then a
one-line summary. Exit status: 0 when every recipient was delivered, 69
(EX_UNAVAILABLE) when some recipient bounced, else 75 (EX_TEMPFAIL) when
some recipient was deferred; 66 (EX_NOINPUT) when the message cannot be read.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, TextIO

import pyfix_smtp
from pyfix_smtp.cli.common import (
    EX_NOINPUT,
    EX_OK,
    EX_TEMPFAIL,
    EX_UNAVAILABLE,
    Environment,
    UsageError,
    destinations,
)
from pyfix_smtp.delivery.report import Action, RecipientOutcome
from pyfix_smtp.protocol.envelope import Envelope, Recipient

if TYPE_CHECKING:
    from pyfix_smtp.transport.sync import StsFetcher

__all__ = ["exit_status", "group_by_domain", "run"]


def nexthop_for(recipient: Recipient) -> str:
    """The nexthop smtp(8) gets for a recipient: its domain, or ``[address]``.

    Raises:
        UsageError: the recipient has no domain (give ``--nexthop``).
    """
    mailbox = recipient.address
    if mailbox.literal is not None:
        return f"[{mailbox.literal}]"
    if not mailbox.ascii_domain:
        raise UsageError(f"recipient {mailbox.unquoted!r} has no domain: give --nexthop")
    return mailbox.ascii_domain.lower()


def group_by_domain(recipients: list[Recipient]) -> dict[str, list[Recipient]]:
    """Recipients by nexthop, in order of first appearance (qmgr groups by domain)."""
    groups: dict[str, list[Recipient]] = {}
    for rcpt in recipients:
        groups.setdefault(nexthop_for(rcpt), []).append(rcpt)
    return groups


def exit_status(outcomes: list[RecipientOutcome]) -> int:
    """69 when something bounced, else 75 when something was deferred, else 0."""
    actions = {o.action for o in outcomes}
    if Action.BOUNCED in actions:
        return EX_UNAVAILABLE
    if Action.DEFERRED in actions:
        return EX_TEMPFAIL
    return EX_OK


class _LineHandler(logging.Handler):
    """Writes the delivery's Postfix-format lines to the output as they happen."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(logging.INFO)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            text = f"warning: {text}"
        self.out.write(text + "\n")


@contextlib.contextmanager
def _delivery_lines(out: TextIO) -> Iterator[None]:
    logger = logging.getLogger("pyfix_smtp.delivery")
    handler = _LineHandler(out)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # printed here; -v need not repeat them
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


@contextlib.contextmanager
def _message(path: str) -> Iterator[IO[bytes]]:
    """The message as a seekable binary file (standard input is spooled once)."""
    if path == "-":
        source = sys.stdin.buffer
        if source.seekable():
            yield source
            return
        with tempfile.SpooledTemporaryFile(max_size=1 << 20) as spool:
            shutil.copyfileobj(source, spool)
            spool.seek(0)
            yield spool
        return
    with open(path, "rb") as file:
        yield file


def _sts_fetcher(env: Environment) -> StsFetcher | None:
    if env.args.sts_cafile is None and env.args.sts_connect is None:
        return None
    from pyfix_smtp.transport.sync import fetch_sts

    return functools.partial(fetch_sts, context=env.sts_context(), connect_to=env.sts_connect())


def run(env: Environment) -> int:
    """Deliver the message; print the log lines and a summary."""
    args = env.args
    cfg = env.config
    recipients = [Recipient(r) for r in args.recipients]
    if args.nexthop is not None:
        destinations(cfg, args.nexthop)  # a bad nexthop is a usage error, before reading
        groups = {args.nexthop: recipients}
    else:
        groups = group_by_domain(recipients)
    envelopes = {hop: Envelope(args.sender, rcpts) for hop, rcpts in groups.items()}
    resolver = env.resolver if args.resolver is not None else None
    outcomes: list[RecipientOutcome] = []
    with contextlib.ExitStack() as stack:
        try:
            content = stack.enter_context(_message(args.message))
        except OSError as exc:
            env.print(f"cannot read message {args.message}: {exc.strerror or exc}")
            return EX_NOINPUT
        start = content.tell()
        client = stack.enter_context(
            pyfix_smtp.Client(cfg, resolver=resolver, sts_fetcher=_sts_fetcher(env))
        )
        stack.enter_context(_delivery_lines(env.out))
        for hop, envelope in envelopes.items():
            content.seek(start)
            report = client.deliver(envelope, content, hop, queue_id=args.queue_id)
            outcomes.extend(report.outcomes)
    counts = {a: sum(1 for o in outcomes if o.action is a) for a in Action}
    parts = [f"{n} {a.value}" for a, n in counts.items() if n]
    env.print(f"summary: {len(outcomes)} recipient(s): " + ", ".join(parts))
    return exit_status(outcomes)
