"""Postfix's SASL failure statuses and texts, and ``smtp_sasl_auth_soft_bounce``.

Every function returns a :class:`~pyfix_smtp.status.Failure` worded as
Postfix 3.11 words it (smtp_sasl_glue.c ``smtp_sasl_authenticate()``,
smtp_sasl_proto.c ``smtp_sasl_helo_login()``), so the delivery layer can
report it. In Postfix each of them fails the *session*: the client moves on to
the next server, and the session is not reused.
"""

from __future__ import annotations

from pyfix_smtp.status import Failure, Reply

__all__ = [
    "AUTH_STEP_LIMIT",
    "auth_failed",
    "auth_soft_bounce",
    "cached_auth_failed",
    "cannot_authenticate",
    "no_compatible_mechanisms",
    "no_mechanism_available",
    "non_empty_initial_challenge",
    "protocol_loop",
]

_PREFIX = "SASL authentication failed"

#: Postfix smtp_sasl_glue.c smtp_sasl_authenticate(): the 101st 334 challenge
#: in one exchange ends it with :func:`protocol_loop`.
AUTH_STEP_LIMIT = 100


def auth_soft_bounce(code: int, status: str, soft_bounce: bool = True) -> str:
    """Apply ``smtp_sasl_auth_soft_bounce`` to a final AUTH reply's status.

    With soft bounce on (the default), a 5xx reply's 5.x.x status becomes
    4.x.x; everything else is unchanged (smtp_sasl_glue.c
    ``smtp_sasl_authenticate()``: only ``code / 100 == 5`` is softened).
    """
    if soft_bounce and 500 <= code <= 599 and status.startswith("5"):
        return "4" + status[1:]
    return status


def auth_failed(reply: Reply, *, server: str, soft_bounce: bool = True) -> Failure:
    """The server rejected AUTH with a final non-2xx reply.

    *server* is Postfix's ``host[addr]`` (``session->namaddr``).
    """
    if reply.positive:
        raise ValueError(f"not an AUTH failure: {reply}")
    # Postfix smtp_sasl_glue.c smtp_sasl_authenticate(): 5xx -> 4.x.x with soft bounce.
    status = auth_soft_bounce(reply.code, reply.status, soft_bounce)
    return Failure(status, f"{_PREFIX}; server {server} said: {reply}")


def cached_auth_failed(status: str, text: str, *, host: str, soft_bounce: bool = True) -> Failure:
    """A cached 535 for this host, user and password: fail without trying.

    *host* is the server's host name only (Postfix uses ``iter->host`` here,
    not ``host[addr]``); *status* and *text* come from the cache entry.
    """
    # Postfix smtp_sasl_glue.c: "if (var_smtp_sasl_auth_soft_bounce && resp_dsn[0] == '5')"
    if soft_bounce and status.startswith("5"):
        status = "4" + status[1:]
    return Failure(status, f"SASL [CACHED] authentication failed; server {host} said: {text}")


def cannot_authenticate(server: str, why: str) -> Failure:
    """The client side of the mechanism failed (bad challenge, wrong server proof)."""
    return Failure("4.7.0", f"{_PREFIX}; cannot authenticate to server {server}: {why}")


def no_mechanism_available(server: str) -> Failure:
    """No offered mechanism satisfies the security options (Cyrus SASL_NOMECH)."""
    return cannot_authenticate(server, "no mechanism available")


def no_compatible_mechanisms(server: str) -> Failure:
    """The mechanism filter left nothing of the server's AUTH list."""
    return Failure(
        "4.7.0",
        f"{_PREFIX}: server {server} offered no compatible authentication mechanisms "
        "for this type of connection security",
    )


def protocol_loop(server: str) -> Failure:
    """More than 100 challenges in one AUTH exchange."""
    return Failure("4.3.0", f"{_PREFIX}; authentication protocol loop with server {server}")


def non_empty_initial_challenge(mechanism: str, server: str, challenge: str) -> Failure:
    """The server sent a non-empty first challenge when our initial response was deferred.

    Postfix shows the client's own (base64) initial response here, which can
    reveal a PLAIN password in the log; we show the server's challenge.
    """
    return Failure(
        "4.7.0",
        f"{_PREFIX}; non-empty initial {mechanism} challenge from server {server}: {challenge}",
    )
