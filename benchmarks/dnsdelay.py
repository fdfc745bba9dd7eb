"""A UDP relay that holds every DNS query for a fixed time: network latency on loopback.

``python -m benchmarks.dnsdelay LISTEN_PORT UPSTREAM_PORT DELAY_SECONDS``

Scenario 8b puts it between unbound and NSD, so that every query unbound
sends to the authoritative server takes DELAY_SECONDS longer, as it would when
the authority is across a network. Each held query gets its own upstream
socket, so answers cannot be mixed up, and the answer goes straight back.
Used only by the benchmarks; it never changes what is answered.
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

HOST = "127.0.0.1"


class _Upstream(asyncio.DatagramProtocol):
    """One forwarded query: send it, relay the first answer, close."""

    def __init__(
        self, query: bytes, reply_to: tuple[str, int], front: asyncio.DatagramTransport
    ) -> None:
        self.query = query
        self.reply_to = reply_to
        self.front = front
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.DatagramTransport", transport)
        self.transport.sendto(self.query)
        asyncio.get_running_loop().call_later(10.0, self.transport.close)  # no answer: give up

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.front.sendto(data, self.reply_to)
        if self.transport is not None:
            self.transport.close()


class _Front(asyncio.DatagramProtocol):
    """Receives queries and forwards each one after the delay."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: set[asyncio.Task[object]] = set()  # keep tasks alive until done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.DatagramTransport", transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().call_later(self.delay, self._forward, data, addr)

    def _forward(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        front = self.transport
        loop = asyncio.get_running_loop()
        task: asyncio.Task[object] = loop.create_task(
            loop.create_datagram_endpoint(
                lambda: _Upstream(data, addr, front), remote_addr=(HOST, self.upstream_port)
            )
        )
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)


async def serve(listen_port: int, upstream_port: int, delay: float) -> None:
    """Relay until killed."""
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(
        lambda: _Front(upstream_port, delay), local_addr=(HOST, listen_port)
    )
    print(
        f"relaying 127.0.0.1:{listen_port} -> :{upstream_port} with {delay * 1000:g} ms", flush=True
    )
    await asyncio.Event().wait()


def main(argv: list[str]) -> int:
    """Entry point."""
    if len(argv) != 3:
        print(
            "usage: python -m benchmarks.dnsdelay LISTEN_PORT UPSTREAM_PORT DELAY_SECONDS",
            file=sys.stderr,
        )
        return 2
    asyncio.run(serve(int(argv[0]), int(argv[1]), float(argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
