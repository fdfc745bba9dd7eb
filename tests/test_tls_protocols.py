"""Protocol lists and cipher grades (Postfix tls_proto_mask_lims(), tls_set_ciphers())."""

from __future__ import annotations

import pytest

from pyfix_smtp.errors import TlsPolicyError
from pyfix_smtp.tls.protocols import (
    DEFAULT_HIGH_CIPHERLIST,
    DEFAULT_MEDIUM_CIPHERLIST,
    cipher_list,
    parse_protocols,
    protocol_range,
)


@pytest.mark.parametrize(
    ("text", "dane", "names"),
    [
        (">=TLSv1", False, ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")),
        ("", False, ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")),
        ("", True, ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")),
        (">=TLSv1.2", False, ("TLSv1.2", "TLSv1.3")),
        (">=tlsv1.2, <=TLSv1.2", False, ("TLSv1.2",)),
        (">=0x0303", False, ("TLSv1.2", "TLSv1.3")),
        (">=303", False, ("TLSv1.2", "TLSv1.3")),
        ("<=0304 >=0301", False, ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")),
        ("!SSLv2, !SSLv3", False, ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")),
        ("!SSLv2:!SSLv3:!TLSv1:!TLSv1.1", False, ("TLSv1.2", "TLSv1.3")),
        ("TLSv1.2 TLSv1.3", False, ("TLSv1.2", "TLSv1.3")),
        ("TLSv1.3", False, ("TLSv1.3",)),
        # A hole: OpenSSL uses the lowest contiguous run of enabled versions.
        ("!TLSv1.2", False, ("SSLv3", "TLSv1", "TLSv1.1")),
        ("!SSLv3 !TLSv1.1", False, ("TLSv1",)),
        (">=TLSv1.1 !TLSv1.2", False, ("TLSv1.1",)),
        # Unknown hex bound: OpenSSL refuses it, Postfix warns, bound unset.
        (">=TLSv1.2 <=0305", False, ("TLSv1.2", "TLSv1.3")),
        (">=None", False, ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")),
    ],
)
def test_protocol_ranges(text: str, dane: bool, names: tuple[str, ...]) -> None:
    assert protocol_range(parse_protocols(text), dane=dane).names == names


def test_unknown_bound_is_noted() -> None:
    prange = protocol_range(parse_protocols(">=TLSv1.2 <=0305"))
    assert prange.notes == ("cannot set maximum TLS version to 0x0305",)


@pytest.mark.parametrize("text", ["TLSv1.4", "!TLSv9", ">=TLSv2", ">=xyz", "SSLv4", ">=0x"])
def test_invalid_protocol_lists(text: str) -> None:
    with pytest.raises(TlsPolicyError):
        parse_protocols(text)


def test_nothing_left_is_an_error() -> None:
    with pytest.raises(TlsPolicyError, match="no TLS protocol version"):
        protocol_range(parse_protocols("!SSLv3 !TLSv1 !TLSv1.1 !TLSv1.2 !TLSv1.3"))
    with pytest.raises(TlsPolicyError):
        protocol_range(parse_protocols("SSLv3"), dane=True)


@pytest.mark.parametrize(
    ("grade", "excl", "expected"),
    [
        ("medium", "", DEFAULT_MEDIUM_CIPHERLIST),
        ("HIGH", "", DEFAULT_HIGH_CIPHERLIST),
        ("low", "", DEFAULT_MEDIUM_CIPHERLIST),
        ("export", "", DEFAULT_MEDIUM_CIPHERLIST),
        ("high", "aNULL", DEFAULT_HIGH_CIPHERLIST + ":!aNULL"),
        ("high", "MD5, DES+MD5:kEDH+aRSA", DEFAULT_HIGH_CIPHERLIST + ":!MD5:!DES+MD5:!kEDH+aRSA"),
    ],
)
def test_cipher_lists(grade: str, excl: str, expected: str) -> None:
    assert cipher_list(grade, excl) == expected


@pytest.mark.parametrize(
    ("grade", "excl", "reason"),
    [
        ("strong", "", 'invalid cipher grade: "strong"'),
        ("invalid", "", "invalid cipher grade"),
        ("high", "!RC4", "invalid unary"),
        ("high", "+RC4", "invalid unary"),
    ],
)
def test_cipher_list_errors(grade: str, excl: str, reason: str) -> None:
    with pytest.raises(TlsPolicyError, match=reason):
        cipher_list(grade, excl)


def test_empty_base_list_rejected() -> None:
    with pytest.raises(TlsPolicyError, match="empty"):
        cipher_list("high", "", high="")
