"""SASL authentication in the core (Postfix smtp_sasl_helo_login(), smtp_sasl_authenticate())."""

from __future__ import annotations

import base64

import pytest

from pyfix_smtp.delivery import Action
from pyfix_smtp.sasl.cache import AuthFailureCache, MemoryAuthCacheStore
from tests.test_delivery_support import GREETING, World, config, deliver, request, transaction

MX1 = "mx1.example.net[192.0.2.1]"
EHLO_AUTH = (
    b"250-mx1.example.net\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n"
)
PLAIN_OK = b"235 2.7.0 Authentication successful\r\n"
PLAIN_BAD = b"535 5.7.8 Error: authentication failed: authentication failure\r\n"


def sasl_config(**more: object) -> object:
    values: dict[str, object] = {
        "smtp_sasl_auth_enable": True,
        "smtp_sasl_password_maps": "inline:{{example.net=user:secret}}",
        "smtp_sasl_security_options": "noanonymous",
    }
    values.update(more)
    return config(**values)


def two_mx() -> World:
    return (
        World()
        .mx("example.net", (10, "mx1.example.net"), (20, "mx2.example.net"))
        .a("mx1.example.net", "192.0.2.1")
        .a("mx2.example.net", "192.0.2.2")
    )


def one_mx() -> World:
    return World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")


def test_auth_plain_then_mail() -> None:
    world = one_mx()
    srv = world.server(
        "192.0.2.1", 25, [("S", GREETING), ("S", EHLO_AUTH), ("S", PLAIN_OK), *transaction()]
    )
    report = deliver(request(cfg=sasl_config()), world)  # type: ignore[arg-type]
    assert report.outcomes[0].action is Action.RELAYED
    token = base64.b64encode(b"\0user\0secret").decode()
    assert f"AUTH PLAIN {token}\r\nMAIL FROM:" in srv.text


def test_auth_login_answers_challenges() -> None:
    world = one_mx()
    srv = world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", b"250-mx1.example.net\r\n250 AUTH LOGIN\r\n"),
            ("S", b"334 VXNlcm5hbWU6\r\n"),
            ("S", b"334 UGFzc3dvcmQ6\r\n"),
            ("S", PLAIN_OK),
            ("S", b"250 2.1.0 Ok\r\n"),
            ("S", b"250 2.1.5 Ok\r\n"),
            ("S", b"354 go ahead\r\n"),
            ("S", b"250 2.0.0 Ok: queued\r\n"),
            ("S", b"221 2.0.0 Bye\r\n"),
        ],
    )
    report = deliver(request(cfg=sasl_config()), world)  # type: ignore[arg-type]
    assert report.outcomes[0].action is Action.RELAYED
    assert "AUTH LOGIN\r\ndXNlcg==\r\nc2VjcmV0\r\nMAIL FROM:" in srv.text


@pytest.mark.parametrize(
    ("soft_bounce", "action", "status"),
    [(True, Action.DEFERRED, "4.7.8"), (False, Action.BOUNCED, "5.7.8")],
)
def test_auth_failure_at_the_final_server(soft_bounce: bool, action: Action, status: str) -> None:
    world = one_mx()
    srv = world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO_AUTH), ("S", PLAIN_BAD)])
    cfg = sasl_config(smtp_sasl_auth_soft_bounce=soft_bounce)
    (outcome,) = deliver(request(cfg=cfg), world).outcomes  # type: ignore[arg-type]
    assert (outcome.action, outcome.status) == (action, status)
    assert outcome.reason == (
        f"SASL authentication failed; server {MX1} said: 535 5.7.8 Error: authentication failed:"
        " authentication failure"
    )
    assert srv.text.endswith("QUIT\r\n")


def test_auth_failure_moves_on_to_the_next_mx() -> None:
    world = two_mx()
    world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO_AUTH), ("S", PLAIN_BAD)])
    world.server(
        "192.0.2.2", 25, [("S", GREETING), ("S", EHLO_AUTH), ("S", PLAIN_OK), *transaction()]
    )
    report = deliver(request(cfg=sasl_config()), world)  # type: ignore[arg-type]
    assert report.outcomes[0].action is Action.RELAYED


def test_no_credentials_means_no_auth() -> None:
    world = one_mx()
    srv = world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO_AUTH), *transaction()])
    cfg = sasl_config(smtp_sasl_password_maps="inline:{{other.example=user:secret}}")
    report = deliver(request(cfg=cfg), world)  # type: ignore[arg-type]
    assert report.outcomes[0].action is Action.RELAYED
    assert "AUTH" not in srv.text


def test_server_without_auth_gets_mail_unauthenticated() -> None:
    world = one_mx()
    srv = world.server(
        "192.0.2.1", 25, [("S", GREETING), ("S", b"250 mx1.example.net\r\n"), *transaction()]
    )
    report = deliver(request(cfg=sasl_config()), world)  # type: ignore[arg-type]
    assert report.outcomes[0].action is Action.RELAYED
    assert "AUTH" not in srv.text


def test_default_security_options_exclude_plaintext_mechanisms() -> None:
    world = one_mx()
    world.server(
        "192.0.2.1",
        25,
        [("S", GREETING), ("S", b"250-mx1.example.net\r\n250 AUTH PLAIN LOGIN\r\n")],
    )
    cfg = sasl_config(smtp_sasl_security_options="noplaintext, noanonymous")
    (outcome,) = deliver(request(cfg=cfg), world).outcomes  # type: ignore[arg-type]
    assert (outcome.action, outcome.status) == (Action.DEFERRED, "4.7.0")
    assert "no mechanism available" in outcome.reason


def test_mechanism_filter_leaves_nothing() -> None:
    world = one_mx()
    world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO_AUTH)])
    cfg = sasl_config(smtp_sasl_mechanism_filter="scram-sha-256")
    (outcome,) = deliver(request(cfg=cfg), world).outcomes  # type: ignore[arg-type]
    assert outcome.status == "4.7.0"
    assert "offered no compatible authentication mechanisms" in outcome.reason


def test_auth_failure_cache_skips_the_exchange_next_time() -> None:
    cache = AuthFailureCache(MemoryAuthCacheStore(), 3600)
    world = one_mx()
    world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO_AUTH), ("S", PLAIN_BAD)])
    cfg = sasl_config()
    deliver(request(cfg=cfg, sasl_cache=cache), world)  # type: ignore[arg-type]
    world = one_mx()
    srv = world.server("192.0.2.1", 25, [("S", GREETING), ("S", EHLO_AUTH)])
    (outcome,) = deliver(request(cfg=cfg, sasl_cache=cache), world).outcomes  # type: ignore[arg-type]
    assert outcome.reason.startswith("SASL [CACHED] authentication failed; server mx1.example.net")
    assert outcome.status == "4.7.8"
    assert "AUTH" not in srv.text


def test_malformed_challenge_abandons_the_exchange_with_quit() -> None:
    world = one_mx()
    srv = world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ("S", b"250-mx1.example.net\r\n250 AUTH LOGIN\r\n"),
            ("S", b"334 !!!not base64\r\n"),
        ],
    )
    (outcome,) = deliver(request(cfg=sasl_config()), world).outcomes  # type: ignore[arg-type]
    assert outcome.status == "4.7.0"
    assert "cannot authenticate to server" in outcome.reason
    assert srv.text.endswith("AUTH LOGIN\r\nQUIT\r\n")  # Postfix sends no "*"
