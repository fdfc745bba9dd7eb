"""The ``smtp_tls_policy_maps`` entry syntax: ``level attr=value ...``.

A table value is a security level followed by attributes, separated by
whitespace or commas; an attribute may be wrapped in braces to carry
whitespace (``{ match = a:b }``). The rules are those of Postfix's
smtp_tls_policy.c ``tls_policy_lookup_one()``:

* an unknown level, an unknown attribute, a malformed ``name=value`` pair, a
  repeated single-instance attribute, an empty ``ciphers``/``match``/
  ``tafile``, ``match`` at a level that takes none, ``tafile`` below
  ``verify``, an invalid ``servername``, or extended (MTA-STS plugin)
  attributes without ``policy_type`` make the entry invalid. Postfix then
  skips the server with 4.7.5 "client TLS configuration problem"; it never
  silently downgrades.
* at ``none`` every attribute is ignored (with a warning), even malformed ones.

This module is pure: it parses text and names the offending token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyfix_smtp.errors import TlsPolicyError
from pyfix_smtp.tls.levels import TlsLevel

__all__ = [
    "PolicyEntry",
    "parse_entry",
    "postfix_tokens",
    "split_nameval",
    "valid_hostname",
]

SEPARATORS = ", \t\r\n"  # Postfix CHARS_COMMA_SP
_SPACE = " \t\n\v\f\r"  # Postfix ISSPACE()

# Postfix tlsrpt_wrapper.c tlsrpt_policy_type_mapping / tlsrpt_policy_failure_mapping
POLICY_TYPES = ("sts", "no-policy-found")
POLICY_FAILURES = (
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
    "validation-failure",
)
_LONG_MAX = 2**63 - 1


def postfix_tokens(text: str, separators: str = SEPARATORS) -> list[str]:
    """Split *text* like Postfix's mystrtokq() with ``{}`` grouping.

    Separators inside braces do not split; an unbalanced ``{`` swallows the
    rest of the text into one token (the caller reports it).
    """
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in separators:
            i += 1
        if i >= n:
            break
        start, level = i, 0
        while i < n:
            ch = text[i]
            if ch == "{":
                level += 1
            elif level > 0 and ch == "}":
                level -= 1
            elif level == 0 and ch in separators:
                break
            i += 1
        tokens.append(text[start:i])
        i += 1
    return tokens


def _balanced_length(text: str) -> int:
    """Postfix balpar(): length of the leading ``{...}`` group, 0 if unbalanced."""
    level = 1
    for pos in range(1, len(text)):
        ch = text[pos]
        if ch == "}":
            level -= 1
            if level == 0:
                return pos + 1
        elif ch == "{":
            level += 1
    return 0


def unbrace(token: str) -> str:
    """Strip the braces of a ``{ name = value }`` token (Postfix extpar()).

    Whitespace inside is trimmed and control whitespace becomes spaces
    (EXTPAR_FLAG_STRIP | EXTPAR_FLAG_NORMAL_WS).

    Raises:
        TlsPolicyError: a missing ``}`` or text after it.
    """
    length = _balanced_length(token)
    if length == 0:
        raise TlsPolicyError(f"missing '}}' in \"{token}\"")
    if length != len(token):
        raise TlsPolicyError(f"syntax error after '}}' in \"{token}\"")
    inner = token[1 : length - 1].strip(_SPACE)
    return re.sub(r"[\t\n\v\f\r]", " ", inner)


def split_nameval(token: str) -> tuple[str, str]:
    """Split ``name = value`` like Postfix's split_nameval().

    The name ends at whitespace or ``=``; blanks around the value are trimmed.

    Raises:
        TlsPolicyError: a missing name or a missing ``=``.
    """
    text = token.lstrip(_SPACE)
    if not text or text[0] == "=":
        raise TlsPolicyError("missing attribute name")
    end = 0
    while end < len(text) and text[end] not in _SPACE and text[end] != "=":
        end += 1
    rest = text[end:].lstrip(_SPACE)
    if not rest.startswith("="):
        raise TlsPolicyError("missing '=' after attribute name")
    return text[:end], rest[1:].strip(_SPACE)


def valid_hostname(name: str) -> bool:
    """Postfix valid_hostname(): letters, digits, ``_`` and inner ``-``.

    Labels are non-empty and at most 63 characters, the name at most 255,
    and not all-numeric (that would be an address).
    """
    if not name or len(name) > 255:
        return False
    non_numeric = False
    for label in name.split("."):
        if not label or len(label) > 63:
            return False
        if label[0] == "-" or label[-1] == "-":
            return False
        for ch in label:
            if ch == "-" or ch == "_" or (ch.isascii() and ch.isalpha()):
                non_numeric = True
            elif not (ch.isascii() and ch.isdigit()):
                return False
    return non_numeric


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """One parsed ``smtp_tls_policy_maps`` value.

    Attributes mirror the table syntax; ``None`` means "not given, use the
    main.cf setting". ``match`` holds the split match list (``:`` separated
    for verify/secure, ``|`` for fingerprint). ``ignored`` lists attributes
    that were ignored because the level is ``none``.
    """

    text: str
    level: TlsLevel
    ciphers: str | None = None
    protocols: str | None = None
    servername: str | None = None
    match: tuple[str, ...] | None = None
    exclude: str | None = None
    tafile: tuple[str, ...] = ()
    connection_reuse: bool | None = None
    enable_rpk: bool | None = None
    policy_ttl: int | None = None
    policy_type: str | None = None
    policy_domain: str | None = None
    policy_string: tuple[str, ...] = ()
    mx_host_pattern: tuple[str, ...] = ()
    policy_failure: str | None = None
    ignored: tuple[str, ...] = ()

    @property
    def sts(self) -> bool:
        """The entry came from an MTA-STS plugin (``policy_type=sts``)."""
        return self.policy_type is not None and self.policy_type.lower() == "sts"


def _yes_no(name: str, value: str) -> bool:
    if value.lower() == "yes":
        return True
    if value.lower() == "no":
        return False
    raise TlsPolicyError(f'attribute "{name}" has bad value: "{value}"')


def parse_entry(text: str) -> PolicyEntry:
    """Parse a policy table value (Postfix smtp_tls_policy.c tls_policy_lookup_one()).

    Raises:
        TlsPolicyError: the entry is invalid; ``reason`` names the token and
            ``policy`` holds *text*. Postfix would skip the server with
            4.7.5 "client TLS configuration problem".
    """
    try:
        return _parse_entry(text)
    except TlsPolicyError as exc:
        raise TlsPolicyError(exc.reason, policy=text) from None


def _parse_entry(text: str) -> PolicyEntry:
    tokens = postfix_tokens(text)
    if not tokens:
        raise TlsPolicyError("invalid empty policy")
    level = TlsLevel.lookup(tokens[0])
    if level is None:
        raise TlsPolicyError(f'invalid security level "{tokens[0]}"')
    if level < TlsLevel.MAY:
        # Postfix: "ignoring attribute ... with TLS disabled"; attributes are not parsed.
        return PolicyEntry(text=text, level=level, ignored=tuple(tokens[1:]))

    attrs: dict[str, object] = {}
    match: list[str] | None = None
    tafile: list[str] = []
    policy_string: list[str] = []
    patterns: list[str] = []

    def once(name: str, value: object) -> None:
        if name in attrs:
            raise TlsPolicyError(f'attribute "{name}" is specified multiple times')
        attrs[name] = value

    for token in tokens[1:]:
        inner = unbrace(token) if token.startswith("{") else token
        try:
            name, value = split_nameval(inner)
        except TlsPolicyError as exc:
            raise TlsPolicyError(
                f'malformed attribute/value pair "{inner}": {exc.reason}'
            ) from None
        key = name.lower()
        if key == "ciphers":
            if not value:
                raise TlsPolicyError(f'attribute "{name}" has empty value')
            once(key, value)
        elif key in ("protocols", "exclude"):
            once(key, value)
        elif key == "servername":
            if not valid_hostname(value):
                raise TlsPolicyError(f'"{name}={value}" specifies an invalid hostname')
            once(key, value)
        elif key == "match":  # multiple instances allowed
            if not value:
                raise TlsPolicyError(f'attribute "{name}" has empty value')
            if level is TlsLevel.FINGERPRINT:
                sep = "|"  # Postfix: ":" occurs inside fingerprints
            elif level in (TlsLevel.VERIFY, TlsLevel.SECURE):
                sep = ":"
            else:
                raise TlsPolicyError(f'attribute "{name}" invalid at security level "{level}"')
            match = (match or []) + [part for part in value.split(sep) if part]
        elif key == "tafile":  # multiple instances allowed
            if not level.must_pkix:  # Postfix: only with CA-based trust
                raise TlsPolicyError(f'attribute "{name}" invalid at security level "{level}"')
            if not value:
                raise TlsPolicyError(f'attribute "{name}" has empty value')
            tafile.append(value)
        elif key in ("connection_reuse", "enable_rpk"):  # last one wins
            attrs[key] = _yes_no(name, value)
        elif key == "policy_ttl":
            if not value.isascii() or not value.isdigit() or int(value) > _LONG_MAX:
                raise TlsPolicyError(f'attribute "{name}" has a malformed value: "{value}"')
            once(key, int(value))
        elif key == "policy_type":
            if value.lower() not in POLICY_TYPES:
                raise TlsPolicyError(f'attribute "{name}" has an unexpected value: "{value}"')
            once(key, value)
        elif key == "policy_domain":
            if not valid_hostname(value):
                raise TlsPolicyError(f'attribute "{name}" has a malformed value: "{value}"')
            once(key, value)
        elif key == "policy_string":
            policy_string.append(value)
        elif key == "mx_host_pattern":
            patterns.append(value)
        elif key == "policy_failure":
            if value.lower() not in POLICY_FAILURES:
                raise TlsPolicyError(f'attribute "{name}" has an unexpected value: "{value}"')
            once(key, value)
        else:
            raise TlsPolicyError(f'invalid attribute name: "{name}"')

    if "policy_type" not in attrs and (
        "policy_ttl" in attrs
        or policy_string
        or "policy_domain" in attrs
        or patterns
        or "policy_failure" in attrs
    ):
        raise TlsPolicyError(
            "built-in policy has unexpected attribute policy_ttl, policy_domain,"
            " policy_string, mx_host_pattern or policy_failure"
        )

    def text_attr(key: str) -> str | None:
        value = attrs.get(key)
        return value if isinstance(value, str) else None

    def bool_attr(key: str) -> bool | None:
        value = attrs.get(key)
        return value if isinstance(value, bool) else None

    ttl = attrs.get("policy_ttl")
    return PolicyEntry(
        text=text,
        level=level,
        ciphers=text_attr("ciphers"),
        protocols=text_attr("protocols"),
        servername=text_attr("servername"),
        match=tuple(match) if match is not None else None,
        exclude=text_attr("exclude"),
        tafile=tuple(tafile),
        connection_reuse=bool_attr("connection_reuse"),
        enable_rpk=bool_attr("enable_rpk"),
        policy_ttl=ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else None,
        policy_type=text_attr("policy_type"),
        policy_domain=text_attr("policy_domain"),
        policy_string=tuple(policy_string),
        mx_host_pattern=tuple(patterns),
        policy_failure=text_attr("policy_failure"),
    )
