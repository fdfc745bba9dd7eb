"""Is DNSSEC validation available? The one ``dnssec_probe`` query (pure).

Postfix dns/dns_sec.c keeps two process-lifetime flags: "some answer to a
query that asked for DNSSEC validation was validated" (AD set) and "the
probe was sent". When a lookup that asked for validation (Postfix
``RES_USE_DNSSEC``; our :attr:`Query.dnssec <pyfix_smtp.dns.records.Query.dnssec>`)
gets an answer that is not validated, and neither flag is set, Postfix sends
one probe query, ``dnssec_probe`` (``qtype:qname``, default ``ns:.``, whose
answer a validating resolver always validates), and warns when that answer
is not validated either: the resolver most likely does not validate, and
DANE will never apply. An empty ``dnssec_probe`` turns probing off.

:class:`DnssecProbe` holds the flags for one client (the process-wide state
of a Postfix smtp(8) process); the client's resolver wrapper feeds it every
answer with :meth:`DnssecProbe.observe`, sends :attr:`DnssecProbe.query`
when told to, and logs what :meth:`DnssecProbe.verdict` returns.
"""

from __future__ import annotations

from pyfix_smtp.dns.lookup import DnsStatus, interpret
from pyfix_smtp.dns.records import Answer, Query
from pyfix_smtp.errors import ConfigError

__all__ = ["PROBE_TYPES", "DnssecProbe", "parse_probe"]

#: Record types a probe may ask for (Postfix dns_type() names that our resolvers send).
PROBE_TYPES = frozenset({"A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TLSA", "TXT"})


def parse_probe(text: str) -> Query | None:
    """The probe query of ``dnssec_probe`` (``qtype:qname``), or None when it is empty.

    Raises:
        ConfigError: not ``qtype:qname`` (Postfix dns_sec_probe(): "malformed
            dnssec_probe value: ... format is qtype:qname"), or a type we
            cannot send.
    """
    text = text.strip()
    if not text:
        return None
    qtype, sep, qname = text.partition(":")
    if not sep or not qname or not qtype:
        raise ConfigError("dnssec_probe", text, "format is qtype:qname")
    rdtype = qtype.upper()
    if rdtype not in PROBE_TYPES:
        raise ConfigError(
            "dnssec_probe",
            text,
            f"unsupported query type {qtype!r}; use one of {', '.join(sorted(PROBE_TYPES))}",
        )
    name = qname.rstrip(".") or "."  # "." is the root zone
    return Query(name, rdtype, dnssec=True)


class DnssecProbe:
    """Postfix's DNSSEC availability flags for one client, and its one probe.

    Attributes:
        query: the probe (from :func:`parse_probe`); None: never probe.
        text: the ``dnssec_probe`` value, for the log lines.
        available: an answer to a query that asked for validation was
            validated (Postfix ``DNS_SEC_FLAG_AVAILABLE``).
        probed: the probe was sent, or is not to be sent (Postfix
            ``DNS_SEC_FLAG_DONT_PROBE``).
    """

    __slots__ = ("available", "probed", "query", "text")

    def __init__(self, text: str = "ns:.") -> None:
        self.text = text
        self.query = parse_probe(text)
        self.available = False
        self.probed = False

    @property
    def settled(self) -> bool:
        """Nothing more to learn: answers no longer need to be observed."""
        return self.available or self.probed

    def configure(self, text: str) -> None:
        """Use ``dnssec_probe`` = *text* for a probe not yet sent (ConfigError if malformed)."""
        if text != self.text:
            self.query = parse_probe(text)
            self.text = text

    def observe(self, answer: Answer, query: Query | None = None) -> Query | None:
        """Note *answer*; the probe to send now, or None.

        Postfix dns_lookup_x(): after a lookup that asked for validation,
        without a validated answer so far and no probe yet, the probe is
        sent (once: it is marked as sent before it goes out).
        """
        asked = query if query is not None else answer.query
        if not asked.dnssec or self.settled:
            return None
        if answer.authentic:
            self.available = True
            return None
        self.probed = True  # dns_sec_probe(): "Don't recurse."
        return self.query

    def verdict(self, answer: Answer) -> list[str]:
        """The warnings Postfix dns_sec_probe() logs for the probe's *answer* (may be none)."""
        if answer.authentic:
            self.available = True
        warnings: list[str] = []
        if not self.available:
            warnings.append("DNSSEC validation may be unavailable")
        result = interpret(answer)
        if result.status in (DnsStatus.RETRY, DnsStatus.FAIL):
            warnings.append(
                f"reason: dnssec_probe '{self.text}' received no response: {result.text}"
            )
        elif not self.available:
            warnings.append(
                f"reason: dnssec_probe '{self.text}' received a response"
                " that is not DNSSEC validated"
            )
        return warnings
