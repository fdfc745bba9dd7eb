"""Python's ``smtplib``: the sync baseline (scenarios 1, 3, 4, 6, 7).

Used as its documentation shows: ``SMTP(host, port)`` (``LMTP`` for LMTP),
``sendmail(sender, recipients, data)``, ``quit()``. ``local_hostname`` is
given so that smtplib does not call ``socket.getfqdn()`` for every connection.

The message is passed as bytes. smtplib dot-stuffs bytes (a regular expression
over the whole message) but, as documented, does not touch their line ends:
"A byte string is not modified". The message files have LF line ends, and bare
LF on the wire is not SMTP (smtp-sink then does not even undo the
dot-stuffing), so the runner converts LF to CRLF with ``bytes.replace`` first,
as a correct smtplib caller must: once for the 2 KiB message, and inside the
measured run, after reading the file, for the streamed scenario 4.
"""

from __future__ import annotations

import smtplib

from benchmarks.workload import Job, Unavailable


def _connect(job: Job) -> smtplib.SMTP:
    if job.protocol == "lmtp":
        return smtplib.LMTP(job.host, job.port, local_hostname=job.helo)
    return smtplib.SMTP(job.host, job.port, local_hostname=job.helo)


def _load(job: Job) -> bytes:
    return job.load_message().replace(b"\n", b"\r\n")  # files are LF, SMTP is CRLF


def _send(client: smtplib.SMTP, job: Job, data: bytes | None) -> int:
    if data is None:  # scenario 4: the whole file read into memory, as smtplib needs
        data = _load(job)
    refused = client.sendmail(job.sender, list(job.recipients), data)
    return 0 if refused else 1


def run(job: Job) -> int:
    """Deliver ``job.messages`` messages; return how many were accepted for every recipient."""
    if job.connections != 1:
        raise Unavailable("smtplib is synchronous: one connection at a time")
    data = None if job.stream else _load(job)
    accepted = 0
    if job.reuse:
        client = _connect(job)
        try:
            for _ in range(job.messages):
                accepted += _send(client, job, data)
        finally:
            client.quit()
        return accepted
    for _ in range(job.messages):
        client = _connect(job)
        try:
            accepted += _send(client, job, data)
        finally:
            client.quit()
    return accepted
