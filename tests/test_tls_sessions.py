"""TLS session resumption (smtp_tls_session_cache_database): the key, the cache,
the options, and real resumptions against pyfix_smtp.testing.SinkServer with
both drivers.

Postfix: tls_client.c load_clnt_session()/new_client_session_cb(), the
serverid of smtp_proto.c smtp_start_tls() and tls_fprint.c
tls_serverid_digest(), the expiry of tls_scache.c and tlsmgr.c.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections.abc import Callable, Iterator

import pytest

from pyfix_smtp import AsyncClient, Client, Config, DeliveryReport, Envelope
from pyfix_smtp.delivery.effects import Endpoint
from pyfix_smtp.errors import ConfigError
from pyfix_smtp.testing import SinkServer
from pyfix_smtp.tls.dane import Association
from pyfix_smtp.tls.names import MatchName
from pyfix_smtp.tls.options import TlsOptions
from pyfix_smtp.tls.policy import TlsPolicy, TlsTarget, evaluate
from pyfix_smtp.transport.tls_sessions import (
    CachedTlsSession,
    TlsSessionCache,
    resumable,
    session_key,
)

HOST = "mx.example.test"
ENDPOINT = Endpoint(HOST, "192.0.2.25", 25)


def base_policy(level: str = "verify", **options: object) -> tuple[TlsPolicy, TlsOptions]:
    opts = TlsOptions(smtp_tls_security_level=level, **options)  # type: ignore[arg-type]
    target = TlsTarget(nexthop="example.test", domain="example.test", host=HOST, port=25)
    return evaluate(target, opts), opts


# -- the key ---------------------------------------------------------------------

POLICY, OPTIONS = base_policy()
KEY = session_key(POLICY, OPTIONS, ENDPOINT)
TA = Association(2, 0, 1, bytes(32))


def test_key_is_stable_and_readable() -> None:
    again, opts = base_policy()
    assert session_key(again, opts, ENDPOINT) == KEY
    # Postfix smtp_key_prefix(): service, nexthop, host, address, level
    assert KEY.startswith("smtp&example.test&mx.example.test&192.0.2.25:25&verify&")
    assert len(KEY.rsplit("&", 1)[1]) == 64  # the SHA-256 of everything else


# Each change would make a session from one handshake wrong for the other.
VARIANTS: list[tuple[str, Callable[[], tuple[TlsPolicy, TlsOptions, Endpoint]]]] = [
    ("address", lambda: (POLICY, OPTIONS, dataclasses.replace(ENDPOINT, address="192.0.2.26"))),
    ("port", lambda: (POLICY, OPTIONS, dataclasses.replace(ENDPOINT, port=587))),
    ("endpoint host", lambda: (POLICY, OPTIONS, dataclasses.replace(ENDPOINT, host="mx2"))),
    ("lmtp", lambda: (POLICY, dataclasses.replace(OPTIONS, protocol="lmtp"), ENDPOINT)),
    ("level", lambda: (*base_policy("secure"), ENDPOINT)),
    ("level encrypt", lambda: (*base_policy("encrypt"), ENDPOINT)),
    ("CAfile", lambda: (POLICY, dataclasses.replace(OPTIONS, smtp_tls_CAfile="/ca.pem"), ENDPOINT)),
    ("CApath", lambda: (POLICY, dataclasses.replace(OPTIONS, smtp_tls_CApath="/certs"), ENDPOINT)),
    (
        "client certificate",
        lambda: (POLICY, dataclasses.replace(OPTIONS, smtp_tls_chain_files=("/c.pem",)), ENDPOINT),
    ),
    ("sni", lambda: (dataclasses.replace(POLICY, sni="other.test"), OPTIONS, ENDPOINT)),
    (
        "match names",
        lambda: (
            dataclasses.replace(POLICY, match_names=(MatchName("example.test", True),)),
            OPTIONS,
            ENDPOINT,
        ),
    ),
    ("TLSA", lambda: (dataclasses.replace(POLICY, associations=(TA,)), OPTIONS, ENDPOINT)),
    (
        "TLSA data",
        lambda: (
            dataclasses.replace(POLICY, associations=(dataclasses.replace(TA, data=b"\1" * 32),)),
            OPTIONS,
            ENDPOINT,
        ),
    ),
    ("ciphers", lambda: (dataclasses.replace(POLICY, cipher_list="HIGH"), OPTIONS, ENDPOINT)),
    ("protocols", lambda: (*base_policy(smtp_tls_mandatory_protocols=">=TLSv1.3"), ENDPOINT)),
    (
        "fingerprint digest",
        lambda: (dataclasses.replace(POLICY, fingerprint_digest="sha1"), OPTIONS, ENDPOINT),
    ),
    (
        "STS MX patterns",
        lambda: (dataclasses.replace(POLICY, mx_patterns=("*.example.test",)), OPTIONS, ENDPOINT),
    ),
    ("verify depth", lambda: (dataclasses.replace(POLICY, verify_depth=2), OPTIONS, ENDPOINT)),
    (
        "ee namechecks",
        lambda: (
            dataclasses.replace(POLICY, ee_namechecks=not POLICY.ee_namechecks),
            OPTIONS,
            ENDPOINT,
        ),
    ),
    (
        "nexthop",
        lambda: (
            dataclasses.replace(POLICY, target=dataclasses.replace(POLICY.target, nexthop="[mx]")),
            OPTIONS,
            ENDPOINT,
        ),
    ),
    (
        "nexthop domain",
        lambda: (
            dataclasses.replace(POLICY, target=dataclasses.replace(POLICY.target, domain="x.test")),
            OPTIONS,
            ENDPOINT,
        ),
    ),
    (
        "workarounds",
        lambda: (
            POLICY,
            dataclasses.replace(OPTIONS, tls_disable_workarounds=("TLSEXT_PADDING",)),
            ENDPOINT,
        ),
    ),
]


@pytest.mark.parametrize(("what", "variant"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_key_changes_with_every_input(
    what: str, variant: Callable[[], tuple[TlsPolicy, TlsOptions, Endpoint]]
) -> None:
    assert session_key(*variant()) != KEY, what


def test_key_ignores_what_does_not_decide_the_handshake() -> None:
    # Logging, the cache settings themselves and the reasons for a policy
    # do not make a session unusable.
    opts = dataclasses.replace(
        OPTIONS,
        smtp_tls_loglevel="2",
        smtp_tls_session_cache_database="btree:/x",
        smtp_tls_session_cache_timeout=60.0,
    )
    assert session_key(dataclasses.replace(POLICY, reasons=()), opts, ENDPOINT) == KEY


# -- the cache -------------------------------------------------------------------


class _FakeSession:
    """Stands in for ssl.SSLSession (which only a handshake can make)."""

    def __init__(self, ident: bytes = b"id", ticket: bool = True) -> None:
        self.id = ident
        self.has_ticket = ticket


def entry(saved: float, ident: bytes = b"id") -> CachedTlsSession:
    return CachedTlsSession(_FakeSession(ident), (b"leaf",), None, saved)  # type: ignore[arg-type]


def test_entry_lives_exactly_timeout_seconds() -> None:
    cache = TlsSessionCache()
    cache.save("k", entry(1000.0))
    # Postfix tls_scache.c: stale when saved + timeout < now
    assert cache.get("k", now=1000.0 + 3600, timeout=3600) is not None
    assert cache.get("k", now=1000.0 + 3600.5, timeout=3600) is None
    assert len(cache) == 0  # a stale entry is dropped
    assert cache.get("k", now=1000.0, timeout=3600) is None


def test_one_entry_per_key_newest_wins() -> None:
    cache = TlsSessionCache()
    cache.save("k", entry(1.0, b"a"))
    cache.save("k", entry(2.0, b"b"))
    got = cache.get("k", now=2.0, timeout=10)
    assert got is not None
    assert got.session.id == b"b"
    assert len(cache) == 1


def test_size_bound_drops_the_oldest_saved() -> None:
    cache = TlsSessionCache(max_size=3)
    for i, key in enumerate("abcd"):
        cache.save(key, entry(float(i)))
    assert len(cache) == 3
    assert cache.get("a", now=4.0, timeout=10) is None
    cache.save("b", entry(5.0))  # saved again: now the newest
    cache.save("e", entry(6.0))
    assert [k for k in "abcde" if cache.get(k, now=6.0, timeout=10)] == ["b", "d", "e"]


def test_zero_size_keeps_nothing_and_negative_is_refused() -> None:
    cache = TlsSessionCache(max_size=0)
    cache.save("k", entry(1.0))
    assert len(cache) == 0
    with pytest.raises(ValueError, match="max_size"):
        TlsSessionCache(max_size=-1)


def test_remove_and_clear() -> None:
    cache = TlsSessionCache()
    cache.save("a", entry(1.0))
    cache.save("b", entry(1.0))
    assert cache.remove("a") is True
    assert cache.remove("a") is False
    cache.clear()
    assert len(cache) == 0


@pytest.mark.parametrize(
    ("ident", "ticket", "version", "expected"),
    [
        (b"id", True, "TLSv1.3", True),
        (b"id", False, "TLSv1.3", False),  # no ticket yet: not resumable
        (b"id", False, "TLSv1.2", True),  # session ID resumption
        (b"", True, "TLSv1.2", True),
        (b"", False, "TLSv1.2", False),
    ],
)
def test_resumable(ident: bytes, ticket: bool, version: str, expected: bool) -> None:
    assert resumable(_FakeSession(ident, ticket), version) is expected  # type: ignore[arg-type]
    assert resumable(None, version) is False


# -- the options -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("database", "timeout", "effective"),
    [
        ("", 3600.0, 0.0),  # Postfix's default: no cache
        ("   ", 3600.0, 0.0),
        ("btree:/var/lib/postfix/smtp_scache", 3600.0, 3600.0),
        ("btree:x", 0.0, 0.0),  # tlsmgr.c: a non-positive timeout disables it
        ("btree:x", 1.0, 120.0),  # tlsmgr.c: raised to TLS_SESSION_LIFEMIN
        ("btree:x", 8640000.0, 8640000.0),
    ],
)
def test_session_cache_timeout(database: str, timeout: float, effective: float) -> None:
    opts = TlsOptions(
        smtp_tls_session_cache_database=database, smtp_tls_session_cache_timeout=timeout
    )
    assert opts.session_cache_timeout == effective


@pytest.mark.parametrize("protocol", ["smtp", "lmtp"])
def test_timeout_out_of_range_names_the_parameter(protocol: str) -> None:
    with pytest.raises(ConfigError, match=f"{protocol}_tls_session_cache_timeout"):
        TlsOptions(protocol=protocol, smtp_tls_session_cache_timeout=8640001.0)


def test_options_from_config_lmtp_twins() -> None:
    cfg = Config(
        protocol="lmtp",
        lmtp_tls_session_cache_database="btree:/x",
        lmtp_tls_session_cache_timeout="2h",
    )
    opts = TlsOptions.from_config(cfg)
    assert opts.smtp_tls_session_cache_database == "btree:/x"
    assert opts.session_cache_timeout == 7200.0


# -- real resumptions (SinkServer, both drivers) ---------------------------------

#: (trust, TLS version) of each handshake in the last deliver_all()
TLS_SEEN: list[tuple[str, str]] = []
ENV = Envelope(sender="a@example.test", recipients=["b@example.test"])
CONTENT = b"Subject: resumption\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def sink() -> Iterator[SinkServer]:
    with SinkServer(starttls=True) as server:
        yield server


def config(sink: SinkServer, **params: object) -> Config:
    base: dict[str, object] = {
        "myhostname": "client.example.test",
        "smtp_tls_security_level": "verify",
        "smtp_tls_CAfile": str(sink.ca_file),
        "smtp_tls_verify_cert_match": "127.0.0.1",
        "smtp_tls_session_cache_database": "btree:/unused",
        "smtp_tls_loglevel": "1",
    }
    return Config(**(base | params))  # type: ignore[arg-type]


def deliver_all(
    driver: str,
    sink: SinkServer,
    configs: list[Config],
    *,
    between: Callable[[TlsSessionCache], None] | None = None,
) -> tuple[TlsSessionCache, list[str]]:
    """Deliver once per config with ONE client; the session cache and the statuses."""
    statuses: list[str] = []
    TLS_SEEN.clear()

    def record(report: DeliveryReport) -> None:
        statuses.extend(o.status for o in report.outcomes)
        for event in report.events:
            if " TLS connection established to " in event:
                TLS_SEEN.append((event.split()[0], event.rsplit(": ", 1)[1].split()[0]))

    if driver == "sync":
        with Client(configs[0]) as client:
            for cfg in configs:
                record(client.deliver(ENV, CONTENT, sink.nexthop, cfg))
                if between is not None:
                    between(client.contexts.sessions)
            return client.contexts.sessions, statuses

    async def main() -> TlsSessionCache:
        async with AsyncClient(configs[0]) as client:
            for cfg in configs:
                record(await client.deliver(ENV, CONTENT, sink.nexthop, cfg))
                if between is not None:
                    between(client.contexts.sessions)
            return client.contexts.sessions

    return asyncio.run(main()), statuses


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_second_delivery_resumes(
    driver: str, sink: SinkServer, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(sink, smtp_tls_loglevel="2")
    with caplog.at_level(logging.INFO, logger="pyfix_smtp.transport"):
        sessions, statuses = deliver_all(driver, sink, [cfg, cfg, cfg])
    assert statuses == ["2.0.0"] * 3
    assert (sessions.offered, sessions.resumed) == (2, 2)
    assert len(sessions) == 1
    # a resumed session is checked again, on the chain of its first handshake
    assert TLS_SEEN == [("Verified", "TLSv1.3")] * 3
    lines = [r.getMessage() for r in caplog.records if r.name == "pyfix_smtp.transport"]
    key = lines[0].split()[3]
    assert key.startswith(f"smtp&[127.0.0.1]:{sink.port}&127.0.0.1&127.0.0.1:{sink.port}&verify&")
    # Postfix tls_client.c, TLS_LOG_CACHE (smtp_tls_loglevel 2)
    assert lines[:2] == [
        f"looking for session {key} in smtp cache",
        f"save session {key} to smtp cache",
    ]
    assert f"reloaded session {key} from smtp cache" in lines


def test_no_database_no_resumption(driver: str, sink: SinkServer) -> None:
    cfg = config(sink, smtp_tls_session_cache_database="")
    sessions, statuses = deliver_all(driver, sink, [cfg, cfg])
    assert statuses == ["2.0.0"] * 2
    assert (len(sessions), sessions.offered, sessions.resumed) == (0, 0, 0)


def test_another_policy_does_not_resume(driver: str, sink: SinkServer) -> None:
    first = config(sink)
    stricter = config(
        sink, smtp_tls_security_level="secure", smtp_tls_secure_cert_match="127.0.0.1"
    )
    weaker = config(sink, smtp_tls_security_level="encrypt")
    sessions, statuses = deliver_all(driver, sink, [first, stricter, weaker])
    assert statuses == ["2.0.0"] * 3
    assert (len(sessions), sessions.offered, sessions.resumed) == (3, 0, 0)


def test_expired_session_is_not_offered(driver: str, sink: SinkServer) -> None:
    cfg = config(sink, smtp_tls_session_cache_timeout="120s")

    def age(sessions: TlsSessionCache) -> None:
        for item in sessions._entries.values():
            item.saved -= 121  # saved longer ago than the timeout

    sessions, statuses = deliver_all(driver, sink, [cfg, cfg], between=age)
    assert statuses == ["2.0.0"] * 2
    assert (sessions.offered, sessions.resumed) == (0, 0)


def test_tls12_resumption_keeps_the_first_save_time(driver: str, sink: SinkServer) -> None:
    # A resumed TLS 1.2 session is not new: Postfix's new-session callback
    # does not run, so the entry keeps its age (and expires on time).
    cfg = config(sink, smtp_tls_mandatory_protocols="<=TLSv1.2")
    saved: list[float] = []

    def note(sessions: TlsSessionCache) -> None:
        [item] = sessions._entries.values()
        saved.append(item.saved)

    sessions, statuses = deliver_all(driver, sink, [cfg, cfg, cfg], between=note)
    assert statuses == ["2.0.0"] * 3
    assert (sessions.offered, sessions.resumed) == (2, 2)
    assert saved[0] == saved[1] == saved[2]
    assert {v for _, v in TLS_SEEN} == {"TLSv1.2"}


def test_session_of_another_context_is_not_offered(sink: SinkServer) -> None:
    # Python refuses a session made by another SSLContext; such an entry
    # (its context dropped from TlsContexts) is forgotten, not offered.
    cfg = config(sink)

    def rebuild(sessions: TlsSessionCache) -> None:
        for item in sessions._entries.values():
            item.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

    sessions, statuses = deliver_all("sync", sink, [cfg, cfg], between=rebuild)
    assert statuses == ["2.0.0"] * 2
    assert (sessions.offered, sessions.resumed) == (0, 0)
    assert len(sessions) == 1  # the new handshake's session replaced it


def test_session_cached_after_a_failed_match_is_checked_again(
    driver: str, sink: SinkServer
) -> None:
    # TLS 1.2 has the session at once, so it is cached although the name
    # did not match; resuming it must not pass: the chain of the first
    # handshake is checked again under the policy in force.
    cfg = config(
        sink,
        smtp_tls_verify_cert_match="nomatch.example.test",
        smtp_tls_mandatory_protocols="<=TLSv1.2",
    )
    sessions, statuses = deliver_all(driver, sink, [cfg, cfg])
    assert (sessions.offered, sessions.resumed) == (1, 1)
    assert statuses == ["4.7.5"] * 2


def test_concurrent_async_deliveries_offer_only_their_own_sessions(sink: SinkServer) -> None:
    # Two deliveries at a time in one event loop, with different contexts
    # (verify, encrypt): each resumes its own session (another's would be
    # refused by Python: "Session refers to a different SSLContext").
    configs = [config(sink), config(sink, smtp_tls_security_level="encrypt")]

    async def main() -> tuple[TlsSessionCache, list[str]]:
        async with AsyncClient(configs[0]) as client:
            statuses: list[str] = []
            for _round in range(3):
                reports = await asyncio.gather(
                    *(client.deliver(ENV, CONTENT, sink.nexthop, cfg) for cfg in configs)
                )
                statuses += [o.status for r in reports for o in r.outcomes]
            return client.contexts.sessions, statuses

    sessions, statuses = asyncio.run(main())
    assert statuses == ["2.0.0"] * 6
    assert len(sessions) == 2
    assert (sessions.offered, sessions.resumed) == (4, 4)
