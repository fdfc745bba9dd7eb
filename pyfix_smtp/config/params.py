"""The parameter registry: one row per Postfix parameter pyfix_smtp knows.

This table is the single source of truth for names, types, Postfix 3.11
defaults (global/mail_params.h DEF_* macros, including the
compatibility-level expressions), LMTP twins (smtp/lmtp_params.c) and the
status of each parameter in pyfix_smtp. :class:`~pyfix_smtp.config.Config`
and ``docs/parameters.md`` are built from it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pyfix_smtp.config.values import (
    Bool,
    CompatLevel,
    Enum,
    HostAddress,
    Int,
    Kind,
    List,
    Ports,
    RequireTlsPolicy,
    Str,
    Tables,
    Time,
)
from pyfix_smtp.maps.syntax import COMMA_SPACE

__all__ = ["BY_NAME", "PARAMETERS", "DefaultContext", "Param", "Status"]


class Status(enum.Enum):
    """How far pyfix_smtp honours a parameter."""

    IMPLEMENTED = "implemented"
    ACCEPTED = "accepted, not yet honoured"
    NOT_APPLICABLE = "not applicable to a library"


class DefaultContext:
    """What a computed default may consult (``myhostname``, ``mydomain``)."""

    def __init__(
        self,
        protocol: str,
        explicit: Callable[[str], str | None],
        value: Callable[[str], str | None],
    ) -> None:
        self.protocol = protocol
        #: The expanded value of a name set explicitly, else None.
        self.explicit = explicit
        #: The expanded value of any name (explicit or default), else None.
        self.value = value


@dataclass(frozen=True, slots=True)
class Param:
    """One registry row.

    Attributes:
        name: attribute name on Config: the smtp_* name, or the global name.
        kind: the value type (parser/validator/formatter).
        default: Postfix's default as main.cf text (may use ``$name`` and
            Postfix's ``${...}`` expressions); "" for computed defaults.
        section: the smtp(8) manual section (or "GLOBAL" for extras).
        status: implemented / accepted, not yet honoured / not applicable.
        note: where it is honoured ("layer: what it does"), what is
            missing (accepted), or why it does not apply to a library.
        partly: implemented, but not everything Postfix documents (the
            note says what is missing).
        lmtp: the parameter name that configures the LMTP client, when it
            differs from *name* (``lmtp_lhlo_timeout`` for ``smtp_helo_timeout``).
        lmtp_default: the LMTP twin's default, when it differs.
        alias: the name the smtp(8) manual uses, when it differs from *name*
            (``transport_destination_recipient_limit``).
        computed: a function computing the default (``myhostname``).
        computed_text: how the docs describe a computed default.
        in_manual: False for extras the smtp(8) parameter list omits.
    """

    name: str
    kind: Kind
    default: str
    section: str
    status: Status
    note: str = ""
    partly: bool = False
    lmtp: str | None = None
    lmtp_default: str | None = None
    alias: str | None = None
    computed: Callable[[DefaultContext], str] | None = None
    computed_text: str = ""
    in_manual: bool = True

    def name_for(self, protocol: str) -> str:
        """The Postfix name that sets this parameter for *protocol*."""
        return self.lmtp if protocol == "lmtp" and self.lmtp else self.name

    def default_for(self, protocol: str) -> str:
        """The default text for *protocol*."""
        if protocol == "lmtp" and self.lmtp_default is not None:
            return self.lmtp_default
        return self.default


def _myhostname(ctx: DefaultContext) -> str:
    """global/mail_params.c ``check_myhostname()``: gethostname(), no DNS.

    A name without a dot gets ``.$mydomain`` (an explicit mydomain, else
    ``localdomain``) appended.
    """
    import socket  # deferred: keep socket out of sans-IO importers

    name = socket.gethostname()
    if "." not in name:
        name += "." + (ctx.explicit("mydomain") or "localdomain")
    return name


def _mydomain(ctx: DefaultContext) -> str:
    """global/mail_params.c ``check_mydomainname()``: $myhostname minus its first label."""
    hostname = ctx.value("myhostname") or ""
    _, dot, rest = hostname.partition(".")
    return rest if dot else "localdomain"


def _protocol(ctx: DefaultContext) -> str:
    return ctx.protocol


# Sections of the smtp(8) manual.
_COMPAT = "COMPATIBILITY CONTROLS"
_MIME = "MIME PROCESSING CONTROLS"
_EXT = "EXTERNAL CONTENT INSPECTION CONTROLS"
_SASL = "SASL AUTHENTICATION CONTROLS"
_TLS = "TLS SUPPORT CONTROLS"
_OTLS = "OBSOLETE TLS CONTROLS"
_RES = "RESOURCE AND RATE CONTROLS"
_UTF8 = "SMTPUTF8 CONTROLS"
_TROUBLE = "TROUBLE SHOOTING CONTROLS"
_MISC = "MISCELLANEOUS CONTROLS"
_GLOBAL = "GLOBAL (used by the SMTP client, not in the smtp(8) list)"

IMPL = Status.IMPLEMENTED
ACC = Status.ACCEPTED
NA = Status.NOT_APPLICABLE

_BOOL = Bool()
_STR = Str()
_NONEMPTY = Str(min_length=1)
_LIST = List()
_COLON_LIST = List(separators=COMMA_SPACE + ":")
_TABLES = Tables()
_LEVELS = ("", "none", "may", "encrypt", "dane", "dane-only", "fingerprint", "verify", "secure")
_GRADES = ("export", "low", "medium", "high", "null")
_TLS_LEVEL_3_11 = "${{$compatibility_level} <level {3.11} ? {} : {may}}"
_FPT_DIGEST = "${{$compatibility_level} <level {3.6} ? {md5} : {sha256}}"
_REQTLS_DEFAULT = (
    "inline:{{${domain_to_ascii{$mydomain}}=opportunistic}, "
    "{.${domain_to_ascii{$mydomain}}=opportunistic}, {localhost=opportunistic}}, "
    "cidr:{{0.0.0.0/0 opportunistic}, {::/0 opportunistic}}, enforce"
)
_TLS_EXCL = ":!SEED:!IDEA:!3DES:!RC2:!RC4:!RC5:!kDH:!kECDH:!aDSS:!MD5"


def _t(smtp_name: str) -> str:
    """The LMTP twin that follows the plain smtp_ -> lmtp_ rule."""
    return "lmtp_" + smtp_name.removeprefix("smtp_")


def _p(
    name: str,
    kind: Kind,
    default: str,
    section: str,
    status: Status,
    note: str = "",
    *,
    partly: bool = False,
    twin: bool | str = False,
    lmtp_default: str | None = None,
    alias: str | None = None,
    computed: Callable[[DefaultContext], str] | None = None,
    computed_text: str = "",
    in_manual: bool = True,
) -> Param:
    lmtp = _t(name) if twin is True else (twin or None)
    return Param(
        name=name,
        kind=kind,
        default=default,
        section=section,
        status=status,
        note=note,
        partly=partly,
        lmtp=lmtp,
        lmtp_default=lmtp_default,
        alias=alias,
        computed=computed,
        computed_text=computed_text,
        in_manual=in_manual,
    )


PARAMETERS: tuple[Param, ...] = (
    # COMPATIBILITY CONTROLS
    _p(
        "ignore_mx_lookup_error",
        _BOOL,
        "no",
        _COMPAT,
        IMPL,
        (
            "DNS planner: after an MX lookup error other than 'not found', the domain's own "
            "addresses are used; also for the TLS policy's DANE MX lookup"
        ),
    ),
    _p(
        "smtp_always_send_ehlo",
        _BOOL,
        "yes",
        _COMPAT,
        IMPL,
        (
            "protocol: EHLO even when the greeting does not say ESMTP; SMTP only (LMTP always "
            "sends LHLO)"
        ),
    ),
    _p("smtp_never_send_ehlo", _BOOL, "no", _COMPAT, IMPL, "protocol: HELO only; SMTP only"),
    _p(
        "smtp_defer_if_no_mx_address_found",
        _BOOL,
        "no",
        _COMPAT,
        IMPL,
        "DNS planner: a soft status (4.x.x) instead of a bounce when no MX host has an address",
        twin=True,
    ),
    _p(
        "smtp_line_length_limit",
        Int(),
        "998",
        _COMPAT,
        IMPL,
        "content encoder: longer lines are folded with CRLF and a space; 0 means no limit",
        twin=True,
    ),
    _p(
        "smtp_pix_workaround_delay_time",
        Time(min=1),
        "10s",
        _COMPAT,
        IMPL,
        (
            "delivery: with delay_dotcrlf, the content is written, then a Sleep effect of this "
            "long, then the final '.' (DATA only; BDAT has no '.')"
        ),
        twin=True,
    ),
    _p(
        "smtp_pix_workaround_threshold_time",
        Time(),
        "500s",
        _COMPAT,
        IMPL,
        (
            "delivery: delay_dotcrlf only for a message that arrived at least this long before "
            "the transaction starts (no arrival time: the attempt's start); judged per message, "
            "also on a reused connection"
        ),
        twin=True,
    ),
    _p(
        "smtp_pix_workarounds",
        List(choices=("disable_esmtp", "delay_dotcrlf"), case_sensitive=False),
        "disable_esmtp,delay_dotcrlf",
        _COMPAT,
        IMPL,
        (
            "protocol: disable_esmtp (HELO after a PIX '220 ****' banner); delivery: "
            "delay_dotcrlf pauses smtp_pix_workaround_delay_time before the final '.' for "
            "messages older than smtp_pix_workaround_threshold_time"
        ),
        twin=True,
    ),
    _p(
        "smtp_pix_workaround_maps",
        _TABLES,
        "",
        _COMPAT,
        IMPL,
        (
            "delivery: looked up by server IP address, replaces smtp_pix_workarounds for that "
            "server; delay_dotcrlf as there"
        ),
        twin=True,
    ),
    _p(
        "smtp_quote_rfc821_envelope",
        _BOOL,
        "yes",
        _COMPAT,
        IMPL,
        "protocol: MAIL FROM and RCPT TO addresses quoted as RFC 5321 requires",
        twin=True,
    ),
    _p(
        "smtp_reply_filter",
        Tables(max_tables=1),
        "",
        _COMPAT,
        IMPL,
        "protocol: every reply line goes through the table before it is parsed",
        twin=True,
    ),
    _p(
        "smtp_skip_5xx_greeting",
        _BOOL,
        "yes",
        _COMPAT,
        IMPL,
        "delivery: a 5XX greeting counts as 4XX, so the next server is tried",
        twin=True,
    ),
    _p(
        "smtp_skip_quit_response",
        _BOOL,
        "yes",
        _COMPAT,
        IMPL,
        "protocol: the QUIT reply is not awaited (LMTP default: no)",
        twin=True,
        lmtp_default="no",
    ),
    _p(
        "smtp_skip_4xx_greeting",
        _BOOL,
        "yes",
        _COMPAT,
        NA,
        "obsolete since Postfix 2.1, which always skips a server with a 4XX greeting; ignored",
    ),
    _p(
        "smtp_discard_ehlo_keyword_address_maps",
        _TABLES,
        "",
        _COMPAT,
        IMPL,
        (
            "delivery: looked up by server IP address; a result replaces "
            "smtp_discard_ehlo_keywords for that server"
        ),
        twin="lmtp_discard_lhlo_keyword_address_maps",
    ),
    _p(
        "smtp_discard_ehlo_keywords",
        _LIST,
        "",
        _COMPAT,
        IMPL,
        "protocol: EHLO keywords ignored as if not offered; silent-discard stops the log notes",
        twin="lmtp_discard_lhlo_keywords",
    ),
    _p(
        "smtp_generic_maps",
        _TABLES,
        "",
        _COMPAT,
        IMPL,
        (
            "delivery: MAIL FROM, RCPT TO and the addresses of primary sender/recipient headers "
            "are rewritten (address_rewrite); reports keep the original addresses"
        ),
        twin=True,
    ),
    _p(
        "smtp_cname_overrides_servername",
        _BOOL,
        "no",
        _COMPAT,
        IMPL,
        "DNS planner: a server is named by its CNAME target (deprecated in Postfix 3.11)",
        twin=True,
    ),
    _p(
        "send_cyrus_sasl_authzid",
        _BOOL,
        "no",
        _COMPAT,
        IMPL,
        "SASL: the authorization ID is sent (PLAIN)",
    ),
    _p(
        "smtp_header_checks",
        _TABLES,
        "",
        _COMPAT,
        IMPL,
        (
            "content encoder: header_checks(5) on primary headers (protocol/header_checks.py); "
            "WARN, INFO, REPLACE, PREPEND, STRIP, IGNORE; other actions are logged, not applied"
        ),
        twin=True,
    ),
    _p(
        "smtp_mime_header_checks",
        _TABLES,
        "",
        _COMPAT,
        IMPL,
        "content encoder: header_checks(5) on MIME headers and on headers after a boundary",
        twin=True,
    ),
    _p(
        "smtp_nested_header_checks",
        _TABLES,
        "",
        _COMPAT,
        IMPL,
        "content encoder: header_checks(5) on the headers of attached messages",
        twin=True,
    ),
    _p(
        "smtp_body_checks",
        _TABLES,
        "",
        _COMPAT,
        IMPL,
        "content encoder: body_checks(5) on body lines, in pieces of line_length_limit octets",
        twin=True,
    ),
    _p(
        "tcp_windowsize",
        Int(),
        "0",
        _COMPAT,
        IMPL,
        "drivers: SO_SNDBUF and SO_RCVBUF of each TCP socket, set before connect(); 0 keeps the "
        "system's sizes",
    ),
    _p(
        "smtp_dns_resolver_options",
        List(choices=("res_defnames", "res_dnsrch")),
        "",
        _COMPAT,
        IMPL,
        (
            "DNS planner and TLS policy: host address lookups use the resolver's search list; "
            "res_defnames and res_dnsrch are not told apart (both mean dnspython's search list)"
        ),
        twin=True,
        partly=True,
    ),
    _p(
        "smtp_per_record_deadline",
        _BOOL,
        "no",
        _COMPAT,
        IMPL,
        "Config: the default of smtp_per_request_deadline; not read at run time (Postfix 3.11)",
        twin=True,
    ),
    _p(
        "smtp_send_dummy_mail_auth",
        _BOOL,
        "no",
        _COMPAT,
        IMPL,
        "protocol: AUTH=<> on MAIL FROM when SASL is enabled and the server offers AUTH",
        twin=True,
    ),
    _p(
        "smtp_dns_support_level",
        Enum(("", "disabled", "enabled", "dnssec")),
        "",
        _COMPAT,
        IMPL,
        (
            "DNS planner and TLS policy: disabled (native lookups only), enabled, dnssec "
            "(validated answers for DANE); empty follows disable_dns_lookups"
        ),
        twin=True,
    ),
    _p(
        "smtp_delivery_status_filter",
        _TABLES,
        "$default_delivery_status_filter",
        _COMPAT,
        IMPL,
        (
            "delivery: each outcome's 'x.y.z text' is looked up before it is recorded; the result "
            "replaces status and text (4.x.x defers a bounce, 5.x.x bounces a deferral, "
            "soft_bounce after it); a result of the wrong kind is ignored with a warning"
        ),
        twin=True,
    ),
    _p(
        "smtp_dns_reply_filter",
        _TABLES,
        "",
        _COMPAT,
        IMPL,
        "DNS planner: resource records the table matches are dropped",
        twin=True,
    ),
    _p(
        "smtp_balance_inet_protocols",
        _BOOL,
        "yes",
        _COMPAT,
        IMPL,
        "DNS planner: both address families stay within smtp_mx_address_limit",
        twin=True,
    ),
    _p(
        "info_log_address_format",
        Enum(("external", "internal")),
        "external",
        _COMPAT,
        IMPL,
        (
            "report: to=<> and orig_to=<> in external (quoted, quote_822_local) or internal form; "
            "outcomes keep the internal form"
        ),
    ),
    _p(
        "dnssec_probe",
        _STR,
        "ns:.",
        _COMPAT,
        IMPL,
        (
            "client: one probe per Client when no DNSSEC-validated answer was seen; warnings on "
            "the pyfix_smtp.dns logger"
        ),
    ),
    _p(
        "known_tcp_ports",
        Ports(),
        "lmtp=24, smtp=25, smtps=submissions=465, submission=587",
        _COMPAT,
        IMPL,
        "destinations: service names in host:service, smtp_tcp_port and [host]:service",
    ),
    _p(
        "smtp_per_request_deadline",
        _BOOL,
        "${smtp_per_record_deadline?{$smtp_per_record_deadline}:{no}}",
        _COMPAT,
        IMPL,
        "delivery: one deadline per request and reply instead of per read or write",
        twin=True,
        lmtp_default="${lmtp_per_record_deadline?{$lmtp_per_record_deadline}:{no}}",
    ),
    _p(
        "smtp_min_data_rate",
        Int(min=1),
        "500",
        _COMPAT,
        IMPL,
        "delivery: with smtp_per_request_deadline, content sent extends the deadline",
        twin=True,
    ),
    _p(
        "header_from_format",
        Enum(("standard", "obsolete")),
        "standard",
        _COMPAT,
        NA,
        (
            "formats the From: header of the notices Postfix mails to the postmaster; pyfix_smtp "
            "sends none"
        ),
    ),
    _p(
        "use_srv_lookup",
        _LIST,
        "",
        _COMPAT,
        IMPL,
        "destinations and DNS planner: SRV lookups for the listed services",
    ),
    _p(
        "ignore_srv_lookup_error",
        _BOOL,
        "no",
        _COMPAT,
        IMPL,
        "DNS planner: an SRV lookup error falls back to MX and host lookups",
    ),
    _p(
        "allow_srv_lookup_fallback",
        _BOOL,
        "no",
        _COMPAT,
        IMPL,
        "DNS planner: SRV not found or failed falls back to MX and host lookups",
    ),
    # MIME PROCESSING CONTROLS
    _p(
        "disable_mime_output_conversion",
        _BOOL,
        "no",
        _MIME,
        IMPL,
        "content encoder and protocol: no 8bit to 7bit conversion for servers without 8BITMIME",
    ),
    _p(
        "mime_boundary_length_limit",
        Int(min=1),
        "2048",
        _MIME,
        IMPL,
        "content encoder: MIME boundary length kept while converting",
    ),
    _p(
        "mime_nesting_limit",
        Int(min=1),
        "100",
        _MIME,
        IMPL,
        "content encoder: MIME nesting depth while converting",
    ),
    # EXTERNAL CONTENT INSPECTION CONTROLS
    _p(
        "smtp_send_xforward_command",
        _BOOL,
        "no",
        _EXT,
        IMPL,
        "protocol: XFORWARD with the Envelope's attributes when the server offers it",
        twin=True,
    ),
    # SASL AUTHENTICATION CONTROLS
    _p(
        "smtp_sasl_auth_enable",
        _BOOL,
        "no",
        _SASL,
        IMPL,
        "SASL: AUTH when the server offers it and credentials exist",
        twin=True,
    ),
    _p(
        "smtp_sasl_password_maps",
        _TABLES,
        "",
        _SASL,
        IMPL,
        "SASL: looked up by sender (when sender-dependent), nexthop and host",
        twin=True,
    ),
    _p(
        "smtp_sasl_security_options",
        _LIST,
        "noplaintext, noanonymous",
        _SASL,
        IMPL,
        "SASL: mechanism selection on plaintext connections",
        twin=True,
    ),
    _p(
        "smtp_sasl_mechanism_filter",
        _LIST,
        "",
        _SASL,
        IMPL,
        "SASL: a match list of names, tables and /file/name",
        twin=True,
    ),
    _p(
        "smtp_sender_dependent_authentication",
        _BOOL,
        "no",
        _SASL,
        IMPL,
        "SASL: password lookup by sender first; sender in connection-cache keys",
        twin=True,
    ),
    _p(
        "smtp_sasl_path",
        _STR,
        "",
        _SASL,
        NA,
        "configures Cyrus/Dovecot SASL; pyfix_smtp has its own SASL client",
        twin=True,
    ),
    _p(
        "smtp_sasl_type",
        _NONEMPTY,
        "cyrus",
        _SASL,
        NA,
        "selects a Postfix SASL plug-in; pyfix_smtp has its own SASL client",
        twin=True,
    ),
    _p(
        "smtp_sasl_auth_cache_name",
        _STR,
        "",
        _SASL,
        IMPL,
        (
            "SASL: the authentication failure cache; sqlite:/path or memory: in place of Postfix's "
            "btree:/lmdb: tables"
        ),
        twin=True,
        partly=True,
    ),
    _p(
        "smtp_sasl_auth_cache_time",
        Time(unit="d"),
        "90d",
        _SASL,
        IMPL,
        "SASL: lifetime of auth failure cache entries",
        twin=True,
    ),
    _p(
        "smtp_sasl_auth_soft_bounce",
        _BOOL,
        "yes",
        _SASL,
        IMPL,
        "SASL: authentication failures defer instead of bounce",
        twin=True,
    ),
    _p(
        "smtp_sasl_password_result_delimiter",
        Str(min_length=1, max_length=1),
        ":",
        _SASL,
        IMPL,
        "SASL: separates username and password in the table result",
        twin=True,
    ),
    # TLS SUPPORT CONTROLS
    _p(
        "smtp_tls_security_level",
        Enum(_LEVELS),
        _TLS_LEVEL_3_11,
        _TLS,
        IMPL,
        (
            "TLS policy: every level from none to secure; 'may' at compatibility_level >= 3.11, "
            "else empty (legacy smtp_use_tls)"
        ),
        twin=True,
        lmtp_default="",
    ),
    _p(
        "smtp_sasl_tls_security_options",
        _LIST,
        "$smtp_sasl_security_options",
        _TLS,
        IMPL,
        "SASL: mechanism selection over TLS",
        twin=True,
        lmtp_default="$lmtp_sasl_security_options",
    ),
    _p(
        "smtp_starttls_timeout",
        Time(min=1),
        "300s",
        _TLS,
        IMPL,
        "drivers: the STARTTLS reply and the TLS handshake",
        twin=True,
    ),
    _p(
        "smtp_tls_cert_file",
        _STR,
        "",
        _TLS,
        IMPL,
        "TLS context: client certificate (with smtp_tls_key_file)",
        twin=True,
    ),
    _p(
        "smtp_tls_mandatory_ciphers",
        Enum(_GRADES),
        "medium",
        _TLS,
        IMPL,
        "TLS policy: cipher grade at encrypt and above",
        twin=True,
    ),
    _p(
        "smtp_tls_exclude_ciphers",
        _COLON_LIST,
        "",
        _TLS,
        IMPL,
        "TLS policy: ciphers excluded at every TLS level",
        twin=True,
    ),
    _p(
        "smtp_tls_mandatory_exclude_ciphers",
        _COLON_LIST,
        "",
        _TLS,
        IMPL,
        "TLS policy: ciphers excluded at encrypt and above",
        twin=True,
    ),
    _p(
        "smtp_tls_dcert_file",
        _STR,
        "",
        _TLS,
        IMPL,
        (
            "TLS: the DSA client certificate, loaded after the RSA pair and before the ECDSA pair; "
            "smtp_tls_chain_files overrides it"
        ),
        twin=True,
    ),
    _p(
        "smtp_tls_dkey_file",
        _STR,
        "$smtp_tls_dcert_file",
        _TLS,
        IMPL,
        "TLS: the key of smtp_tls_dcert_file",
        twin=True,
        lmtp_default="$lmtp_tls_dcert_file",
    ),
    _p(
        "smtp_tls_key_file",
        _STR,
        "$smtp_tls_cert_file",
        _TLS,
        IMPL,
        "TLS context: the client certificate's private key",
        twin=True,
        lmtp_default="$lmtp_tls_cert_file",
    ),
    _p(
        "smtp_tls_loglevel",
        _STR,
        "0",
        _TLS,
        IMPL,
        (
            "TLS: as Postfix, level 0 logs only trust problems at must-match levels, 1 adds the "
            "'TLS connection established' summary, 2 the set-up and certificate lines; no OpenSSL "
            "packet dumps at 3 and 4"
        ),
        twin=True,
    ),
    _p(
        "smtp_tls_note_starttls_offer",
        _BOOL,
        "no",
        _TLS,
        IMPL,
        "delivery: 'Host offered STARTTLS' note when the level is none",
        twin=True,
    ),
    _p(
        "smtp_tls_policy_maps",
        _TABLES,
        "",
        _TLS,
        IMPL,
        "TLS policy: per-destination policy, every Postfix attribute",
        twin=True,
    ),
    _p(
        "smtp_tls_mandatory_protocols",
        _COLON_LIST,
        ">=TLSv1",
        _TLS,
        IMPL,
        (
            "TLS policy and context: protocol range at encrypt and above (minimum and maximum "
            "version only)"
        ),
        twin=True,
    ),
    _p(
        "smtp_tls_scert_verifydepth",
        Int(),
        "9",
        _TLS,
        IMPL,
        (
            "TLS: chain depth for DANE, trust anchors and the Trusted label; OpenSSL's own check "
            "at verify and secure keeps its default depth (Python's ssl cannot set one)"
        ),
        twin=True,
        partly=True,
    ),
    _p(
        "smtp_tls_secure_cert_match",
        _COLON_LIST,
        "nexthop, dot-nexthop",
        _TLS,
        IMPL,
        "TLS policy: names the certificate must match at secure",
        twin=True,
        lmtp_default="nexthop",
    ),
    _p(
        "smtp_tls_session_cache_database",
        _STR,
        "",
        _TLS,
        IMPL,
        "TLS: non-empty resumes TLS sessions (in memory per client; the name is not used)",
        twin=True,
    ),
    _p(
        "smtp_tls_session_cache_timeout",
        Time(max=8640000),
        "3600s",
        _TLS,
        IMPL,
        "TLS: session lifetime in the client's session cache (at least 120s; 0: no cache)",
        twin=True,
    ),
    _p(
        "smtp_tls_verify_cert_match",
        _COLON_LIST,
        "hostname",
        _TLS,
        IMPL,
        "TLS policy: names the certificate must match at verify",
        twin=True,
    ),
    _p(
        "tls_daemon_random_bytes",
        Int(min=1),
        "32",
        _TLS,
        NA,
        "seeds tlsmgr(8)'s PRNG; Python's ssl module seeds OpenSSL itself",
    ),
    _p(
        "tls_high_cipherlist",
        _NONEMPTY,
        "aNULL:-aNULL:HIGH" + _TLS_EXCL + ":@STRENGTH",
        _TLS,
        IMPL,
        "TLS policy: the OpenSSL cipher list of grade high",
    ),
    _p(
        "tls_medium_cipherlist",
        _NONEMPTY,
        "aNULL:-aNULL:HIGH:MEDIUM" + _TLS_EXCL + ":+RC4:@STRENGTH",
        _TLS,
        IMPL,
        (
            "TLS policy: the OpenSSL cipher list of grade medium (and of low and export, which "
            "mean medium since Postfix 3.8)"
        ),
    ),
    _p(
        "tls_null_cipherlist",
        _NONEMPTY,
        "eNULL:!kDH:!kECDH:!aDSS:!MD5:!aNULL",
        _TLS,
        IMPL,
        (
            "TLS policy: the OpenSSL cipher list of grade null; the manual shows eNULL:!aNULL, "
            "mail_params.h adds the exclusions"
        ),
    ),
    _p(
        "tls_low_cipherlist", _STR, "", _TLS, NA, "ignored since Postfix 3.8 ('low' means 'medium')"
    ),
    _p(
        "tls_export_cipherlist",
        _STR,
        "",
        _TLS,
        NA,
        "ignored since Postfix 3.8 ('export' means 'medium')",
    ),
    _p(
        "smtp_sasl_tls_verified_security_options",
        _LIST,
        "$smtp_sasl_tls_security_options",
        _TLS,
        IMPL,
        "SASL: mechanism selection over TLS with a matched certificate",
        twin=True,
        lmtp_default="$lmtp_sasl_tls_security_options",
    ),
    _p(
        "smtp_tls_fingerprint_cert_match",
        _LIST,
        "",
        _TLS,
        IMPL,
        "TLS policy: fingerprints at level fingerprint",
        twin=True,
    ),
    _p(
        "smtp_tls_fingerprint_digest",
        _NONEMPTY,
        _FPT_DIGEST,
        _TLS,
        IMPL,
        "TLS policy: digest of the fingerprints; sha256 at compatibility_level >= 3.6, else md5",
        twin=True,
    ),
    _p(
        "smtp_tls_protocols",
        _COLON_LIST,
        ">=TLSv1",
        _TLS,
        IMPL,
        "TLS policy and context: protocol range at may (minimum and maximum version only)",
        twin=True,
    ),
    _p(
        "smtp_tls_ciphers",
        Enum(_GRADES),
        "medium",
        _TLS,
        IMPL,
        "TLS policy: cipher grade at may",
        twin=True,
    ),
    _p(
        "smtp_tls_eccert_file",
        _STR,
        "",
        _TLS,
        IMPL,
        "TLS context: ECDSA client certificate",
        twin=True,
    ),
    _p(
        "smtp_tls_eckey_file",
        _STR,
        "$smtp_tls_eccert_file",
        _TLS,
        IMPL,
        "TLS context: the ECDSA certificate's private key",
        twin=True,
        lmtp_default="$lmtp_tls_eccert_file",
    ),
    _p(
        "smtp_tls_block_early_mail_reply",
        _BOOL,
        "no",
        _TLS,
        IMPL,
        (
            "protocol: after STARTTLS, a reply that arrives before its command was sent ends the "
            "session (CVE-2009-3555)"
        ),
        twin=True,
    ),
    _p(
        "tls_disable_workarounds",
        _LIST,
        "",
        _TLS,
        IMPL,
        (
            "TLS: clears the named (or 0x...) OpenSSL work-around bits of SSL_OP_ALL; unknown "
            "names are a ConfigError (Postfix warns)"
        ),
    ),
    _p(
        "tls_dane_digest_agility",
        _STR,
        "on",
        _TLS,
        NA,
        "removed in Postfix 3.x (2019): digest agility is always on; ignored",
    ),
    _p(
        "tls_dane_trust_anchor_digest_enable",
        _BOOL,
        "yes",
        _TLS,
        NA,
        "removed in Postfix 3.x (2019): trust-anchor digests are always supported; ignored",
    ),
    _p(
        "smtp_tls_trust_anchor_file",
        _LIST,
        "",
        _TLS,
        IMPL,
        "TLS policy: trust anchors that replace the CA store at verify and secure",
        twin=True,
    ),
    _p(
        "smtp_tls_force_insecure_host_tlsa_lookup",
        _BOOL,
        "no",
        _TLS,
        IMPL,
        "TLS policy: TLSA lookups for hosts found through unvalidated MX records",
        twin=True,
    ),
    _p("tlsmgr_service_name", _NONEMPTY, "tlsmgr", _TLS, NA, "names Postfix's tlsmgr(8) service"),
    _p(
        "smtp_tls_wrappermode",
        _BOOL,
        "no",
        _TLS,
        IMPL,
        "protocol and drivers: TLS from the first byte (port 465)",
        twin=True,
    ),
    _p(
        "smtp_tls_dane_insecure_mx_policy",
        Enum(("may", "encrypt", "dane")),
        "dane",
        _TLS,
        IMPL,
        (
            "DNS planner and TLS policy: the level for an MX RRset that is not DNSSEC-validated; "
            "SMTP only (Postfix has no LMTP twin)"
        ),
    ),
    _p(
        "tls_eecdh_auto_curves",
        _LIST,
        "X25519 X448 prime256v1 secp384r1 secp521r1",
        _TLS,
        ACC,
        (
            "not read: OpenSSL's default groups are used; Python 3.11's ssl can only pick one "
            "curve (set_ecdh_curve)"
        ),
    ),
    _p(
        "smtp_tls_connection_reuse",
        _BOOL,
        "no",
        _TLS,
        IMPL,
        (
            "delivery: connections with TLS are cached only when yes (the connection itself is "
            "kept; there is no tlsproxy(8))"
        ),
        twin=True,
    ),
    _p(
        "smtp_tls_chain_files",
        _LIST,
        "",
        _TLS,
        IMPL,
        "TLS context: client keys and certificate chains, in place of the *_cert_file pairs",
        twin=True,
    ),
    _p(
        "smtp_tls_servername",
        _STR,
        "",
        _TLS,
        IMPL,
        "TLS policy: the SNI name (hostname, a fixed name, or none)",
        twin=True,
    ),
    _p(
        "tls_fast_shutdown_enable",
        _BOOL,
        "yes",
        _TLS,
        ACC,
        (
            "not read: the drivers close TLS connections without waiting for the server's "
            "close_notify (as with yes); no is not honoured"
        ),
    ),
    _p(
        "tls_ffdhe_auto_groups",
        _LIST,
        "ffdhe2048 ffdhe3072",
        _TLS,
        ACC,
        "not read: OpenSSL's default groups are used; Python 3.11's ssl cannot set FFDHE groups",
    ),
    _p(
        "tls_config_file",
        _STR,
        "default",
        _TLS,
        NA,
        "selects an OpenSSL configuration file; Python's ssl uses OpenSSL's own default",
    ),
    _p("tls_config_name", _STR, "", _TLS, NA, "see tls_config_file"),
    _p(
        "smtp_tls_enable_rpk",
        _BOOL,
        "no",
        _TLS,
        ACC,
        (
            "parsed into the policy (TlsPolicy.enable_rpk), but Python's ssl cannot ask for an RFC "
            "7250 raw public key"
        ),
        twin=True,
    ),
    _p(
        "smtp_tlsrpt_enable",
        _BOOL,
        "no",
        _TLS,
        IMPL,
        (
            "TLS: RFC 8460 results in DeliveryReport.tlsrpt and sent to "
            "smtp_tlsrpt_socket_name (SMTP only, as Postfix)"
        ),
        twin=True,
    ),
    _p(
        "smtp_tlsrpt_socket_name",
        _STR,
        "",
        _TLS,
        IMPL,
        "TLS: the tlsrpt-collectd datagram socket; empty: results only in the report",
        twin=True,
    ),
    _p(
        "smtp_tlsrpt_skip_reused_handshakes",
        _BOOL,
        "no",
        _TLS,
        IMPL,
        "TLS: resumed TLS sessions are not reported",
        twin=True,
    ),
    _p(
        "tls_required_enable",
        _BOOL,
        "yes",
        _TLS,
        IMPL,
        "TLS policy: 'TLS-Required: no' (DeliveryRequest.tls_required_no) lowers TLS requirements",
    ),
    _p(
        "smtp_tls_enforce_sts_mx_patterns",
        _BOOL,
        "yes",
        _TLS,
        IMPL,
        "TLS policy: an MTA-STS policy's mx patterns must match the certificate",
        twin=True,
    ),
    _p(
        "requiretls_enable",
        _BOOL,
        "yes",
        _TLS,
        IMPL,
        "delivery: REQUIRETLS (RFC 8689) requested by the sender is enforced",
    ),
    _p(
        "smtp_requiretls_policy",
        RequireTlsPolicy(),
        _REQTLS_DEFAULT,
        _TLS,
        IMPL,
        "delivery: the REQUIRETLS action per nexthop domain",
        twin=True,
        lmtp_default="opportunistic",
    ),
    _p(
        "smtp_log_tls_feature_status",
        _BOOL,
        "yes",
        _TLS,
        IMPL,
        (
            "report: the tls= field between delays= and dsn= (Postfix 3.10+ format) and "
            "RecipientOutcome.tls; TLS settings we check at policy time show the level undecided"
        ),
        twin=True,
    ),
    # OBSOLETE TLS CONTROLS
    _p(
        "smtp_use_tls",
        _BOOL,
        "no",
        _OTLS,
        IMPL,
        "TLS policy: level may when smtp_tls_security_level is empty",
        twin=True,
    ),
    _p(
        "smtp_enforce_tls",
        _BOOL,
        "no",
        _OTLS,
        IMPL,
        "TLS policy: level encrypt when smtp_tls_security_level is empty",
        twin=True,
    ),
    _p(
        "smtp_tls_enforce_peername",
        _BOOL,
        "yes",
        _OTLS,
        IMPL,
        "TLS policy: with smtp_enforce_tls, level verify when smtp_tls_security_level is empty",
        twin=True,
    ),
    _p(
        "smtp_tls_per_site",
        _TABLES,
        "",
        _OTLS,
        IMPL,
        "TLS policy: per-site levels, used when smtp_tls_policy_maps is empty",
        twin=True,
    ),
    _p("smtp_tls_cipherlist", _STR, "", _OTLS, NA, "obsolete Postfix < 2.3 parameter; ignored"),
    # RESOURCE AND RATE CONTROLS
    _p(
        "smtp_connect_timeout",
        Time(),
        "30s",
        _RES,
        IMPL,
        "drivers: TCP connect; 0 means no limit",
        twin=True,
        lmtp_default="0s",
    ),
    _p(
        "smtp_helo_timeout",
        Time(min=1),
        "300s",
        _RES,
        IMPL,
        "drivers: the greeting and the HELO/EHLO/LHLO reply",
        twin="lmtp_lhlo_timeout",
    ),
    _p(
        "smtp_xforward_timeout",
        Time(min=1),
        "300s",
        _RES,
        IMPL,
        "drivers: the XFORWARD reply",
        twin=True,
    ),
    _p(
        "smtp_mail_timeout",
        Time(min=1),
        "300s",
        _RES,
        IMPL,
        "drivers: the MAIL FROM reply",
        twin=True,
    ),
    _p(
        "smtp_rcpt_timeout",
        Time(min=1),
        "300s",
        _RES,
        IMPL,
        "drivers: the RCPT TO reply",
        twin=True,
    ),
    _p(
        "smtp_data_init_timeout",
        Time(min=1),
        "120s",
        _RES,
        IMPL,
        "drivers: the DATA reply",
        twin=True,
    ),
    _p(
        "smtp_data_xfer_timeout",
        Time(min=1),
        "180s",
        _RES,
        IMPL,
        "drivers: each write of message content",
        twin=True,
    ),
    _p(
        "smtp_data_done_timeout",
        Time(min=1),
        "600s",
        _RES,
        IMPL,
        "drivers: the reply to the final '.'",
        twin=True,
    ),
    _p("smtp_quit_timeout", Time(min=1), "300s", _RES, IMPL, "drivers: the QUIT reply", twin=True),
    _p(
        "smtp_mx_address_limit",
        Int(),
        "5",
        _RES,
        IMPL,
        "DNS planner and delivery: addresses tried per site; 0 means no limit",
        twin=True,
    ),
    _p(
        "smtp_mx_session_limit",
        Int(),
        "2",
        _RES,
        IMPL,
        "delivery: sessions per site; 0 means no limit",
        twin=True,
    ),
    _p(
        "smtp_rset_timeout",
        Time(min=1),
        "20s",
        _RES,
        IMPL,
        "drivers: the RSET reply (connection-cache probe)",
        twin=True,
    ),
    _p(
        "lmtp_cache_connection",
        _BOOL,
        "yes",
        _RES,
        NA,
        "obsolete Postfix < 2.3 LMTP parameter; ignored",
    ),
    _p(
        "smtp_connection_cache_destinations",
        _LIST,
        "",
        _RES,
        IMPL,
        (
            "delivery: a Postfix string_list (names, type:table, /file/name, '!') matched "
            "against the first nexthop's domain, case-insensitively"
        ),
        twin=True,
    ),
    _p(
        "smtp_connection_cache_on_demand",
        _BOOL,
        "yes",
        _RES,
        IMPL,
        (
            "delivery: with no qmgr(8) backlog signal, on demand means whenever the driver has a "
            "connection cache"
        ),
        twin=True,
        partly=True,
    ),
    _p(
        "smtp_connection_reuse_time_limit",
        Time(min=1),
        "300s",
        _RES,
        IMPL,
        "connection cache: a connection is reused only this long after it was opened",
        twin=True,
    ),
    _p(
        "smtp_connection_cache_time_limit",
        Time(min=1),
        "2s",
        _RES,
        IMPL,
        "connection cache: how long an idle connection is kept",
        twin=True,
    ),
    _p(
        "connection_cache_protocol_timeout",
        Time(min=1),
        "5s",
        _RES,
        NA,
        "times out requests to Postfix's scache(8); pyfix_smtp's cache is in-process",
    ),
    _p(
        "smtp_connection_reuse_count_limit",
        Int(),
        "0",
        _RES,
        IMPL,
        "connection cache: uses per connection; 0 means no limit",
        twin=True,
    ),
    _p(
        "smtp_destination_concurrency_limit",
        Int(),
        "$default_destination_concurrency_limit",
        _RES,
        NA,
        "a qmgr(8) setting: how many deliveries run in parallel is the caller's choice",
        twin=True,
        alias="transport_destination_concurrency_limit",
    ),
    _p(
        "smtp_destination_recipient_limit",
        Int(),
        "$default_destination_recipient_limit",
        _RES,
        NA,
        "a qmgr(8) setting: the caller decides how many recipients go into one delivery",
        twin=True,
        alias="transport_destination_recipient_limit",
    ),
    # SMTPUTF8 CONTROLS
    _p(
        "smtputf8_enable",
        _BOOL,
        "${{$compatibility_level} <level {1} ? {no} : {yes}}",
        _UTF8,
        IMPL,
        (
            "protocol: UTF-8 kept in reply texts; with no, Postfix looks a U-label nexthop up in "
            "smtp_tls_policy_maps without parent domains, pyfix_smtp still tries them"
        ),
        partly=True,
    ),
    _p(
        "smtputf8_autodetect_classes",
        _LIST,
        "sendmail, verify",
        _UTF8,
        NA,
        "a cleanup(8) setting per mail source; the caller says whether a message needs SMTPUTF8",
    ),
    _p(
        "enable_idna2003_compatibility",
        _BOOL,
        "no",
        _UTF8,
        ACC,
        "not read: domain names always get UTS 46 non-transitional (IDNA2008) processing",
    ),
    # TROUBLE SHOOTING CONTROLS
    _p(
        "debug_peer_level",
        Int(min=1),
        "2",
        _TROUBLE,
        NA,
        (
            "Postfix's verbosity of its own internals for debug_peer_list peers; here any "
            "matching peer's conversation is logged at DEBUG (validated: at least 1)"
        ),
    ),
    _p(
        "debug_peer_list",
        _LIST,
        "",
        _TROUBLE,
        IMPL,
        (
            "delivery: a matching nexthop, host or address (names with parent domains, addresses, "
            "networks, tables) logs the conversation at DEBUG on pyfix_smtp.delivery; SASL data "
            "hidden"
        ),
    ),
    _p(
        "error_notice_recipient",
        _NONEMPTY,
        "postmaster",
        _TROUBLE,
        NA,
        "Postfix mails problem reports to the postmaster; the DeliveryReport carries them",
    ),
    _p("internal_mail_filter_classes", _LIST, "", _TROUBLE, NA, "a cleanup(8) setting"),
    _p(
        "notify_classes",
        _LIST,
        "resource, software",
        _TROUBLE,
        NA,
        "selects postmaster notices; the DeliveryReport carries the transcript",
    ),
    # MISCELLANEOUS CONTROLS
    _p(
        "best_mx_transport",
        _STR,
        "",
        _MISC,
        IMPL,
        (
            "delivery: when mail loops back to this host, the recipients are deferred with the "
            "transport named in the reason; a library cannot pass them on"
        ),
        partly=True,
    ),
    _p(
        "config_directory",
        _STR,
        "/etc/postfix",
        _MISC,
        NA,
        "pyfix_smtp reads the main.cf text it is given",
    ),
    _p("daemon_timeout", Time(min=1), "18000s", _MISC, NA, "a Postfix daemon watchdog"),
    _p(
        "delay_logging_resolution_limit",
        Int(min=0, max=6),
        "2",
        _MISC,
        IMPL,
        "report: digits after the point in delay= and delays=",
    ),
    _p(
        "disable_dns_lookups",
        _BOOL,
        "no",
        _MISC,
        IMPL,
        "DNS planner and destinations: no DNS when smtp_dns_support_level is empty (deprecated)",
    ),
    _p(
        "inet_interfaces",
        _LIST,
        "all",
        _MISC,
        IMPL,
        (
            "DNS planner: our own addresses, for best-MX and mail-loop checks (SMTP); delivery: "
            "SMTP and LMTP TCP connections bind to its only non-loopback address of the "
            "server's family when smtp_bind_address(6) is empty (a failed bind warns)"
        ),
    ),
    _p(
        "inet_protocols",
        List(choices=("all", "ipv4", "ipv6"), min_items=1),
        "all",
        _MISC,
        IMPL,
        "DNS planner: the address families looked up and connected to",
    ),
    _p("ipc_timeout", Time(min=1), "3600s", _MISC, NA, "Postfix internal IPC"),
    _p(
        "lmtp_assume_final",
        _BOOL,
        "no",
        _MISC,
        IMPL,
        (
            "delivery: an accepted LMTP recipient without DSN counts as delivered, not relayed "
            "(LMTP only)"
        ),
    ),
    _p("max_idle", Time(min=1), "100s", _MISC, NA, "Postfix daemon process lifetime"),
    _p("max_use", Int(min=1), "100", _MISC, NA, "Postfix daemon process lifetime"),
    _p(
        "process_id",
        _STR,
        "",
        _MISC,
        NA,
        "read-only in Postfix (the daemon's PID)",
        computed_text="read-only",
    ),
    _p(
        "process_name",
        _STR,
        "",
        _MISC,
        NA,
        "read-only in Postfix; here the protocol name",
        computed=_protocol,
        computed_text="read-only (the protocol: smtp or lmtp)",
    ),
    _p(
        "proxy_interfaces",
        _LIST,
        "",
        _MISC,
        IMPL,
        "DNS planner: more of our own addresses, for best-MX and mail-loop checks",
    ),
    _p(
        "smtp_address_preference",
        Enum(("ipv6", "ipv4", "any")),
        "any",
        _MISC,
        IMPL,
        "DNS planner: the family tried first at equal MX preference",
        twin=True,
    ),
    _p(
        "smtp_bind_address",
        HostAddress(4),
        "",
        _MISC,
        IMPL,
        "drivers: local IPv4 address for connections",
        twin=True,
    ),
    _p(
        "smtp_bind_address6",
        HostAddress(6),
        "",
        _MISC,
        IMPL,
        "drivers: local IPv6 address for connections",
        twin=True,
    ),
    _p(
        "smtp_helo_name",
        _NONEMPTY,
        "$myhostname",
        _MISC,
        IMPL,
        "protocol: the HELO/EHLO/LHLO name",
        twin="lmtp_lhlo_name",
    ),
    _p(
        "smtp_host_lookup",
        List(choices=("dns", "native"), min_items=1),
        "dns",
        _MISC,
        IMPL,
        "DNS planner: DNS, native (getaddrinfo) or both for host addresses",
        twin=True,
    ),
    _p(
        "smtp_randomize_addresses",
        _BOOL,
        "yes",
        _MISC,
        IMPL,
        "DNS planner: equal-preference addresses are shuffled",
        twin=True,
    ),
    _p("syslog_facility", _NONEMPTY, "mail", _MISC, NA, "pyfix_smtp logs through Python's logging"),
    _p(
        "syslog_name",
        _NONEMPTY,
        "${multi_instance_name?{$multi_instance_name}:{postfix}}",
        _MISC,
        NA,
        "pyfix_smtp logs through Python's logging",
    ),
    _p(
        "fallback_relay",
        _LIST,
        "",
        _MISC,
        IMPL,
        "Config: the default of smtp_fallback_relay (obsolete)",
    ),
    _p(
        "smtp_fallback_relay",
        _LIST,
        "$fallback_relay",
        _MISC,
        IMPL,
        "delivery: sites tried after the nexthop (not for LMTP unix: destinations)",
        twin=True,
        lmtp_default="",
    ),
    _p(
        "smtp_address_verify_target",
        Enum(("rcpt", "data")),
        "rcpt",
        _MISC,
        IMPL,
        "delivery: where an address probe stops (rcpt or data)",
        twin=True,
    ),
    _p(
        "smtp_tcp_port",
        _STR,
        "smtp",
        _MISC,
        IMPL,
        "destinations: the default port",
        twin=True,
        lmtp_default="24",
    ),
    _p(
        "service_name",
        _STR,
        "",
        _MISC,
        NA,
        "read-only in Postfix; here the protocol name, part of connection-cache keys",
        computed=_protocol,
        computed_text="read-only (the protocol: smtp or lmtp)",
    ),
    _p(
        "smtp_bind_address_enforce",
        _BOOL,
        "no",
        _MISC,
        IMPL,
        "drivers: a failed bind defers (4.4.0) instead of being ignored",
        twin=True,
    ),
    # Extras: documented in smtp(8) but missing from the parameter list we were given.
    _p(
        "smtp_tls_CAfile",
        _STR,
        "",
        _TLS,
        IMPL,
        (
            "TLS context: the CA store at verify and secure and for the Trusted label; with "
            "smtp_tls_CApath empty too, the system store (see Differences from Postfix)"
        ),
        twin=True,
        in_manual=False,
    ),
    _p(
        "smtp_tls_CApath",
        _STR,
        "",
        _TLS,
        IMPL,
        "TLS context: a directory of CA certificates, as smtp_tls_CAfile",
        twin=True,
        in_manual=False,
    ),
    # Beyond Postfix (which needs an external policy daemon for MTA-STS).
    _p(
        "smtp_mta_sts_enable",
        _BOOL,
        "no",
        _TLS,
        IMPL,
        "delivery and TLS policy: native MTA-STS (RFC 8461), beyond Postfix",
        twin=True,
        in_manual=False,
    ),
    # Extras: global parameters the SMTP client reads or its defaults refer to.
    _p(
        "compatibility_level",
        CompatLevel(),
        "3.11",
        _GLOBAL,
        IMPL,
        "selects version-dependent defaults; Postfix's built-in value is 0, a fresh "
        "Postfix 3.11 main.cf sets 3.11",
        in_manual=False,
    ),
    _p(
        "myhostname",
        _NONEMPTY,
        "",
        _GLOBAL,
        IMPL,
        "as Postfix: gethostname() (no DNS), with .$mydomain appended when it has no dot",
        computed=_myhostname,
        computed_text="gethostname() (+ .$mydomain)",
        in_manual=False,
    ),
    _p(
        "mydomain",
        _NONEMPTY,
        "",
        _GLOBAL,
        IMPL,
        "as Postfix: $myhostname minus its first label",
        computed=_mydomain,
        computed_text="$myhostname minus first label, else localdomain",
        in_manual=False,
    ),
    _p(
        "relayhost",
        _STR,
        "",
        _GLOBAL,
        IMPL,
        "DNS planner: 4.3.5 instead of a bounce when the relayhost fails (a configuration problem)",
        in_manual=False,
    ),
    _p(
        "soft_bounce",
        _BOOL,
        "no",
        _GLOBAL,
        IMPL,
        "delivery: bounces become deferrals",
        in_manual=False,
    ),
    _p(
        "minimal_backoff_time",
        Time(min=1),
        "300s",
        _GLOBAL,
        IMPL,
        (
            "delivery: after a TLS failure at may, plaintext is tried again only for mail at least "
            "this old"
        ),
        in_manual=False,
    ),
    _p(
        "queue_run_delay",
        Time(min=1),
        "300s",
        _GLOBAL,
        NA,
        (
            "smtp(8) reads it but only qmgr(8) uses it (deferred queue scans); retrying is the "
            "caller's job"
        ),
        in_manual=False,
    ),
    _p(
        "default_destination_recipient_limit",
        Int(),
        "50",
        _GLOBAL,
        NA,
        "a qmgr(8) setting; the default of smtp_destination_recipient_limit",
        in_manual=False,
    ),
    _p(
        "default_destination_concurrency_limit",
        Int(),
        "20",
        _GLOBAL,
        NA,
        "a qmgr(8) setting",
        in_manual=False,
    ),
    _p(
        "default_delivery_status_filter",
        _TABLES,
        "",
        _GLOBAL,
        IMPL,
        "the default of smtp_delivery_status_filter",
        in_manual=False,
    ),
    _p(
        "propagate_unmatched_extensions",
        List(choices=("canonical", "virtual", "alias", "forward", "include", "generic")),
        "canonical, virtual",
        _GLOBAL,
        IMPL,
        (
            "smtp_generic_maps: with generic listed, an address extension only the stripped key "
            "matched is appended to the result; the other names concern other Postfix daemons"
        ),
        in_manual=False,
    ),
    _p(
        "recipient_delimiter",
        _STR,
        "",
        _GLOBAL,
        IMPL,
        (
            "smtp_generic_maps and sender-dependent SASL password lookups: user+ext@domain is "
            "also looked up as user@domain"
        ),
        in_manual=False,
    ),
    _p(
        "myorigin",
        _NONEMPTY,
        "$myhostname",
        _GLOBAL,
        IMPL,
        (
            "smtp_generic_maps: its users match a bare user key, and a result without @domain "
            "gets @$myorigin; also a local domain for sender-dependent SASL password lookups"
        ),
        in_manual=False,
    ),
    _p(
        "mydestination",
        _LIST,
        "$myhostname, localhost.$mydomain, localhost",
        _GLOBAL,
        IMPL,
        (
            "smtp_generic_maps and sender-dependent SASL password lookups: domains whose users "
            "match a bare user key; only plain names are compared (no tables, no parent domains)"
        ),
        partly=True,
        in_manual=False,
    ),
    _p(
        "owner_request_special",
        _BOOL,
        "yes",
        _GLOBAL,
        IMPL,
        "smtp_generic_maps: owner-x and x-request keep their '-' when it is a recipient_delimiter",
        in_manual=False,
    ),
    _p(
        "double_bounce_sender",
        _NONEMPTY,
        "double-bounce",
        _GLOBAL,
        IMPL,
        "smtp_generic_maps: this local part is never split at a recipient_delimiter",
        in_manual=False,
    ),
    _p(
        "line_length_limit",
        Int(min=512),
        "2048",
        _GLOBAL,
        IMPL,
        (
            "smtp_body_checks see body lines in pieces of this many octets; the longest server "
            "reply line kept"
        ),
        in_manual=False,
    ),
    _p(
        "header_size_limit",
        Int(min=1),
        "102400",
        _GLOBAL,
        IMPL,
        (
            "content encoder: the most octets of one header held for MIME conversion and header "
            "checks; a longer header is checked on its first octets"
        ),
        in_manual=False,
    ),
)

#: Registry rows by attribute name.
BY_NAME: Mapping[str, Param] = MappingProxyType({p.name: p for p in PARAMETERS})
