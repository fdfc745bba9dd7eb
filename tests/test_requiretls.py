"""REQUIRETLS policy (Postfix smtp_reqtls_policy.c) and outcomes (smtp_connect.c, smtp_proto.c)."""

from __future__ import annotations

import pytest

from pyfix_smtp.config import Config
from pyfix_smtp.errors import LookupTableError, TlsPolicyError
from pyfix_smtp.maps import CallableTable
from pyfix_smtp.tls.levels import TlsLevel
from pyfix_smtp.tls.requiretls import (
    RequireTlsAction,
    RequireTlsPolicy,
    certificate_not_matched,
    check_level,
    mail_from_options,
    missing_requiretls,
    starttls_not_offered,
    starttls_refused,
)

A = RequireTlsAction


@pytest.mark.parametrize(
    ("text", "nexthop", "action"),
    [
        ("enforce", "example.com", A.ENFORCE),
        ("opportunistic+starttls", "example.com", A.OPPORTUNISTIC_STARTTLS),
        ("Opportunistic, enforce", "example.com", A.OPPORTUNISTIC),
        ("disable", "example.com", A.DISABLE),
        ("error", "example.com", A.ERROR),
        ("sometimes", "example.com", A.ERROR),
        ("", "example.com", A.ENFORCE),  # no match: enforce
        ("inline:{example.com=disable}", "example.com", A.DISABLE),
        ("inline:{.example.com=disable}", "mx.sub.example.com", A.DISABLE),
        ("inline:{.com=disable}", "mx.sub.example.com", A.DISABLE),
        ("inline:{example.com=disable}", "sub.example.com", A.ENFORCE),
        ("inline:{example.com=disable}, opportunistic", "other.example", A.OPPORTUNISTIC),
        ("inline:{example.com=opportunistic}, disable", "EXAMPLE.COM", A.OPPORTUNISTIC),
        # pattern tables get the name only, never .parent forms
        ("regexp:{{/^\\.example\\.com$/ disable}}", "mx.example.com", A.ENFORCE),
        ("regexp:{{/example\\.com$/ disable}}", "mx.example.com", A.DISABLE),
        # nested or composite lookup results are errors
        ("inline:{{example.com=inline:{x=y}}}", "example.com", A.ERROR),
        ("inline:{{example.com = enforce disable}}", "example.com", A.ERROR),
        ("inline:{example.com=never}", "example.com", A.ERROR),
        ("inline:{example.com=error}", "example.com", A.ERROR),
        # IP addresses: no parent lookups
        ("cidr:{{10.0.0.0/8 disable}}", "10.1.2.3", A.DISABLE),
        ("inline:{.2.3=disable}", "10.1.2.3", A.ENFORCE),
    ],
)
def test_policy_evaluation(text: str, nexthop: str, action: RequireTlsAction) -> None:
    got, why = RequireTlsPolicy.parse(text).evaluate(nexthop)
    assert got is action, why


def test_unicode_nexthop_is_looked_up_as_a_label() -> None:
    policy = RequireTlsPolicy.parse("inline:{xn--bcher-kva.example=disable}")
    assert policy.evaluate("bücher.example")[0] is A.DISABLE


def test_table_error_means_error() -> None:
    def broken(key: str) -> str | None:
        raise LookupTableError("t", key, "down")

    policy = RequireTlsPolicy.parse([CallableTable(broken), "disable"])
    action, why = policy.evaluate("example.com")
    assert action is A.ERROR
    assert "table lookup error" in why


def test_unopenable_table() -> None:
    with pytest.raises(TlsPolicyError, match="cannot open table"):
        RequireTlsPolicy.parse("hash:/nonexistent/file")


@pytest.mark.parametrize(
    ("nexthop", "action"),
    [
        ("example.org", A.OPPORTUNISTIC),
        ("mail.example.org", A.OPPORTUNISTIC),
        ("localhost", A.OPPORTUNISTIC),
        ("192.0.2.1", A.OPPORTUNISTIC),
        ("2001:db8::1", A.OPPORTUNISTIC),
        ("example.net", A.ENFORCE),
        ("notexample.org", A.ENFORCE),
    ],
)
def test_postfix_default_policy(nexthop: str, action: RequireTlsAction) -> None:
    policy = RequireTlsPolicy.postfix_default("example.org")
    assert policy.evaluate(nexthop)[0] is action


def test_default_from_config_matches_ours() -> None:
    cfg = Config(mydomain="example.org")
    from_config = RequireTlsPolicy.parse(cfg.smtp_requiretls_policy)
    ours = RequireTlsPolicy.postfix_default("example.org")
    for name in ("example.org", "a.example.org", "localhost", "10.0.0.1", "example.net"):
        assert from_config.evaluate(name)[0] is ours.evaluate(name)[0]
    lmtp = RequireTlsPolicy.postfix_default("example.org", protocol="lmtp")
    assert lmtp.evaluate("anything")[0] is A.OPPORTUNISTIC


@pytest.mark.parametrize(
    ("action", "level", "status", "text"),
    [
        (None, TlsLevel.NONE, None, None),
        (A.DISABLE, TlsLevel.NONE, None, None),
        (A.OPPORTUNISTIC, TlsLevel.NONE, None, None),
        (A.OPPORTUNISTIC_STARTTLS, TlsLevel.NONE, "5.7.10", "'none' disables encryption"),
        (A.OPPORTUNISTIC_STARTTLS, TlsLevel.MAY, None, None),
        (A.ENFORCE, TlsLevel.MAY, "5.7.10", "'may' disables certificate matching"),
        (A.ENFORCE, TlsLevel.ENCRYPT, "5.7.10", "'encrypt' disables certificate matching"),
        (A.ENFORCE, TlsLevel.FINGERPRINT, None, None),
        (A.ENFORCE, TlsLevel.HALFDANE, None, None),
        (A.ENFORCE, TlsLevel.DANE, None, None),
        (A.ENFORCE, TlsLevel.SECURE, None, None),
        (A.ERROR, TlsLevel.SECURE, "4.7.10", "REQUIRETLS policy configuration error"),
    ],
)
def test_check_level(
    action: RequireTlsAction | None, level: TlsLevel, status: str | None, text: str | None
) -> None:
    failure = check_level(action, level, "mx.example.com")
    if status is None:
        assert failure is None
    else:
        assert failure is not None
        assert failure.status == status
        assert text is not None
        assert text in failure.reason
        assert failure.reason.endswith("mx.example.com")


def test_session_outcomes() -> None:
    host = "mx.example.com[192.0.2.1]"
    assert starttls_not_offered(None, TlsLevel.MAY, host) is None
    plain = starttls_not_offered(None, TlsLevel.ENCRYPT, host)
    assert plain is not None
    assert str(plain.failure) == f"4.7.4 TLS is required, but was not offered by host {host}"
    assert not plain.soft_non_final
    req = starttls_not_offered(A.OPPORTUNISTIC_STARTTLS, TlsLevel.MAY, host)
    assert req is not None
    assert req.failure.status == "5.7.30"
    assert req.soft_non_final
    assert starttls_not_offered(A.OPPORTUNISTIC, TlsLevel.MAY, host) is None

    refused = starttls_refused(
        A.ENFORCE, TlsLevel.DANE, host, "454 4.7.0 TLS not\navailable", "4.7.0"
    )
    assert refused is not None
    assert refused.failure.status == "5.7.10"
    assert refused.failure.reason.endswith("refused to start TLS: 454 4.7.0 TLS not available")
    site = starttls_refused(None, TlsLevel.ENCRYPT, host, "454 4.7.0 no", "4.7.0")
    assert site is not None
    assert (
        str(site.failure)
        == f"4.7.0 TLS is required, but host {host} refused to start TLS: 454 4.7.0 no"
    )
    assert starttls_refused(None, TlsLevel.MAY, host, "454 4.7.0 no", "4.7.0") is None

    missing = missing_requiretls(A.ENFORCE, False, host)
    assert missing is not None
    assert missing.failure.status == "5.7.30"
    assert missing_requiretls(A.ENFORCE, True, host) is None
    assert missing_requiretls(A.OPPORTUNISTIC_STARTTLS, False, host) is None

    untrusted = certificate_not_matched(A.ENFORCE, False, host)
    assert untrusted.failure.status == "5.7.10"
    assert "no trusted server certificate" in untrusted.failure.reason
    assert "no matching server" in certificate_not_matched(A.ENFORCE, True, host).failure.reason
    assert str(certificate_not_matched(None, True, host).failure) == (
        "4.7.5 Server certificate not verified"
    )


@pytest.mark.parametrize(
    ("action", "offered", "expected"),
    [
        (None, True, (False, False)),
        (A.DISABLE, True, (False, False)),
        (A.OPPORTUNISTIC, True, (True, False)),
        (A.OPPORTUNISTIC, False, (False, True)),
        (A.ENFORCE, True, (True, False)),
    ],
)
def test_mail_from_options(
    action: RequireTlsAction | None, offered: bool, expected: tuple[bool, bool]
) -> None:
    assert mail_from_options(action, offered) == expected
