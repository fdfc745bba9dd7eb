"""MTA-STS (RFC 8461): TXT records, policy files, MX patterns, caches and discovery."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyfix_smtp.dns.records import Answer, Query, Rcode, TxtRecord
from pyfix_smtp.errors import TlsPolicyError
from pyfix_smtp.tls.mtasts import (
    CachedSts,
    FetchResult,
    StsFetch,
    StsMode,
    discover,
    discover_sync,
    mx_pattern_matches,
    parse_sts_policy,
    parse_sts_record,
    select_sts_record,
)
from pyfix_smtp.tls.stscache import MemoryStsCache, SqliteStsCache

POLICY = (
    "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\n"
    "mx: *.mail.example.com\r\nmax_age: 604800\r\n"
)
T0 = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "ident", "ext"),
    [
        ("v=STSv1; id=20160831085700Z;", "20160831085700Z", ()),
        ("v=STSv1;id=abc", "abc", ()),
        ("v=STSv1 ;\tid=abc ; ", "abc", ()),
        ("v=STSv1; id=abc; x-ext=val_ue.1", "abc", (("x-ext", "val_ue.1"),)),
        ("v=STSv1; id=first; id=second", "first", ()),
    ],
)
def test_record_parse(text: str, ident: str, ext: tuple[tuple[str, str], ...]) -> None:
    record = parse_sts_record(text)
    assert record.id == ident
    assert record.extensions == ext


@pytest.mark.parametrize(
    "text",
    [
        "v=STSv1",
        "v=STSv1;",
        "v=STSv2; id=1",
        "v=STSv1; id=",
        "v=STSv1; id=" + "a" * 33,
        "v=STSv1; id=a-b",
        "v=STSv1; id = abc",
        "v=STSv1; id=abc; x=a;b",
        "v=STSv1; id=abc junk",
        "v=STSv1; x=1",
    ],
)
def test_record_parse_errors(text: str) -> None:
    with pytest.raises(TlsPolicyError):
        parse_sts_record(text)


def txt(*texts: str, rcode: Rcode = Rcode.NOERROR) -> Answer:
    query = Query("_mta-sts.example.com", "TXT")
    return Answer(query, rcode, tuple(TxtRecord((t.encode(),)) for t in texts))


def test_record_selection() -> None:
    record, _ = select_sts_record(txt("v=spf1 -all", "v=STSv1; id=a1"))
    assert record is not None
    assert record.id == "a1"
    assert select_sts_record(txt("v=STSv1; id=a", "v=STSv1; id=b"))[0] is None
    assert select_sts_record(txt("v=STSv1; id=bad-id"))[1].startswith("invalid MTA-STS TXT record")
    assert select_sts_record(txt(rcode=Rcode.NXDOMAIN))[1] == "no MTA-STS TXT record"
    assert select_sts_record(txt(rcode=Rcode.SERVFAIL))[1].startswith("TXT lookup failed")
    split = Answer(
        Query("_mta-sts.example.com", "TXT"),
        Rcode.NOERROR,
        (TxtRecord((b"v=STSv1; ", b"id=joined")),),
    )
    joined, _ = select_sts_record(split)
    assert joined is not None
    assert joined.id == "joined"


def test_policy_parse() -> None:
    policy = parse_sts_policy(POLICY, "Example.COM")
    assert policy.domain == "example.com"
    assert policy.mode is StsMode.ENFORCE
    assert policy.max_age == 604800
    assert policy.mx == ("mx1.example.com", "*.mail.example.com")


def test_policy_parse_lf_unknown_fields_and_first_occurrence() -> None:
    text = (
        "version: STSv1\nmode: testing\nmode: enforce\nx_future: some value\n"
        "mx: MX.example.com\nmax_age: 0"
    )
    policy = parse_sts_policy(text, "example.com")
    assert policy.mode is StsMode.TESTING
    assert policy.max_age == 0
    assert policy.mx == ("mx.example.com",)
    assert policy.extensions == (("x_future", "some value"),)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("mode: enforce\nmx: a.example\nmax_age: 1", "missing field 'version'"),
        ("version: STSv1\nmx: a.example\nmax_age: 1", "missing field 'mode'"),
        ("version: STSv1\nmode: enforce\nmx: a.example", "missing field 'max_age'"),
        ("version: STSv1\nmode: enforce\nmax_age: 1", "missing mx field"),
        ("version: STSv2\nmode: enforce\nmx: a\nmax_age: 1", "unsupported version"),
        ("version: STSv1\nmode: strict\nmx: a\nmax_age: 1", "invalid mode"),
        ("version: STSv1\nmode: enforce\nmx: a\nmax_age: 31557601", "invalid max_age"),
        ("version: STSv1\nmode: enforce\nmx: a\nmax_age: -1", "invalid max_age"),
        ("version: STSv1\nmode: enforce\nmx: *.*.a\nmax_age: 1", "invalid mx pattern"),
        ("version: STSv1\nmode: enforce\nmx: -a.example\nmax_age: 1", "invalid mx pattern"),
        ("version: STSv1\n\nmode: none\nmax_age: 1", "malformed field"),
        (" version: STSv1\nmode: none\nmax_age: 1", "malformed field"),
    ],
)
def test_policy_parse_errors(text: str, why: str) -> None:
    with pytest.raises(TlsPolicyError, match=why):
        parse_sts_policy(text, "example.com")


def test_mode_none_needs_no_mx() -> None:
    policy = parse_sts_policy("version: STSv1\nmode: none\nmax_age: 86400\n", "example.com")
    assert policy.mode is StsMode.NONE
    assert policy.mx == ()


@pytest.mark.parametrize(
    ("pattern", "host", "ok"),
    [
        ("mx.example.com", "mx.example.com", True),
        ("mx.example.com", "MX.EXAMPLE.COM.", True),
        ("*.example.com", "mx.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", ".example.com", False),
        ("*.", "a.", False),
        ("mx.example.com", "mx2.example.com", False),
    ],
)
def test_mx_patterns(pattern: str, host: str, ok: bool) -> None:
    assert mx_pattern_matches(pattern, host) is ok


@settings(max_examples=100, deadline=None)
@given(
    st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9]{1,8}){0,3}", fullmatch=True),
    st.from_regex(r"[a-z0-9]{1,8}\.[a-z0-9]{1,8}", fullmatch=True),
)
def test_wildcard_covers_exactly_one_label(label_path: str, base: str) -> None:
    host = f"{label_path}.{base}"
    assert mx_pattern_matches(f"*.{base}", host) is ("." not in label_path)


# ---------------------------------------------------------------- discovery


class Net:
    """Scripted DNS and HTTPS for discovery."""

    def __init__(self) -> None:
        self.txt: Answer = txt("v=STSv1; id=one")
        self.fetch_result = FetchResult(status=200, body=POLICY.encode())
        self.fetches: list[StsFetch] = []

    def resolve(self, query: Query) -> Answer:
        assert query == Query("_mta-sts.example.com", "TXT")
        return self.txt

    def fetch(self, request: StsFetch) -> FetchResult:
        self.fetches.append(request)
        return self.fetch_result


@pytest.fixture(params=["memory", "sqlite"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> MemoryStsCache | SqliteStsCache:
    if request.param == "memory":
        return MemoryStsCache()
    return SqliteStsCache(str(tmp_path / "sts.sqlite"))


def test_discovery_fetches_then_uses_the_cache(cache: MemoryStsCache | SqliteStsCache) -> None:
    net = Net()
    first = discover_sync("Example.com.", resolve=net.resolve, fetch=net.fetch, cache=cache, now=T0)
    assert first.source == "fetched"
    assert first.policy is not None
    assert first.policy.mx == ("mx1.example.com", "*.mail.example.com")
    assert net.fetches == [
        StsFetch(
            "example.com",
            "https://mta-sts.example.com/.well-known/mta-sts.txt",
            "mta-sts.example.com",
        )
    ]
    again = discover_sync(
        "example.com", resolve=net.resolve, fetch=net.fetch, cache=cache, now=T0 + 60
    )
    assert again.source == "cache"
    assert len(net.fetches) == 1


def test_id_change_refreshes(cache: MemoryStsCache | SqliteStsCache) -> None:
    net = Net()
    discover_sync("example.com", resolve=net.resolve, fetch=net.fetch, cache=cache, now=T0)
    net.txt = txt("v=STSv1; id=two")
    net.fetch_result = FetchResult(status=200, body=POLICY.replace("enforce", "testing").encode())
    out = discover_sync(
        "example.com", resolve=net.resolve, fetch=net.fetch, cache=cache, now=T0 + 1
    )
    assert out.source == "fetched"
    assert out.policy is not None
    assert out.policy.mode is StsMode.TESTING
    entry = cache.get("example.com")
    assert entry is not None
    assert entry.id == "two"


def test_cached_policy_survives_dns_and_fetch_trouble(
    cache: MemoryStsCache | SqliteStsCache,
) -> None:
    net = Net()
    discover_sync("example.com", resolve=net.resolve, fetch=net.fetch, cache=cache, now=T0)
    net.txt = txt(rcode=Rcode.SERVFAIL)
    out = discover_sync(
        "example.com", resolve=net.resolve, fetch=net.fetch, cache=cache, now=T0 + 5
    )
    assert out.source == "cache"
    net.txt = txt(rcode=Rcode.NXDOMAIN)
    assert (
        discover_sync(
            "example.com", resolve=net.resolve, fetch=net.fetch, cache=cache, now=T0 + 6
        ).source
        == "cache"
    )
    net.txt = txt("v=STSv1; id=three")
    net.fetch_result = FetchResult(error="certificate verification failed: self signed")
    out = discover_sync(
        "example.com", resolve=net.resolve, fetch=net.fetch, cache=cache, now=T0 + 7
    )
    assert out.source == "cache"
    assert out.failure == "sts-webpki-invalid"
    entry = cache.get("example.com")
    assert entry is not None
    assert entry.id == "one"


def test_expired_cache_is_dropped(cache: MemoryStsCache | SqliteStsCache) -> None:
    net = Net()
    discover_sync("example.com", resolve=net.resolve, fetch=net.fetch, cache=cache, now=T0)
    net.txt = txt(rcode=Rcode.NXDOMAIN)
    out = discover_sync(
        "example.com", resolve=net.resolve, fetch=net.fetch, cache=cache, now=T0 + 604800 + 1
    )
    assert out.policy is None
    assert "expired" in " ".join(out.notes)
    assert cache.get("example.com") is None


@pytest.mark.parametrize(
    ("result", "failure"),
    [
        (FetchResult(status=404, body=b"no"), "sts-policy-fetch-error"),
        (FetchResult(status=301, body=b""), "sts-policy-fetch-error"),
        (FetchResult(status=200, body=b"version: STSv1\nmode: bogus\n"), "sts-policy-invalid"),
        (FetchResult(status=200, body=b"\xff\xfe"), "sts-policy-invalid"),
        (FetchResult(status=200, body=b"x" * 70000), "sts-policy-invalid"),
        (FetchResult(error="timeout after 60 s"), "sts-policy-fetch-error"),
    ],
)
def test_fetch_problems_without_cache(result: FetchResult, failure: str) -> None:
    net = Net()
    net.fetch_result = result
    out = discover_sync(
        "example.com", resolve=net.resolve, fetch=net.fetch, cache=MemoryStsCache(), now=T0
    )
    assert out.policy is None
    assert out.failure == failure


def test_generator_effects_in_order() -> None:
    cache = MemoryStsCache()
    gen = discover("example.com", cache=cache, now=T0)
    assert next(gen) == Query("_mta-sts.example.com", "TXT")
    fetch = gen.send(txt("v=STSv1; id=x"))
    assert isinstance(fetch, StsFetch)
    with pytest.raises(StopIteration) as stop:
        gen.send(FetchResult(status=200, body=POLICY.encode()))
    assert stop.value.value.source == "fetched"


def test_sqlite_cache_persists_and_drops_bad_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "sts.sqlite")
    first = SqliteStsCache(path)
    first.put("example.com", CachedSts(parse_sts_policy(POLICY, "example.com"), "id1", T0))
    first.close()
    second = SqliteStsCache(path)
    entry = second.get("EXAMPLE.com")
    assert entry is not None
    assert entry.id == "id1"
    assert entry.policy.max_age == 604800
    assert entry.expires == T0 + 604800
    second._db.execute("UPDATE mta_sts SET policy = 'garbage'")
    assert second.get("example.com") is None
    assert second.get("example.com") is None


async def test_discover_async() -> None:
    from pyfix_smtp.tls.mtasts import discover_async

    net = Net()

    async def resolve(query: Query) -> Answer:
        return net.resolve(query)

    async def fetch(request: StsFetch) -> FetchResult:
        return net.fetch(request)

    out = await discover_async(
        "example.com", resolve=resolve, fetch=fetch, cache=MemoryStsCache(), now=T0
    )
    assert out.source == "fetched"
