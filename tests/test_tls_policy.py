"""TLS policy evaluation: levels x table entries x DNSSEC facts x TLSA sets x STS policies.

Each case states the inputs and the expected effective level (or the
failure status and text), the DNS queries made, and selected details. The
rules are Postfix's smtp_tls_policy.c (policy_create(), tls_policy_lookup(),
dane_init(), set_cipher_grade()) and tls_dane.c tls_dane_resolve(); the
MTA-STS cases are our native RFC 8461 support.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pyfix_smtp.dns.records import Answer, Query, Rcode, TlsaRecord
from pyfix_smtp.errors import LookupTableError, TlsPolicyError
from pyfix_smtp.maps import TableList
from pyfix_smtp.tls.certs import MatchName
from pyfix_smtp.tls.levels import TlsLevel
from pyfix_smtp.tls.mtasts import StsMode, StsPolicy
from pyfix_smtp.tls.options import TlsOptions
from pyfix_smtp.tls.policy import MxFacts, TlsPolicy, TlsTarget, evaluate, lookup_policy_entry
from pyfix_smtp.tls.requiretls import RequireTlsAction
from tests.test_tls_pki import make_pki

MX = "mx.example.com"
TLSA_NAME = "_25._tcp.mx.example.com"
D32 = bytes(range(32))
D64 = bytes(range(64))
GOOD = (TlsaRecord(3, 1, 1, D32),)
MIXED = (TlsaRecord(3, 1, 1, D32), TlsaRecord(3, 1, 1, D32[:20]), TlsaRecord(1, 1, 1, D32))
STAGE1_UNUSABLE = (
    TlsaRecord(0, 0, 1, D32),
    TlsaRecord(1, 1, 2, D64),
    TlsaRecord(3, 1, 255, D32),
    TlsaRecord(3, 1, 1, b""),
)
STAGE2_UNUSABLE = (
    TlsaRecord(3, 1, 1, D32[:20]),
    TlsaRecord(2, 2, 1, D32),
    TlsaRecord(3, 1, 9, D32),
    TlsaRecord(2, 0, 0, b"not a certificate"),
)
DNSSEC = {"smtp_dns_support_level": "dnssec"}
FPT = "6f:" * 31 + "6f"  # 32 bytes, colon form


def ok(records: tuple[TlsaRecord, ...], authentic: bool = True) -> tuple[Rcode, tuple, bool]:
    return (Rcode.NOERROR, records, authentic)


NX = (Rcode.NXDOMAIN, (), True)
NODATA = (Rcode.NODATA, (), True)
SERVFAIL = (Rcode.SERVFAIL, (), False)
CNAME_SECURE = (Rcode.NOERROR, (), True)
CNAME_INSECURE = (Rcode.NOERROR, (), False)


class RaisingTable:
    """A table whose reads fail (Postfix: "policy table lookup error")."""

    fixed = True
    ref = "broken:table"

    def lookup(self, key: str) -> str | None:
        raise LookupTableError("smtp_tls_policy_maps", "broken:table", "cannot read")

    def __len__(self) -> int:
        return 1


STS_ENFORCE = StsPolicy("example.com", StsMode.ENFORCE, 86400, ("mx.example.com", "*.mail.example"))
STS_TESTING = StsPolicy("example.com", StsMode.TESTING, 86400, ("other.example",))
STS_OTHER = StsPolicy("example.com", StsMode.ENFORCE, 86400, ("other.example",))


@dataclass
class Case:
    id: str
    options: dict[str, object] = field(default_factory=dict)
    nexthop: str = "example.com"
    domain: str = "example.com"
    host: str = MX
    host_rname: str = ""
    port: int | None = 25
    address_authentic: bool = True
    mx: MxFacts | None = field(default_factory=lambda: MxFacts("example.com", authentic=True))
    dns: dict[str, tuple[Rcode, tuple, bool]] = field(default_factory=dict)
    table: object = None
    sts: StsPolicy | None = None
    tls_required_no: bool = False
    requiretls: RequireTlsAction | None = None
    level: TlsLevel | None = None
    status: str | None = None
    reason: str | None = None
    queries: tuple[str, ...] | None = None
    names: tuple[str, ...] | None = None
    sni: str | bool | None = False  # False: not checked
    check: Callable[[TlsPolicy], None] | None = None


def run(case: Case) -> tuple[TlsPolicy, list[str]]:
    asked: list[str] = []

    def resolve(query: Query) -> Answer:
        asked.append(f"{query.rdtype} {query.name}")
        rcode, records, authentic = case.dns.get(query.name, NX)
        return Answer(query, rcode, records, authentic=authentic, detail="lab")

    opts = dict(case.options)
    if case.table is not None:
        opts["smtp_tls_policy_maps"] = case.table
    target = TlsTarget(
        nexthop=case.nexthop,
        domain=case.domain,
        host=case.host,
        port=case.port,
        host_rname=case.host_rname,
        address_authentic=case.address_authentic,
        mx=case.mx,
    )
    policy = evaluate(
        target,
        TlsOptions(**opts),  # type: ignore[arg-type]
        resolve=resolve,
        tls_required_no=case.tls_required_no,
        requiretls=case.requiretls,
        sts=case.sts,
    )
    return policy, asked


def expect(ok: bool, detail: str) -> None:
    """A check for the case table: fail with *detail* unless *ok*."""
    assert ok, detail


def lvl(name: str) -> dict[str, object]:
    return {"smtp_tls_security_level": name}


def dane(name: str = "dane", **extra: object) -> dict[str, object]:
    return {**lvl(name), **DNSSEC, **extra}


INSECURE_MX = MxFacts("example.com", authentic=False)

CASES = [
    # ---- plain levels
    Case("none", lvl("none"), level=TlsLevel.NONE, sni=None),
    Case("may", lvl("may"), level=TlsLevel.MAY, sni=None),
    Case("encrypt", lvl("encrypt"), level=TlsLevel.ENCRYPT),
    Case(
        "obsolete-use-tls",
        {"smtp_tls_security_level": "", "smtp_use_tls": True},
        level=TlsLevel.MAY,
    ),
    Case(
        "obsolete-enforce-tls",
        {"smtp_tls_security_level": "", "smtp_enforce_tls": True},
        level=TlsLevel.VERIFY,
        names=("mx.example.com",),
    ),
    Case(
        "obsolete-enforce-nopeername",
        {
            "smtp_tls_security_level": "",
            "smtp_enforce_tls": True,
            "smtp_tls_enforce_peername": False,
        },
        level=TlsLevel.ENCRYPT,
    ),
    Case(
        "fingerprint",
        {**lvl("fingerprint"), "smtp_tls_fingerprint_cert_match": (FPT, "bad:hex")},
        level=TlsLevel.FINGERPRINT,
        check=lambda p: expect(
            [str(a) for a in p.associations] == [f"3 0 255 {'6f' * 32}", f"3 1 255 {'6f' * 32}"],
            str(p.associations),
        ),
    ),
    Case(
        "fingerprint-none-configured",
        lvl("fingerprint"),
        status="4.7.5",
        reason="client TLS configuration problem",
    ),
    Case(
        "fingerprint-only-malformed",
        {**lvl("fingerprint"), "smtp_tls_fingerprint_cert_match": ("zz:zz", "ab:", "abc")},
        status="4.7.5",
        reason="client TLS configuration problem",
    ),
    Case(
        "fingerprint-wrong-length-for-digest",
        {**lvl("fingerprint"), "smtp_tls_fingerprint_cert_match": ("ab" * 20,)},
        status="4.7.5",
        reason="Server certificate not verified",
    ),
    Case(
        "fingerprint-sha1-digest",
        {
            **lvl("fingerprint"),
            "smtp_tls_fingerprint_digest": "sha1",
            "smtp_tls_fingerprint_cert_match": ("ab" * 20,),
        },
        level=TlsLevel.FINGERPRINT,
    ),
    Case("verify", lvl("verify"), level=TlsLevel.VERIFY, names=("mx.example.com",), sni=None),
    Case("secure", lvl("secure"), level=TlsLevel.SECURE, names=("example.com", ".example.com")),
    Case(
        "secure-custom-match",
        {**lvl("secure"), "smtp_tls_secure_cert_match": ("hostname:.example.net", "nexthop")},
        level=TlsLevel.SECURE,
        names=("mx.example.com", ".example.net", "example.com"),
    ),
    # ---- DANE matrix
    Case(
        "dane-good",
        dane(),
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.DANE,
        queries=(f"TLSA {TLSA_NAME}",),
        names=("mx.example.com", "example.com"),
        sni=MX,
    ),
    Case(
        "dane-only-good",
        dane("dane-only"),
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.DANE_ONLY,
        queries=(f"TLSA {TLSA_NAME}",),
    ),
    Case(
        "dane-insecure-mx-halfdane",
        dane(),
        mx=INSECURE_MX,
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.HALFDANE,
        queries=(f"TLSA {TLSA_NAME}",),
    ),
    Case(
        "dane-insecure-mx-policy-may",
        dane(smtp_tls_dane_insecure_mx_policy="may"),
        mx=INSECURE_MX,
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.MAY,
        reason="non DNSSEC destination",
    ),
    Case(
        "dane-insecure-mx-policy-encrypt",
        dane(smtp_tls_dane_insecure_mx_policy="encrypt"),
        mx=INSECURE_MX,
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.ENCRYPT,
        queries=(f"TLSA {TLSA_NAME}",),
        reason="Verification not possible, MX RRset is insecure",
    ),
    Case(
        "dane-insecure-mx-policy-encrypt-no-tlsa",
        dane(smtp_tls_dane_insecure_mx_policy="encrypt"),
        mx=INSECURE_MX,
        level=TlsLevel.MAY,
        queries=(f"TLSA {TLSA_NAME}",),
    ),
    Case(
        "dane-only-insecure-mx",
        dane("dane-only"),
        mx=INSECURE_MX,
        dns={TLSA_NAME: ok(GOOD)},
        status="4.7.5",
        reason="non DNSSEC destination",
    ),
    Case(
        "dane-no-tlsa",
        dane(),
        level=TlsLevel.MAY,
        queries=(f"TLSA {TLSA_NAME}",),
        reason="no TLSA records found",
    ),
    Case(
        "dane-nodata",
        dane(),
        dns={TLSA_NAME: NODATA},
        level=TlsLevel.MAY,
        queries=(f"TLSA {TLSA_NAME}",),
    ),
    Case(
        "dane-only-no-tlsa",
        dane("dane-only"),
        status="4.7.5",
        reason="no TLSA records found",
        queries=(f"TLSA {TLSA_NAME}",),
    ),
    Case(
        "dane-servfail",
        dane(),
        dns={TLSA_NAME: SERVFAIL},
        status="4.7.5",
        reason="TLSA lookup error for mx.example.com:25",
        queries=(f"TLSA {TLSA_NAME}",),
    ),
    Case(
        "dane-only-servfail",
        dane("dane-only"),
        dns={TLSA_NAME: SERVFAIL},
        status="4.7.5",
        reason="TLSA lookup error for mx.example.com:25",
    ),
    Case(
        "dane-not-authentic",
        dane(),
        dns={TLSA_NAME: ok(GOOD, authentic=False)},
        level=TlsLevel.MAY,
        reason="no TLSA records found",
    ),
    Case(
        "dane-only-not-authentic",
        dane("dane-only"),
        dns={TLSA_NAME: ok(GOOD, authentic=False)},
        status="4.7.5",
        reason="no TLSA records found",
    ),
    Case(
        "dane-stage1-unusable",
        dane(),
        dns={TLSA_NAME: ok(STAGE1_UNUSABLE)},
        level=TlsLevel.ENCRYPT,
        reason="TLSA records unusable",
    ),
    Case(
        "dane-only-stage1-unusable",
        dane("dane-only"),
        dns={TLSA_NAME: ok(STAGE1_UNUSABLE)},
        status="4.7.5",
        reason="TLSA records unusable",
    ),
    Case(
        "dane-stage2-unusable",
        dane(),
        dns={TLSA_NAME: ok(STAGE2_UNUSABLE)},
        level=TlsLevel.ENCRYPT,
        sni=MX,
        names=(),
        reason="all TLSA records unusable, fallback to unauthenticated TLS",
    ),
    Case(
        "dane-only-stage2-unusable",
        dane("dane-only"),
        dns={TLSA_NAME: ok(STAGE2_UNUSABLE)},
        status="4.7.5",
        reason="TLSA records unusable",
    ),
    Case(
        "dane-mixed-keeps-usable",
        dane(),
        dns={TLSA_NAME: ok(MIXED)},
        level=TlsLevel.DANE,
        check=lambda p: expect(
            len(p.associations) == 1 and len(p.discarded) == 2, repr(p.discarded)
        ),
    ),
    Case(
        "dane-address-insecure",
        dane(),
        address_authentic=False,
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.MAY,
        queries=(),
    ),
    Case(
        "dane-only-address-insecure",
        dane("dane-only"),
        address_authentic=False,
        status="4.7.5",
        reason="no TLSA records found",
        queries=(),
    ),
    Case(
        "dane-force-insecure-lookup",
        dane(smtp_tls_force_insecure_host_tlsa_lookup=True),
        address_authentic=False,
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.DANE,
        queries=(f"TLSA {TLSA_NAME}",),
    ),
    Case(
        "dane-cname-rname-first",
        dane(),
        host_rname="real.example.net",
        dns={"_25._tcp.real.example.net": ok(GOOD)},
        level=TlsLevel.DANE,
        queries=("TLSA _25._tcp.real.example.net",),
        sni="real.example.net",
        names=("real.example.net", "example.com"),
    ),
    Case(
        "dane-cname-falls-back-to-qname",
        dane(),
        host_rname="real.example.net",
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.DANE,
        queries=("TLSA _25._tcp.real.example.net", f"TLSA {TLSA_NAME}"),
        sni=MX,
    ),
    Case(
        "dane-cname-insecure-target-secure-cname",
        dane(),
        host_rname="mx.unsigned.example",
        address_authentic=False,
        dns={MX: CNAME_SECURE, TLSA_NAME: ok(GOOD)},
        level=TlsLevel.DANE,
        queries=(f"CNAME {MX}", f"TLSA {TLSA_NAME}"),
    ),
    Case(
        "dane-cname-insecure",
        dane(),
        host_rname="mx.unsigned.example",
        address_authentic=False,
        dns={MX: CNAME_INSECURE},
        level=TlsLevel.MAY,
        queries=(f"CNAME {MX}",),
    ),
    Case(
        "dane-cname-lookup-fails",
        dane(),
        host_rname="mx.unsigned.example",
        address_authentic=False,
        dns={MX: SERVFAIL},
        status="4.7.5",
        reason="TLSA lookup error",
        queries=(f"CNAME {MX}",),
    ),
    Case(
        "dane-dnssec-disabled",
        lvl("dane"),
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.MAY,
        queries=(),
        reason="dnssec lookups disabled",
    ),
    Case(
        "dane-only-dnssec-disabled",
        lvl("dane-only"),
        status="4.7.5",
        reason="client TLS configuration problem",
        queries=(),
    ),
    Case("dane-host-lookup-native", dane(smtp_host_lookup=("native",)), level=TlsLevel.MAY),
    Case(
        "dane-ignore-mx-errors",
        dane(ignore_mx_lookup_error=True),
        level=TlsLevel.MAY,
        reason="MX lookup errors ignored",
    ),
    Case(
        "lmtp-dane-ignore-mx-errors-irrelevant",
        dane(ignore_mx_lookup_error=True, protocol="lmtp"),
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.DANE,
    ),
    Case(
        "dane-res-dnsrch",
        dane(smtp_dns_resolver_options=("res_dnsrch",)),
        level=TlsLevel.MAY,
        reason="dns resolver options incompatible",
    ),
    Case(
        "dane-unix-socket",
        dane(),
        nexthop="/var/run/lmtp",
        port=None,
        status="4.7.5",
        reason="client TLS configuration problem",
    ),
    Case(
        "dane-literal-host-no-mx",
        dane(),
        nexthop=f"[{MX}]",
        domain=MX,
        mx=None,
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.DANE,
        names=("mx.example.com",),
    ),
    Case(
        "dane-srv-port",
        dane(),
        port=10025,
        dns={"_10025._tcp.mx.example.com": ok(GOOD)},
        level=TlsLevel.DANE,
        queries=("TLSA _10025._tcp.mx.example.com",),
    ),
    Case(
        "dane-mx-cname",
        dane(),
        mx=MxFacts("example.com", "mail.example.org", authentic=True),
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.DANE,
        names=("mx.example.com", "mail.example.org", "example.com"),
    ),
    # ---- policy table
    Case("table-exact", lvl("may"), table={"example.com": "secure"}, level=TlsLevel.SECURE),
    Case(
        "table-parent",
        lvl("may"),
        nexthop="a.b.example.com",
        domain="a.b.example.com",
        table={".example.com": "verify", ".com": "none"},
        level=TlsLevel.VERIFY,
    ),
    Case(
        "table-grandparent",
        lvl("may"),
        nexthop="a.b.example.com",
        domain="a.b.example.com",
        table={".com": "encrypt"},
        level=TlsLevel.ENCRYPT,
    ),
    Case(
        "table-bracket-exact-only",
        lvl("may"),
        nexthop=f"[{MX}]:587",
        domain=MX,
        table={".example.com": "secure", MX: "secure"},
        level=TlsLevel.MAY,
    ),
    Case(
        "table-bracket-match",
        lvl("may"),
        nexthop=f"[{MX}]:587",
        domain=MX,
        table={f"[{MX}]:587": "encrypt"},
        level=TlsLevel.ENCRYPT,
    ),
    Case(
        "table-service-suffix-exact",
        lvl("may"),
        nexthop="example.com:submission",
        table={"example.com": "secure"},
        level=TlsLevel.MAY,
    ),
    Case(
        "table-invalid-entry",
        lvl("may"),
        table={"example.com": "secure bogus=1"},
        status="4.7.5",
        reason="client TLS configuration problem",
    ),
    Case(
        "table-error",
        lvl("may"),
        table=RaisingTable(),
        status="4.7.5",
        reason="client TLS configuration problem",
    ),
    Case(
        "table-none-beats-global", lvl("secure"), table={"example.com": "none"}, level=TlsLevel.NONE
    ),
    Case(
        "table-may-beats-global-dane",
        dane(),
        table={"example.com": "may"},
        level=TlsLevel.MAY,
        queries=(),
    ),
    Case(
        "table-dane-only",
        lvl("may") | DNSSEC,
        table={"example.com": "dane-only"},
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.DANE_ONLY,
    ),
    Case(
        "table-attributes",
        lvl("may"),
        table={"example.com": "encrypt protocols=>=TLSv1.2 ciphers=high exclude=CAMELLIA"},
        level=TlsLevel.ENCRYPT,
        check=lambda p: (
            (
                p.protocol_range is not None
                and p.protocol_range.names == ("TLSv1.2", "TLSv1.3")
                and p.cipher_grade == "high"
                and p.cipher_exclusions == "CAMELLIA eNULL"
            ),
            repr(p),
        ),
    ),
    Case(
        "mandatory-exclusions",
        {
            **lvl("encrypt"),
            "smtp_tls_exclude_ciphers": "RC4",
            "smtp_tls_mandatory_exclude_ciphers": "3DES",
        },
        level=TlsLevel.ENCRYPT,
        check=lambda p: expect(p.cipher_exclusions == "RC4 3DES eNULL", p.cipher_exclusions),
    ),
    Case(
        "may-exclusions",
        {
            **lvl("may"),
            "smtp_tls_exclude_ciphers": "RC4",
            "smtp_tls_mandatory_exclude_ciphers": "3DES",
        },
        level=TlsLevel.MAY,
        check=lambda p: expect(p.cipher_exclusions == "RC4", p.cipher_exclusions),
    ),
    Case(
        "table-servername-nexthop",
        lvl("may"),
        table={"example.com": "may servername=nexthop"},
        level=TlsLevel.MAY,
        sni="example.com",
    ),
    Case(
        "table-bad-protocols",
        lvl("may"),
        table={"example.com": "may protocols=TLSv9"},
        status="4.7.5",
        reason="client TLS configuration problem",
    ),
    Case(
        "table-sts-plugin",
        lvl("may"),
        table={
            "example.com": "secure match=*.example.com servername=hostname policy_type=sts"
            " policy_domain=example.com mx_host_pattern=*.example.com"
        },
        level=TlsLevel.SECURE,
        names=("mx.example.com",),
        sni=MX,
    ),
    Case(
        "table-sts-plugin-mx-mismatch",
        lvl("may"),
        host="mx.elsewhere.net",
        table={
            "example.com": "secure match=*.example.com policy_type=sts"
            " policy_domain=example.com mx_host_pattern=*.example.com"
        },
        status="4.7.5",
        reason="does not match the MTA-STS policy of example.com",
    ),
    Case(
        "table-sts-plugin-enforcement-off",
        {**lvl("may"), "smtp_tls_enforce_sts_mx_patterns": False},
        host="mx.elsewhere.net",
        table={
            "example.com": "secure match=*.example.com policy_type=sts"
            " mx_host_pattern=*.example.com"
        },
        level=TlsLevel.SECURE,
        names=("*.example.com",),
    ),
    # ---- TLS-Required: no
    Case(
        "tls-required-no",
        lvl("secure"),
        table=RaisingTable(),
        tls_required_no=True,
        level=TlsLevel.MAY,
    ),
    Case(
        "tls-required-no-wrappermode",
        {**lvl("secure"), "smtp_tls_wrappermode": True},
        tls_required_no=True,
        level=TlsLevel.ENCRYPT,
    ),
    Case("tls-required-no-none-stays", lvl("none"), tls_required_no=True, level=TlsLevel.NONE),
    Case(
        "tls-required-no-dane-no-lookup",
        dane(),
        tls_required_no=True,
        level=TlsLevel.MAY,
        queries=(),
    ),
    Case(
        "tls-required-no-loses-to-requiretls",
        lvl("secure"),
        tls_required_no=True,
        requiretls=RequireTlsAction.ENFORCE,
        level=TlsLevel.SECURE,
    ),
    Case(
        "tls-required-no-disabled",
        {**lvl("secure"), "tls_required_enable": False},
        tls_required_no=True,
        level=TlsLevel.SECURE,
    ),
    # ---- native MTA-STS
    Case(
        "sts-enforce",
        lvl("may"),
        sts=STS_ENFORCE,
        level=TlsLevel.SECURE,
        names=("mx.example.com",),
        sni=MX,
    ),
    Case(
        "sts-enforce-wildcard",
        lvl("may"),
        host="a.mail.example",
        sts=STS_ENFORCE,
        level=TlsLevel.SECURE,
        names=("a.mail.example",),
    ),
    Case(
        "sts-enforce-mx-mismatch",
        lvl("may"),
        host="b.a.mail.example",
        sts=STS_ENFORCE,
        status="4.7.5",
        reason="does not match the MTA-STS policy of example.com",
    ),
    Case("sts-testing", lvl("may"), sts=STS_TESTING, level=TlsLevel.MAY),
    Case("sts-none-level", lvl("none"), sts=STS_ENFORCE, level=TlsLevel.SECURE),
    Case(
        "sts-with-verify-keeps-level",
        lvl("verify"),
        sts=STS_OTHER,
        status="4.7.5",
        reason="does not match the MTA-STS policy",
    ),
    Case(
        "sts-dane-precedence", dane(), sts=STS_OTHER, dns={TLSA_NAME: ok(GOOD)}, level=TlsLevel.DANE
    ),
    Case(
        "sts-dane-no-tlsa-never-may",
        dane(),
        sts=STS_ENFORCE,
        level=TlsLevel.SECURE,
        queries=(f"TLSA {TLSA_NAME}",),
    ),
    Case(
        "sts-dane-unusable-never-encrypt",
        dane(),
        sts=STS_ENFORCE,
        dns={TLSA_NAME: ok(STAGE2_UNUSABLE)},
        level=TlsLevel.SECURE,
    ),
    Case(
        "sts-halfdane-checks-mx",
        dane(),
        mx=INSECURE_MX,
        sts=STS_OTHER,
        dns={TLSA_NAME: ok(GOOD)},
        status="4.7.5",
        reason="does not match the MTA-STS policy",
    ),
    Case(
        "sts-halfdane-ok",
        dane(),
        mx=INSECURE_MX,
        sts=STS_ENFORCE,
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.HALFDANE,
    ),
    Case(
        "sts-dane-lookup-error-stands",
        dane(),
        sts=STS_ENFORCE,
        dns={TLSA_NAME: SERVFAIL},
        status="4.7.5",
        reason="TLSA lookup error",
    ),
    Case(
        "sts-dane-only-no-tlsa-stands",
        dane("dane-only"),
        sts=STS_ENFORCE,
        status="4.7.5",
        reason="no TLSA records found",
    ),
    Case(
        "sts-table-wins",
        lvl("may"),
        sts=STS_ENFORCE,
        table={"example.com": "encrypt"},
        level=TlsLevel.ENCRYPT,
    ),
    Case(
        "sts-tls-required-no", lvl("may"), sts=STS_ENFORCE, tls_required_no=True, level=TlsLevel.MAY
    ),
    # ---- REQUIRETLS level checks (smtp_get_effective_tls_level())
    Case(
        "reqtls-enforce-may",
        lvl("may"),
        requiretls=RequireTlsAction.ENFORCE,
        status="5.7.10",
        reason="security level 'may' disables certificate matching",
    ),
    Case(
        "reqtls-enforce-encrypt",
        lvl("encrypt"),
        requiretls=RequireTlsAction.ENFORCE,
        status="5.7.10",
        reason="The last attempted server was mx.example.com",
    ),
    Case(
        "reqtls-enforce-dane-good",
        dane(),
        requiretls=RequireTlsAction.ENFORCE,
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.DANE,
    ),
    Case(
        "reqtls-enforce-dane-no-tlsa",
        dane(),
        requiretls=RequireTlsAction.ENFORCE,
        status="5.7.10",
        reason="'may' disables certificate matching",
    ),
    Case(
        "reqtls-enforce-sts",
        lvl("may"),
        requiretls=RequireTlsAction.ENFORCE,
        sts=STS_ENFORCE,
        level=TlsLevel.SECURE,
    ),
    Case(
        "reqtls-starttls-none",
        lvl("none"),
        requiretls=RequireTlsAction.OPPORTUNISTIC_STARTTLS,
        status="5.7.10",
        reason="disables encryption",
    ),
    Case(
        "reqtls-starttls-may",
        lvl("may"),
        requiretls=RequireTlsAction.OPPORTUNISTIC_STARTTLS,
        level=TlsLevel.MAY,
    ),
    Case(
        "reqtls-opportunistic-none",
        lvl("none"),
        requiretls=RequireTlsAction.OPPORTUNISTIC,
        level=TlsLevel.NONE,
    ),
    Case(
        "reqtls-error",
        lvl("secure"),
        requiretls=RequireTlsAction.ERROR,
        status="4.7.10",
        reason="REQUIRETLS policy configuration error",
    ),
    Case(
        "reqtls-after-policy-failure",
        lvl("may"),
        table={"example.com": "bogus"},
        requiretls=RequireTlsAction.ENFORCE,
        status="4.7.5",
    ),
    # ---- wrappermode, servername
    Case(
        "wrappermode-may",
        {**lvl("may"), "smtp_tls_wrappermode": True},
        status="4.7.5",
        reason="client TLS configuration problem",
    ),
    Case(
        "wrappermode-encrypt",
        {**lvl("encrypt"), "smtp_tls_wrappermode": True},
        level=TlsLevel.ENCRYPT,
    ),
    Case(
        "servername-invalid",
        {**lvl("may"), "smtp_tls_servername": "not valid"},
        status="4.7.5",
        reason="client TLS configuration problem",
    ),
    Case(
        "servername-hostname",
        {**lvl("verify"), "smtp_tls_servername": "hostname"},
        level=TlsLevel.VERIFY,
        sni=MX,
    ),
    Case(
        "servername-literal",
        {**lvl("may"), "smtp_tls_servername": "sni.example"},
        level=TlsLevel.MAY,
        sni="sni.example",
    ),
    Case(
        "servername-ignored-with-dane",
        dane(smtp_tls_servername="other.example"),
        dns={TLSA_NAME: ok(GOOD)},
        level=TlsLevel.DANE,
        sni=MX,
    ),
    Case(
        "none-has-no-sni-or-ciphers",
        {**lvl("none"), "smtp_tls_servername": "hostname"},
        level=TlsLevel.NONE,
        sni=None,
        check=lambda p: expect(p.cipher_list == "" and p.protocol_range is None, repr(p)),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_policy_case(case: Case) -> None:
    policy, asked = run(case)
    explanation = policy.explain()
    if case.status is not None:
        assert policy.failure is not None, explanation
        assert policy.failure.status == case.status, explanation
    else:
        assert policy.failure is None, explanation
        assert policy.level is case.level, explanation
    if case.reason is not None:
        text = explanation if policy.failure is None else f"{policy.failure.reason}\n{explanation}"
        assert case.reason in text, explanation
    if case.queries is not None:
        assert tuple(asked) == case.queries, explanation
    if case.names is not None:
        assert tuple(map(str, policy.match_names)) == case.names, explanation
    if case.sni is not False:
        assert policy.sni == case.sni, explanation
    if case.check is not None:
        case.check(policy)


def test_case_table_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


def test_lookup_keys_follow_tls_policy_lookup() -> None:
    seen: list[str] = []

    class Recorder:
        def lookup(self, key: str) -> str | None:
            seen.append(key)
            return None

    assert lookup_policy_entry(Recorder(), "a.b.example.com") is None
    assert seen == ["a.b.example.com", ".b.example.com", ".example.com", ".com"]
    seen.clear()
    for nexthop in ("[mx.example.com]", "[mx.example.com]:25", "example.com:587", "10.0.0.1"):
        lookup_policy_entry(Recorder(), nexthop)
    assert seen == ["[mx.example.com]", "[mx.example.com]:25", "example.com:587", "10.0.0.1"]


def test_table_list_from_main_cf_text() -> None:
    opts = TlsOptions(smtp_tls_policy_maps="inline:{ {.example.com = secure match=nexthop} }")
    target = TlsTarget(nexthop="sub.example.com", domain="sub.example.com", host=MX)
    policy = evaluate(target, opts)
    assert policy.level is TlsLevel.SECURE
    assert policy.match_names == (MatchName("sub.example.com"),)
    assert "'.example.com'" in policy.explain()


def test_dane_level_without_resolver_is_an_error() -> None:
    target = TlsTarget(nexthop="example.com", domain="example.com", host=MX, address_authentic=True)
    with pytest.raises(TlsPolicyError, match="no resolver"):
        evaluate(target, TlsOptions(**dane()))  # type: ignore[arg-type]


def test_explain_lists_every_step() -> None:
    case = Case("x", dane(), dns={TLSA_NAME: ok(GOOD)})
    policy, _ = run(case)
    text = policy.explain()
    assert "global level dane" in text
    assert "MX RRset of example.com is DNSSEC-validated" in text
    assert "_25._tcp.mx.example.com: 1 record(s): 3 1 1" in text
    assert text.splitlines()[-1].startswith("   TLSA: 3 1 1")


# ---------------------------------------------------------------- trust anchors


def test_tafile_records_and_global_anchor_file(tmp_path: Path) -> None:
    pki = make_pki()
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert_pem = pki.root.cert.public_bytes(Encoding.PEM)
    key_pem = pki.inter.cert.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    files = {"/ta/root.pem": cert_pem, "/ta/key.pem": key_pem, "/ta/junk.pem": b"no pem here"}

    def read(path: str) -> bytes:
        if path not in files:
            raise FileNotFoundError(2, "No such file or directory", path)
        return files[path]

    target = TlsTarget(nexthop="example.com", domain="example.com", host=MX)
    table = {"example.com": "secure tafile=/ta/root.pem tafile=/ta/key.pem"}
    policy = evaluate(target, TlsOptions(smtp_tls_policy_maps=table), read_file=read)
    assert policy.level is TlsLevel.SECURE
    assert [str(a)[:6] for a in policy.associations] == ["2 0 0 ", "3 0 0 ", "2 1 0 ", "3 1 0 "]
    assert policy.ee_namechecks

    glob = TlsOptions(
        smtp_tls_security_level="verify", smtp_tls_trust_anchor_file=("/ta/root.pem",)
    )
    assert len(evaluate(target, glob, read_file=read).associations) == 2

    for path, why in (
        ("/ta/missing.pem", "error opening trust anchor file"),
        ("/ta/junk.pem", "no PEM objects"),
    ):
        bad = evaluate(
            target,
            TlsOptions(smtp_tls_policy_maps={"example.com": f"verify tafile={path}"}),
            read_file=read,
        )
        assert bad.failure is not None
        assert bad.failure.status == "4.7.5"
        assert why in bad.explain()


# ------------------------------------------- obsolete smtp_tls_per_site (tls_policy.ref)


# Postfix src/smtp/tls_policy.ref: host, dest, global -> result for every combination.
PER_SITE_REF = """\
- - - none|- - may may|- - must_nopeermatch must_nopeermatch|- - must must
- none - none|- none may none|- none must_nopeermatch none|- none must none
- may - may|- may may may|- may must_nopeermatch must_nopeermatch|- may must must
- must_nopeermatch - must_nopeermatch|- must_nopeermatch may must_nopeermatch
- must_nopeermatch must_nopeermatch must_nopeermatch|- must_nopeermatch must must_nopeermatch
- must - must|- must may must|- must must_nopeermatch must|- must must must
none none - none|none none may none|none none must_nopeermatch none|none none must none
none may - none|none may may none|none may must_nopeermatch none|none may must none
none must_nopeermatch - must_nopeermatch|none must_nopeermatch may must_nopeermatch
none must_nopeermatch must_nopeermatch must_nopeermatch|none must_nopeermatch must must_nopeermatch
none must - must|none must may must|none must must_nopeermatch must|none must must must
may may - may|may may may may|may may must_nopeermatch must_nopeermatch|may may must must
may must_nopeermatch - must_nopeermatch|may must_nopeermatch may must_nopeermatch
may must_nopeermatch must_nopeermatch must_nopeermatch|may must_nopeermatch must must_nopeermatch
may must - must|may must may must|may must must_nopeermatch must|may must must must
must_nopeermatch must_nopeermatch - must_nopeermatch
must_nopeermatch must_nopeermatch may must_nopeermatch
must_nopeermatch must_nopeermatch must_nopeermatch must_nopeermatch
must_nopeermatch must_nopeermatch must must_nopeermatch
must_nopeermatch must - must|must_nopeermatch must may must
must_nopeermatch must must_nopeermatch must|must_nopeermatch must must must
must must - must|must must may must|must must must_nopeermatch must|must must must must
"""
_GLOBAL = {
    "-": {"smtp_tls_security_level": ""},
    "may": {"smtp_tls_security_level": "", "smtp_use_tls": True},
    "must_nopeermatch": {
        "smtp_tls_security_level": "",
        "smtp_enforce_tls": True,
        "smtp_tls_enforce_peername": False,
    },
    "must": {"smtp_tls_security_level": "", "smtp_enforce_tls": True},
}
_RESULT = {
    "none": TlsLevel.NONE,
    "may": TlsLevel.MAY,
    "must_nopeermatch": TlsLevel.ENCRYPT,
    "must": TlsLevel.VERIFY,
}
PER_SITE_ROWS = [
    tuple(row.split()) for line in PER_SITE_REF.splitlines() for row in line.split("|")
]


@pytest.mark.parametrize(("host", "dest", "glob", "result"), PER_SITE_ROWS)
def test_per_site_matches_postfix_reference(host: str, dest: str, glob: str, result: str) -> None:
    """Every row of Postfix's tls_policy.ref (host entry, dest entry, global setting)."""
    entries = {}
    if host != "-":
        entries["mx.example.com"] = host.upper()
    if dest != "-":
        entries["example.com"] = dest.upper()
    opts = TlsOptions(**_GLOBAL[glob], smtp_tls_per_site=entries or None)  # type: ignore[arg-type]
    target = TlsTarget(nexthop="example.com", domain="example.com", host=MX)
    assert evaluate(target, opts).level is _RESULT[result]


def test_per_site_reference_is_complete() -> None:
    assert len(PER_SITE_ROWS) == 60


def test_per_site_unknown_value_and_ignored_with_policy_maps() -> None:
    target = TlsTarget(nexthop="example.com", domain="example.com", host=MX)
    bad = evaluate(target, TlsOptions(smtp_tls_per_site={"example.com": "SOMETIMES"}))
    assert bad.failure is not None
    assert bad.failure.status == "4.7.5"
    both = TlsOptions(
        smtp_tls_per_site={"example.com": "MUST"},
        smtp_tls_policy_maps=TableList([{"example.com": "encrypt"}]),
    )
    assert evaluate(target, both).level is TlsLevel.ENCRYPT
    broken = TlsOptions(smtp_tls_per_site=RaisingTable())
    failed = evaluate(target, broken)
    assert failed.failure is not None
    assert failed.failure.status == "4.3.0"


# ---------------------------------------------------------------- inputs from other layers


def test_target_from_dns_plan_candidate() -> None:
    from pyfix_smtp.dns.options import Family
    from pyfix_smtp.dns.results import Candidate, Site, Source

    cand = Candidate(
        hostname="mx.example.com",
        address="192.0.2.1",
        port=25,
        family=Family.IPV4,
        mx_authentic=True,
        address_authentic=True,
        qname="mx.example.com",
        rname="real.example.net",
    )
    site = Site(
        nexthop="example.com",
        domain="example.com",
        port=25,
        source=Source.MX,
        candidates=(cand,),
        mx_qname="example.com",
        mx_rname="example.com",
        mx_authentic=True,
    )
    target = TlsTarget.from_candidate(site, cand)
    assert target == TlsTarget(
        nexthop="example.com",
        domain="example.com",
        host="mx.example.com",
        port=25,
        host_qname="mx.example.com",
        host_rname="real.example.net",
        address_authentic=True,
        mx=MxFacts("example.com", "example.com", True),
    )
    literal = Site(
        nexthop="[192.0.2.1]", domain="192.0.2.1", port=25, source=Source.HOST, candidates=(cand,)
    )
    assert TlsTarget.from_candidate(literal, cand).mx is None
    unix = Candidate(hostname="localhost", address="/run/lmtp", port=0, family=Family.UNIX)
    usite = Site(
        nexthop="/run/lmtp", domain="/run/lmtp", port=0, source=Source.UNIX, candidates=(unix,)
    )
    target = TlsTarget.from_candidate(usite, unix, myhostname="host.example.com")
    assert target.port is None
    assert target.domain == "host.example.com"


def test_options_from_config() -> None:
    from pyfix_smtp.config import Config

    cfg = Config(
        smtp_tls_security_level="secure",
        smtp_tls_policy_maps="inline:{example.com=encrypt}",
        smtp_tls_mandatory_protocols="!SSLv2, !SSLv3",
        smtp_tls_exclude_ciphers="RC4, aNULL",
        smtp_tls_secure_cert_match="nexthop",
    )
    opts = TlsOptions.from_config(cfg)
    assert opts.smtp_tls_mandatory_protocols == "!SSLv2 !SSLv3"
    assert opts.smtp_tls_exclude_ciphers == "RC4 aNULL"
    target = TlsTarget(nexthop="example.com", domain="example.com", host=MX)
    assert evaluate(target, opts).level is TlsLevel.ENCRYPT
    other = TlsTarget(nexthop="example.org", domain="example.org", host=MX)
    assert evaluate(other, opts).match_names == (MatchName("example.org"),)
    lmtp = TlsOptions.from_config(Config(protocol="lmtp", lmtp_tls_security_level="encrypt"))
    assert lmtp.protocol == "lmtp"
    assert lmtp.global_level is TlsLevel.ENCRYPT


async def test_evaluate_async_answers_the_same_queries() -> None:
    from pyfix_smtp.tls.policy import evaluate_async

    asked: list[Query] = []

    async def resolve(query: Query) -> Answer:
        asked.append(query)
        return Answer(query, Rcode.NOERROR, GOOD, authentic=True)

    target = TlsTarget(
        nexthop="example.com",
        domain="example.com",
        host=MX,
        address_authentic=True,
        mx=MxFacts("example.com", authentic=True),
    )
    policy = await evaluate_async(target, TlsOptions(**dane()), resolve=resolve)  # type: ignore[arg-type]
    assert policy.level is TlsLevel.DANE
    assert asked == [Query(TLSA_NAME, "TLSA")]
