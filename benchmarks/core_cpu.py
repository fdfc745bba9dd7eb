"""The library's own CPU per message, without a network: ``python -m benchmarks.core_cpu``.

Scenarios 1-3 measure pyfix_smtp together with the kernel's TCP work and the
wake-ups of a ping-pong protocol. This tool takes those out: the public
clients (``Client``, ``AsyncClient``) deliver to an in-memory SMTP server
that answers like ``smtp-sink`` (PIPELINING, 8BITMIME, DSN; replies ready
at once), put in place of the drivers' sockets. What is left is the
library: request building, the delivery core, the protocol machine, the
content encoder, the drivers and, for asyncio, the event loop's share.

    python -m benchmarks.core_cpu                 # reuse, new, async: us/message
    python -m benchmarks.core_cpu --profile reuse # cProfile of one mode

It replaces ``pyfix_smtp.transport.sync.open_socket`` and the asyncio
driver's connect handler in this process only (the in-memory server is
not a socket); the figures are CPU seconds (``process_time``) per message,
the best of three runs. The 2 KiB message, sender and recipient are the
benchmark's.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any

import pyfix_smtp
from benchmarks.workload import HELO_NAME, SENDER, message_bytes
from pyfix_smtp.delivery.effects import Connect, Connected, Endpoint
from pyfix_smtp.transport import aio, sync

EHLO = (
    b"250-sink.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
    b"250 DSN\r\n"
)
SERVER = "192.0.2.25"  # never contacted: the server is in memory
NEXTHOP = f"[{SERVER}]:25"


class MemoryServer:
    """An SMTP server in memory: replies to whole command lines, queued for recv()."""

    def __init__(self) -> None:
        self.out = bytearray(b"220 sink.example.test ESMTP\r\n")
        self.pending = b""
        self.in_data = False
        self.timeout: float | None = None

    def take(self, data: bytes) -> None:
        """The client wrote *data*."""
        buf = self.pending + data
        while buf:
            if self.in_data:
                end = buf.find(b"\r\n.\r\n")
                if end < 0:
                    self.pending = buf[-4:]
                    return
                buf = buf[end + 5 :]
                self.in_data = False
                self.out += b"250 2.0.0 Ok: queued\r\n"
                continue
            end = buf.find(b"\r\n")
            if end < 0:
                break
            verb, buf = buf[:4].upper(), buf[end + 2 :]
            if verb in (b"EHLO", b"LHLO"):
                self.out += EHLO
            elif verb == b"DATA":
                self.out += b"354 End data with <CR><LF>.<CR><LF>\r\n"
                self.in_data, buf = True, b"\r\n" + buf
            elif verb == b"QUIT":
                self.out += b"221 2.0.0 Bye\r\n"
            elif verb == b"MAIL":
                self.out += b"250 2.1.0 Ok\r\n"
            elif verb == b"RCPT":
                self.out += b"250 2.1.5 Ok\r\n"
            else:
                self.out += b"250 2.0.0 Ok\r\n"
        self.pending = buf

    def reply(self, size: int) -> bytes:
        """What the client reads."""
        data = bytes(self.out[:size])
        del self.out[:size]
        return data


class MemorySocket(MemoryServer):
    """The socket methods the blocking driver uses."""

    def settimeout(self, value: float | None) -> None:
        self.timeout = value

    def gettimeout(self) -> float | None:
        return self.timeout

    def setblocking(self, flag: bool) -> None:
        self.timeout = None if flag else 0.0

    def setsockopt(self, *args: object) -> None:
        pass

    def getsockopt(self, *args: object) -> int:
        return 0

    def getsockname(self) -> tuple[str, int]:
        return ("192.0.2.1", 40000)

    def connect(self, address: object) -> None:
        pass

    def connect_ex(self, address: object) -> int:
        return 0

    def close(self) -> None:
        pass

    def send(self, data: bytes) -> int:
        self.take(data)
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.take(data)

    def recv(self, size: int) -> bytes:
        return self.reply(size)

    def fileno(self) -> int:
        return -1


def _open_socket(endpoint: Endpoint, *args: object, **kwargs: object) -> tuple[Any, object]:
    return MemorySocket(), (endpoint.address, endpoint.port)


class _MemoryTransport:
    """The asyncio transport methods the driver's Connection uses."""

    def __init__(self, protocol: aio.Connection, loop: asyncio.AbstractEventLoop) -> None:
        self.protocol, self.loop, self.server = protocol, loop, MemoryServer()
        self.closing = False
        loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        if self.server.out and not self.closing:
            self.protocol.data_received(self.server.reply(len(self.server.out)))

    def write(self, data: bytes) -> None:
        self.server.take(data)
        if self.server.out:
            self.loop.call_soon(self._deliver)  # the reply arrives on a later loop turn

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    abort = close


async def _memory_connect(driver: aio.AsyncDriver, effect: Connect) -> Connected:
    driver.release()
    loop = asyncio.get_running_loop()
    connection = aio.Connection(loop)
    connection.transport = _MemoryTransport(connection, loop)  # type: ignore[assignment]
    driver.connection = connection
    return Connected("192.0.2.1")


def install() -> None:
    """Put the in-memory server in place of the drivers' sockets (this process only)."""
    sync.open_socket = _open_socket  # type: ignore[assignment]
    aio._HANDLERS[Connect] = _memory_connect


def _config(reuse: bool) -> pyfix_smtp.Config:
    # A string_list matched against the nexthop's domain (here its address).
    extra = {"smtp_connection_cache_destinations": SERVER} if reuse else {}
    return pyfix_smtp.Config(myhostname=HELO_NAME, **extra)  # type: ignore[arg-type]


def _runner(mode: str, count: int) -> Callable[[], float]:
    """A function that delivers *count* messages and returns the CPU seconds it took."""
    message = message_bytes().replace(b"\n", b"\r\n")
    envelope = pyfix_smtp.Envelope(sender=SENDER, recipients=["rcpt@example.test"])
    if mode == "async":

        def run_async() -> float:
            async def main() -> float:
                # Asyncio connections belong to their loop: a client per run.
                client = pyfix_smtp.AsyncClient(_config(reuse=True))

                async def deliveries(share: int) -> None:
                    for _ in range(share):
                        report = await client.deliver(envelope, message, NEXTHOP)
                        assert report.outcomes[0].status.startswith("2"), report

                await asyncio.gather(*(deliveries(2) for _ in range(20)))  # connect
                start = time.process_time()
                await asyncio.gather(*(deliveries(count // 20) for _ in range(20)))
                used = time.process_time() - start
                await client.aclose()
                return used

            return asyncio.run(main())

        return run_async
    reuse = mode == "reuse"
    client = pyfix_smtp.Client(_config(reuse), cache_size=16 if reuse else 0)

    def run_sync() -> float:
        start = time.process_time()
        for _ in range(count):
            report = client.deliver(envelope, message, NEXTHOP)
            assert report.outcomes[0].status.startswith("2"), report
        return time.process_time() - start

    return run_sync


def measure(mode: str, count: int) -> float:
    """CPU microseconds per message in *mode* (reuse, new, async), best of three."""
    run = _runner(mode, count)
    run()  # warm up: imports, per-Config state, the first connection
    return min(run() for _ in range(3)) / count * 1e6


def main(argv: list[str]) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.core_cpu", description=__doc__)
    parser.add_argument("modes", nargs="*", default=["reuse", "new", "async"])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--profile", action="store_true", help="cProfile the first mode")
    args = parser.parse_args(argv)
    install()
    if args.profile:
        run = _runner(args.modes[0], args.messages)
        run()
        profile = cProfile.Profile()
        profile.runcall(run)
        pstats.Stats(profile).sort_stats("tottime").print_stats(40)
        return 0
    for mode in args.modes:
        print(f"{mode:6} {measure(mode, args.messages):7.1f} us CPU per message")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
