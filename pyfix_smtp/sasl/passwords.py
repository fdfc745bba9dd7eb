"""``smtp_sasl_password_maps`` lookups, in Postfix's order.

Postfix 3.11 smtp_sasl_glue.c ``smtp_sasl_passwd_lookup()`` tries, and stops
at the first table hit:

1. the envelope sender, when ``smtp_sender_dependent_authentication = yes``
   (SMTP only, never LMTP, and not for the null sender), with the address
   search of global/mail_addr_find.c ``mail_addr_find()``: the full address,
   the address without its ``recipient_delimiter`` extension, the bare local
   part when the domain is local, then ``@domain``;
2. the remote host name (``iter->host``): the MX host name, or the host in a
   ``[host]`` nexthop; no brackets, no port;
3. the current destination (``iter->dest``) exactly as written in the
   nexthop list, e.g. ``[mail.isp.example]:587`` or ``example.com``; when
   delivery has moved on to ``smtp_fallback_relay``, that is the relay.

The value ``username:password`` is split at the *first*
``smtp_sasl_password_result_delimiter``; the password may contain it, and a
value without it means an empty password.

Keys that are only part of an address (the address without extension, the
local part, ``@domain``) are *partial*: Postfix does not send them to
``regexp:``/``pcre:`` tables (``maps_find(..., DICT_FLAG_FIXED)``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from pyfix_smtp.errors import ConfigError, LookupTableError
from pyfix_smtp.maps import TableList
from pyfix_smtp.sasl.tables import LookupTable

__all__ = [
    "Credentials",
    "LookupKey",
    "LookupSource",
    "lookup_credentials",
    "password_lookup_keys",
    "sender_lookup_keys",
    "split_password_result",
]

PARAMETER = "smtp_sasl_password_maps"

# Postfix split_addr.c split_addr_internal(): never split these local parts.
_NEVER_SPLIT = ("postmaster", "mailer-daemon", "double-bounce")  # $double_bounce_sender default


class LookupSource(enum.Enum):
    """Which step of the lookup produced a key."""

    SENDER = "sender"
    HOST = "host"
    NEXTHOP = "nexthop"


@dataclass(frozen=True, slots=True)
class LookupKey:
    """One password-map query.

    Attributes:
        key: the text looked up.
        source: the lookup step it belongs to.
        partial: a partial address; Postfix skips pattern tables for it.
    """

    key: str
    source: LookupSource
    partial: bool = False


@dataclass(frozen=True, slots=True)
class Credentials:
    """A password-map hit.

    Attributes:
        username: the text before the first delimiter.
        password: the rest (may be empty, may contain the delimiter).
        key: the lookup key that matched.
        source: which lookup step matched.
    """

    username: str
    password: str
    key: str
    source: LookupSource

    def __repr__(self) -> str:
        # Never show the password in logs or tracebacks.
        return (
            f"Credentials(username={self.username!r}, password='***', key={self.key!r}, "
            f"source={self.source.value})"
        )


def _is_822_dot_string(local: str) -> bool:
    # Postfix quote_822_local.c is_822_dot_string() with QUOTE_FLAG_8BITCLEAN.
    if not local or local[0] == "." or local[-1] == "." or ".." in local:
        return False
    return not any(
        ch == " " or ord(ch) < 32 or ord(ch) == 127 or ch in '()<>@,;:\\"[]' for ch in local
    )


def _quote_822_local(address: str, *, bare: bool = False) -> str:
    """External (quoted) form of an internal-form address (quote_822_local_flags())."""
    at = len(address) if bare else address.rfind("@")
    if at < 0:
        at = len(address)
    local = address[:at]
    if _is_822_dot_string(local):
        return address
    quoted = "".join("\\" + ch if ch in '"\\\r' else ch for ch in local)
    return f'"{quoted}"{address[at:]}'


def _forms(address: str, *, bare: bool = False) -> list[str]:
    # mail_addr_find.c find_addr() with MA_FORM_EXTERNAL_FIRST: the quoted form,
    # then the internal form when it differs.
    external = _quote_822_local(address, bare=bare)
    return [external] if external == address else [external, address]


def _strip_extension(address: str, delimiters: str) -> str | None:
    """The address without its extension, or None (strip_addr_internal())."""
    if not delimiters or not any(d in address for d in delimiters):
        return None
    at = address.rfind("@")
    local, domain = (address, "") if at < 0 else (address[:at], address[at:])
    lowered = local.lower()
    if lowered in _NEVER_SPLIT:
        return None
    # split_addr.c: backwards compatibility for owner-foo and foo-request
    # ($owner_request_special = yes).
    if "-" in delimiters and (
        lowered.startswith("owner-") or (len(local) > 8 and lowered.endswith("-request"))
    ):
        return None
    cut = next((i for i, ch in enumerate(local) if ch in delimiters), len(local))
    if cut == 0 or cut == len(local):  # no extension, or an empty local part would be left
        return None
    return local[:cut] + domain


def sender_lookup_keys(
    sender: str,
    *,
    recipient_delimiter: str = "",
    local_domains: Iterable[str] = (),
) -> tuple[LookupKey, ...]:
    """The keys Postfix ``mail_addr_find()`` tries for *sender*, in order.

    *sender* is the envelope sender in internal (unquoted) form;
    *recipient_delimiter* the Postfix parameter (each character is a
    delimiter); *local_domains* the domains for which the bare local part is
    also tried ($myorigin, $mydestination).
    """
    if not sender:
        return ()
    src = LookupSource.SENDER
    keys = [LookupKey(k, src) for k in _forms(sender)]
    bare = _strip_extension(sender, recipient_delimiter)
    if bare is not None:
        keys += [LookupKey(k, src, partial=True) for k in _forms(bare)]
    at = sender.rfind("@")
    if at < 0:
        return tuple(keys)
    domain = sender[at + 1 :]
    if domain.lower() in {d.lower() for d in local_domains}:
        keys += [LookupKey(k, src, partial=True) for k in _forms(sender[:at], bare=True)]
        if bare is not None:
            bare_local = bare[: bare.rfind("@")]
            keys += [LookupKey(k, src, partial=True) for k in _forms(bare_local, bare=True)]
    keys.append(LookupKey(sender[at:], src, partial=True))
    return tuple(keys)


def password_lookup_keys(
    *,
    host: str,
    nexthop: str,
    sender: str = "",
    sender_dependent: bool = False,
    protocol: str = "smtp",
    recipient_delimiter: str = "",
    local_domains: Iterable[str] = (),
) -> tuple[LookupKey, ...]:
    """Every key ``smtp_sasl_passwd_lookup()`` may try, in order.

    *host* is the server's host name (MX name, or the host of a ``[host]``
    nexthop; for LMTP over a UNIX socket Postfix uses ``$myhostname``);
    *nexthop* the current destination as written (``[relay.example]:587``),
    which may be a fallback relay.
    """
    keys: list[LookupKey] = []
    # smtp_sasl_glue.c: "smtp_mode && var_smtp_sender_auth && state->request->sender[0]"
    if protocol == "smtp" and sender_dependent and sender:
        keys += sender_lookup_keys(
            sender, recipient_delimiter=recipient_delimiter, local_domains=local_domains
        )
    # maps_find() ignores empty keys ("buggy callers that pass zero-length keys").
    if host:
        keys.append(LookupKey(host, LookupSource.HOST))
    if nexthop:
        keys.append(LookupKey(nexthop, LookupSource.NEXTHOP))
    return tuple(keys)


def split_password_result(value: str, delimiter: str = ":") -> tuple[str, str]:
    """Split ``username:password`` at the first *delimiter* (Postfix split_at())."""
    if len(delimiter) != 1:
        raise ConfigError(
            "smtp_sasl_password_result_delimiter", delimiter, "must be exactly one character"
        )
    username, _, password = value.partition(delimiter)
    return username, password


def _lookup(table: LookupTable, lookup: LookupKey) -> str | None:
    if not lookup.partial:
        return table.lookup(lookup.key)
    # Postfix maps_find(..., DICT_FLAG_FIXED): partial keys skip pattern tables.
    if isinstance(table, TableList):
        return table.lookup(lookup.key, fixed_only=True)
    if getattr(table, "fixed", True) is False:
        return None  # a single pattern table (regexp:, pcre:, cidr:, callable)
    return table.lookup(lookup.key)


def lookup_credentials(
    table: LookupTable,
    *,
    host: str,
    nexthop: str,
    sender: str = "",
    sender_dependent: bool = False,
    protocol: str = "smtp",
    delimiter: str = ":",
    recipient_delimiter: str = "",
    local_domains: Iterable[str] = (),
) -> Credentials | None:
    """Look up the username and password for this server, or ``None``.

    Without credentials Postfix does not authenticate at all ("talk to each
    other like strangers"). A table error propagates (Postfix defers the
    delivery); an empty result is an error too, as in Postfix ``maps_find()``.
    """
    for lookup in password_lookup_keys(
        host=host,
        nexthop=nexthop,
        sender=sender,
        sender_dependent=sender_dependent,
        protocol=protocol,
        recipient_delimiter=recipient_delimiter,
        local_domains=local_domains,
    ):
        value = _lookup(table, lookup)
        if value is None:
            continue
        if value == "":
            raise LookupTableError(PARAMETER, lookup.key, "lookup returns an empty string result")
        username, password = split_password_result(value, delimiter)
        return Credentials(username, password, lookup.key, lookup.source)
    return None
