"""A small MTA loop: deliver, keep deferred recipients, retry them with back-off.

This is what Postfix's queue manager does around smtp(8): a recipient that
was deferred stays queued and is tried again after a back-off time that
doubles from ``minimal_backoff_time`` up to ``maximal_backoff_time``; a
bounced recipient is returned to the sender; after ``maximal_queue_lifetime``
the rest are returned too. Each attempt passes the message's arrival time
and queue id, so the log lines show Postfix's ``delay=`` and ``delays=``.

Examples::

    # a self-contained run: a loopback server that is busy for a while
    python examples/retry_loop.py --demo

    # a real nexthop, with short back-off times
    python examples/retry_loop.py --nexthop "[127.0.0.1]:2525" --from a@example.org \\
        --minimal-backoff 5 --maximal-backoff 60 --lifetime 600 b@example.net c@example.net
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pyfix_smtp
from pyfix_smtp.testing import Command, Response, SinkServer


@dataclass
class QueuedMessage:
    """One message in the queue and the recipients it still has to reach."""

    queue_id: str
    sender: str
    content: bytes
    arrival: float
    pending: list[str]
    attempts: int = 0
    next_attempt: float = 0.0
    backoff: float = 0.0
    last_reason: dict[str, str] = field(default_factory=dict)


@dataclass
class Queue:
    """Deferred recipients wait here between attempts (Postfix's deferred queue)."""

    client: pyfix_smtp.Client
    nexthop: str
    minimal_backoff: float
    maximal_backoff: float
    lifetime: float
    messages: list[QueuedMessage] = field(default_factory=list)
    results: list[tuple[str, str, str, int]] = field(default_factory=list)

    def submit(self, sender: str, recipients: list[str], content: bytes) -> str:
        queue_id = secrets.token_hex(5).upper()
        now = time.time()
        self.messages.append(QueuedMessage(queue_id, sender, content, now, list(recipients)))
        return queue_id

    def attempt(self, msg: QueuedMessage) -> None:
        """One delivery attempt for the message's pending recipients."""
        msg.attempts += 1
        report = self.client.deliver(
            pyfix_smtp.Envelope(msg.sender, msg.pending),
            msg.content,
            self.nexthop,
            arrival=msg.arrival,  # delay= counts from here, as in Postfix
            queue_id=msg.queue_id,
        )
        still: list[str] = []
        for outcome in report:
            if outcome.action is pyfix_smtp.Action.DEFERRED:
                still.append(outcome.recipient)
                msg.last_reason[outcome.recipient] = outcome.reason
            else:
                self.results.append(
                    (outcome.recipient, outcome.action.value, outcome.status, msg.attempts)
                )
                if outcome.action is pyfix_smtp.Action.BOUNCED:
                    print(
                        f"{msg.queue_id}: sender non-delivery notification for {outcome.recipient}"
                    )
        msg.pending = still
        # Postfix qmgr: the back-off doubles, within minimal/maximal_backoff_time
        msg.backoff = min(max(msg.backoff * 2, self.minimal_backoff), self.maximal_backoff)
        msg.next_attempt = time.time() + msg.backoff

    def expire(self, msg: QueuedMessage) -> None:
        """Return what is left once maximal_queue_lifetime has passed."""
        for rcpt in msg.pending:
            print(
                f"{msg.queue_id}: to=<{rcpt}>, status=expired, returned to sender "
                f"({msg.last_reason.get(rcpt, 'never tried')})"
            )
            self.results.append((rcpt, "expired", "4.0.0", msg.attempts))
        msg.pending = []

    def run(self) -> None:
        """Work until the queue is empty, sleeping until the next message is due."""
        while self.messages:
            now = time.time()
            for msg in list(self.messages):
                if msg.next_attempt > now:
                    continue
                if now - msg.arrival > self.lifetime:
                    self.expire(msg)
                else:
                    self.attempt(msg)
                if not msg.pending:
                    self.messages.remove(msg)
                    print(f"{msg.queue_id}: removed")
            if self.messages:
                due = min(m.next_attempt for m in self.messages)
                time.sleep(max(0.0, due - time.time()))


def busy_server() -> tuple[SinkServer, Counter[str]]:
    """A server that defers carol twice, then accepts her; dave is unknown."""
    attempts: Counter[str] = Counter()
    lock = threading.Lock()

    def rcpt(command: Command) -> Response:
        with lock:
            attempts[command.argument] += 1
            seen = attempts[command.argument]
        if "<carol@" in command.argument and seen <= 2:
            return "451 4.3.0 <carol@example.net>: mailbox temporarily unavailable"
        if "<dave@" in command.argument:
            return "550 5.1.1 <dave@example.net>: User unknown"
        return None

    return SinkServer(hostname="mx.example.net", script={"RCPT": rcpt}), attempts


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipients", nargs="*")
    parser.add_argument("--from", dest="sender", default="alice@example.org")
    parser.add_argument("--nexthop", help="where to deliver (Postfix nexthop syntax)")
    parser.add_argument("--minimal-backoff", type=float, default=300, help="seconds")
    parser.add_argument("--maximal-backoff", type=float, default=4000, help="seconds")
    parser.add_argument("--lifetime", type=float, default=5 * 86400, help="seconds")
    parser.add_argument("--demo", action="store_true", help="run against a busy loopback server")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    config = pyfix_smtp.Config(smtp_tls_security_level="may")
    content = (
        f"From: {args.sender}\r\nSubject: retry loop\r\nMessage-ID: <retry@example.org>\r\n"
        "\r\nTried until delivered.\r\n"
    ).encode()
    with pyfix_smtp.Client(config) as client:
        if args.demo:
            server, _ = busy_server()
            with server:
                queue = Queue(client, server.nexthop, 0.2, 1.0, 30.0)
                queue.submit(
                    args.sender,
                    ["bob@example.net", "carol@example.net", "dave@example.net"],
                    content,
                )
                queue.run()
            accepted = sorted(r for m in server.messages for r in m.recipients)
            print(f"the server accepted: {', '.join(accepted)}")
        else:
            if not args.nexthop or not args.recipients:
                raise SystemExit("give --nexthop and recipients, or --demo")
            queue = Queue(
                client, args.nexthop, args.minimal_backoff, args.maximal_backoff, args.lifetime
            )
            queue.submit(args.sender, args.recipients, content)
            queue.run()
    for rcpt, action, status, attempt in queue.results:
        print(f"{rcpt}: {action} {status} after {attempt} attempt{'s' * (attempt > 1)}")
    return 0 if all(action != "expired" for _, action, _, _ in queue.results) else 75


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
