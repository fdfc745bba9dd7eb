"""TLSRPT (RFC 8460) results, as Postfix 3.10+ reports them (pure).

Postfix's SMTP client reports one result per new TLS attempt to a local
collector (``tlsrpt-collectd`` of sys4's TLSRPT reporter) through sys4's
libtlsrpt, which sends one JSON datagram per result over a UNIX-domain
datagram socket. This module holds the typed values and the datagram
builder; :mod:`pyfix_smtp.delivery` decides when a result is due (Postfix
smtp_tlsrpt.c, tlsrpt_wrapper.c and the call sites in smtp_proto.c and
tls_client.c) and :mod:`pyfix_smtp.transport.tlsrpt` sends the datagrams.

The datagram is byte for byte what libtlsrpt (libtlsrpt.c) writes for the
same calls: the keys, their order, the spacing (``"key": "text"`` but
``"key":number``), its JSON escaping (control characters as ``\\uXXXX``
except ``\\b \\t \\n \\f \\r``, DEL escaped, bytes above 127 passed on as
UTF-8) and its short keys for failure details (``c`` result type, ``s``
sending MTA IP, ``n`` receiving MX host name, ``h`` receiving MX HELO,
``r`` receiving IP, ``a`` additional information, ``f`` failure reason
code). Policy and result types travel as libtlsrpt's numbers.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from pyfix_smtp.dns.records import Answer, Query, Rcode, TxtRecord

__all__ = [
    "PolicyType",
    "ResultType",
    "TlsrptFailure",
    "TlsrptPolicy",
    "TlsrptResult",
    "failure_for_verify_error",
    "find_policy_record",
    "policy_query",
]


class PolicyType(enum.Enum):
    """RFC 8460 §4.4 ``policy-type``; :attr:`code` is libtlsrpt's number (tlsrpt.h)."""

    TLSA = "tlsa"
    STS = "sts"
    NO_POLICY_FOUND = "no-policy-found"

    @property
    def code(self) -> int:
        """libtlsrpt ``tlsrpt_policy_type_t``."""
        return _POLICY_CODES[self]


_POLICY_CODES = {PolicyType.TLSA: 1, PolicyType.STS: 2, PolicyType.NO_POLICY_FOUND: 9}


class ResultType(enum.Enum):
    """RFC 8460 §4.3 ``result-type``; :attr:`code` is libtlsrpt's ``tlsrpt_failure_t``."""

    # RFC 8460 §4.3.1 negotiation failures
    STARTTLS_NOT_SUPPORTED = "starttls-not-supported"
    CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"
    CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"
    CERTIFICATE_EXPIRED = "certificate-expired"
    VALIDATION_FAILURE = "validation-failure"
    # RFC 8460 §4.3.2 MTA-STS failures
    STS_POLICY_FETCH_ERROR = "sts-policy-fetch-error"
    STS_POLICY_INVALID = "sts-policy-invalid"
    STS_WEBPKI_INVALID = "sts-webpki-invalid"
    # RFC 8460 §4.3.3 DNS failures
    TLSA_INVALID = "tlsa-invalid"
    DNSSEC_INVALID = "dnssec-invalid"
    DANE_REQUIRED = "dane-required"

    @property
    def code(self) -> int:
        """libtlsrpt's number for this result type (tlsrpt.h)."""
        return _RESULT_CODES[self]

    @property
    def log_name(self) -> str:
        """The name in Postfix's ``TLSRPT: status=failure`` line (trw_failure_type_to_string())."""
        return self.value.replace("-", "_")


_RESULT_CODES = {
    ResultType.STARTTLS_NOT_SUPPORTED: 201,
    ResultType.CERTIFICATE_HOST_MISMATCH: 202,
    ResultType.CERTIFICATE_NOT_TRUSTED: 203,
    ResultType.CERTIFICATE_EXPIRED: 204,
    ResultType.VALIDATION_FAILURE: 205,
    ResultType.STS_POLICY_FETCH_ERROR: 301,
    ResultType.STS_POLICY_INVALID: 302,
    ResultType.STS_WEBPKI_INVALID: 303,
    ResultType.TLSA_INVALID: 304,
    ResultType.DNSSEC_INVALID: 305,
    ResultType.DANE_REQUIRED: 306,
}


@dataclass(frozen=True, slots=True)
class TlsrptPolicy:
    """The TLS policy a result is about (RFC 8460 §4.4 ``policy``).

    Attributes:
        policy_type: tlsa, sts or no-policy-found.
        policy_domain: the domain the policy is for (the TLSA base domain,
            the MTA-STS domain, else the TLSRPT policy domain).
        policy_strings: the TLSA records (``"3 1 1 HEX"``) or the MTA-STS
            policy lines; none for no-policy-found.
        mx_host_patterns: the MTA-STS ``mx`` patterns; none otherwise.
    """

    policy_type: PolicyType
    policy_domain: str
    policy_strings: tuple[str, ...] = ()
    mx_host_patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.policy_domain:
            raise ValueError("TlsrptPolicy: policy_domain must not be empty")
        if self.policy_type is PolicyType.NO_POLICY_FOUND and (
            self.policy_strings or self.mx_host_patterns
        ):
            # Postfix trw_set_tls_policy(): ignored for TLSRPT_NO_POLICY_FOUND
            raise ValueError("TlsrptPolicy: no-policy-found carries no policy strings")


@dataclass(frozen=True, slots=True)
class TlsrptFailure:
    """One ``failure-details`` entry (RFC 8460 §4.4); None fields are left out."""

    result_type: ResultType
    sending_mta_ip: str | None = None
    receiving_mx_hostname: str | None = None
    receiving_mx_helo: str | None = None
    receiving_ip: str | None = None
    additional_information: str | None = None
    failure_reason_code: str | None = None


@dataclass(frozen=True, slots=True)
class TlsrptResult:
    """One TLS attempt's result, as Postfix hands it to libtlsrpt.

    Attributes:
        domain: the TLSRPT policy domain (A-label), the ``_smtp._tls`` owner.
        policy_record: its ``v=TLSRPTv1`` TXT record.
        policy: the TLS policy in force for the attempt.
        receiving_mx_hostname, receiving_ip: the server (for the log line;
            the datagram carries them only in a failure's details).
        failure: None for success.
    """

    domain: str
    policy_record: str
    policy: TlsrptPolicy
    receiving_mx_hostname: str | None = None
    receiving_ip: str | None = None
    failure: TlsrptFailure | None = None

    def __post_init__(self) -> None:
        if not self.domain:
            raise ValueError("TlsrptResult: domain must not be empty")

    @property
    def success(self) -> bool:
        """True when the attempt satisfied the policy."""
        return self.failure is None

    def log_line(self) -> str:
        """Postfix trw_report_success()/trw_report_failure() ``TLSRPT: status=...`` line."""
        mx = f"{_or_null(self.receiving_mx_hostname)}[{_or_null(self.receiving_ip)}]"
        head = f"TLSRPT: status={'success' if self.failure is None else 'failure'}"
        line = f"{head}, domain={self.domain}, receiving_mx={mx}"
        failure = self.failure
        if failure is None:
            return line
        line += f", failure_type={failure.result_type.log_name}"
        if failure.failure_reason_code is not None:
            line += f", failure_reason={failure.failure_reason_code}"
        return line

    def datagram(self) -> bytes:
        """The datagram libtlsrpt sends for this result (libtlsrpt.c, datagram version 1)."""
        policy = self.policy
        # tlsrpt_init_delivery_request(): '{', "dpv", "d", "pr"
        out = [b'{"dpv": "1","d": "', _escape(self.domain), b'","pr": "']
        out += [_escape(self.policy_record), b'","policies":[{"policy-type":']
        # tlsrpt_init_policy()
        out += [str(policy.policy_type.code).encode(), b',"policy-domain": "']
        out += [_escape(policy.policy_domain), b'"']
        # tlsrpt_finish_policy(): policy strings, MX patterns, failures, counts
        if policy.policy_strings:
            out += [b',"policy-string":[', _string_list(policy.policy_strings), b"]"]
        if policy.mx_host_patterns:
            out += [b',"mx-host":[', _string_list(policy.mx_host_patterns), b"]"]
        failure = self.failure
        if failure is not None:
            out += [b',"failure-details":[{"c":', str(failure.result_type.code).encode()]
            for key, value in (
                (b"s", failure.sending_mta_ip),
                (b"n", failure.receiving_mx_hostname),
                (b"h", failure.receiving_mx_helo),
                (b"r", failure.receiving_ip),
                (b"a", failure.additional_information),
                (b"f", failure.failure_reason_code),
            ):
                if value is not None:
                    out += [b',"', key, b'": "', _escape(value), b'"']
            out.append(b"}]")
        count, final = (0, 0) if failure is None else (1, 1)  # TLSRPT_FINAL_SUCCESS/FAILURE
        out.append(f',"t":{count},"f":{final}}}]}}'.encode())
        return b"".join(out)


def _or_null(value: str | None) -> str:
    return "(Null)" if value is None else value  # Postfix STR_OR_NULL()


# libtlsrpt json-escape-initializer-list.c: the escape for each byte value.
_ESCAPES = {i: f"\\u{i:04x}".encode() for i in range(32)}
_ESCAPES.update({8: b"\\b", 9: b"\\t", 10: b"\\n", 12: b"\\f", 13: b"\\r", 34: b'\\"', 92: b"\\\\"})
_ESCAPES[127] = b"\\u007f"
_NEEDS_ESCAPE = bytes(_ESCAPES)


def _escape(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    if not any(b in _NEEDS_ESCAPE for b in raw):  # the usual case: plain text
        return raw
    return b"".join(_ESCAPES.get(b, raw[i : i + 1]) for i, b in enumerate(raw))


def _string_list(values: Iterable[str]) -> bytes:
    # tlsrpt_add_policy_string()/tlsrpt_add_mx_host_pattern(): '"x"' joined by ','
    return b",".join(b'"' + _escape(v) + b'"' for v in values)


# -- the TLSRPT policy record (Postfix smtp_tlsrpt.c smtp_tlsrpt_find_policy()) ------------

_MAGIC = "v=TLSRPTv1"


def policy_query(domain: str, *, dnssec: bool = False) -> Query:
    """The TXT lookup for *domain*'s TLSRPT policy (RFC 8460 §3: ``_smtp._tls.<domain>``)."""
    return Query(f"_smtp._tls.{domain}", "TXT", dnssec=dnssec)


def find_policy_record(answer: Answer, domain: str) -> tuple[str | None, str | None]:
    """Pick the policy record from the TXT answer: (record, warning).

    Postfix smtp_tlsrpt_find_policy(): records that do not start with
    ``v=TLSRPTv1`` are ignored; the version must be followed by optional
    white space and ``;``; more than one such record means no policy. Not
    found (NXDOMAIN, NODATA) is expected and silent; other lookup failures
    give a warning.
    """
    if answer.rcode in (Rcode.NXDOMAIN, Rcode.NODATA):
        return None, None
    if answer.rcode is not Rcode.NOERROR:
        why = answer.detail or answer.rcode.value
        return None, f"TLSRPT support: policy lookup failed for {domain}: {why}"
    found: str | None = None
    warning: str | None = None
    for record in answer.records:
        if not isinstance(record, TxtRecord):
            continue
        text = record.text.decode("utf-8", "surrogateescape")
        if not text.startswith(_MAGIC):
            continue  # "Ignore non-TLSRPTv1 info."
        if not text[len(_MAGIC) :].lstrip(" \t").startswith(";"):
            warning = f'TLSRPT support: ignoring malformed policy for {domain}:, "{text}"'
            continue
        if found is not None:
            return None, f"TLSRPT support: Too many TLSRPT policies for {domain}"
        found = text
    return found, warning


# -- certificate verification errors (Postfix tls_verify.c tls_log_verify_error()) -------

# OpenSSL X509_verify_cert_error_string() texts and the TLSRPT result each gets;
# the failure reason is the text with spaces as underscores (CERT_ERROR_TO_STRING).
_VERIFY_ERRORS: tuple[tuple[str, ResultType, bool], ...] = (
    ("certificate not trusted", ResultType.CERTIFICATE_NOT_TRUSTED, False),
    ("self-signed certificate in certificate chain", ResultType.VALIDATION_FAILURE, True),
    ("self signed certificate in certificate chain", ResultType.VALIDATION_FAILURE, True),
    ("self-signed certificate", ResultType.VALIDATION_FAILURE, True),
    ("self signed certificate", ResultType.VALIDATION_FAILURE, True),
    ("unable to get local issuer certificate", ResultType.VALIDATION_FAILURE, True),
    ("certificate is not yet valid", ResultType.VALIDATION_FAILURE, True),
    ("format error in certificate's notbefore field", ResultType.VALIDATION_FAILURE, True),
    ("certificate has expired", ResultType.CERTIFICATE_EXPIRED, False),
    ("format error in certificate's notafter field", ResultType.CERTIFICATE_EXPIRED, False),
    ("unsupported certificate purpose", ResultType.VALIDATION_FAILURE, True),
    ("certificate chain too long", ResultType.VALIDATION_FAILURE, True),
)


def failure_for_verify_error(text: str) -> tuple[ResultType, str | None] | None:
    """The TLSRPT result Postfix's TLS engine reports for a verification error text.

    *text* is an OpenSSL verification error string (``"certificate has
    expired"``, possibly followed by ``" at depth N"``). Errors Postfix's
    tls_log_verify_error() has no case for (a host name mismatch, a DANE
    no-match ...) give None: the SMTP engine then reports
    certificate-host-mismatch or certificate-not-trusted.
    """
    lowered = text.lower()
    for prefix, result, with_reason in _VERIFY_ERRORS:
        if lowered.startswith(prefix):
            return result, prefix.replace(" ", "_") if with_reason else None
    return None
