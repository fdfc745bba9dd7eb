"""``aiosmtplib``: the asyncio baseline (scenario 2).

``job.connections`` tasks each open one ``aiosmtplib.SMTP`` connection (no
STARTTLS: smtp-sink has no TLS) and send their share of the messages over it
with ``sendmail`` (which normalises line ends and dot-stuffs), then ``QUIT``.
Without reuse each message gets its own connection.
"""

from __future__ import annotations

import asyncio

import aiosmtplib

from benchmarks.workload import Job, Unavailable


async def _connect(job: Job) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(
        hostname=job.host,
        port=job.port,
        local_hostname=job.helo,
        use_tls=False,
        start_tls=False,
        timeout=60,
    )
    await client.connect()
    return client


async def _send(client: aiosmtplib.SMTP, job: Job, data: bytes) -> int:
    refused, _ = await client.sendmail(job.sender, list(job.recipients), data)
    return 0 if refused else 1


async def _connection(job: Job, data: bytes, count: int) -> int:
    accepted = 0
    if job.reuse:
        client = await _connect(job)
        try:
            for _ in range(count):
                accepted += await _send(client, job, data)
        finally:
            await client.quit()
        return accepted
    for _ in range(count):
        client = await _connect(job)
        try:
            accepted += await _send(client, job, data)
        finally:
            await client.quit()
    return accepted


async def run_async(job: Job) -> int:
    """Deliver ``job.messages`` over ``job.connections`` concurrent connections."""
    if job.protocol != "smtp":
        raise Unavailable("aiosmtplib speaks SMTP only, not LMTP")
    data = job.load_message()
    counts = [job.share(i) for i in range(job.connections)]
    results = await asyncio.gather(*(_connection(job, data, n) for n in counts if n))
    return sum(results)
