"""TLS security levels: Postfix's order, names, predicates and the obsolete parameters."""

from __future__ import annotations

import pytest

from pyfix_smtp.errors import ConfigError
from pyfix_smtp.tls.levels import TlsLevel, global_level

ORDER = [
    "none",
    "may",
    "encrypt",
    "fingerprint",
    "halfdane",
    "dane",
    "dane-only",
    "verify",
    "secure",
]


def test_order_is_postfix_tls_h() -> None:
    assert [level.text for level in sorted(TlsLevel)] == ORDER
    assert TlsLevel.FINGERPRINT < TlsLevel.DANE < TlsLevel.VERIFY


@pytest.mark.parametrize(
    ("level", "enabled", "required", "must_match", "pkix", "dane", "opportunistic"),
    [
        (TlsLevel.NONE, False, False, False, False, False, False),
        (TlsLevel.MAY, True, False, False, False, False, True),
        (TlsLevel.ENCRYPT, True, True, False, False, False, False),
        (TlsLevel.FINGERPRINT, True, True, True, False, False, False),
        (TlsLevel.HALFDANE, True, True, True, False, True, False),
        (TlsLevel.DANE, True, True, True, False, True, True),
        (TlsLevel.DANE_ONLY, True, True, True, False, True, False),
        (TlsLevel.VERIFY, True, True, True, True, False, False),
        (TlsLevel.SECURE, True, True, True, True, False, False),
    ],
)
def test_predicates_match_tls_h_macros(
    level: TlsLevel,
    enabled: bool,
    required: bool,
    must_match: bool,
    pkix: bool,
    dane: bool,
    opportunistic: bool,
) -> None:
    assert level.tls_enabled is enabled
    assert level.tls_required is required
    assert level.must_match is must_match
    assert level.must_pkix is pkix
    assert level.dane_based is dane
    assert level.opportunistic is opportunistic
    assert level.never_secured is (level is TlsLevel.HALFDANE)


@pytest.mark.parametrize("name", ["Dane-Only", "SECURE", "may", "Fingerprint"])
def test_parse_is_case_insensitive(name: str) -> None:
    assert TlsLevel.parse(name).text == name.lower()


@pytest.mark.parametrize("name", ["halfdane", "HalfDane", "must", "", "dane_only", "tls"])
def test_parse_rejects_unknown_and_output_only_names(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        TlsLevel.parse(name)
    assert info.value.parameter == "smtp_tls_security_level"
    assert TlsLevel.lookup(name) is None


@pytest.mark.parametrize(
    ("level", "use", "enforce", "peername", "expected"),
    [
        ("", False, False, True, TlsLevel.NONE),
        ("", True, False, True, TlsLevel.MAY),
        ("", False, True, True, TlsLevel.VERIFY),
        ("", True, True, True, TlsLevel.VERIFY),
        ("", False, True, False, TlsLevel.ENCRYPT),
        ("", True, True, False, TlsLevel.ENCRYPT),
        ("none", True, True, True, TlsLevel.NONE),
        ("may", False, True, True, TlsLevel.MAY),
        ("dane", False, False, True, TlsLevel.DANE),
        ("  secure ", False, False, True, TlsLevel.SECURE),
    ],
)
def test_global_level_obsolete_mapping(
    level: str, use: bool, enforce: bool, peername: bool, expected: TlsLevel
) -> None:
    """Postfix smtp_tls_policy.c global_tls_level()."""
    got = global_level(
        level, smtp_use_tls=use, smtp_enforce_tls=enforce, smtp_tls_enforce_peername=peername
    )
    assert got is expected


def test_global_level_rejects_invalid_name() -> None:
    with pytest.raises(ConfigError, match="invalid TLS security level"):
        global_level("halfdane")
