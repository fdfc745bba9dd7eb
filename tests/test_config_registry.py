"""The parameter registry against the smtp(8) parameter list and Postfix 3.11."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pyfix_smtp.config import BY_NAME, PARAMETERS, Config, Status
from pyfix_smtp.config.fields import ConfigFields
from pyfix_smtp.config.params import Param
from pyfix_smtp.config.values import Time

# The section, parameter and default columns of the smtp(8) parameter list
# (Postfix 3.11), kept with the tests so they run anywhere.
TSV = Path(__file__).parent / "data" / "config" / "smtp-parameters.tsv"
# The project's full reference copy, when this checkout sits next to it.
SHARED_TSV = Path("/work/shared/reference/postfix-smtp-parameters.tsv")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


ROWS = _rows(TSV)


def test_reference_copy_matches_the_shared_reference() -> None:
    if not SHARED_TSV.exists():
        pytest.skip(f"{SHARED_TSV} is not present in this checkout's surroundings")
    shared = [
        {key: row[key] for key in ("section", "parameter", "default")} for row in _rows(SHARED_TSV)
    ]
    assert shared == ROWS


# Where the manual says "see 'postconf -d' output" or "version dependent",
# the Postfix 3.11 value (global/mail_params.h, with compatibility_level=3.11
# and OpenSSL 3.0..3.4, the OpenSSL Python links here).
POSTCONF_D_3_11 = {
    "smtp_cname_overrides_servername": "no",
    "smtp_tls_security_level": "may",
    "smtp_tls_mandatory_protocols": ">=TLSv1",
    "smtp_tls_protocols": ">=TLSv1",
    "smtp_tls_fingerprint_digest": "sha256",
    "smtp_tlsrpt_skip_reused_handshakes": "no",
    "tls_high_cipherlist": (
        "aNULL:-aNULL:HIGH:!SEED:!IDEA:!3DES:!RC2:!RC4:!RC5:!kDH:!kECDH:!aDSS:!MD5:@STRENGTH"
    ),
    "tls_medium_cipherlist": (
        "aNULL:-aNULL:HIGH:MEDIUM:!SEED:!IDEA:!3DES:!RC2:!RC4:!RC5:!kDH:!kECDH:!aDSS:!MD5"
        ":+RC4:@STRENGTH"
    ),
    "tls_low_cipherlist": "",
    "tls_export_cipherlist": "",
    "tls_disable_workarounds": "",
    "tls_eecdh_auto_curves": "X25519 X448 prime256v1 secp384r1 secp521r1",
    "tls_ffdhe_auto_groups": "ffdhe2048 ffdhe3072",
    "config_directory": "/etc/postfix",
    "inet_protocols": "all",
    "syslog_name": "postfix",
    "smtp_requiretls_policy": (
        "inline:{{MYDOMAIN=opportunistic}, {.MYDOMAIN=opportunistic}, "
        "{localhost=opportunistic}}, cidr:{{0.0.0.0/0 opportunistic}, "
        "{::/0 opportunistic}}, enforce"
    ),
}
# Rows whose documented default differs from the Postfix 3.11 source.
SOURCE_OVERRIDES = {
    # proto/postconf.proto still documents "eNULL:!aNULL"; mail_params.h
    # DEF_TLS_NULL_CLIST adds TLS_EXCL_REST.
    "tls_null_cipherlist": "eNULL:!kDH:!kECDH:!aDSS:!MD5:!aNULL",
}


def _param_for(name: str) -> tuple[Param, str]:
    """Registry row and protocol for a name of the smtp(8) list."""
    if name in BY_NAME:
        return BY_NAME[name], "smtp"
    for param in PARAMETERS:
        if param.alias == name:
            return param, "smtp"
        if param.lmtp == name:
            return param, "lmtp"
    raise AssertionError(f"{name} is not in the registry")


def test_reference_has_181_rows() -> None:
    assert len(ROWS) == 181


@pytest.mark.parametrize("row", ROWS, ids=[r["parameter"] for r in ROWS])
def test_every_manual_parameter_has_its_default(row: dict[str, str]) -> None:
    name, documented = row["parameter"], row["default"]
    param, protocol = _param_for(name)
    if name == param.name:
        assert param.section == row["section"]
        assert param.in_manual
    value = Config(protocol=protocol).get(name)
    if documented == "read-only":
        assert param.computed_text.startswith("read-only")
        return
    if name in SOURCE_OVERRIDES:
        expected_text = SOURCE_OVERRIDES[name]
    elif name in POSTCONF_D_3_11:
        # The requiretls default names $mydomain, which depends on the host.
        expected_text = POSTCONF_D_3_11[name].replace("MYDOMAIN", Config().mydomain)
    else:
        for marker in ("postconf", "version dependent", "Postfix"):
            assert marker not in documented
        expected_text = "" if documented == "empty" else documented
    expected = Config(protocol=protocol, **{name: expected_text}).get(name)
    assert value == expected


def test_version_dependent_defaults_follow_compatibility_level() -> None:
    old = Config(compatibility_level="3.10")
    assert old.smtp_tls_security_level == ""
    assert old.smtp_tls_fingerprint_digest == "sha256"
    older = Config(compatibility_level="3.5")
    assert older.smtp_tls_fingerprint_digest == "md5"
    assert older.smtputf8_enable is True
    assert Config(compatibility_level="0").smtputf8_enable is False
    assert Config().compatibility_level == "3.11"
    # Compatibility levels compare as numbers, not strings: 3.9 < 3.11.
    assert Config(compatibility_level="3.9").smtp_tls_security_level == ""
    assert Config(compatibility_level="3.12").smtp_tls_security_level == "may"


def test_registry_and_typed_fields_agree() -> None:
    declared = {
        f: t
        for f, t in ConfigFields.__annotations__.items()
        if f not in ("protocol", "_unknown_items", "_texts", "_objects")
    }
    assert declared == {p.name: p.kind.python_type for p in PARAMETERS}
    assert len(PARAMETERS) == len({p.name for p in PARAMETERS})


def test_extras_are_marked_and_cover_the_manual_gaps() -> None:
    manual = {row["parameter"] for row in ROWS}
    for param in PARAMETERS:
        listed = param.name in manual or param.alias in manual or param.lmtp in manual
        assert listed == param.in_manual, param.name
    # smtp(8) documents these two but the parameter list omits them.
    assert not BY_NAME["smtp_tls_CAfile"].in_manual
    assert BY_NAME["smtp_tls_CAfile"].lmtp == "lmtp_tls_CAfile"


def test_statuses_have_reasons() -> None:
    for param in PARAMETERS:
        assert isinstance(param.status, Status)
        if param.status is Status.NOT_APPLICABLE:
            assert param.note, param.name


def test_time_units_follow_the_default_value() -> None:
    """mail_conf_time.c get_def_time_unit(): the unit letter of the default."""
    for param in PARAMETERS:
        if param.kind.python_type == "float":
            letters = [c for c in param.default if c.isalpha()]
            assert letters, param.name
            assert isinstance(param.kind, Time)
            assert param.kind.unit == letters[0], param.name


# LMTP twins and defaults from smtp/lmtp_params.c and mail_params.h DEF_LMTP_*.
LMTP_DEFAULTS = [
    ("lmtp_connect_timeout", "smtp_connect_timeout", 0.0),
    ("lmtp_tcp_port", "smtp_tcp_port", "24"),
    ("lmtp_lhlo_timeout", "smtp_helo_timeout", 300.0),
    ("lmtp_skip_quit_response", "smtp_skip_quit_response", False),
    ("lmtp_tls_security_level", "smtp_tls_security_level", ""),
    ("lmtp_tls_secure_cert_match", "smtp_tls_secure_cert_match", ("nexthop",)),
    ("lmtp_fallback_relay", "smtp_fallback_relay", ()),
    ("lmtp_discard_lhlo_keywords", "smtp_discard_ehlo_keywords", ()),
    ("lmtp_per_request_deadline", "smtp_per_request_deadline", False),
]


@pytest.mark.parametrize(("lmtp_name", "attr", "expected"), LMTP_DEFAULTS)
def test_lmtp_twin_defaults(lmtp_name: str, attr: str, expected: object) -> None:
    cfg = Config(protocol="lmtp")
    assert getattr(cfg, attr) == expected
    assert cfg.get(lmtp_name) == expected
    assert BY_NAME[attr].lmtp == lmtp_name


def test_lmtp_requiretls_policy_default() -> None:
    assert Config(protocol="lmtp").smtp_requiretls_policy == ("opportunistic",)


def test_lmtp_helo_name_follows_myhostname() -> None:
    cfg = Config(protocol="lmtp", myhostname="lmtp.example.org")
    assert cfg.smtp_helo_name == "lmtp.example.org"
    assert cfg.get("lmtp_lhlo_name") == "lmtp.example.org"
