"""TLS security levels of the Postfix SMTP/LMTP client, in Postfix's order.

The order matters and is Postfix's (``tls.h``, ``tls_level.c``)::

    none < may < encrypt < fingerprint < halfdane < dane < dane-only < verify < secure

* ``may`` and higher: TLS is used when offered.
* above ``may``: TLS is required (no plaintext fallback).
* above ``encrypt``: the server certificate must match (fingerprint, TLSA,
  or a PKIX chain plus name).
* ``verify`` and higher: PKIX trust (CA certificates or trust anchors).
* ``halfdane`` is an output-only level: DANE with an MX RRset that was not
  DNSSEC-validated. It cannot be configured.
"""

from __future__ import annotations

import enum

from pyfix_smtp.errors import ConfigError

__all__ = ["TlsLevel", "global_level"]


class TlsLevel(enum.IntEnum):
    """A Postfix TLS security level; comparisons follow Postfix's order."""

    NONE = 0
    MAY = 1
    ENCRYPT = 2
    FINGERPRINT = 3
    HALFDANE = 4  # output only: DANE with an insecure MX RRset
    DANE = 5
    DANE_ONLY = 6
    VERIFY = 7
    SECURE = 8

    @property
    def text(self) -> str:
        """The Postfix spelling (``"dane-only"``, ``"fingerprint"`` ...)."""
        return _NAMES[self]

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, text: str, *, parameter: str = "smtp_tls_security_level") -> TlsLevel:
        """Parse a configured level name (case-insensitive, as Postfix's name_code()).

        ``halfdane`` is rejected: Postfix's tls_level_lookup() treats it as
        invalid input because it only describes an outcome.

        Raises:
            ConfigError: unknown name; *parameter* names where it came from.
        """
        level = _BY_NAME.get(text.lower())
        if level is None or level is TlsLevel.HALFDANE:  # Postfix tls_level.c tls_level_lookup()
            raise ConfigError(parameter, text, "invalid TLS security level")
        return level

    @classmethod
    def lookup(cls, text: str) -> TlsLevel | None:
        """Like :meth:`parse` but return None for an invalid name."""
        level = _BY_NAME.get(text.lower())
        return None if level is None or level is TlsLevel.HALFDANE else level

    @property
    def tls_enabled(self) -> bool:
        """TLS is attempted (``may`` and higher)."""
        return self >= TlsLevel.MAY

    @property
    def tls_required(self) -> bool:
        """No plaintext fallback (Postfix TLS_REQUIRED_BY_SECURITY_LEVEL: above ``may``)."""
        return self > TlsLevel.MAY

    @property
    def must_match(self) -> bool:
        """The certificate must match (Postfix TLS_MUST_MATCH: above ``encrypt``)."""
        return self > TlsLevel.ENCRYPT

    @property
    def must_pkix(self) -> bool:
        """PKIX trust is required (Postfix TLS_MUST_PKIX: ``verify`` and higher)."""
        return self >= TlsLevel.VERIFY

    @property
    def dane_based(self) -> bool:
        """halfdane, dane or dane-only (Postfix TLS_DANE_BASED)."""
        return TlsLevel.HALFDANE <= self <= TlsLevel.DANE_ONLY

    @property
    def opportunistic(self) -> bool:
        """``may`` or ``dane`` (Postfix TLS_OPPORTUNISTIC)."""
        return self in (TlsLevel.MAY, TlsLevel.DANE)

    @property
    def never_secured(self) -> bool:
        """``halfdane``: a match is logged as "Trusted", never "Verified"."""
        return self is TlsLevel.HALFDANE

    @property
    def mandatory(self) -> bool:
        """Mandatory-TLS settings apply (smtp_tls_mandatory_*): above ``may``."""
        return self > TlsLevel.MAY


_NAMES = {
    TlsLevel.NONE: "none",
    TlsLevel.MAY: "may",
    TlsLevel.ENCRYPT: "encrypt",
    TlsLevel.FINGERPRINT: "fingerprint",
    TlsLevel.HALFDANE: "halfdane",
    TlsLevel.DANE: "dane",
    TlsLevel.DANE_ONLY: "dane-only",
    TlsLevel.VERIFY: "verify",
    TlsLevel.SECURE: "secure",
}
_BY_NAME = {name: level for level, name in _NAMES.items()}


def global_level(
    smtp_tls_security_level: str,
    *,
    smtp_use_tls: bool = False,
    smtp_enforce_tls: bool = False,
    smtp_tls_enforce_peername: bool = True,
) -> TlsLevel:
    """The default level for all destinations, as Postfix's global_tls_level().

    A non-empty ``smtp_tls_security_level`` wins. When it is empty, the
    obsolete booleans decide: ``smtp_enforce_tls`` gives ``verify`` (or
    ``encrypt`` when ``smtp_tls_enforce_peername = no``); otherwise
    ``smtp_use_tls`` gives ``may`` and its absence ``none``.

    Raises:
        ConfigError: an invalid level name (Postfix refuses to start).
    """
    if smtp_tls_security_level.strip():  # Postfix smtp_tls_policy.c global_tls_level()
        return TlsLevel.parse(smtp_tls_security_level.strip())
    if smtp_enforce_tls:
        return TlsLevel.VERIFY if smtp_tls_enforce_peername else TlsLevel.ENCRYPT
    return TlsLevel.MAY if smtp_use_tls else TlsLevel.NONE
