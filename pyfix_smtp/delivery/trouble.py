"""Postfix's smtp_trouble.c rules as pure functions: keep, defer or bounce.

Every failure the delivery core meets ends in one of three verdicts for the
recipients it concerns (Postfix ``smtp_bulk_fail()`` / ``smtp_rcpt_fail()``):

* **keep** - a soft error (4.x.x), or a hard one under ``soft_bounce``, at a
  server that is *not the final server*: the recipient stays for the next
  server and nothing is reported yet (Postfix logs an info line);
* **defer** - a soft error at the final server (``soft_bounce`` turns a
  hard error there into a deferral with a 4.x.x status, logged as
  ``SOFTBOUNCE``);
* **bounce** - a hard error (5.x.x), at any server.

Failures flagged *soft at non-final servers* (Postfix
``SMTP_MISC_FAIL_SOFT_NON_FINAL``: SMTPUTF8 5.6.7, the REQUIRETLS
5.7.10/5.7.30 family) are kept like soft errors unless this is the final
server, where they bounce.

The texts of session-level failures live here too, worded as Postfix words
them; protocol-level texts come from :mod:`pyfix_smtp.protocol.failures`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pyfix_smtp.status import Failure

__all__ = [
    "Judgement",
    "Verdict",
    "bind_failure",
    "connect_failure",
    "handshake_failure",
    "judge",
    "local_data_error",
    "loop_failure",
    "tls_config_failure",
]


class Verdict(enum.Enum):
    """What happens to the recipients a failure concerns."""

    KEEP = "keep"  # try the next server (Postfix SMTP_RCPT_KEEP)
    DEFER = "defer"  # temporary failure, reported now
    BOUNCE = "bounce"  # permanent failure, reported now


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict and the failure as it will be reported.

    *failure* has its status softened to 4.x.x when ``soft_bounce`` turned a
    bounce into a deferral (Postfix bounce_append() does that); *soft_bounce*
    says so, for the ``status=SOFTBOUNCE`` log word.
    """

    verdict: Verdict
    failure: Failure
    soft_bounce: bool = False


def judge(
    failure: Failure,
    *,
    final_server: bool,
    soft_bounce: bool = False,
    soft_non_final: bool = False,
) -> Judgement:
    """Postfix smtp_bulk_fail() / smtp_rcpt_fail(): keep, defer or bounce.

    Args:
        failure: the status and text.
        final_server: no other server will be tried after this one
            (Postfix SMTP_MISC_FLAG_FINAL_SERVER).
        soft_bounce: the ``soft_bounce`` parameter.
        soft_non_final: Postfix SMTP_MISC_FAIL_SOFT_NON_FINAL (SMTPUTF8 and
            REQUIRETLS failures): a hard error counts as soft unless
            *final_server*.
    """
    soft = failure.soft
    if soft_non_final and not soft:
        soft = not final_server  # smtp_trouble.c smtp_bulk_fail() sanity check block
    soft_bounce_error = failure.hard and soft_bounce
    if (soft or soft_bounce_error) and not final_server:
        return Judgement(Verdict.KEEP, failure)  # smtp_bulk_fail(): SMTP_RCPT_KEEP
    if soft:
        return Judgement(Verdict.DEFER, failure)
    if soft_bounce:
        # global/bounce.c bounce_append(): soft_bounce defers with 4.x.x, "SOFTBOUNCE"
        return Judgement(Verdict.DEFER, failure.softened(), soft_bounce=True)
    return Judgement(Verdict.BOUNCE, failure)


def connect_failure(name_address_port: str, reason: str) -> Failure:
    """``connect to host[addr]:port: reason`` (Postfix smtp_connect_sock(), 4.4.1)."""
    return Failure("4.4.1", f"connect to {name_address_port}: {reason}")


def bind_failure() -> Failure:
    """``smtp_bind_address_enforce``: a failed bind (Postfix smtp_connect_addr(), 4.4.0)."""
    return Failure("4.4.0", "server configuration error")


def loop_failure(nexthop: str, *, best_mx: bool) -> Failure:
    """The server greeted EHLO with our own ``myhostname`` (Postfix smtp_helo()).

    5.4.6 when the server is a best MX host for the destination, else 4.4.6.
    """
    status = "5.4.6" if best_mx else "4.4.6"
    return Failure(status, f"mail for {nexthop} loops back to myself")


def tls_config_failure() -> Failure:
    """An invalid TLS policy found at greeting time (Postfix smtp_helo(), 4.7.0)."""
    return Failure("4.7.0", "client TLS configuration problem")


def handshake_failure() -> Failure:
    """A TLS handshake that did not complete (Postfix smtp_start_tls(), 4.7.5)."""
    return Failure("4.7.5", "Cannot start TLS: handshake failure")


def local_data_error(name_address: str) -> Failure:
    """Postfix smtp_stream_except() SMTP_ERR_DATA: 4.3.0 local data error."""
    return Failure("4.3.0", f"local data error while talking to {name_address}")
