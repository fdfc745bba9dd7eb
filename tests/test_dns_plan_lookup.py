"""The planner's pure helpers: Postfix name checks, dns_lookup() statuses, ordering."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from pyfix_smtp.dns.lookup import DnsStatus, LookupResult, combine, interpret, invalid_name
from pyfix_smtp.dns.names import ascii_domain, valid_hostaddr, valid_hostname, valid_rr_name
from pyfix_smtp.dns.ordering import (
    AddressPreference,
    balance_families,
    shuffle,
    sort_by_preference,
    sort_srv,
)
from pyfix_smtp.dns.records import AddressRecord, Answer, MxRecord, Query, Rcode, SrvRecord

# Postfix valid_hostname.c, case by case


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("example.com", True),
        ("a", True),
        ("_dmarc.example.com", True),  # "_" is allowed ("grr..")
        ("xn--bcher-kva.example", True),
        ("a-b.example", True),
        ("-ab.example", False),  # misplaced hyphen
        ("ab-.example", False),
        ("a..b", False),  # misplaced delimiter
        ("example.com.", False),  # trailing dot
        (".example.com", False),
        ("123.456", False),  # numeric hostname
        ("1.2.3.4", False),
        ("1a.2", True),
        ("a" * 63 + ".com", True),
        ("a" * 64 + ".com", False),  # label too long
        (".".join(["a" * 50] * 4) + "." + "b" * 51, True),  # 255 characters
        (".".join(["a" * 50] * 4) + "." + "b" * 52, False),  # 256 characters
        ("ex ample.com", False),
        ("bücher.example", False),
        ("", False),
    ],
)
def test_valid_hostname(name: str, ok: bool) -> None:
    assert valid_hostname(name) is ok


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("*.example.com", True),
        ("*", True),
        ("a.*.example.com", False),  # '*' can be the first label only
        ("*a.example.com", False),
    ],
)
def test_valid_hostname_wildcard(name: str, ok: bool) -> None:
    assert valid_hostname(name, wildcard=True) is ok
    assert valid_hostname(name) is False


@pytest.mark.parametrize(
    ("addr", "ok"),
    [
        ("192.0.2.1", True),
        ("0.0.0.0", True),
        ("0.1.2.3", False),  # "Allow 0.0.0.0 but not 0.1.2.3"
        ("256.1.1.1", False),
        ("1.2.3", False),
        ("1.2.3.4.", False),
        ("::1", True),
        ("2001:db8::1", True),
        ("::ffff:192.0.2.1", True),
        ("1:2:3:4:5:6:7:8", True),
        ("1:2:3:4:5:6:7:8:9", False),
        ("1::2::3", False),
        ("12345::1", False),
        ("2001:db8::g", False),
        ("", False),
    ],
)
def test_valid_hostaddr(addr: str, ok: bool) -> None:
    assert valid_hostaddr(addr) is ok


def test_valid_rr_name_accepts_numeric_names() -> None:
    assert valid_rr_name("192.0.2.1")
    assert valid_rr_name("*.example.com")
    assert not valid_rr_name("-x.example.com")


def test_ascii_domain() -> None:
    assert ascii_domain("bücher.example") == "xn--bcher-kva.example"
    assert ascii_domain("example.com") == "example.com"
    # IDNA refuses a leading combining mark; Postfix then keeps the name,
    # which valid_hostname() rejects later
    assert ascii_domain("\u0300a.example") == "\u0300a.example"


# dns_lookup_x(): statuses and texts


def test_invalid_names_are_refused_before_a_query() -> None:
    refused = invalid_name("192.0.2.1", "MX")
    assert refused is not None
    assert refused.status is DnsStatus.NOTFOUND
    assert refused.text == "Name service error for 192.0.2.1: invalid host or domain name"
    assert invalid_name("example.com") is None
    assert invalid_name(".") is None  # the root may be asked


@pytest.mark.parametrize(
    ("rcode", "status"),
    [
        (Rcode.NXDOMAIN, DnsStatus.NOTFOUND),
        (Rcode.NODATA, DnsStatus.NOTFOUND),
        (Rcode.NOERROR, DnsStatus.NOTFOUND),  # NOERROR without records = NODATA
        (Rcode.SERVFAIL, DnsStatus.RETRY),
        (Rcode.TIMEOUT, DnsStatus.RETRY),
        (Rcode.REFUSED, DnsStatus.FAIL),
        (Rcode.FORMERR, DnsStatus.FAIL),
        (Rcode.NOTIMP, DnsStatus.FAIL),
        (Rcode.BADNAME, DnsStatus.NOTFOUND),
        (Rcode.LOOP, DnsStatus.NOTFOUND),
        (Rcode.SYSERROR, DnsStatus.FAIL),
    ],
)
def test_rcode_to_status(rcode: Rcode, status: DnsStatus) -> None:
    result = interpret(Answer(Query("example.com", "MX"), rcode))
    assert result.status is status
    assert result.text
    assert result.records == ()


def test_records_of_the_wrong_type_are_malformed() -> None:
    answer = Answer(Query("mx.example.com", "A"), Rcode.NOERROR, (AddressRecord("2001:db8::1"),))
    result = interpret(answer)
    assert result.status is DnsStatus.RETRY
    assert result.text == (
        "Name service error for name=mx.example.com type=A: "
        "Malformed or unexpected name server reply"
    )
    wrong = Answer(Query("example.com", "MX"), Rcode.NOERROR, (SrvRecord(0, 0, 25, "x"),))
    assert interpret(wrong).status is DnsStatus.RETRY


def test_authentic_only_when_asked() -> None:
    records = (MxRecord(10, "mx.example.com"),)
    asked = Query("example.com", "MX", dnssec=True)
    assert interpret(Answer(asked, Rcode.NOERROR, records, authentic=True)).authentic
    unasked = Query("example.com", "MX", dnssec=False)
    assert not interpret(
        Answer(asked, Rcode.NOERROR, records, authentic=True), query=unasked
    ).authentic


def _r(status: DnsStatus, text: str | None, records: int = 0) -> LookupResult:
    return LookupResult(
        status,
        records=tuple(AddressRecord(f"192.0.2.{i + 1}") for i in range(records)),
        text=text,
        rdtype="A",
    )


@pytest.mark.parametrize(
    ("results", "status", "text"),
    [
        # both not found: the last text (AAAA) stays
        ([_r(DnsStatus.NOTFOUND, "a"), _r(DnsStatus.NOTFOUND, "aaaa")], DnsStatus.NOTFOUND, "aaaa"),
        # a better status earlier is restored with its text
        ([_r(DnsStatus.RETRY, "a"), _r(DnsStatus.NOTFOUND, "aaaa")], DnsStatus.RETRY, "a"),
        # a better status later wins
        ([_r(DnsStatus.NOTFOUND, "a"), _r(DnsStatus.RETRY, "aaaa")], DnsStatus.RETRY, "aaaa"),
        # success anywhere is success; the failed lookup's text is left behind
        ([_r(DnsStatus.OK, None, 1), _r(DnsStatus.NOTFOUND, "aaaa")], DnsStatus.OK, "aaaa"),
        ([_r(DnsStatus.FAIL, "a"), _r(DnsStatus.OK, None, 1)], DnsStatus.OK, "a"),
    ],
)
def test_combine_follows_dns_lookup_rv(
    results: list[LookupResult], status: DnsStatus, text: str
) -> None:
    combined = combine(results)
    assert (combined.status, combined.text) == (status, text)


def test_combine_caps_records_at_100() -> None:
    combined = combine([_r(DnsStatus.OK, None, 80), _r(DnsStatus.OK, None, 80)])
    assert len(combined.records) == 100
    assert any("DNS record count limit (100)" in w for w in combined.warnings)


# Ordering


@dataclass(frozen=True)
class R:
    preference: int
    is_ipv6: bool = False
    name: str = ""
    weight: int = 0


def test_shuffle_is_uniform() -> None:
    rng = random.Random(1)
    counts = Counter(tuple(shuffle("abc", rng)) for _ in range(6000))
    assert len(counts) == 6
    assert all(abs(n - 1000) < 130 for n in counts.values())


def test_sort_by_preference_is_stable() -> None:
    items = [R(20, False, "x"), R(10, True, "a"), R(10, False, "b"), R(10, True, "c")]
    assert [r.name for r in sort_by_preference(items, AddressPreference.ANY)] == [
        "a",
        "b",
        "c",
        "x",
    ]
    assert [r.name for r in sort_by_preference(items, AddressPreference.IPV4)] == [
        "b",
        "a",
        "c",
        "x",
    ]
    assert [r.name for r in sort_by_preference(items, AddressPreference.IPV6)] == [
        "a",
        "c",
        "b",
        "x",
    ]


def test_balance_families_examples() -> None:
    items = [R(10, True, f"6{i}") for i in range(6)] + [R(10, False, f"4{i}") for i in range(6)]
    kept = balance_families(items, 5)
    assert [r.name for r in kept] == ["60", "61", "62", "40", "41"]  # first is IPv6: 3 + 2
    assert balance_families(items[:6], 5) == items[:6]  # one family: untouched


def test_sort_srv_priority_then_weight() -> None:
    items = [R(20, name="late", weight=5), R(10, name="w0", weight=0), R(10, name="w9", weight=9)]
    orders = Counter(tuple(r.name for r in sort_srv(items, random.Random(s))) for s in range(500))
    assert all(order[2] == "late" for order in orders)
    assert orders[("w9", "w0", "late")] > 400
    assert sort_srv([], random.Random()) == []
