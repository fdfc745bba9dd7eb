"""The client's TLS session cache: resumption keyed like Postfix's serverid.

With a non-empty ``smtp_tls_session_cache_database`` Postfix's SMTP client
stores each new TLS session in tlsmgr(8)'s cache under a *serverid* and
offers it again on the next connection to the same server (tls_client.c
``load_clnt_session()``, ``new_client_session_cb()``). ``ssl.SSLSession``
objects cannot be serialised, so this cache lives in memory, one per client
(shared by its drivers through :class:`~pyfix_smtp.transport.sync.TlsContexts`);
the database name only switches it on.

:func:`session_key` is the serverid: a readable prefix (service, nexthop,
host, address and port, level, as Postfix smtp_proto.c ``smtp_start_tls()``)
and a SHA-256 digest of everything else that decides whether a session
established under one policy is acceptable under another (protocols,
ciphers, SNI, certificate match names, TLSA and fingerprint associations,
CA files, client certificates; Postfix tls_fprint.c ``tls_serverid_digest()``).
A session is only ever offered under exactly the same inputs.

A resumed handshake carries no certificate chain (OpenSSL keeps only the
leaf), so an entry also keeps the chain and CA verdict of the handshake that
created the session; the delivery core checks that chain again on every
resumption, against the policy in force (Postfix instead trusts the
verification result saved in the session).
"""

from __future__ import annotations

import hashlib
import logging
import ssl
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyfix_smtp.tls.loglevel import TlsLog

if TYPE_CHECKING:
    from pyfix_smtp.delivery.effects import Endpoint, TlsEstablished
    from pyfix_smtp.tls.options import TlsOptions
    from pyfix_smtp.tls.policy import TlsPolicy

__all__ = [
    "DEFAULT_MAX_SESSIONS",
    "CachedTlsSession",
    "PendingSession",
    "SessionLookup",
    "TlsSessionCache",
    "resumable",
    "session_key",
]

log = logging.getLogger("pyfix_smtp.transport")

#: How many sessions a client keeps at most (the oldest saved goes first).
DEFAULT_MAX_SESSIONS = 1000


def session_key(policy: TlsPolicy, options: TlsOptions, endpoint: Endpoint) -> str:
    """The cache key (Postfix's serverid) for a handshake with *policy* at *endpoint*.

    Equal keys mean equal inputs to the handshake and to the certificate
    checks. The prefix is readable for logs:
    ``service&nexthop&host&address:port&level&`` followed by the digest.
    """
    from pyfix_smtp.tls.context import context_key

    target = policy.target
    # Postfix smtp_proto.c smtp_start_tls(): smtp_key_prefix() with SERVICE,
    # CUR_NEXTHOP, HOSTNAME, ADDR and TLS_LEVEL (the port is ours: Postfix
    # has it in the nexthop only when the nexthop names one).
    where = endpoint.address if endpoint.unix else f"{endpoint.address}:{endpoint.port}"
    prefix = f"{options.protocol}&{target.nexthop}&{target.host}&{where}&{policy.level.text}&"
    # Postfix tls_fprint.c tls_serverid_digest(): protocols, ciphers, TLSA
    # digests, SNI; and, because our checks run again on every resumption,
    # every other input of build_context() and check_peer().
    salt = (
        ssl.OPENSSL_VERSION_NUMBER,  # tls_serverid_digest(): OpenSSL_version_num()
        endpoint.host,
        endpoint.unix,
        target.domain,
        target.port,
        policy.sni,
        context_key(policy, options),
        policy.protocols,
        policy.cipher_exclusions,
        policy.enable_rpk,
        tuple((m.name, m.subdomain) for m in policy.match_names),
        tuple((a.usage, a.selector, a.mtype, a.data.hex(), a.source) for a in policy.associations),
        policy.dane_base_domain,
        policy.ee_namechecks,
        policy.fingerprint_digest,
        policy.mx_patterns,
        policy.verify_depth,
    )
    digest = hashlib.sha256(repr(salt).encode("utf-8", "backslashreplace")).hexdigest()
    return prefix + digest


def resumable(session: ssl.SSLSession | None, version: str) -> bool:
    """Can *session* be offered again? TLS 1.3 needs a ticket (it arrives
    after the handshake); earlier versions a ticket or a session ID."""
    if session is None:
        return False
    if version == "TLSv1.3":
        return bool(session.has_ticket)
    return bool(session.has_ticket or session.id)


@dataclass(slots=True)
class CachedTlsSession:
    """One cached session and what its first handshake established.

    Attributes:
        session: the ``ssl.SSLSession`` to offer.
        chain: the server's chain (DER, leaf first) from the full handshake.
        pkix_verified: OpenSSL's CA verdict in that handshake (see
            :class:`~pyfix_smtp.delivery.effects.TlsEstablished`).
        saved: when it was saved (the client's clock).
        context: the ``ssl.SSLContext`` that made it (Python offers a
            session only to connections of the same context).
    """

    session: ssl.SSLSession
    chain: tuple[bytes, ...]
    pkix_verified: bool | None
    saved: float
    context: ssl.SSLContext | None = None


def _cache_log(options: TlsOptions) -> bool:
    return bool(options.log_mask & TlsLog.CACHE)


@dataclass(slots=True)
class SessionLookup:
    """A driver's cache lookup before one handshake (see :meth:`TlsSessionCache.lookup`).

    Attributes:
        key: the :func:`session_key`.
        entry: the cached session to offer, or None.
        options: the TLS options (their log level decides the cache lines).
    """

    key: str
    entry: CachedTlsSession | None
    options: TlsOptions

    @property
    def session(self) -> ssl.SSLSession | None:
        """The session to offer, or None."""
        return self.entry.session if self.entry is not None else None


@dataclass(slots=True)
class PendingSession:
    """A finished handshake whose session is saved when the connection ends.

    TLS 1.3 sends its session ticket after the handshake, so the session is
    read once replies have been read over TLS: when the driver closes or
    caches the connection (:meth:`TlsSessionCache.finish`).
    """

    lookup: SessionLookup
    tls: ssl.SSLSocket | ssl.SSLObject
    context: ssl.SSLContext
    chain: tuple[bytes, ...]
    pkix_verified: bool | None


class TlsSessionCache:
    """Resumable TLS sessions by :func:`session_key`, at most *max_size*.

    Entries expire *timeout* seconds after they were saved (Postfix
    tls_scache.c: an entry is stale when ``saved + timeout < now``); the
    caller passes the time and the timeout, so tests need no clock. When
    full, the least recently saved entry goes. One entry per key: a new
    session replaces the old one (Postfix keeps one per serverid).

    Counters for monitoring: :attr:`offered` (handshakes that offered a
    cached session) and :attr:`resumed` (handshakes the server resumed).
    """

    def __init__(self, max_size: int = DEFAULT_MAX_SESSIONS) -> None:
        if max_size < 0:
            raise ValueError(f"max_size must be >= 0, not {max_size}")
        self.max_size = max_size
        self._entries: OrderedDict[str, CachedTlsSession] = OrderedDict()
        self.offered = 0
        self.resumed = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, *, now: float, timeout: float) -> CachedTlsSession | None:
        """The live entry for *key*, or None (a stale entry is dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.saved + timeout < now:  # Postfix tls_scache.c tls_scache_decode()
            del self._entries[key]
            return None
        return entry

    def save(self, key: str, entry: CachedTlsSession) -> None:
        """Store *entry* under *key*, replacing what was there."""
        if self.max_size == 0:
            return
        entries = self._entries
        entries.pop(key, None)
        while len(entries) >= self.max_size:
            entries.popitem(last=False)
        entries[key] = entry

    def remove(self, key: str) -> bool:
        """Forget *key* (after a failed handshake); True if it was there."""
        return self._entries.pop(key, None) is not None

    def clear(self) -> None:
        """Forget every session."""
        self._entries.clear()

    # -- what the drivers call ---------------------------------------------

    def lookup(
        self,
        policy: TlsPolicy,
        options: TlsOptions,
        endpoint: Endpoint | None,
        context: ssl.SSLContext,
        now: float,
    ) -> SessionLookup | None:
        """Before a handshake: the key and the session to offer; None when
        the cache is off (``smtp_tls_session_cache_database`` empty or a zero
        timeout) or the endpoint is unknown."""
        timeout = options.session_cache_timeout
        if timeout <= 0 or endpoint is None:
            return None
        key = session_key(policy, options, endpoint)
        verbose = _cache_log(options)
        if verbose:  # Postfix tls_client.c load_clnt_session()
            log.info("looking for session %s in %s cache", key, options.protocol)
        entry = self.get(key, now=now, timeout=timeout)
        if entry is not None and entry.context is not context:
            self.remove(key)  # made by a context since dropped from TlsContexts
            entry = None
        if entry is not None and verbose:
            log.info("reloaded session %s from %s cache", key, options.protocol)
        return SessionLookup(key, entry, options)

    def established(
        self,
        lookup: SessionLookup,
        tls: ssl.SSLSocket | ssl.SSLObject,
        context: ssl.SSLContext,
        result: TlsEstablished,
    ) -> PendingSession:
        """After a handshake: count it, and what :meth:`finish` saves later."""
        if lookup.entry is not None:
            self.offered += 1
            if result.session_reused:
                self.resumed += 1
        return PendingSession(lookup, tls, context, result.chain, result.pkix_verified)

    def failed(self, lookup: SessionLookup) -> None:
        """After a failed handshake: forget the key's session (Postfix
        tls_client.c uncache_session())."""
        if self.remove(lookup.key) and _cache_log(lookup.options):
            log.info("remove session %s from client cache", lookup.key)

    def finish(self, pending: PendingSession, now: float) -> None:
        """When the connection ends: save its session if it is new and resumable.

        A resumed TLS 1.2 session is the one already cached (Postfix's
        new-session callback does not run for it, so its age is kept); a
        TLS 1.3 resumption brings a new ticket, which replaces the old one.
        """
        tls = pending.tls
        try:
            session = tls.session
            version = tls.version() or ""
        except (ValueError, OSError, AttributeError):  # the connection is gone
            return
        if session is None or not resumable(session, version):
            return
        lookup = pending.lookup
        offered = lookup.session
        if offered is not None and session.id == offered.id:
            return
        self.save(
            lookup.key,
            CachedTlsSession(session, pending.chain, pending.pkix_verified, now, pending.context),
        )
        if _cache_log(lookup.options):  # Postfix tls_client.c new_client_session_cb()
            log.info("save session %s to %s cache", lookup.key, lookup.options.protocol)
