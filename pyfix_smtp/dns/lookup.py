"""Postfix ``dns_lookup()`` semantics over an :class:`~pyfix_smtp.dns.records.Answer` (pure).

A resolver adapter reports *what the DNS said* (rcode, records, AD bit,
CNAME chain). This module decides *what Postfix makes of it*: the
``DNS_OK/DNS_NOTFOUND/DNS_RETRY/...`` status, the records that survive the
syntax checks and the ``smtp_dns_reply_filter``, and the exact reason text
Postfix would log. The planner (:mod:`pyfix_smtp.dns.plan`) turns statuses
into enhanced status codes; the TLS layer can use :func:`interpret` for TLSA
lookups too.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pyfix_smtp.dns.names import parse_address, valid_hostaddr, valid_hostname, valid_rr_name
from pyfix_smtp.dns.ordering import DNS_RR_LIST_LIMIT
from pyfix_smtp.dns.records import (
    AddressRecord,
    Answer,
    CnameRecord,
    MxRecord,
    Query,
    Rcode,
    Record,
    SrvRecord,
    TlsaRecord,
    TxtRecord,
)
from pyfix_smtp.errors import PyfixError

__all__ = [
    "Combined",
    "DnsStatus",
    "LookupResult",
    "ReplyFilter",
    "as_reply_filter",
    "combine",
    "interpret",
    "invalid_name",
    "record_text",
]


class DnsStatus(enum.IntEnum):
    """Postfix ``dns.h`` lookup status; a larger value is a better result.

    :func:`combine` relies on the order, as Postfix ``dns_lookup_rv()`` does.
    """

    NOTFOUND = -7  # query ok, data not found
    NULLSRV = -6  # query ok, service unavailable (SRV ".")
    NULLMX = -5  # query ok, service unavailable (MX ".")
    FAIL = -4  # query failed, don't retry
    INVAL = -3  # query ok, malformed reply
    RETRY = -2  # query failed, try again
    POLICY = -1  # query ok, all records dropped by the reply filter
    OK = 0


class ReplyFilter(Protocol):
    """``smtp_dns_reply_filter``: a table looked up with one record's text.

    :class:`pyfix_smtp.maps.TableList` satisfies it. The key has Postfix's
    format ``"name. ttl IN TYPE rdata"``; a result of ``IGNORE`` drops the
    record, any other result is a configuration error.
    """

    def lookup(self, key: str) -> str | None:
        """The table's value for *key*, or None."""
        ...


class _CallableFilter:
    __slots__ = ("_func",)

    def __init__(self, func: Callable[[str], str | None]) -> None:
        self._func = func

    def lookup(self, key: str) -> str | None:
        return self._func(key)


def as_reply_filter(value: ReplyFilter | Callable[[str], str | None] | None) -> ReplyFilter | None:
    """Accept a table object, a plain ``key -> action`` callable, or None."""
    if value is None or hasattr(value, "lookup"):
        return value
    return _CallableFilter(value)


# Postfix dns_strerror.c: h_errno texts, and how glibc res_query() maps a
# reply rcode onto h_errno.
_HOST_NOT_FOUND = "Host not found"
_TRY_AGAIN = "Host not found, try again"
_NO_RECOVERY = "Non-recoverable error"
_NO_DATA = "Host found but no data record of requested type"

_RCODE_STATUS: dict[Rcode, tuple[DnsStatus, str]] = {
    Rcode.NXDOMAIN: (DnsStatus.NOTFOUND, _HOST_NOT_FOUND),
    Rcode.NODATA: (DnsStatus.NOTFOUND, _NO_DATA),
    Rcode.NOERROR: (DnsStatus.NOTFOUND, _NO_DATA),  # NOERROR without records
    Rcode.SERVFAIL: (DnsStatus.RETRY, _TRY_AGAIN),
    Rcode.TIMEOUT: (DnsStatus.RETRY, _TRY_AGAIN),
    Rcode.REFUSED: (DnsStatus.FAIL, _NO_RECOVERY),
    Rcode.FORMERR: (DnsStatus.FAIL, _NO_RECOVERY),
    Rcode.NOTIMP: (DnsStatus.FAIL, _NO_RECOVERY),
}


@dataclass(frozen=True, slots=True)
class LookupResult:
    """What Postfix's ``dns_lookup()`` returns for one name and type.

    Attributes:
        status: the lookup status.
        records: the usable records (only with ``DnsStatus.OK``), in reply
            order, at most 100.
        text: the reason text Postfix writes into its ``why`` buffer, or
            None when it writes nothing (success).
        authentic: the RRset (and every CNAME before it) was DNSSEC-validated
            and validation had been asked for.
        qname: the name asked for.
        rdtype: the record type asked for.
        rname: the owner name of the records (after CNAME expansion).
        cname_chain: CNAME targets followed.
        ttl: the answer's TTL in seconds.
        warnings: what Postfix would log with ``msg_warn`` (record count
            limit, dropped records).
    """

    status: DnsStatus
    records: tuple[Record, ...] = ()
    text: str | None = None
    authentic: bool = False
    qname: str = ""
    rdtype: str = ""
    rname: str = ""
    cname_chain: tuple[str, ...] = ()
    ttl: int = 0
    warnings: tuple[str, ...] = ()


def invalid_name(name: str, rdtype: str = "") -> LookupResult | None:
    """The result Postfix gives *without a query* when *name* is unusable.

    Postfix ``dns_lookup_x()`` refuses numeric names and names that fail
    ``valid_hostname()`` with DNS_NOTFOUND. None means the name may be asked.
    """
    if valid_hostaddr(name) or (name != "." and not valid_hostname(name, wildcard=True)):
        return LookupResult(
            DnsStatus.NOTFOUND,
            text=f"Name service error for {name}: invalid host or domain name",
            qname=name,
            rdtype=rdtype,
            rname=name,
        )
    return None


def record_text(owner: str, ttl: int, rdtype: str, record: Record) -> str:
    """One record in Postfix ``dns_strrecord()`` form, the reply filter's key."""
    head = f"{owner}. {ttl} IN {rdtype} "
    if isinstance(record, AddressRecord):
        return head + record.address
    if isinstance(record, MxRecord):
        return f"{head}{record.preference} {record.exchange}."
    if isinstance(record, SrvRecord):
        return f"{head}{record.priority} {record.weight} {record.port} {record.target}."
    if isinstance(record, TlsaRecord):
        return f"{head}{record.usage} {record.selector} {record.mtype} {record.data.hex()}"
    if isinstance(record, CnameRecord):
        return f"{head}{record.target}."
    # Postfix dns_get_rr() T_TXT: strings joined, non-printables become spaces.
    text = record.text.decode("latin-1")
    return head + "".join(c if " " <= c <= "~" else " " for c in text)


def _filter(
    records: list[Record], owner: str, ttl: int, rdtype: str, reply_filter: ReplyFilter
) -> tuple[list[Record], list[str]] | None:
    # Postfix dns_rr_filter.c dns_rr_filter_execute(): None = filter error.
    kept: list[Record] = []
    notes: list[str] = []
    for record in records:
        text = record_text(owner, ttl, rdtype, record)
        try:
            action = reply_filter.lookup(text)
        except PyfixError:
            return None
        if action is None:
            kept.append(record)
            continue
        command = action.strip().split(None, 1)
        if command and command[0].upper() == "IGNORE":  # dns_rr_filter.c dns_rr_action()
            notes.append(f"ignoring DNS RR: {text}")
            continue
        notes.append(f'unknown DNS filter action: "{action}"')
        return None
    return kept, notes


def _check_record(rdtype: str, record: Record) -> DnsStatus:
    # Postfix dns_lookup.c dns_get_rr(): per-record syntax checks.
    if rdtype == "MX" and isinstance(record, MxRecord):
        if record.exchange in ("", "."):
            return DnsStatus.NULLMX
        return DnsStatus.OK if valid_rr_name(record.exchange) else DnsStatus.INVAL
    if rdtype == "SRV" and isinstance(record, SrvRecord):
        if record.target in ("", "."):
            return DnsStatus.NULLSRV
        return DnsStatus.OK if valid_rr_name(record.target) else DnsStatus.INVAL
    if rdtype in ("A", "AAAA") and isinstance(record, AddressRecord):
        ip = parse_address(record.address)
        ok = ip is not None and ip.version == (6 if rdtype == "AAAA" else 4)
        return DnsStatus.OK if ok else DnsStatus.RETRY  # "bad address length"
    if (rdtype == "TLSA" and isinstance(record, TlsaRecord)) or (
        rdtype == "TXT" and isinstance(record, TxtRecord)
    ):
        return DnsStatus.OK
    return DnsStatus.RETRY  # a record of another type: malformed reply


def interpret(
    answer: Answer,
    *,
    reply_filter: ReplyFilter | None = None,
    query: Query | None = None,
) -> LookupResult:
    """Postfix ``dns_lookup_x()`` for one answered query.

    *query* defaults to ``answer.query``; pass it when the answer is shared
    (a caching resolver) and you want the original flags respected: without
    ``dnssec`` the result is never authentic.
    """
    query = query if query is not None else answer.query
    name = query.name
    rdtype = query.rdtype
    rname = answer.canonical_name or name

    def result(
        status: DnsStatus,
        text: str | None,
        records: tuple[Record, ...] = (),
        warnings: list[str] | tuple[str, ...] = (),
    ) -> LookupResult:
        return LookupResult(
            status,
            records=records,
            text=text,
            authentic=bool(records) and answer.authentic and query.dnssec,
            qname=name,
            rdtype=rdtype,
            rname=rname,
            cname_chain=answer.cname_chain,
            ttl=answer.ttl,
            warnings=tuple(warnings),
        )

    rcode = answer.rcode
    if rcode is Rcode.NOERROR and not answer.records:
        rcode = Rcode.NODATA
    if rcode is Rcode.BADNAME:
        return result(
            DnsStatus.NOTFOUND, f"Name service error for {name}: invalid host or domain name"
        )
    if rcode is Rcode.LOOP:  # Postfix dns_lookup_x(): more than 10 CNAMEs
        return result(
            DnsStatus.NOTFOUND,
            f"Name server loop for {rname}",
            warnings=(f"dns_lookup: Name server loop for {rname}",),
        )
    if rcode is Rcode.SYSERROR:  # Postfix dns_query(): res_ninit() failed
        return result(DnsStatus.FAIL, "Name service initialization failure")
    if rcode is not Rcode.NOERROR:
        status, errtext = _RCODE_STATUS[rcode]
        # After a CNAME, Postfix re-queries the target, so NODATA names it.
        shown = rname if rcode is Rcode.NODATA else name
        return result(
            status,
            "Host or domain name not found. "
            f"Name service error for name={shown} type={rdtype}: {errtext}",
        )

    # Postfix dns_get_answer(): keep the good records; a null MX/SRV wins.
    kept: list[Record] = []
    warnings: list[str] = []
    not_found = DnsStatus.NOTFOUND
    for record in answer.records:
        status = _check_record(rdtype, record)
        if status is DnsStatus.OK:
            if len(kept) == DNS_RR_LIST_LIMIT:
                warnings.append(
                    f"DNS record count limit ({DNS_RR_LIST_LIMIT}) exceeded -- dropping"
                    f" excess record(s) after qname={name} qtype={rdtype}"
                )
                break
            kept.append(record)
        elif status is DnsStatus.NULLMX:
            return result(status, f"Domain {name} does not accept mail (nullMX)")
        elif status is DnsStatus.NULLSRV:
            return result(status, f"Domain {name} does not support SRV requests")
        elif not_found is not DnsStatus.RETRY:
            not_found = status
    if not kept:
        return result(
            not_found,
            f"Name service error for name={name} type={rdtype}: "
            "Malformed or unexpected name server reply",
            warnings=warnings,
        )
    if reply_filter is not None:
        filtered = _filter(kept, rname, answer.ttl, rdtype, reply_filter)
        if filtered is None:
            return result(
                DnsStatus.RETRY,
                f"Error looking up name={name} type={rdtype}: Invalid DNS reply filter syntax",
                warnings=warnings,
            )
        kept, notes = filtered
        warnings.extend(notes)
        if not kept:
            return result(
                DnsStatus.POLICY,
                f"Error looking up name={name} type={rdtype}: DNS reply filter drops all results",
                warnings=warnings,
            )
    return result(DnsStatus.OK, None, tuple(kept), warnings)


@dataclass(frozen=True, slots=True)
class Combined:
    """Postfix ``dns_lookup_rv()`` over several record types of one name.

    Attributes:
        status: the best status seen (DNS_OK when any type had records).
        text: the reason text left in Postfix's ``why`` buffer, or None when
            no lookup wrote one.
        parts: the successful per-type results, in lookup order, their
            records cut so that the total stays within 100.
        warnings: the warnings of every lookup, plus the count-limit warning.
    """

    status: DnsStatus
    text: str | None
    parts: tuple[LookupResult, ...]
    warnings: tuple[str, ...]

    @property
    def records(self) -> tuple[Record, ...]:
        """All records of the successful parts, in order."""
        return tuple(r for part in self.parts for r in part.records)


def combine(results: list[LookupResult]) -> Combined:
    """Postfix ``dns_lookup_rv()``: one host name, several record types.

    Records of every type are appended (at most 100 in all); the status is
    the best one seen; the text is the last one written, unless an earlier
    lookup had a better status, whose text is then restored.
    """
    parts: list[LookupResult] = []
    warnings: list[str] = []
    count = 0
    hpref_status: DnsStatus | None = None
    hpref_text: str | None = None
    text: str | None = None
    status = DnsStatus.NOTFOUND
    for i, result in enumerate(results):
        status = result.status
        if result.text is not None:
            text = result.text
        warnings.extend(result.warnings)
        if result.records:
            room = DNS_RR_LIST_LIMIT - count
            if len(result.records) > room:  # Postfix dns_rr.c dns_rr_append_with_limit()
                warnings.append(
                    f"DNS record count limit ({DNS_RR_LIST_LIMIT}) exceeded -- dropping"
                    f" excess record(s) after qname={result.qname} qtype={result.rdtype}"
                )
                if room > 0:
                    parts.append(_cut(result, room))
                break
            parts.append(result)
            count += len(result.records)
        if i == len(results) - 1:
            break
        if hpref_status is None or status >= hpref_status:
            hpref_status = status
            if status is not DnsStatus.OK:
                hpref_text = text
    if hpref_status is not None and status < hpref_status:
        status = hpref_status
        if status is not DnsStatus.OK:
            text = hpref_text
    return Combined(status, text, tuple(parts), tuple(warnings))


def _cut(result: LookupResult, keep: int) -> LookupResult:
    return LookupResult(
        result.status,
        records=result.records[:keep],
        text=result.text,
        authentic=result.authentic,
        qname=result.qname,
        rdtype=result.rdtype,
        rname=result.rname,
        cname_chain=result.cname_chain,
        ttl=result.ttl,
        warnings=result.warnings,
    )
