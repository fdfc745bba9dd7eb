"""``smtp_tls_loglevel``: which TLS lines are logged (pure).

Postfix tls_misc.c ``tls_log_mask()`` turns the level into feature bits:

* ``0``/``none``: nothing, except that at the levels where the certificate
  must match, why it did not is logged anyway (tls_client.c
  ``tls_client_start()`` adds ``TLS_LOG_UNTRUSTED``); handshake failures are
  always logged ("SSL_connect error").
* ``1``/``routine``: the one-line summary, "Trusted TLS connection
  established to ...".
* ``2``/``debug``: also "setting up TLS connection to ...", the cipher list,
  the matched peer name and the server certificate's names and
  fingerprints.
* ``3``/``4`` add OpenSSL packet dumps, which we never write.

Keywords (``summary``, ``untrusted``, ``peercert``, ``certmatch``,
``verbose``, ``cache``, ``dane``, ``ssl-debug``, ...) may be combined, in any
case, separated by commas or white space. The line builders here return
the texts Postfix 3.11 logs for those features.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pyfix_smtp.errors import ConfigError

if TYPE_CHECKING:
    from cryptography import x509

    from pyfix_smtp.tls.policy import TlsPolicy
    from pyfix_smtp.tls.verify import PeerCheck

__all__ = [
    "TlsLog",
    "cache_lines",
    "parse_log_level",
    "peer_lines",
    "session_mask",
    "setup_lines",
]


class TlsLog(enum.IntFlag):
    """Postfix tls.h ``TLS_LOG_*`` feature bits."""

    NONE = 1 << 0
    SUMMARY = 1 << 1
    UNTRUSTED = 1 << 2
    PEERCERT = 1 << 3
    CERTMATCH = 1 << 4
    VERBOSE = 1 << 5
    CACHE = 1 << 6
    DEBUG = 1 << 7
    TLSPKTS = 1 << 8
    ALLPKTS = 1 << 9
    DANE = 1 << 10


_LEVEL_1 = TlsLog.SUMMARY
_LEVEL_2 = _LEVEL_1 | TlsLog.VERBOSE | TlsLog.CACHE | TlsLog.DEBUG
_LEVEL_3 = _LEVEL_2 | TlsLog.TLSPKTS
_LEVEL_4 = _LEVEL_3 | TlsLog.ALLPKTS

# Postfix tls_misc.c tls_log_table[]
_NAMES: dict[str, TlsLog] = {
    "0": TlsLog.NONE,
    "none": TlsLog.NONE,
    "1": _LEVEL_1,
    "routine": _LEVEL_1,
    "2": _LEVEL_2,
    "debug": _LEVEL_2,
    "3": _LEVEL_3,
    "ssl-expert": _LEVEL_3,
    "4": _LEVEL_4,
    "ssl-developer": _LEVEL_4,
    **{str(n): _LEVEL_4 for n in range(5, 10)},  # "for good measure"
    "summary": TlsLog.SUMMARY,
    "untrusted": TlsLog.UNTRUSTED,
    "peercert": TlsLog.PEERCERT,
    "certmatch": TlsLog.CERTMATCH,
    "verbose": TlsLog.VERBOSE,
    "cache": TlsLog.CACHE,
    "dane": TlsLog.DANE,
    "ssl-debug": TlsLog.DEBUG,
    "ssl-handshake-packet-dump": TlsLog.TLSPKTS,
    "ssl-session-packet-dump": TlsLog.TLSPKTS | TlsLog.ALLPKTS,
}

_PEER = TlsLog.CERTMATCH | TlsLog.VERBOSE | TlsLog.PEERCERT


def parse_log_level(text: str, parameter: str = "smtp_tls_loglevel") -> TlsLog:
    """The feature bits of a ``smtp_tls_loglevel`` value (empty: none).

    Raises:
        ConfigError: a word that is not a level or keyword (Postfix warns
            and logs nothing at all: see docs/differences.md).
    """
    mask = TlsLog(0)
    for word in text.replace(",", " ").split():
        bits = _NAMES.get(word.lower())
        if bits is None:
            raise ConfigError(
                parameter, text, f'unknown value "{word}": use 0-4 or a keyword such as summary'
            )
        mask |= bits
    return mask


def session_mask(mask: TlsLog, policy: TlsPolicy) -> TlsLog:
    """The mask for one session: must-match levels always log why trust failed.

    Postfix tls_client.c ``tls_client_start()``: "log trust chain validation
    errors even when disabled by default for opportunistic sessions".
    """
    if policy.level.must_match:
        return mask | TlsLog.UNTRUSTED
    return mask


def setup_lines(label: str, policy: TlsPolicy, mask: TlsLog) -> list[str]:
    """What Postfix logs before the handshake (``TLS_LOG_VERBOSE``)."""
    if not mask & TlsLog.VERBOSE:
        return []
    # tls_client_start(): "setting up TLS connection to %s", "%s: TLS cipher list"
    return [
        f"setting up TLS connection to {label}",
        f'{label}: TLS cipher list "{policy.cipher_list}"',
    ]


def cache_lines(label: str, reused: bool, mask: TlsLog) -> list[str]:
    """``TLS_LOG_CACHE``: a resumed session (tls_client_start(): "Reusing old session")."""
    if reused and mask & TlsLog.CACHE:
        return [f"{label}: Reusing old session"]
    return []


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    """The first *oid* value of *name* as text (Postfix tls_text_name()), or None."""
    for attr in name.get_attributes_for_oid(oid):
        value = attr.value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return None


def peer_lines(label: str, check: PeerCheck, chain: Sequence[bytes], mask: TlsLog) -> list[str]:
    """What Postfix logs after verifying the server certificate at
    ``TLS_LOG_PEERCERT``/``CERTMATCH``/``VERBOSE`` (log level 2).

    tls_client.c verify_x509(): "matched peername" (the certificate's name
    that matched) when a must-match level matched a name;
    tls_client_post_connect(): the subject CN (else the matched name), the
    issuer CN (else its organization) and both fingerprints. Parses the
    leaf certificate (cryptography), so it is called only when these
    features are on.
    """
    if not mask & _PEER or not chain:
        return []
    from cryptography.x509.oid import NameOID

    from pyfix_smtp.tls.certs import certificate_names, load_certificate, match_host

    lines: list[str] = []
    try:
        leaf = load_certificate(chain[0])
    except ValueError:
        return [f"{label}: subject_CN=, issuer="]
    peername: str | None = None  # OpenSSL SSL_get0_peername(): the certificate's name
    ref = check.name
    if check.matched and ref is not None:
        dns_names, cns = certificate_names(leaf)
        peername = next((n for n in dns_names or cns if match_host(n, ref)), str(ref))
        lines.append(f"{label}: matched peername: {peername}")
    subject = _attribute(leaf.subject, NameOID.COMMON_NAME) or peername or ""
    issuer = (
        _attribute(leaf.issuer, NameOID.COMMON_NAME)
        or _attribute(leaf.issuer, NameOID.ORGANIZATION_NAME)
        or ""
    )
    line = f"{label}: subject_CN={subject}, issuer={issuer}"
    if check.fingerprint:
        line += f", cert fingerprint={check.fingerprint}"
    if check.pkey_fingerprint:
        line += f", pkey fingerprint={check.pkey_fingerprint}"
    lines.append(line)
    return lines
