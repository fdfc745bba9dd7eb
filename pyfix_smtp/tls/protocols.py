"""TLS protocol lists and cipher grades, in Postfix's syntax (pure).

``smtp_tls_protocols`` / ``smtp_tls_mandatory_protocols`` and the policy
table ``protocols=`` attribute accept (Postfix tls_misc.c
``tls_proto_mask_lims()``):

* bounds ``>=TLSv1.2`` and ``<=TLSv1.3`` (a name or a hex number such as
  ``0x0303``; an empty bound means none),
* exclusions ``!SSLv3``, and inclusions ``TLSv1.2`` (the complement of the
  inclusions is excluded),

separated by whitespace, commas or colons. OpenSSL then negotiates within
the bounds but, when exclusions leave a hole, only the *lowest* contiguous
run of enabled versions is usable; :func:`protocol_range` reproduces that so
an :class:`ssl.SSLContext` can be given a plain minimum and maximum.

Cipher grades (``smtp_tls_ciphers``, ``smtp_tls_mandatory_ciphers``,
``ciphers=``) select ``tls_high_cipherlist``, ``tls_medium_cipherlist`` or
``tls_null_cipherlist`` (``low`` and ``export`` mean ``medium`` as in Postfix
3.11); exclusions append ``:!name`` (Postfix ``tls_set_ciphers()``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyfix_smtp.errors import TlsPolicyError

__all__ = [
    "DEFAULT_HIGH_CIPHERLIST",
    "DEFAULT_MEDIUM_CIPHERLIST",
    "DEFAULT_NULL_CIPHERLIST",
    "PROTOCOL_NAMES",
    "ProtocolRange",
    "cipher_list",
    "parse_protocols",
    "protocol_range",
]

SSL3 = 0x0300
TLS1 = 0x0301
TLS1_1 = 0x0302
TLS1_2 = 0x0303
TLS1_3 = 0x0304

# Postfix tls_misc.c protocol_table (exclusion/inclusion names); SSLv2 has no
# wire version that OpenSSL >= 1.1 can negotiate, so it maps to None.
PROTOCOL_NAMES: dict[str, int | None] = {
    "sslv2": None,
    "sslv3": SSL3,
    "tlsv1": TLS1,
    "tlsv1.1": TLS1_1,
    "tlsv1.2": TLS1_2,
    "tlsv1.3": TLS1_3,
}
# Postfix tls_misc.c tls_version_table (names allowed in >= and <= bounds).
_VERSION_NAMES = {"none": 0, "sslv3": SSL3, "tlsv1": TLS1, "tlsv1.1": TLS1_1}
_VERSION_NAMES |= {"tlsv1.2": TLS1_2, "tlsv1.3": TLS1_3}
_KNOWN = (SSL3, TLS1, TLS1_1, TLS1_2, TLS1_3)  # versions OpenSSL 3 knows, low to high
_NAME_OF = {SSL3: "SSLv3", TLS1: "TLSv1", TLS1_1: "TLSv1.1", TLS1_2: "TLSv1.2", TLS1_3: "TLSv1.3"}

_TLS_EXCL = ":!SEED:!IDEA:!3DES:!RC2:!RC4:!RC5:!kDH:!kECDH:!aDSS:!MD5"
_TLS_EXCL_REST = ":!kDH:!kECDH:!aDSS:!MD5"
# Postfix mail_params.h DEF_TLS_HIGH_CLIST, DEF_TLS_MEDIUM_CLIST, DEF_TLS_NULL_CLIST
DEFAULT_HIGH_CIPHERLIST = "aNULL:-aNULL:HIGH" + _TLS_EXCL + ":@STRENGTH"
DEFAULT_MEDIUM_CIPHERLIST = "aNULL:-aNULL:HIGH:MEDIUM" + _TLS_EXCL + ":+RC4:@STRENGTH"
DEFAULT_NULL_CIPHERLIST = "eNULL" + _TLS_EXCL_REST + ":!aNULL"

_GRADES = {"high": "high", "medium": "medium", "low": "medium", "export": "medium"}
_GRADES["null"] = "null"


@dataclass(frozen=True, slots=True)
class ProtocolSpec:
    """A parsed protocol list: bounds (0 = none) and excluded versions."""

    text: str
    floor: int
    ceiling: int
    excluded: frozenset[int]


@dataclass(frozen=True, slots=True)
class ProtocolRange:
    """The versions OpenSSL will offer: wire numbers, e.g. 0x0303 for TLS 1.2.

    ``notes`` records bounds that OpenSSL would refuse (Postfix logs a
    warning and leaves that bound unset).
    """

    minimum: int
    maximum: int
    notes: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The enabled protocol names, lowest first."""
        return tuple(_NAME_OF[v] for v in _KNOWN if self.minimum <= v <= self.maximum)

    def __str__(self) -> str:
        return f"{_NAME_OF[self.minimum]}..{_NAME_OF[self.maximum]}"


def _parse_version(text: str) -> int:
    """Postfix parse_tls_version(): a version name or a hex number."""
    named = _VERSION_NAMES.get(text.lower())
    if named is not None:
        return named
    digits = text[2:] if text[:2].lower() == "0x" else text
    if digits == "" and text == "":
        return 0  # strtoul("") consumes nothing and yields 0
    try:
        value = int(digits, 16)
    except ValueError:
        raise TlsPolicyError(f'invalid TLS protocol version "{text}"') from None
    if digits.startswith(("+", "-")) or value > 2**31 - 1:
        raise TlsPolicyError(f'invalid TLS protocol version "{text}"')
    return value


def parse_protocols(text: str) -> ProtocolSpec:
    """Parse a Postfix protocol list (tls_misc.c tls_proto_mask_lims()).

    Raises:
        TlsPolicyError: an unknown protocol name or malformed bound. Postfix
            aborts the TLS session for such a list.
    """
    floor = ceiling = 0
    exclude: set[int | None] = set()
    include: set[int | None] = set()
    for token in text.replace(",", " ").replace(":", " ").split():
        if token.startswith(">="):
            floor = _parse_version(token[2:])
        elif token.startswith("<="):
            ceiling = _parse_version(token[2:])
        else:
            bucket = include
            name = token
            if token.startswith("!"):
                bucket, name = exclude, token[1:]
            if name.lower() not in PROTOCOL_NAMES:
                raise TlsPolicyError(f'invalid TLS protocol name "{name}"', policy=text)
            bucket.add(PROTOCOL_NAMES[name.lower()])
    excluded = {v for v in exclude if v is not None}
    if include:  # exclude the complement of the inclusions
        excluded |= {v for v in _KNOWN if v not in include}
    return ProtocolSpec(text, floor, ceiling, frozenset(excluded))


def protocol_range(spec: ProtocolSpec, *, dane: bool = False) -> ProtocolRange:
    """The version range OpenSSL will use for *spec*.

    With ``dane=True`` SSLv3 is excluded as well (Postfix tls_client.c:
    DANE-based levels require at least TLS 1.0).

    Raises:
        TlsPolicyError: no protocol version is left.
    """
    notes: list[str] = []
    low, high = SSL3, TLS1_3
    # OpenSSL ssl_set_version_bound(): unknown versions fail and leave the bound unset.
    if spec.floor:
        if spec.floor in _KNOWN:
            low = spec.floor
        else:
            notes.append(f"cannot set minimum TLS version to 0x{spec.floor:04x}")
    if spec.ceiling:
        if spec.ceiling in _KNOWN:
            high = spec.ceiling
        else:
            notes.append(f"cannot set maximum TLS version to 0x{spec.ceiling:04x}")
    excluded = set(spec.excluded) | ({SSL3} if dane else set())
    # OpenSSL ssl_get_min_max_version(): walking from the highest version
    # down, a disabled version is a hole and the range restarts below it,
    # so the lowest contiguous run of enabled versions wins.
    best: tuple[int, int] | None = None
    run_high: int | None = None
    for version in reversed(_KNOWN):
        enabled = low <= version <= high and version not in excluded
        if not enabled:
            run_high = None
            continue
        if run_high is None:
            run_high = version
        best = (version, run_high)
    if best is None:
        raise TlsPolicyError("no TLS protocol version is enabled", policy=spec.text)
    return ProtocolRange(best[0], best[1], tuple(notes))


def cipher_list(
    grade: str,
    exclusions: str,
    *,
    high: str = DEFAULT_HIGH_CIPHERLIST,
    medium: str = DEFAULT_MEDIUM_CIPHERLIST,
    null: str = DEFAULT_NULL_CIPHERLIST,
) -> str:
    """The OpenSSL cipher string for *grade* minus *exclusions* (tls_set_ciphers()).

    Raises:
        TlsPolicyError: an unknown grade, an empty base list, or an exclusion
            that starts with one of ``!+-@``.
    """
    canonical = _GRADES.get(grade.lower())
    if canonical is None:
        raise TlsPolicyError(f'invalid cipher grade: "{grade}"')
    base = {"high": high, "medium": medium, "null": null}[canonical]
    if not base:
        raise TlsPolicyError(f'empty "{grade}" cipherlist')
    parts = [base]
    for token in exclusions.replace(",", " ").replace(":", " ").split():
        if token[0] in "!+-@":
            raise TlsPolicyError(f"invalid unary '!+-@' in cipher exclusion: {token}")
        parts.append("!" + token)
    return ":".join(parts)
