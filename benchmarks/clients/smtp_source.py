"""Postfix ``smtp-source`` (C): the reference client for scenarios 1-4, 6 and 7.

It is measured as a whole process by the orchestrator (wall time from spawn to
exit, CPU and peak RSS). ``-F file`` sends the same message as the Python
clients, from its LF copy (smtp-source reads it into memory once at start-up,
dot-stuffs it and appends CRLF to each line); ``-d`` keeps the connection for the next
message; ``-s N`` runs N sessions in parallel; ``-r N`` sends N recipients per
message; ``-L`` speaks LMTP. smtp-source has no PIPELINING support.
"""

from __future__ import annotations

from benchmarks.workload import Job, Unavailable


def argv(job: Job, binary: str) -> list[str]:
    """The ``smtp-source`` command line that runs *job*."""
    if job.kind != "smtp":
        raise Unavailable("smtp-source delivers mail, it does not plan DNS")
    args = [binary, "-4", "-M", job.helo, "-f", job.sender]
    if len(job.recipients) > 1:
        # smtp-source numbers the recipients itself (3.7: <2rcpt@...>, <rcpt@...>).
        args += ["-t", "rcpt@example.test", "-r", str(len(job.recipients))]
    else:
        args += ["-t", job.recipients[0]]
    if job.reuse:
        args.append("-d")
    if job.protocol == "lmtp":
        args.append("-L")
    args += ["-F", job.lf_message_path, "-s", str(job.connections), "-m", str(job.messages)]
    args.append(f"{job.host}:{job.port}")
    return args
