"""Postfix's wording for protocol failures (smtp_proto.c, smtp_trouble.c).

The connection fills :class:`~pyfix_smtp.status.Failure` values with these
texts; the delivery layer uses the same functions for session-level
failures (a refused greeting, a lost connection before any transaction).
Soft/hard decisions (``smtp_skip_5xx_greeting``, final server,
``soft_bounce``) are not made here.
"""

from __future__ import annotations

from pyfix_smtp.protocol.events import Stage
from pyfix_smtp.status import Failure, Reply

__all__ = [
    "is_protocol_error_code",
    "lost_failure",
    "refused_failure",
    "reply_failure",
]


def _failure(status: str, text: str) -> Failure:
    # smtp_trouble.c vsmtp_fill_dsn(): a server status that is not 4.x.x or
    # 5.x.x means the server broke the protocol (e.g. "250" to DATA).
    if status[0] not in "45":
        return Failure("5.5.0", "Protocol error: " + text)
    return Failure(status, text)


def reply_failure(reply: Reply, stage: Stage, peer: str) -> Failure:
    """``host X said: <reply> (in reply to <command>)`` with the reply's status.

    The reply text is every received line joined by a space, codes included,
    as Postfix logs it (``translit(resp->str, "\\n", " ")``).
    """
    return _failure(reply.status, f"host {peer} said: {reply} (in reply to {stage.request})")


def refused_failure(reply: Reply, peer: str) -> Failure:
    """``host X refused to talk to me: <reply>`` (greeting or HELO/EHLO/LHLO refused)."""
    return _failure(reply.status, f"host {peer} refused to talk to me: {reply}")


def lost_failure(
    stage: Stage, peer: str, *, timed_out: bool = False, lmtp: bool = False
) -> Failure:
    """``lost connection with X while <stage>`` or ``conversation with X timed out while ...``.

    smtp_trouble.c smtp_stream_except(): status 4.4.2 either way.
    """
    doing = stage.describe(lmtp=lmtp)
    if timed_out:
        return Failure("4.4.2", f"conversation with {peer} timed out while {doing}")
    return Failure("4.4.2", f"lost connection with {peer} while {doing}")


def is_protocol_error_code(code: int) -> bool:
    """smtp_trouble.c smtp_check_code(): a failure code that means a protocol error.

    Codes outside 400-599, 555 (RFC 1869 §6.1) and 500-509 make Postfix
    mark the session as having had a protocol error and not cache it.
    """
    return code < 400 or code > 599 or code == 555 or 500 <= code < 510
