"""Deliver one message to recipients at many domains at once, with asyncio.

Recipients are grouped by domain, as Postfix's queue manager groups them by
nexthop; each domain gets its own delivery (MX lookup, TLS policy, one
transaction), and the deliveries run concurrently in one event loop through
:func:`pyfix_smtp.deliver_async`, at most ``--concurrency`` at a time.

Examples::

    # a self-contained run: 20 loopback servers stand in for 20 domains
    python examples/fanout_async.py --demo 20

    # real domains (MX lookups through the system's resolver)
    python examples/fanout_async.py --from alice@example.org bob@example.net carol@example.com

    # a test resolver, and every MX on port 2525
    python examples/fanout_async.py --nameserver 127.0.0.1 --dns-port 5353 --smtp-port 2525 \\
        --from alice@example.org bob@example.test

    # route one domain elsewhere (Postfix transport_maps style nexthop)
    python examples/fanout_async.py --route example.net="[127.0.0.1]:2525" bob@example.net
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections import defaultdict
from collections.abc import Iterator

import pyfix_smtp
from pyfix_smtp.dns import AsyncDnsResolver
from pyfix_smtp.testing import SinkServer


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipients", nargs="*", help="recipient addresses")
    parser.add_argument("--from", dest="sender", default="alice@example.org", help="sender")
    parser.add_argument("--concurrency", type=int, default=50, help="deliveries at once")
    parser.add_argument("--route", action="append", default=[], help="DOMAIN=NEXTHOP")
    parser.add_argument("--nameserver", action="append", help="resolver address (repeatable)")
    parser.add_argument("--dns-port", type=int, help="resolver port")
    parser.add_argument("--smtp-port", type=int, help="connect to this port at every MX")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--demo", type=int, metavar="N", help="run against N loopback servers")
    return parser.parse_args(argv)


def message(sender: str) -> bytes:
    return (
        f"From: {sender}\r\nSubject: fan-out\r\nMessage-ID: <fanout@example.org>\r\n\r\n"
        "One message, many domains.\r\n"
    ).encode()


async def deliver_all(
    client: pyfix_smtp.AsyncClient,
    sender: str,
    by_domain: dict[str, list[str]],
    routes: dict[str, str],
    smtp_port: int | None,
    concurrency: int,
) -> list[tuple[str, pyfix_smtp.DeliveryReport]]:
    content = message(sender)
    gate = asyncio.Semaphore(concurrency)

    async def one(domain: str, recipients: list[str]) -> tuple[str, pyfix_smtp.DeliveryReport]:
        nexthop = routes.get(domain) or (f"{domain}:{smtp_port}" if smtp_port else domain)
        async with gate:
            envelope = pyfix_smtp.Envelope(sender, recipients)
            return nexthop, await pyfix_smtp.deliver_async(
                envelope, content, nexthop, client=client
            )

    return await asyncio.gather(*(one(d, r) for d, r in by_domain.items()))


@contextlib.contextmanager
def demo_servers(count: int) -> Iterator[tuple[list[str], dict[str, str], list[SinkServer]]]:
    """*count* loopback servers, one per made-up domain; the last refuses one user."""
    servers: list[SinkServer] = []
    try:
        for i in range(count):
            script = {
                "RCPT": lambda c: "550 5.1.1 No such user" if "<nobody@" in c.argument else None
            }
            servers.append(SinkServer(hostname=f"mx.d{i}.example", script=script).start())
        recipients = [f"{user}@d{i}.example" for i in range(count) for user in ("ann", "ben")]
        recipients.append(f"nobody@d{count - 1}.example")
        routes = {f"d{i}.example": s.nexthop for i, s in enumerate(servers)}
        yield recipients, routes, servers
    finally:
        for server in servers:
            server.stop()


async def run(args: argparse.Namespace, recipients: list[str], routes: dict[str, str]) -> int:
    text = "\n".join(
        f"{n.strip()} = {v.strip()}" for n, _, v in (s.partition("=") for s in args.set)
    )
    config = pyfix_smtp.Config.from_postconf(text)
    resolver = None
    if args.nameserver or args.dns_port:
        resolver = AsyncDnsResolver(nameservers=args.nameserver, port=args.dns_port)
    by_domain: dict[str, list[str]] = defaultdict(list)
    for rcpt in recipients:
        by_domain[rcpt.rpartition("@")[2].lower()].append(rcpt)
    started = time.perf_counter()
    async with pyfix_smtp.AsyncClient(config, resolver=resolver) as client:
        results = await deliver_all(
            client, args.sender, by_domain, routes, args.smtp_port, args.concurrency
        )
    elapsed = time.perf_counter() - started
    counts: dict[str, int] = defaultdict(int)
    for nexthop, report in results:
        for outcome in report:
            counts[outcome.action.value] += 1
            print(f"{nexthop}: {outcome.log_line()}")
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
    print(f"{len(by_domain)} domains, {len(recipients)} recipients in {elapsed:.2f}s: {summary}")
    return 0 if counts.get("deferred", 0) == 0 else 75


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    routes = dict(r.split("=", 1) for r in args.route)
    if args.demo:
        with demo_servers(args.demo) as (recipients, demo_routes, servers):
            status = asyncio.run(run(args, recipients, demo_routes | routes))
            received = sum(len(m.recipients) for s in servers for m in s.messages)
            print(f"the servers accepted {received} recipients")
        return status
    if not args.recipients:
        raise SystemExit("give recipients, or --demo N")
    return asyncio.run(run(args, args.recipients, routes))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
