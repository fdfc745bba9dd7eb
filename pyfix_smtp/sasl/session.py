"""One SMTP AUTH attempt from start to finish, in Postfix's order (sans-IO).

The protocol layer sends ``AUTH mech [initial-response]``, base64-encodes and
decodes, and passes each 334 challenge to :func:`answer_challenge`. This module
decides everything around that, as Postfix smtp_sasl_proto.c
``smtp_sasl_helo_login()`` and smtp_sasl_glue.c ``smtp_sasl_authenticate()`` do:

1. no credentials for this server: do not authenticate (not an error);
2. the mechanism filter leaves nothing: fail 4.7.0;
3. a cached 535 for this host, user and password: fail with it;
4. no mechanism meets the security options: fail 4.7.0;
5. otherwise start the chosen mechanism.

After the final reply, :func:`finish_auth` verifies the mechanism (SCRAM's
server signature), records a 535 in the cache and applies
``smtp_sasl_auth_soft_bounce``. Every failure fails the session: the
delivery layer moves on to the next server.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pyfix_smtp.errors import SaslError, SaslMechanismError
from pyfix_smtp.sasl.cache import AuthFailureCache
from pyfix_smtp.sasl.failures import auth_failed, cannot_authenticate
from pyfix_smtp.sasl.mechanisms import Mechanism, create_mechanism
from pyfix_smtp.sasl.options import SaslOptions
from pyfix_smtp.sasl.passwords import Credentials
from pyfix_smtp.sasl.selection import ConnectionSecurity, choose_mechanism, filter_offered
from pyfix_smtp.status import Failure, Reply

__all__ = ["AuthAttempt", "answer_challenge", "finish_auth", "mechanism_failure", "start_auth"]

log = logging.getLogger("pyfix_smtp.sasl")


@dataclass(frozen=True, slots=True)
class AuthAttempt:
    """An AUTH exchange to run.

    Attributes:
        mechanism: the started mechanism object; feed it the challenges.
        initial_response: raw bytes for ``AUTH mech <base64>``, or ``None``.
        credentials: the password-map hit used.
        host: the server host name (cache key part).
        server: Postfix's ``host[addr]`` for failure texts.
    """

    mechanism: Mechanism
    initial_response: bytes | None
    credentials: Credentials
    host: str
    server: str

    def __repr__(self) -> str:
        return (
            f"AuthAttempt(mechanism={self.mechanism.name}, credentials={self.credentials!r}, "
            f"host={self.host!r}, server={self.server!r})"
        )


def start_auth(
    options: SaslOptions,
    *,
    offered: Sequence[str],
    host: str,
    nexthop: str,
    server: str,
    security: ConnectionSecurity,
    now: float,
    sender: str = "",
    cache: AuthFailureCache | None = None,
    nonce: str | None = None,
) -> AuthAttempt | Failure | None:
    """Decide whether and how to authenticate; call when EHLO announced AUTH.

    *offered* is the EHLO AUTH mechanism list (all AUTH lines); *host* the
    server host name; *nexthop* the current destination as written; *server*
    ``host[addr]``; *security* what protects the session now. Returns
    ``None`` (no credentials: send mail unauthenticated), a
    :class:`~pyfix_smtp.status.Failure` (fail this session), or the attempt.
    """
    credentials = options.credentials(host=host, nexthop=nexthop, sender=sender)
    if credentials is None:
        return None  # smtp_sasl_helo_login(): "talk to each other like strangers"
    try:
        kept = filter_offered(offered, options.mechanism_filter, server=server)
    except SaslMechanismError as exc:
        log.warning("%s", exc)
        return Failure(exc.status, exc.reason)
    if cache is not None:
        # smtp_sasl_authenticate(): the cache is consulted before the library starts.
        cached = cache.find(host, credentials.username, credentials.password, now=now)
        if cached is not None:
            return cached.failure(host, soft_bounce=options.auth_soft_bounce)
    try:
        name = choose_mechanism(
            kept,
            security_options=options.security_options_for(security),
            security=security,
            server=server,
        )
        mechanism = create_mechanism(
            name,
            credentials.username,
            credentials.password,
            send_authzid=options.send_authzid,
            nonce=nonce,
        )
        initial = mechanism.start()
    except SaslMechanismError as exc:
        log.warning("%s", exc)
        return Failure(exc.status, exc.reason)
    except SaslError as exc:
        return mechanism_failure(server, exc)
    return AuthAttempt(mechanism, initial, credentials, host, server)


def answer_challenge(attempt: AuthAttempt, challenge: bytes | None) -> bytes | Failure:
    """The raw response to one 334 challenge, or the failure that ends the session.

    *challenge* is the decoded challenge, ``None`` when the server's text was
    not base64 (Postfix: the SASL library's decode fails and the session
    fails with 4.7.0). On a failure the caller abandons the exchange.
    """
    if challenge is None:
        return cannot_authenticate(attempt.server, "malformed base64 in server challenge")
    try:
        return attempt.mechanism.step(challenge)
    except SaslError as exc:
        return mechanism_failure(attempt.server, exc)


def mechanism_failure(server: str, error: SaslError) -> Failure:
    """The failure for a mechanism error during the exchange (bad or forged challenge)."""
    return cannot_authenticate(server, str(error))


def finish_auth(
    options: SaslOptions,
    attempt: AuthAttempt,
    reply: Reply,
    *,
    now: float,
    cache: AuthFailureCache | None = None,
) -> Failure | None:
    """Judge the final (non-334) AUTH reply; ``None`` means authenticated."""
    if 300 <= reply.code < 400:
        raise ValueError(f"a 3xx reply is a challenge, not the final AUTH reply: {reply}")
    if 200 <= reply.code < 300:
        try:
            attempt.mechanism.done()
        except SaslError as exc:
            return mechanism_failure(attempt.server, exc)
        return None
    if cache is not None:
        creds = attempt.credentials
        cache.record(attempt.host, creds.username, creds.password, reply, now=now)
    return auth_failed(reply, server=attempt.server, soft_bounce=options.auth_soft_bounce)
