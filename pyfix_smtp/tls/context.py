"""The thin ssl layer: an :class:`ssl.SSLContext` from a :class:`TlsPolicy` (I/O).

:func:`build_context` turns a policy into a client context:

* protocol bounds from ``smtp_tls_protocols`` / ``smtp_tls_mandatory_protocols``
  (:attr:`TlsPolicy.protocol_range`), ciphers from the grade and exclusions,
  with OpenSSL security level 0, or 1 when the certificate must match
  (Postfix tls_client.c);
* ``verify``/``secure`` without trust-anchor files: OpenSSL verifies the
  chain against ``smtp_tls_CAfile``/``smtp_tls_CApath`` (or, when both are
  empty, the system store) during the handshake; host names are checked by
  :func:`pyfix_smtp.tls.verify.check_peer` with Postfix's match rules;
* every other level: no verification in the handshake; DANE, fingerprints and
  trust-anchor files are checked afterwards on the chain the server sent;
* OpenSSL's bug work-arounds less ``tls_disable_workarounds``, and no
  renegotiation (Postfix tls_misc.c tls_bug_bits());
* client certificates from ``smtp_tls_chain_files``, else the RSA
  (``smtp_tls_cert_file``/``smtp_tls_key_file``), DSA
  (``smtp_tls_dcert_file``/``smtp_tls_dkey_file``) and ECDSA pairs.

:func:`context_key` names everything :func:`build_context` reads, so a
driver can reuse one context for all policies with the same key.

Contexts are :class:`ClientContext` objects: ``wrap_bio()`` offers the
session in :data:`OFFERED_SESSION` for resumption, which is how the asyncio
driver passes a cached session through ``loop.start_tls()`` (it has no
``session`` argument).

The SNI name is :attr:`TlsPolicy.sni` (pass it as ``server_hostname``).
:func:`peer_chain` returns the server's whole chain, which DANE-TA needs: on
Python 3.13+ ``SSLSocket.get_unverified_chain()``, before that the same
method of the internal ``_sslobj`` (present since 3.10).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import ssl
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pyfix_smtp.errors import TlsPolicyError
from pyfix_smtp.status import Failure
from pyfix_smtp.tls.levels import TlsLevel
from pyfix_smtp.tls.options import TlsOptions
from pyfix_smtp.tls.policy import TlsPolicy
from pyfix_smtp.tls.verify import NOT_VERIFIED, PeerCheck, check_peer, pkix_validate
from pyfix_smtp.tls.workarounds import WORKAROUND_BITS

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "HANDSHAKE_FAILURE",
    "OFFERED_SESSION",
    "ClientContext",
    "build_context",
    "check_handshake",
    "client_certificates",
    "context_key",
    "handshake_failure",
    "load_ca_certificates",
    "peer_chain",
    "pkix_trusted",
    "verifies_in_handshake",
]

HANDSHAKE_FAILURE = Failure("4.7.5", "Cannot start TLS: handshake failure")

_VERSIONS = {
    0x0300: ssl.TLSVersion.SSLv3,
    0x0301: ssl.TLSVersion.TLSv1,
    0x0302: ssl.TLSVersion.TLSv1_1,
    0x0303: ssl.TLSVersion.TLSv1_2,
    0x0304: ssl.TLSVersion.TLSv1_3,
}


#: The TLS session that :meth:`ClientContext.wrap_bio` offers when its caller
#: passes none (set it around ``loop.start_tls()``; task-local, so concurrent
#: handshakes in other tasks or threads never see it).
OFFERED_SESSION: contextvars.ContextVar[ssl.SSLSession | None] = contextvars.ContextVar(
    "pyfix_smtp_offered_session", default=None
)


class ClientContext(ssl.SSLContext):
    """An ``ssl.SSLContext`` whose ``wrap_bio()`` can resume a session for asyncio.

    ``asyncio``'s ``loop.start_tls()`` calls ``wrap_bio()`` without a
    ``session``; this context then offers :data:`OFFERED_SESSION`. With no
    session set it behaves exactly like ``ssl.SSLContext``.
    """

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        """``ssl.SSLContext.wrap_bio()``, offering :data:`OFFERED_SESSION` by default."""
        if session is None:
            session = OFFERED_SESSION.get()
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)


def verifies_in_handshake(policy: TlsPolicy) -> bool:
    """True when OpenSSL checks the chain against the CA store during the handshake."""
    return policy.level in (TlsLevel.VERIFY, TlsLevel.SECURE) and not policy.associations


def build_context(policy: TlsPolicy, options: TlsOptions) -> ssl.SSLContext:
    """A client SSLContext for *policy*.

    Raises:
        TlsPolicyError: the policy skips this server or does not use TLS, or
            OpenSSL rejects the ciphers, the CA files or the client
            certificate (Postfix: "client TLS configuration problem").
    """
    if policy.failure is not None or not policy.level.tls_enabled:
        raise TlsPolicyError(f"no TLS at level {policy.level}")
    ctx = ClientContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if verifies_in_handshake(policy):
        ctx.verify_mode = ssl.CERT_REQUIRED
        _load_ca(ctx, options)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    prange = policy.protocol_range
    if prange is not None:
        try:
            # Python deprecates naming TLS 1.0/1.1; Postfix's default is still
            # ">=TLSv1", and OpenSSL's own policy decides what is usable.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = _VERSIONS[prange.minimum]
                ctx.maximum_version = _VERSIONS[prange.maximum]
        except (ValueError, KeyError, ssl.SSLError) as exc:
            raise TlsPolicyError(f"cannot set TLS protocol range {prange}: {exc}") from None
    # Postfix tls_client.c: security level 0 for the client, 1 when the peer must match.
    seclevel = 1 if policy.level.must_match else 0
    try:
        ctx.set_ciphers(f"{policy.cipher_list}:@SECLEVEL={seclevel}")
    except ssl.SSLError as exc:
        raise TlsPolicyError(
            f'error setting cipher grade "{policy.cipher_grade}": {exc}', policy=policy.cipher_list
        ) from None
    _load_client_certificates(ctx, options)
    _set_bug_workarounds(ctx, options)
    return ctx


# OpenSSL's SSL_OP_ALL: Python leaves SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS out of
# ssl.OP_ALL (and off), keeping the TLS 1.0 CBC countermeasure; so do we.
_OP_ALL = ssl.OP_ALL | WORKAROUND_BITS["DONT_INSERT_EMPTY_FRAGMENTS"]


def _set_bug_workarounds(ctx: ssl.SSLContext, options: TlsOptions) -> None:
    """Postfix tls_misc.c tls_bug_bits(): SSL_OP_ALL less ``tls_disable_workarounds``,
    and never TLS renegotiation."""
    clear = options.workaround_mask & _OP_ALL  # bits outside SSL_OP_ALL are ignored
    if clear:
        ctx.options &= ~clear
    # tls_bug_bits(): "no good reason to enable TLS renegotiation" in SMTP
    ctx.options |= ssl.OP_NO_RENEGOTIATION


def _load_ca(ctx: ssl.SSLContext, options: TlsOptions) -> None:
    cafile = options.smtp_tls_CAfile or None
    capath = options.smtp_tls_CApath or None
    try:
        if cafile or capath:
            ctx.load_verify_locations(cafile=cafile, capath=capath)
        else:  # Postfix would trust no CA here; see docs/differences.md
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    except (OSError, ssl.SSLError) as exc:
        raise TlsPolicyError(
            f"cannot load Certification Authority data: {exc}",
            policy=f"smtp_tls_CAfile={cafile or ''} smtp_tls_CApath={capath or ''}",
        ) from None


def client_certificates(options: TlsOptions) -> tuple[tuple[str, str, str | None], ...]:
    """The client certificate files to load: (parameter, certificate file, key file or None).

    Postfix tls_certkey.c ``tls_set_my_certificate_key_info()``:
    ``smtp_tls_chain_files`` (each file a key followed by its chain)
    overrides the legacy pairs; otherwise the RSA (``smtp_tls_cert_file``),
    DSA (``smtp_tls_dcert_file``) and ECDSA (``smtp_tls_eccert_file``)
    certificates, each with its key file (an empty key file: the key is in
    the certificate file). OpenSSL keeps one certificate per key type.
    """
    if options.smtp_tls_chain_files:
        return tuple(("smtp_tls_chain_files", path, None) for path in options.smtp_tls_chain_files)
    pairs = (
        ("smtp_tls_cert_file", options.smtp_tls_cert_file, options.smtp_tls_key_file),
        ("smtp_tls_dcert_file", options.smtp_tls_dcert_file, options.smtp_tls_dkey_file),
        ("smtp_tls_eccert_file", options.smtp_tls_eccert_file, options.smtp_tls_eckey_file),
    )
    return tuple((name, cert, key or None) for name, cert, key in pairs if cert)


def _load_client_certificates(ctx: ssl.SSLContext, options: TlsOptions) -> None:
    for parameter, certfile, keyfile in client_certificates(options):
        try:
            ctx.load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as exc:
            # Postfix set_cert_stuff(): "cannot get DSA certificate from file ..."
            raise TlsPolicyError(
                f"cannot load client certificate {parameter}={certfile}: {exc}",
                policy=certfile,
            ) from None


def context_key(policy: TlsPolicy, options: TlsOptions) -> tuple[object, ...]:
    """Everything :func:`build_context` reads: equal keys give equal contexts.

    Drivers cache contexts under this key (building one loads CA files and
    client certificates); keep it in step with :func:`build_context`.
    """
    return (
        policy.level.tls_enabled,
        policy.failure is None,
        verifies_in_handshake(policy),
        policy.level.must_match,
        policy.protocol_range,
        policy.cipher_list,
        policy.cipher_grade,
        options.smtp_tls_CAfile,
        options.smtp_tls_CApath,
        client_certificates(options),
        options.workaround_mask,
    )


def peer_chain(sock: ssl.SSLSocket | ssl.SSLObject) -> tuple[bytes, ...]:
    """The certificates the server sent, DER, leaf first (empty: none).

    Uses ``get_unverified_chain()`` (public in Python 3.13, on the internal
    ``_sslobj`` in 3.10-3.12). Falls back to the leaf alone. A resumed
    session may have no chain at all.
    """
    public = getattr(sock, "get_unverified_chain", None)
    certs: object = None
    if callable(public):
        certs = public()
    else:
        inner = getattr(sock, "_sslobj", None)
        method = getattr(inner, "get_unverified_chain", None)
        if callable(method):
            certs = method()
    if isinstance(certs, list) and certs:
        out: list[bytes] = []
        for cert in certs:
            if isinstance(cert, bytes):
                out.append(cert)
            else:
                out.append(cert.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
        return tuple(out)
    leaf = sock.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()


def check_handshake(
    policy: TlsPolicy,
    sock: ssl.SSLSocket | ssl.SSLObject,
    *,
    now: dt.datetime | None = None,
    anchors: Sequence[x509.Certificate] | None = None,
) -> PeerCheck:
    """Check the certificate of a completed handshake made with :func:`build_context`."""
    when = now if now is not None else dt.datetime.now(dt.UTC)
    verified = True if verifies_in_handshake(policy) else None
    return check_peer(policy, peer_chain(sock), now=when, pkix_verified=verified, anchors=anchors)


def handshake_failure(policy: TlsPolicy, exc: BaseException) -> tuple[Failure, str]:
    """Map a failed handshake to Postfix's outcome and a detail for logs.

    A certificate rejected by OpenSSL at ``verify``/``secure`` is "Server
    certificate not verified"; anything else is "Cannot start TLS: handshake
    failure" (at ``may`` Postfix then retries in plaintext).
    """
    if isinstance(exc, ssl.SSLCertVerificationError) and verifies_in_handshake(policy):
        return NOT_VERIFIED, f"certificate verification failed: {exc.verify_message}"
    return HANDSHAKE_FAILURE, f"{type(exc).__name__}: {exc}"


def load_ca_certificates(cafile: str = "", capath: str = "") -> list[x509.Certificate]:
    """CA certificates for a Python-side trust check (the "Trusted" label at may).

    Reads *cafile* and every file in *capath*; with neither, the system
    store (:func:`ssl.get_default_verify_paths`). Unreadable files are skipped.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    sha256 = hashes.SHA256()
    files: list[Path] = []
    if not cafile and not capath:
        paths = ssl.get_default_verify_paths()
        cafile = paths.cafile or ""
        capath = paths.capath or ""
    if cafile:
        files.append(Path(cafile))
    if capath and Path(capath).is_dir():
        files += sorted(p for p in Path(capath).iterdir() if p.is_file())
    certs: list[x509.Certificate] = []
    seen: set[bytes] = set()
    for path in files:
        try:
            data = path.read_bytes()
            loaded = x509.load_pem_x509_certificates(data)
        except (OSError, ValueError):
            continue
        for cert in loaded:
            digest = cert.fingerprint(sha256)
            if digest not in seen:
                seen.add(digest)
                certs.append(cert)
    return certs


@functools.lru_cache(maxsize=8)
def _configured_anchors(cafile: str, capath: str) -> tuple[x509.Certificate, ...]:
    return tuple(load_ca_certificates(cafile, capath))


def pkix_trusted(
    policy: TlsPolicy, options: TlsOptions, chain: Sequence[bytes], *, now: dt.datetime
) -> bool | None:
    """Is the server's chain trusted by our CAs, for the Trusted/Untrusted label?

    Postfix (tls_client.c) lets OpenSSL verify the chain at every level and
    logs "Trusted" when it verifies, even at ``may`` and ``encrypt`` where
    nothing must match. Here the handshake verifies only at ``verify`` and
    ``secure`` (True); at the levels that do not verify in the handshake the
    chain is checked in Python against ``smtp_tls_CAfile``/``smtp_tls_CApath``.
    With neither set Postfix trusts no CA (``tls_append_default_CA = no``), so
    the answer is None (not checked: "Untrusted"). Levels whose checks use
    TLSA records, fingerprints or trust-anchor files decide trust themselves
    (None).
    """
    if verifies_in_handshake(policy):
        return True
    if policy.level.must_match or not chain:
        return None
    if not (options.smtp_tls_CAfile or options.smtp_tls_CApath):
        return None
    anchors = _configured_anchors(options.smtp_tls_CAfile, options.smtp_tls_CApath)
    trusted, _why = pkix_validate(chain, anchors, now=now, max_depth=policy.verify_depth)
    return trusted
