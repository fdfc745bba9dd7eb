"""SASLprep (RFC 4013): the string preparation SCRAM applies to names and passwords.

RFC 5802 §2.2 ``Normalize(str)`` runs SASLprep with the strings treated as
*stored strings*, so unassigned code points are refused too. Built on the
standard library's :mod:`stringprep` tables (Unicode 3.2, as RFC 3454 requires).
"""

from __future__ import annotations

import stringprep
import unicodedata

from pyfix_smtp.errors import SaslError

__all__ = ["saslprep"]

# RFC 4013 §2.3: the prohibited output tables, with the names the RFC uses.
_PROHIBITED = (
    (stringprep.in_table_c12, "non-ASCII space"),
    (stringprep.in_table_c21_c22, "control character"),
    (stringprep.in_table_c3, "private use character"),
    (stringprep.in_table_c4, "non-character code point"),
    (stringprep.in_table_c5, "surrogate code point"),
    (stringprep.in_table_c6, "character inappropriate for plain text"),
    (stringprep.in_table_c7, "character inappropriate for canonical representation"),
    (stringprep.in_table_c8, "display-changing or deprecated character"),
    (stringprep.in_table_c9, "tagging character"),
    (stringprep.in_table_a1, "unassigned code point"),  # RFC 5802 §2.2: stored strings
)


def saslprep(text: str, *, what: str = "string") -> str:
    """Prepare *text* with SASLprep; raise :class:`SaslError` when it is prohibited.

    *what* names the input in the error message (``"username"``, ``"password"``).
    ASCII-only text without control characters is returned unchanged (fast path).
    """
    if text.isascii() and text.isprintable():
        return text
    # RFC 4013 §2.1: map non-ASCII spaces to SPACE, drop "mapped to nothing" (B.1).
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    # RFC 4013 §2.2: Unicode normalization form KC (of Unicode 3.2).
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    for position, ch in enumerate(prepared):
        for in_table, name in _PROHIBITED:
            if in_table(ch):
                raise SaslError(
                    f"SASLprep (RFC 4013): {what} contains a {name} "
                    f"U+{ord(ch):04X} at position {position}"
                )
    # RFC 4013 §2.4, RFC 3454 §6: bidirectional text rules.
    if any(stringprep.in_table_d1(ch) for ch in prepared):
        if any(stringprep.in_table_d2(ch) for ch in prepared):
            raise SaslError(
                f"SASLprep (RFC 3454 §6): {what} mixes right-to-left and left-to-right text"
            )
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            raise SaslError(
                f"SASLprep (RFC 3454 §6): {what} with right-to-left text must start "
                "and end with a right-to-left character"
            )
    return prepared
