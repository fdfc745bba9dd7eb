"""Connection caching (Postfix smtp_reuse.c, smtp_key.c, smtp_connect.c) in the core."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pyfix_smtp.delivery import Action
from pyfix_smtp.delivery.cache_keys import KeyContext, dest_label, endpoint_label
from pyfix_smtp.delivery.effects import CacheSave, CacheTake, Connect, Send
from pyfix_smtp.protocol.envelope import Envelope
from tests.test_delivery_support import (
    EHLO_TLS,
    GREETING,
    World,
    config,
    deliver,
    happy,
    request,
    transaction,
)

RSET_OK = ("S", b"250 2.0.0 Ok\r\n")


def one_mx() -> World:
    return World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")


def test_first_session_is_cached_without_quit() -> None:
    world = one_mx()
    srv = world.server("192.0.2.1", 25, happy())
    report = deliver(request(connection_cache=True), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert "QUIT" not in srv.text
    (save,) = world.of(CacheSave)
    assert len(save.labels) == 2  # type: ignore[attr-defined]  # nexthop and endpoint
    session = save.session  # type: ignore[attr-defined]
    assert session.reuse_count == 0
    assert session.expires == pytest.approx(world.clock + 2.0)  # smtp_connection_cache_time_limit
    assert srv.closes == []


def test_second_delivery_reuses_the_connection_after_an_rset_probe() -> None:
    world = one_mx()
    srv = world.server(
        "192.0.2.1", 25, [*happy(), RSET_OK, *transaction(), RSET_OK, *transaction()]
    )
    for n in range(3):
        report = deliver(request(connection_cache=True, queue_id=f"Q{n}"), world)
        assert report.outcomes[0].action is Action.RELAYED
    assert srv.connections == 1
    assert srv.text.count("RSET\r\n") == 2
    assert srv.text.count("MAIL FROM") == 3
    assert report.outcomes[0].conn_use == 3
    assert ", conn_use=3, delay=" in report.log_lines()[0]
    assert srv.done


def test_reuse_at_level_may_finds_the_session_by_its_endpoint() -> None:
    world = one_mx()
    cfg = config(smtp_tls_security_level="may")
    srv = world.server("192.0.2.1", 25, [*happy(), RSET_OK, *transaction()])
    deliver(request(cfg=cfg, connection_cache=True), world)
    report = deliver(request(cfg=cfg, connection_cache=True), world)
    assert report.outcomes[0].conn_use == 2
    takes = world.of(CacheTake)
    # Postfix looks nexthop labels up with a dummy policy (level none), which
    # cannot match a session stored at "may": that lookup is skipped
    assert len(takes) == 2
    assert all("example.net" not in t.labels[0] for t in takes)  # type: ignore[attr-defined]
    assert srv.connections == 1


@pytest.mark.parametrize(
    "probe",
    [
        pytest.param([("S", b"421 4.4.2 timeout, closing\r\n")], id="421"),
        pytest.param([("S", b"500 5.5.1 what?\r\n")], id="rejected"),
        pytest.param([("EOF",)], id="eof"),
    ],
)
def test_failed_rset_probe_means_a_new_connection(probe: list[tuple[object, ...]]) -> None:
    world = one_mx()
    srv = world.server("192.0.2.1", 25, [*happy(), *probe, *happy()])
    deliver(request(connection_cache=True), world)
    report = deliver(request(connection_cache=True), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert report.outcomes[0].conn_use == 1
    assert srv.connections == 2


def test_tls_sessions_are_not_cached_without_connection_reuse() -> None:
    from tests.test_delivery_tls import READY, established

    world = one_mx()
    script = [
        ("S", GREETING),
        ("S", EHLO_TLS),
        ("S", READY),
        ("TLS", established()),
        ("S", EHLO_TLS),
        *transaction(),
    ]
    srv = world.server("192.0.2.1", 25, script)
    deliver(request(cfg=config(smtp_tls_security_level="may"), connection_cache=True), world)
    assert world.of(CacheSave) == []
    assert srv.text.endswith("QUIT\r\n")
    world = one_mx()
    world.server("192.0.2.1", 25, script)
    cfg = config(smtp_tls_security_level="may", smtp_tls_connection_reuse=True)
    deliver(request(cfg=cfg, connection_cache=True), world)
    assert len(world.of(CacheSave)) == 1


def test_reuse_count_limit_ends_the_session_with_quit() -> None:
    world = one_mx()
    srv = world.server("192.0.2.1", 25, [*happy(), RSET_OK, *transaction()])
    cfg = config(smtp_connection_reuse_count_limit=1)
    deliver(request(cfg=cfg, connection_cache=True), world)
    deliver(request(cfg=cfg, connection_cache=True), world)
    assert len(world.of(CacheSave)) == 1
    assert srv.text.endswith("QUIT\r\n")


def test_reuse_time_limit_ends_the_session_with_quit() -> None:
    world = one_mx()
    srv = world.server("192.0.2.1", 25, [*happy(), RSET_OK, *transaction()])
    cfg = config(smtp_connection_reuse_time_limit=5)
    deliver(request(cfg=cfg, connection_cache=True), world)
    world.clock += 10
    deliver(request(cfg=cfg, connection_cache=True), world)
    assert len(world.of(CacheSave)) == 1
    assert srv.text.endswith("QUIT\r\n")


def test_no_driver_cache_means_quit_and_no_cache_effects() -> None:
    world = one_mx()
    srv = world.server("192.0.2.1", 25, happy())
    deliver(request(), world)
    assert world.of(CacheSave) == world.of(CacheTake) == []
    assert srv.text.endswith("QUIT\r\n")


def test_a_soft_failure_session_is_still_cached() -> None:
    world = one_mx()
    srv = world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            *happy()[1:2],
            ("S", b"250 2.1.0 Ok\r\n450 4.2.0 <rcpt@example.net>: later\r\n554 5.5.1 no\r\n"),
            ("S", b"250 2.0.0 Ok\r\n"),
        ],
    )
    report = deliver(request(connection_cache=True), world)
    assert report.outcomes[0].action is Action.DEFERRED
    assert srv.text.endswith("DATA\r\nRSET\r\n")
    assert len(world.of(CacheSave)) == 1


def test_only_the_first_good_session_gets_the_nexthop_label() -> None:
    world = (
        World()
        .mx("example.net", (10, "mx1.example.net"), (20, "mx2.example.net"))
        .a("mx1.example.net", "192.0.2.1")
        .a("mx2.example.net", "192.0.2.2")
    )
    world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            *happy()[1:2],
            (
                "S",
                b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n450 4.2.0 <b@example.net>: later\r\n"
                b"354 go ahead\r\n",
            ),
            ("S", b"250 2.0.0 Ok\r\n"),
        ],
    )
    world.server("192.0.2.2", 25, happy())
    report = deliver(request(["a@example.net", "b@example.net"], connection_cache=True), world)
    assert [o.action for o in report] == [Action.RELAYED, Action.RELAYED]
    saves = world.of(CacheSave)
    assert [len(s.labels) for s in saves] == [2, 1]  # type: ignore[attr-defined]
    assert [e.endpoint.address for e in world.of(Connect)] == ["192.0.2.1", "192.0.2.2"]  # type: ignore[attr-defined]


# -- labels (Postfix smtp_key_prefix()) -----------------------------------------------------


def keys(**more: object) -> KeyContext:
    values: dict[str, object] = {
        "service": "smtp",
        "sender": "a@example.org",
        "request_nexthop": "example.net",
    }
    values.update(more)
    return KeyContext(**values)  # type: ignore[arg-type]


def test_nexthop_label_fields() -> None:
    assert dest_label(keys(), tls_level=1) == "smtp\nexample.net\n1\n0\n0\n"
    assert (
        dest_label(
            keys(sender_dependent_sasl=True, requiretls_level=3, requires_smtputf8=True),
            tls_level=7,
        )
        == "smtp\na@example.org\nexample.net\n7\n3\n1\n"
    )


def test_endpoint_label_fields() -> None:
    common = {
        "current_nexthop": "[relay]:587",
        "hostname": "relay",
        "address": "192.0.2.1",
        "port": 587,
    }
    assert endpoint_label(keys(), tls_level=1, tls_must_match=False, **common) == (  # type: ignore[arg-type]
        "smtp\n192.0.2.1\n587\n1\n0\n0\n"
    )
    assert endpoint_label(keys(), tls_level=7, tls_must_match=True, **common) == (  # type: ignore[arg-type]
        "smtp\n[relay]:587\n192.0.2.1\n587\n7\n0\n0\n"
    )
    assert endpoint_label(
        keys(sasl_passwords=True), tls_level=0, tls_must_match=False, **common
    ) == (  # type: ignore[arg-type]
        "smtp\n[relay]:587\nrelay\n192.0.2.1\n587\n0\n0\n0\n"
    )


def test_label_fields_with_delimiters_are_base64() -> None:
    label = dest_label(
        keys(request_nexthop="odd*name", sender_dependent_sasl=True, sender=""), tls_level=0
    )
    assert label == "smtp\n*\nb2RkKm5hbWU=\n0\n0\n0\n"


def test_sender_dependent_sessions_do_not_mix() -> None:
    world = one_mx()
    cfg = config(
        smtp_sender_dependent_authentication=True,
        smtp_sasl_password_maps="inline:{{other.example=u:p}}",
    )
    srv = world.server("192.0.2.1", 25, [*happy(), *happy()])
    deliver(request(cfg=cfg, connection_cache=True), world)
    report = deliver(
        request(
            cfg=cfg,
            connection_cache=True,
            envelope=Envelope("other@example.org", ["rcpt@example.net"]),
        ),
        world,
    )
    assert report.outcomes[0].action is Action.RELAYED
    assert report.outcomes[0].conn_use == 1  # another sender: another label
    assert srv.connections == 2


@pytest.mark.parametrize(
    "replies",
    [
        pytest.param(
            [("S", b"250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n")], id="together"
        ),
        pytest.param(
            [
                ("S", b"250-2.0.0 O"),
                ("S", b"k\r\n250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n"),
                ("S", b"250 2.1.5 Ok\r\n354 go\r\n"),
            ],
            id="split",
        ),
    ],
)
def test_pipelined_probe_reply_is_split_off_the_transaction_replies(
    replies: list[tuple[object, ...]],
) -> None:
    world = one_mx()
    srv = world.server(
        "192.0.2.1", 25, [*happy(), *replies, ("S", b"250 2.0.0 Ok: queued as 2\r\n")]
    )
    deliver(request(connection_cache=True), world)
    report = deliver(request(connection_cache=True), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert report.outcomes[0].reason == "250 2.0.0 Ok: queued as 2"
    second = srv.text.split("\r\n.\r\n", 1)[1]
    assert second.startswith("RSET\r\nMAIL FROM:<sender@example.org>")  # one write


def test_probe_before_a_local_failure_on_a_reused_session() -> None:
    world = one_mx()
    srv = world.server("192.0.2.1", 25, [*happy(), ("S", b"250 2.0.0 Ok\r\n")])
    deliver(request(connection_cache=True), world)
    big = b"Subject: big\r\n\r\n" + b"x" * 20_000_000 + b"\r\n"
    (outcome,) = deliver(request(connection_cache=True, content=big), world).outcomes
    assert outcome.status == "5.3.4"  # SIZE 10240000 exceeded, after the probe
    assert srv.text.endswith(".\r\nRSET\r\n")


def test_no_pipelining_means_the_probe_waits_for_its_reply() -> None:
    world = one_mx()
    ehlo = ("S", b"250-mx1.example.net\r\n250 8BITMIME\r\n")
    srv = world.server(
        "192.0.2.1",
        25,
        [
            ("S", GREETING),
            ehlo,
            ("S", b"250 2.1.0 Ok\r\n"),
            ("S", b"250 2.1.5 Ok\r\n"),
            ("S", b"354 go\r\n"),
            ("S", b"250 2.0.0 Ok\r\n"),
            ("S", b"250 2.0.0 Ok\r\n"),
            ("C", b"RSET\r\n"),
            ("S", b"250 2.1.0 Ok\r\n"),
            ("S", b"250 2.1.5 Ok\r\n"),
            ("S", b"354 go\r\n"),
            ("S", b"250 2.0.0 Ok\r\n"),
        ],
    )
    deliver(request(connection_cache=True), world)
    report = deliver(request(connection_cache=True), world)
    assert report.outcomes[0].conn_use == 2
    assert ".\r\nRSET\r\nMAIL FROM:" in srv.text


def test_endpoint_reuse_pipelines_the_probe_too() -> None:
    world = one_mx()
    cfg = config(smtp_tls_security_level="may")  # the nexthop label misses at "may"
    srv = world.server("192.0.2.1", 25, [*happy(), RSET_OK, *transaction()])
    deliver(request(cfg=cfg, connection_cache=True), world)
    report = deliver(request(cfg=cfg, connection_cache=True), world)
    assert report.outcomes[0].conn_use == 2
    second = srv.text.split("\r\n.\r\n", 1)[1]
    assert second.startswith("RSET\r\nMAIL FROM:")
    assert any(e.data.startswith(b"RSET\r\nMAIL FROM:") for e in world.of(Send))  # type: ignore[attr-defined]


def test_key_context_hash_is_computed_once_and_follows_the_fields() -> None:
    # Labels are looked up per message with the KeyContext in the key.
    a, b = keys(), keys()
    assert a == b
    assert hash(a) == hash(b)
    changed = replace(a, requiretls_level=2)
    assert changed != a
    assert hash(changed) == hash(replace(changed))
    assert dest_label(changed, tls_level=1) != dest_label(a, tls_level=1)
