"""Python's ``smtplib``: the sync baseline (scenarios 1, 3, 4, 6, 7).

Used as its documentation shows: ``SMTP(host, port)`` (``LMTP`` for LMTP),
``sendmail(sender, recipients, data)``, ``quit()``. ``local_hostname`` is
given so that smtplib does not call ``socket.getfqdn()`` for every connection.

The message is passed as bytes, read from the CRLF copy of the message file.
smtplib dot-stuffs bytes (a regular expression over the whole message) but, as
documented, leaves their line ends alone ("A byte string is not modified"), so
it must be given CRLF: bare LF on the wire is not SMTP, and smtp-sink then does
not even undo the dot-stuffing. For scenario 4 the whole 50 MiB file is read
into memory inside the measured run, as smtplib needs it.
"""

from __future__ import annotations

import smtplib

from benchmarks.workload import Job, Unavailable


def _connect(job: Job) -> smtplib.SMTP:
    if job.protocol == "lmtp":
        return smtplib.LMTP(job.host, job.port, local_hostname=job.helo)
    return smtplib.SMTP(job.host, job.port, local_hostname=job.helo)


def _send(client: smtplib.SMTP, job: Job, data: bytes | None) -> int:
    if data is None:  # scenario 4: the whole file read into memory, as smtplib needs
        data = job.load_message()
    refused = client.sendmail(job.sender, list(job.recipients), data)
    return 0 if refused else 1


def run(job: Job) -> int:
    """Deliver ``job.messages`` messages; return how many were accepted for every recipient."""
    if job.connections != 1:
        raise Unavailable("smtplib is synchronous: one connection at a time")
    data = None if job.stream else job.load_message()
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
