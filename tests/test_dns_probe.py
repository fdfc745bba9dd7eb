"""dnssec_probe: one probe when DNSSEC validation seems unavailable (Postfix dns_sec.c).

The rules are checked on scripted answers; the clients against the DNS lab
(NSD + validating unbound): ``example.test`` is signed, ``unsigned.test`` is
not, every answer from ``bogus.test`` is SERVFAIL.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from pyfix_smtp import AsyncClient, Client, Config, Envelope
from pyfix_smtp.dns.probe import DnssecProbe, parse_probe
from pyfix_smtp.dns.records import Answer, Query, Rcode
from pyfix_smtp.errors import ConfigError
from tests.peers.dns import DnsLab

PARSE_CASES = [
    ("ns:.", Query(".", "NS")),
    ("NS:.", Query(".", "NS")),
    ("mx:example.com.", Query("example.com", "MX")),
    ("txt:_probe.example.org", Query("_probe.example.org", "TXT")),
    ("", None),
    ("  ", None),
]


@pytest.mark.parametrize(("text", "query"), PARSE_CASES)
def test_parse_probe(text: str, query: Query | None) -> None:
    assert parse_probe(text) == query


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("ns", "format is qtype:qname"),
        ("ns:", "format is qtype:qname"),
        (":example.com", "format is qtype:qname"),
        ("bogus:example.com", "unsupported query type 'bogus'"),
        ("naptr:example.com", "unsupported query type 'naptr'"),
    ],
)
def test_malformed_probe(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as info:
        parse_probe(text)
    assert info.value.parameter == "dnssec_probe"


def _answer(
    rcode: Rcode = Rcode.NOERROR, *, authentic: bool = False, dnssec: bool = True
) -> Answer:
    return Answer(Query("example.com", "MX", dnssec=dnssec), rcode, authentic=authentic)


def test_no_probe_after_a_validated_answer() -> None:
    probe = DnssecProbe()
    assert probe.observe(_answer(authentic=True)) is None
    assert probe.available
    assert probe.settled
    assert probe.observe(_answer()) is None  # an unsigned zone later: nothing to learn


def test_probe_once_after_an_answer_that_is_not_validated() -> None:
    probe = DnssecProbe()
    assert probe.observe(_answer(dnssec=False)) is None  # validation was not asked for
    assert not probe.settled
    assert probe.observe(_answer(Rcode.NXDOMAIN)) == Query(".", "NS")
    assert probe.probed
    assert probe.observe(_answer()) is None  # once per client


def test_empty_probe_never_probes() -> None:
    probe = DnssecProbe("")
    assert probe.observe(_answer()) is None
    assert probe.settled


PROBE = Query(".", "NS")
VERDICT_CASES = [
    # the probe's answer -> what Postfix dns_sec_probe() warns
    (Answer(PROBE, Rcode.NOERROR, authentic=True), []),
    (Answer(PROBE, Rcode.NXDOMAIN, authentic=True), []),  # authenticated denial
    (
        Answer(PROBE, Rcode.NOERROR),
        [
            "DNSSEC validation may be unavailable",
            "reason: dnssec_probe 'ns:.' received a response that is not DNSSEC validated",
        ],
    ),
    (
        Answer(PROBE, Rcode.SERVFAIL),
        [
            "DNSSEC validation may be unavailable",
            "reason: dnssec_probe 'ns:.' received no response: Host or domain name not found."
            " Name service error for name=. type=NS: Host not found, try again",
        ],
    ),
    (
        Answer(PROBE, Rcode.REFUSED),
        [
            "DNSSEC validation may be unavailable",
            "reason: dnssec_probe 'ns:.' received no response: Host or domain name not found."
            " Name service error for name=. type=NS: Non-recoverable error",
        ],
    ),
]


@pytest.mark.parametrize(("answer", "warnings"), VERDICT_CASES)
def test_probe_verdict(answer: Answer, warnings: list[str]) -> None:
    probe = DnssecProbe()
    assert probe.observe(_answer()) == PROBE
    assert probe.verdict(answer) == warnings
    assert probe.available is answer.authentic


# -- the clients against the DNS lab ------------------------------------------------------

ENVELOPE = Envelope(sender="a@example.org", recipients=["b@nullmx.unsigned.test"])
MESSAGE = b"Subject: probe\r\n\r\nhi\r\n"


def _config(probe: str) -> Config:
    return Config(smtp_dns_support_level="dnssec", dnssec_probe=probe)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pyfix_smtp.dns"]


@pytest.mark.peers
@pytest.mark.parametrize(
    ("probe", "warnings"),
    [
        ("ns:example.test", []),
        (
            "ns:unsigned.test",
            [
                "DNSSEC validation may be unavailable",
                "reason: dnssec_probe 'ns:unsigned.test' received a response"
                " that is not DNSSEC validated",
            ],
        ),
        (
            "ns:bogus.test",
            [
                "DNSSEC validation may be unavailable",
                "reason: dnssec_probe 'ns:bogus.test' received no response: Host or domain"
                " name not found. Name service error for name=bogus.test type=NS:"
                " Host not found, try again",
            ],
        ),
    ],
)
def test_client_probes_after_an_insecure_answer(
    dns_lab: DnsLab, caplog: pytest.LogCaptureFixture, probe: str, warnings: list[str]
) -> None:
    with (
        Client(_config(probe), resolver=dns_lab.resolver()) as client,
        caplog.at_level(logging.WARNING, logger="pyfix_smtp.dns"),
    ):
        report = client.deliver(ENVELOPE, MESSAGE, "nullmx.unsigned.test")
        assert [o.status for o in report] == ["5.1.0"]  # null MX, no connection
        assert _warnings(caplog) == warnings
        assert client.dnssec_probe is not None
        assert client.dnssec_probe.probed
        client.deliver(ENVELOPE, MESSAGE, "nullmx.unsigned.test")
        assert _warnings(caplog) == warnings  # once per client


@pytest.mark.peers
def test_client_does_not_probe_when_answers_validate(
    dns_lab: DnsLab, caplog: pytest.LogCaptureFixture
) -> None:
    signed = Envelope(sender="a@example.org", recipients=["b@nullmx.example.test"])
    with (
        Client(_config("ns:bogus.test"), resolver=dns_lab.resolver()) as client,
        caplog.at_level(logging.WARNING, logger="pyfix_smtp.dns"),
    ):
        client.deliver(signed, MESSAGE, "nullmx.example.test")
        client.deliver(ENVELOPE, MESSAGE, "nullmx.unsigned.test")
        assert client.dnssec_probe is not None
        assert client.dnssec_probe.available
        assert not client.dnssec_probe.probed
    assert _warnings(caplog) == []


@pytest.mark.peers
def test_no_probe_without_dnssec_lookups(dns_lab: DnsLab, caplog: pytest.LogCaptureFixture) -> None:
    with (
        Client(Config(dnssec_probe="ns:unsigned.test"), resolver=dns_lab.resolver()) as client,
        caplog.at_level(logging.WARNING, logger="pyfix_smtp.dns"),
    ):
        client.deliver(ENVELOPE, MESSAGE, "nullmx.unsigned.test")
        assert client.dnssec_probe is None
    assert _warnings(caplog) == []


@pytest.mark.peers
def test_async_client_probes_once(dns_lab: DnsLab, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with AsyncClient(
            _config("ns:unsigned.test"), resolver=dns_lab.async_resolver()
        ) as client:
            reports = await asyncio.gather(
                *(client.deliver(ENVELOPE, MESSAGE, "nullmx.unsigned.test") for _ in range(3))
            )
            assert [o.status for r in reports for o in r] == ["5.1.0"] * 3

    with caplog.at_level(logging.WARNING, logger="pyfix_smtp.dns"):
        asyncio.run(main())
    assert _warnings(caplog) == [
        "DNSSEC validation may be unavailable",
        "reason: dnssec_probe 'ns:unsigned.test' received a response that is not DNSSEC validated",
    ]


def test_malformed_probe_is_refused_before_delivery() -> None:
    with (
        Client(_config("ns")) as client,
        pytest.raises(ConfigError, match="dnssec_probe = 'ns': format is qtype:qname"),
    ):
        client.deliver(ENVELOPE, MESSAGE, "[127.0.0.1]:1")
