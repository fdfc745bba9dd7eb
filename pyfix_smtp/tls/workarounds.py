"""OpenSSL bug work-arounds that ``tls_disable_workarounds`` turns off (pure).

Postfix tls_misc.c ``tls_bug_bits()`` starts from OpenSSL's ``SSL_OP_ALL``
(every known interoperability work-around) and clears the bits named in
``tls_disable_workarounds``: names from its ``ssl_bug_tweaks`` table, in any
case, or hexadecimal masks (``0x...``); bits outside ``SSL_OP_ALL`` are
ignored. Any setting also clears ``SSL_OP_SAFARI_ECDHE_ECDSA_BUG`` ("not
relevant to SMTP"). The context builder (:mod:`.context`) applies the mask.

Python's ssl module names none of these bits, so their values are OpenSSL's
(``ssl.h``, unchanged since OpenSSL 1.1.0); the names OpenSSL has retired
are accepted and mean nothing (0), as in Postfix built against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pyfix_smtp.errors import ConfigError

__all__ = ["SAFARI_ECDHE_ECDSA_BUG", "WORKAROUND_BITS", "disabled_workarounds"]

#: OpenSSL ssl.h SSL_OP_SAFARI_ECDHE_ECDSA_BUG.
SAFARI_ECDHE_ECDSA_BUG = 0x00000040

#: Postfix tls_misc.c ssl_bug_tweaks[]: name -> OpenSSL SSL_OP_* bit (0: retired).
WORKAROUND_BITS: dict[str, int] = {
    "MICROSOFT_SESS_ID_BUG": 0,
    "NETSCAPE_CHALLENGE_BUG": 0,
    "LEGACY_SERVER_CONNECT": 0x00000004,
    "NETSCAPE_REUSE_CIPHER_CHANGE_BUG": 0,
    "CVE-2010-4180": 0,  # alias of NETSCAPE_REUSE_CIPHER_CHANGE_BUG
    "SSLREF2_REUSE_CERT_TYPE_BUG": 0,
    "MICROSOFT_BIG_SSLV3_BUFFER": 0,
    "MSIE_SSLV2_RSA_PADDING": 0,
    "CVE-2005-2969": 0,  # alias of MSIE_SSLV2_RSA_PADDING
    "SSLEAY_080_CLIENT_DH_BUG": 0,
    "TLS_D5_BUG": 0,
    "TLS_BLOCK_PADDING_BUG": 0,
    "TLS_ROLLBACK_BUG": 0x00800000,
    "DONT_INSERT_EMPTY_FRAGMENTS": 0x00000800,
    "CRYPTOPRO_TLSEXT_BUG": 0x80000000,
    "TLSEXT_PADDING": 0x00000010,
}
_BY_UPPER = {name.upper(): bits for name, bits in WORKAROUND_BITS.items()}


_HEX = re.compile(r"0[xX][0-9a-fA-F]+")


def _hex_mask(word: str) -> int | None:
    """Postfix name_mask.c hex_to_ulong(): ``0x`` and hex digits that fit 64 bits, or None."""
    if _HEX.fullmatch(word) is None:
        return None
    value = int(word, 16)
    return value if value <= 0xFFFFFFFFFFFFFFFF else None


def disabled_workarounds(values: Iterable[str]) -> int:
    """The SSL_OP_* bits to clear for ``tls_disable_workarounds`` (0: none).

    Each word is a name from :data:`WORKAROUND_BITS` (any case) or a
    ``0x`` hexadecimal mask; commas and white space separate words. When
    anything is given, ``SSL_OP_SAFARI_ECDHE_ECDSA_BUG`` is cleared too
    (Postfix tls_misc.c ``tls_bug_bits()``). The caller limits the result to
    the bits of ``SSL_OP_ALL``.

    Raises:
        ConfigError: a word that is neither a known name nor a hex mask
            (Postfix only warns and ignores it: see docs/differences.md).
    """
    text = " ".join(values)
    words = text.replace(",", " ").split()
    if not words:
        return 0
    mask = SAFARI_ECDHE_ECDSA_BUG  # tls_bug_bits(): "Not relevant to SMTP"
    for word in words:
        bits = _BY_UPPER.get(word.upper())
        if bits is None:
            bits = _hex_mask(word)
        if bits is None:
            raise ConfigError(
                "tls_disable_workarounds",
                text,
                f'unknown value "{word}": use {", ".join(WORKAROUND_BITS)} or a 0x... mask',
            )
        mask |= bits
    return mask
