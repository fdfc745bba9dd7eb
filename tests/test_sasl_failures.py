"""Postfix's SASL failure texts and smtp_sasl_auth_soft_bounce."""

from __future__ import annotations

import pytest

from pyfix_smtp.sasl.failures import (
    auth_failed,
    auth_soft_bounce,
    cached_auth_failed,
    cannot_authenticate,
    no_compatible_mechanisms,
    no_mechanism_available,
    non_empty_initial_challenge,
    protocol_loop,
)
from pyfix_smtp.status import Reply


@pytest.mark.parametrize(
    ("code", "status", "soft_bounce", "expected"),
    [
        (535, "5.7.8", True, "4.7.8"),
        (535, "5.7.8", False, "5.7.8"),
        (554, "5.0.0", True, "4.0.0"),
        (454, "4.7.0", True, "4.7.0"),
        (454, "4.7.0", False, "4.7.0"),
        # Postfix softens only code / 100 == 5; a garbage code keeps its 5.5.0.
        (600, "5.5.0", True, "5.5.0"),
    ],
)
def test_auth_soft_bounce(code: int, status: str, soft_bounce: bool, expected: str) -> None:
    assert auth_soft_bounce(code, status, soft_bounce) == expected


def test_auth_failed_text_and_soft_bounce() -> None:
    reply = Reply(535, "5.7.8", ("5.7.8 Error: authentication failed: UGFzc3dvcmQ6",))
    failure = auth_failed(reply, server="mx.example[192.0.2.1]")
    assert failure.status == "4.7.8"
    assert failure.soft
    assert failure.reason == (
        "SASL authentication failed; server mx.example[192.0.2.1] said: "
        "535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6"
    )
    hard = auth_failed(reply, server="mx.example[192.0.2.1]", soft_bounce=False)
    assert hard.status == "5.7.8"
    assert hard.hard


def test_auth_failed_transient_reply() -> None:
    reply = Reply(454, "4.7.0", ("4.7.0 Temporary authentication failure",))
    assert auth_failed(reply, server="h[a]").status == "4.7.0"


def test_auth_failed_refuses_success() -> None:
    with pytest.raises(ValueError, match="not an AUTH failure"):
        auth_failed(Reply(235, "2.7.0", ("2.7.0 Authentication successful",)), server="h[a]")


@pytest.mark.parametrize(
    ("status", "soft_bounce", "expected"),
    [("5.7.8", True, "4.7.8"), ("5.7.8", False, "5.7.8"), ("4.7.0", True, "4.7.0")],
)
def test_cached_auth_failed(status: str, soft_bounce: bool, expected: str) -> None:
    failure = cached_auth_failed(
        status, "535 5.7.8 Error: authentication failed", host="mx.example", soft_bounce=soft_bounce
    )
    assert failure.status == expected
    assert failure.reason == (
        "SASL [CACHED] authentication failed; server mx.example said: "
        "535 5.7.8 Error: authentication failed"
    )


def test_local_failure_texts() -> None:
    server = "mx.example[192.0.2.1]"
    assert str(cannot_authenticate(server, "SCRAM-SHA-256: wrong server signature")) == (
        "4.7.0 SASL authentication failed; cannot authenticate to server "
        "mx.example[192.0.2.1]: SCRAM-SHA-256: wrong server signature"
    )
    assert str(no_mechanism_available(server)) == (
        "4.7.0 SASL authentication failed; cannot authenticate to server "
        "mx.example[192.0.2.1]: no mechanism available"
    )
    assert str(no_compatible_mechanisms(server)) == (
        "4.7.0 SASL authentication failed: server mx.example[192.0.2.1] offered no compatible "
        "authentication mechanisms for this type of connection security"
    )
    assert str(protocol_loop(server)) == (
        "4.3.0 SASL authentication failed; authentication protocol loop with server "
        "mx.example[192.0.2.1]"
    )
    assert str(non_empty_initial_challenge("PLAIN", server, "VXNlcm5hbWU6")) == (
        "4.7.0 SASL authentication failed; non-empty initial PLAIN challenge from server "
        "mx.example[192.0.2.1]: VXNlcm5hbWU6"
    )
