"""smtp_tls_loglevel: Postfix's TLS_LOG_* features and the lines they add."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pyfix_smtp.config import Config
from pyfix_smtp.errors import ConfigError
from pyfix_smtp.testing import generate_certificates
from pyfix_smtp.tls.fingerprints import colon_hex, spki_der
from pyfix_smtp.tls.loglevel import (
    TlsLog,
    cache_lines,
    parse_log_level,
    peer_lines,
    session_mask,
    setup_lines,
)
from pyfix_smtp.tls.options import TlsOptions
from pyfix_smtp.tls.policy import TlsPolicy, TlsTarget, evaluate
from pyfix_smtp.tls.verify import check_peer

S, U, P, C, V, K, D, T, A, N = (
    TlsLog.SUMMARY,
    TlsLog.UNTRUSTED,
    TlsLog.PEERCERT,
    TlsLog.CERTMATCH,
    TlsLog.VERBOSE,
    TlsLog.CACHE,
    TlsLog.DEBUG,
    TlsLog.TLSPKTS,
    TlsLog.ALLPKTS,
    TlsLog.DANE,
)

# Postfix tls_misc.c tls_log_table[]
LEVELS = [
    ("0", TlsLog.NONE),
    ("none", TlsLog.NONE),
    ("", TlsLog(0)),
    ("1", S),
    ("routine", S),
    ("2", S | V | K | D),
    ("DEBUG", S | V | K | D),
    ("3", S | V | K | D | T),
    ("ssl-expert", S | V | K | D | T),
    ("4", S | V | K | D | T | A),
    ("9", S | V | K | D | T | A),
    ("summary, untrusted", S | U),
    ("peercert certmatch dane", P | C | N),
    ("ssl-debug", D),
    ("ssl-session-packet-dump", T | A),
]


@pytest.mark.parametrize(("text", "mask"), LEVELS)
def test_levels_and_keywords(text: str, mask: TlsLog) -> None:
    assert parse_log_level(text) == mask
    assert TlsOptions(smtp_tls_loglevel=text).log_mask == mask


@pytest.mark.parametrize("text", ["10", "-1", "verbose debugging", "routine;"])
def test_unknown_level_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match=r"smtp_tls_loglevel.*unknown value"):
        TlsOptions(smtp_tls_loglevel=text)


def test_lmtp_level_error_names_the_lmtp_parameter() -> None:
    with pytest.raises(ConfigError, match="lmtp_tls_loglevel") as info:
        TlsOptions.from_config(Config(protocol="lmtp", lmtp_tls_loglevel="loud"))
    assert info.value.parameter == "lmtp_tls_loglevel"
    opts = TlsOptions.from_config(Config(protocol="lmtp", lmtp_tls_loglevel="1"))
    assert opts.log_mask == S


NOW = dt.datetime.now(dt.UTC)
TARGET = TlsTarget(nexthop="example.test", domain="example.test", host="mx.example.test", port=25)
LABEL = "mx.example.test[192.0.2.1]:25"


def _policy(level: str) -> TlsPolicy:
    return evaluate(TARGET, TlsOptions(smtp_tls_security_level=level))


def test_must_match_levels_always_log_untrusted() -> None:
    # tls_client_start(): trust failures are logged when the certificate must match
    assert session_mask(TlsLog.NONE, _policy("verify")) == TlsLog.NONE | U
    assert session_mask(TlsLog.NONE, _policy("may")) == TlsLog.NONE
    assert session_mask(S, _policy("encrypt")) == S


def test_setup_lines_at_level_2_only() -> None:
    policy = _policy("may")
    assert setup_lines(LABEL, policy, parse_log_level("1")) == []
    assert setup_lines(LABEL, policy, parse_log_level("2")) == [
        f"setting up TLS connection to {LABEL}",
        f'{LABEL}: TLS cipher list "{policy.cipher_list}"',
    ]


def test_cache_lines() -> None:
    assert cache_lines(LABEL, True, parse_log_level("2")) == [f"{LABEL}: Reusing old session"]
    assert cache_lines(LABEL, False, parse_log_level("2")) == []
    assert cache_lines(LABEL, True, parse_log_level("1")) == []


def _chain(*names: str) -> tuple[bytes, ...]:
    certs = generate_certificates(*names)
    pems = x509.load_pem_x509_certificates(certs.chain_pem)
    return tuple(c.public_bytes(Encoding.DER) for c in pems)


def test_peer_lines_at_may() -> None:
    chain = _chain("mx.example.test")
    policy = _policy("may")
    check = check_peer(policy, chain, now=NOW)
    fpt = colon_hex(hashlib.sha256(chain[0]).digest())
    pkey = colon_hex(hashlib.sha256(spki_der(chain[0])).digest())
    assert peer_lines(LABEL, check, chain, parse_log_level("1")) == []
    assert peer_lines(LABEL, check, chain, parse_log_level("2")) == [
        f"{LABEL}: subject_CN=mx.example.test, issuer=pyfix_smtp.testing CA,"
        f" cert fingerprint={fpt}, pkey fingerprint={pkey}"
    ]
    assert peer_lines(LABEL, check, chain, parse_log_level("peercert")) == peer_lines(
        LABEL, check, chain, parse_log_level("certmatch")
    )


def test_peer_lines_name_the_certificate_name_that_matched() -> None:
    # OpenSSL SSL_get0_peername(): the certificate's (wildcard) name, not ours
    chain = _chain("*.example.test")
    check = check_peer(_policy("verify"), chain, now=NOW, pkix_verified=True)
    assert check.matched
    assert str(check.name) == "mx.example.test"
    lines = peer_lines(LABEL, check, chain, parse_log_level("2"))
    assert lines[0] == f"{LABEL}: matched peername: *.example.test"
    assert lines[1].startswith(f"{LABEL}: subject_CN=*.example.test, issuer=pyfix_smtp.testing CA")
    assert len(lines) == 2
