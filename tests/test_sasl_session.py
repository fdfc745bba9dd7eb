"""A whole AUTH attempt in Postfix's order: options, lookup, filter, cache, choice, verdict."""

from __future__ import annotations

import base64
import logging

import pytest

from pyfix_smtp.config import Config
from pyfix_smtp.errors import ConfigError, SaslError
from pyfix_smtp.sasl import (
    AuthAttempt,
    ConnectionSecurity,
    MechanismFilter,
    SaslOptions,
    SecurityOption,
    answer_challenge,
    finish_auth,
    mechanism_failure,
    parse_security_options,
    start_auth,
)
from pyfix_smtp.sasl.cache import AuthFailureCache, MemoryAuthCacheStore
from pyfix_smtp.sasl.options import DEFAULT_SECURITY_OPTIONS
from pyfix_smtp.status import Failure, Reply

T0 = 1_700_000_000.0
HOST = "mx.example.com"
SERVER = "mx.example.com[192.0.2.1]"
OK = Reply(235, "2.7.0", ("2.7.0 Authentication successful",))
BAD = Reply(535, "5.7.8", ("5.7.8 Error: authentication failed: authentication failure",))


class DictTable:
    """A dict-backed stand-in for a lookup table."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data

    def lookup(self, key: str) -> str | None:
        return self.data.get(key)


def options(**kw: object) -> SaslOptions:
    base: dict[str, object] = {
        "auth_enable": True,
        "password_maps": DictTable({HOST: "user:pencil"}),
    }
    base.update(kw)
    return SaslOptions(**base)  # type: ignore[arg-type]


def start(
    opts: SaslOptions, offered: tuple[str, ...], **kw: object
) -> AuthAttempt | Failure | None:
    args: dict[str, object] = {
        "offered": offered,
        "host": HOST,
        "nexthop": "example.com",
        "server": SERVER,
        "security": ConnectionSecurity.PLAINTEXT,
        "now": T0,
    }
    args.update(kw)
    return start_auth(opts, **args)  # type: ignore[arg-type]


# --- options ------------------------------------------------------------------------


def test_defaults_follow_postfix() -> None:
    opts = SaslOptions()
    assert not opts.auth_enable
    assert opts.security_options == DEFAULT_SECURITY_OPTIONS
    # $smtp_sasl_security_options -> tls -> tls_verified
    assert opts.tls_security_options == DEFAULT_SECURITY_OPTIONS
    assert opts.tls_verified_security_options == DEFAULT_SECURITY_OPTIONS
    assert opts.auth_soft_bounce
    assert opts.auth_cache_time == 90 * 86400
    assert not opts.send_authzid
    assert opts.password_result_delimiter == ":"


def test_tls_options_inherit_in_chain() -> None:
    tls = parse_security_options("noanonymous")
    opts = SaslOptions(tls_security_options=tls)
    assert opts.security_options_for(ConnectionSecurity.PLAINTEXT) == DEFAULT_SECURITY_OPTIONS
    assert opts.security_options_for(ConnectionSecurity.TLS) == tls
    assert opts.security_options_for(ConnectionSecurity.TLS_VERIFIED) == tls
    verified = frozenset[SecurityOption]()
    opts = SaslOptions(tls_security_options=tls, tls_verified_security_options=verified)
    assert opts.security_options_for(ConnectionSecurity.TLS_VERIFIED) == verified


@pytest.mark.parametrize(
    ("kw", "parameter"),
    [
        ({"password_result_delimiter": ""}, "smtp_sasl_password_result_delimiter"),
        ({"password_result_delimiter": "::"}, "smtp_sasl_password_result_delimiter"),
        ({"sasl_type": "dovecot"}, "smtp_sasl_type"),
        ({"auth_cache_time": -1.0}, "smtp_sasl_auth_cache_time"),
    ],
)
def test_option_errors(kw: dict[str, object], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        SaslOptions(**kw)  # type: ignore[arg-type]
    assert info.value.parameter == parameter


def test_from_config_defaults() -> None:
    opts = SaslOptions.from_config(Config())
    assert opts == SaslOptions()


def test_from_config_main_cf() -> None:
    cfg = Config.from_postconf(
        "smtp_sasl_auth_enable = yes\n"
        "smtp_sasl_password_maps = inline:{ mx.example.com=u|p:w }\n"
        "smtp_sasl_password_result_delimiter = |\n"
        "smtp_sender_dependent_authentication = yes\n"
        "smtp_sasl_mechanism_filter = !login, inline:{ plain=yes, cram-md5=yes }\n"
        "smtp_sasl_tls_security_options = noanonymous\n"
        "send_cyrus_sasl_authzid = yes\n"
        "smtp_sasl_auth_soft_bounce = no\n"
        "smtp_sasl_auth_cache_name = memory:\n"
        "smtp_sasl_auth_cache_time = 1h\n"
    )
    opts = SaslOptions.from_config(cfg)
    assert opts.auth_enable
    assert opts.sender_dependent_authentication
    assert opts.mechanism_filter.apply(["LOGIN", "PLAIN", "CRAM-MD5", "XOAUTH2"]) == (
        "PLAIN",
        "CRAM-MD5",
    )
    assert opts.security_options == DEFAULT_SECURITY_OPTIONS
    # $smtp_sasl_tls_security_options -> smtp_sasl_tls_verified_security_options
    assert opts.tls_security_options == {SecurityOption.NOANONYMOUS}
    assert opts.tls_verified_security_options == {SecurityOption.NOANONYMOUS}
    assert opts.send_authzid
    assert not opts.auth_soft_bounce
    creds = opts.credentials(host="mx.example.com", nexthop="example.com")
    assert creds is not None
    assert (creds.username, creds.password) == ("u", "p:w")
    cache = opts.open_cache()
    assert cache is not None
    assert cache.ttl == 3600.0


def test_from_config_lmtp_names_lmtp_parameters() -> None:
    cfg = Config(protocol="lmtp", lmtp_sasl_security_options="noplaintext, bogus")
    with pytest.raises(ConfigError) as info:
        SaslOptions.from_config(cfg)
    assert info.value.parameter == "lmtp_sasl_security_options"
    lmtp = SaslOptions.from_config(Config(protocol="lmtp"))
    assert lmtp.protocol == "lmtp"


# --- start_auth: Postfix's order ----------------------------------------------------


def test_auth_disabled_or_no_credentials_means_no_auth() -> None:
    assert start(options(auth_enable=False), ("PLAIN",)) is None
    assert start(options(password_maps=DictTable({})), ("SCRAM-SHA-256",)) is None
    assert start(SaslOptions(auth_enable=True), ("PLAIN",)) is None  # no maps at all


def test_filter_leaves_nothing(caplog: pytest.LogCaptureFixture) -> None:
    opts = options(mechanism_filter=MechanismFilter.parse("cram-md5"))
    with caplog.at_level(logging.WARNING, logger="pyfix_smtp.sasl"):
        result = start(opts, ("PLAIN", "LOGIN"))
    assert result == Failure(
        "4.7.0",
        f"SASL authentication failed: server {SERVER} offered no compatible authentication "
        "mechanisms for this type of connection security",
    )
    assert "smtp_sasl_mechanism_filter = cram-md5 removes them all" in caplog.text


def test_security_options_leave_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pyfix_smtp.sasl"):
        result = start(options(), ("PLAIN", "LOGIN"), security=ConnectionSecurity.TLS)
    assert result == Failure(
        "4.7.0",
        f"SASL authentication failed; cannot authenticate to server {SERVER}: "
        "no mechanism available",
    )
    assert "set smtp_sasl_tls_security_options = noanonymous to allow them" in caplog.text


def test_tls_options_allow_plain_over_tls_only() -> None:
    opts = options(tls_security_options=parse_security_options("noanonymous"))
    assert isinstance(start(opts, ("PLAIN",)), Failure)
    attempt = start(opts, ("PLAIN",), security=ConnectionSecurity.TLS)
    assert isinstance(attempt, AuthAttempt)
    assert attempt.mechanism.name == "PLAIN"
    assert attempt.initial_response == b"\0user\0pencil"
    assert "pencil" not in repr(attempt)


def test_scram_full_exchange_rfc7677() -> None:
    attempt = start(options(), ("PLAIN", "SCRAM-SHA-256"), nonce="rOprNGfwEbeRWgbNEkqO")
    assert isinstance(attempt, AuthAttempt)
    assert attempt.mechanism.name == "SCRAM-SHA-256"
    assert attempt.initial_response == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    # What the protocol layer does with 334 challenges: decode, step, encode.
    challenges = [
        "cj1yT3ByTkdmd0ViZVJXZ2JORWtxTyVodllEcFdVYTJSYVRDQWZ1eEZJbGopaE5sRiRrMCxzPVcyMlphSjBTTlk3c29Fc1VFamI2Z1E9PSxpPTQwOTY=",
        "dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ==",
    ]
    responses = [
        base64.b64encode(attempt.mechanism.step(base64.b64decode(c))).decode() for c in challenges
    ]
    assert responses == [
        "Yz1iaXdzLHI9ck9wck5HZndFYmVSV2diTkVrcU8laHZZRHBXVWEyUmFUQ0FmdXhGSWxqKWhObEYkazAscD1kSHpiWmFwV0lrNGpVaE4rVXRlOXl0YWc5empmTUhnc3FtbWl6N0FuZFZRPQ==",
        "",
    ]
    assert finish_auth(options(), attempt, OK, now=T0) is None


def test_scram_success_without_server_proof_fails() -> None:
    attempt = start(options(), ("SCRAM-SHA-256",), nonce="rOprNGfwEbeRWgbNEkqO")
    assert isinstance(attempt, AuthAttempt)
    attempt.mechanism.step(
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    failure = finish_auth(options(), attempt, OK, now=T0)
    assert failure is not None
    assert failure.status == "4.7.0"
    assert failure.reason.startswith(
        f"SASL authentication failed; cannot authenticate to server {SERVER}: SCRAM-SHA-256:"
    )


def test_535_soft_bounce_and_cache_round_trip() -> None:
    cache = AuthFailureCache(MemoryAuthCacheStore(), 90 * 86400)
    opts = options()
    attempt = start(opts, ("CRAM-MD5",), cache=cache)
    assert isinstance(attempt, AuthAttempt)
    failure = finish_auth(opts, attempt, BAD, now=T0, cache=cache)
    assert failure == Failure(
        "4.7.8",
        f"SASL authentication failed; server {SERVER} said: "
        "535 5.7.8 Error: authentication failed: authentication failure",
    )
    # Next delivery: the known-bad password is not tried again.
    cached = start(opts, ("CRAM-MD5",), cache=cache, now=T0 + 60)
    assert cached == Failure(
        "4.7.8",
        f"SASL [CACHED] authentication failed; server {HOST} said: "
        "535 5.7.8 Error: authentication failed: authentication failure",
    )
    # Without soft bounce the cached status stays 5.7.8.
    hard = start(options(auth_soft_bounce=False), ("CRAM-MD5",), cache=cache, now=T0 + 60)
    assert isinstance(hard, Failure)
    assert hard.status == "5.7.8"
    # A new password misses the cache.
    fixed = options(password_maps=DictTable({HOST: "user:new"}))
    assert isinstance(start(fixed, ("CRAM-MD5",), cache=cache, now=T0 + 60), AuthAttempt)


def test_filter_failure_precedes_cache() -> None:
    # Postfix checks the filtered list in smtp_sasl_helo_login() before the cache.
    cache = AuthFailureCache(MemoryAuthCacheStore(), 90 * 86400)
    cache.record(HOST, "user", "pencil", BAD, now=T0)
    result = start(
        options(mechanism_filter=MechanismFilter.parse("login")), ("PLAIN",), cache=cache
    )
    assert isinstance(result, Failure)
    assert "offered no compatible" in result.reason


def test_cache_precedes_security_options() -> None:
    # ... and the cache before the SASL library chooses a mechanism.
    cache = AuthFailureCache(MemoryAuthCacheStore(), 90 * 86400)
    cache.record(HOST, "user", "pencil", BAD, now=T0)
    result = start(options(), ("PLAIN",), cache=cache)
    assert isinstance(result, Failure)
    assert result.reason.startswith("SASL [CACHED]")


def test_non_535_failure_is_not_cached() -> None:
    cache = AuthFailureCache(MemoryAuthCacheStore(), 90 * 86400)
    attempt = start(options(), ("CRAM-MD5",), cache=cache)
    assert isinstance(attempt, AuthAttempt)
    temp = Reply(454, "4.7.0", ("4.7.0 Temporary authentication failure",))
    failure = finish_auth(options(), attempt, temp, now=T0, cache=cache)
    assert failure is not None
    assert failure.status == "4.7.0"
    assert cache.find(HOST, "user", "pencil", now=T0) is None


def test_bad_credentials_for_the_mechanism() -> None:
    opts = options(password_maps=DictTable({HOST: "user:bad\u0007"}))
    result = start(opts, ("SCRAM-SHA-256",))
    assert isinstance(result, Failure)
    assert "SASLprep" in result.reason
    assert result.status == "4.7.0"


def test_finish_refuses_a_challenge_reply() -> None:
    attempt = start(options(), ("SCRAM-SHA-256",))
    assert isinstance(attempt, AuthAttempt)
    with pytest.raises(ValueError, match="3xx"):
        finish_auth(options(), attempt, Reply(334, "5.5.0", ("",)), now=T0)


def test_mechanism_failure_text() -> None:
    assert mechanism_failure(SERVER, SaslError("PLAIN: unexpected server challenge b'x'")) == (
        Failure(
            "4.7.0",
            f"SASL authentication failed; cannot authenticate to server {SERVER}: "
            "PLAIN: unexpected server challenge b'x'",
        )
    )


def test_answer_challenge() -> None:
    attempt = start(options(), ("CRAM-MD5",))
    assert isinstance(attempt, AuthAttempt)
    bad = answer_challenge(attempt, None)
    assert bad == Failure(
        "4.7.0",
        f"SASL authentication failed; cannot authenticate to server {SERVER}: "
        "malformed base64 in server challenge",
    )
    response = answer_challenge(attempt, b"<1896.697170952@postoffice.reston.mci.net>")
    assert isinstance(response, bytes)
    assert response.startswith(b"user ")
    again = answer_challenge(attempt, b"<1.2@x>")
    assert isinstance(again, Failure)
    assert "CRAM-MD5: unexpected server challenge" in again.reason
