"""REQUIRETLS (RFC 8689) as Postfix 3.11 enforces it (pure).

``smtp_requiretls_policy`` is a list of actions and lookup tables, evaluated
for the TLS nexthop name (Postfix smtp_reqtls_policy.c): the first action
wins, a table answer must be a single action, fixed-string tables are also
asked for ``.parent`` domains, and no match means ``enforce``.

The outcomes follow smtp_connect.c ``smtp_get_effective_tls_level()`` and
smtp_proto.c:

========================================  ======  ==========================
situation                                 status  Postfix text
========================================  ======  ==========================
``enforce`` but level cannot match certs  5.7.10  ...disables certificate matching
``opportunistic+starttls`` at ``none``    5.7.10  ...disables encryption
bad policy (``error``, table trouble)     4.7.10  REQUIRETLS policy configuration error
STARTTLS not offered (TLS required)       5.7.30  ...TLS service was not offered by host
STARTTLS refused (TLS required)           5.7.10  ...refused to start TLS
no REQUIRETLS after STARTTLS (enforce)    5.7.30  ...no server was found that supports
certificate not matched (enforce)         5.7.10  ...no matching/trusted server certificate
========================================  ======  ==========================

All REQUIRETLS failures are *soft at non-final servers*
(SMTP_MISC_FAIL_SOFT_NON_FINAL): the delivery agent tries the next MX host
and bounces only when none is left.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyfix_smtp.errors import LookupTableError, TlsPolicyError
from pyfix_smtp.maps import open_table
from pyfix_smtp.status import Failure
from pyfix_smtp.tls.entry import postfix_tokens
from pyfix_smtp.tls.levels import TlsLevel
from pyfix_smtp.tls.names import to_ascii
from pyfix_smtp.tls.options import LookupTable

__all__ = [
    "PolicyTable",
    "RequireTlsAction",
    "RequireTlsPolicy",
    "SessionFailure",
    "certificate_not_matched",
    "check_level",
    "mail_from_options",
    "missing_requiretls",
    "starttls_not_offered",
    "starttls_refused",
]


class RequireTlsAction(enum.IntEnum):
    """Postfix SMTP_REQTLS_POLICY_ACT_* (order matters)."""

    ERROR = -1
    DISABLE = 0
    OPPORTUNISTIC = 1
    OPPORTUNISTIC_STARTTLS = 2
    ENFORCE = 3

    @property
    def text(self) -> str:
        """The Postfix spelling (``opportunistic+starttls`` ...)."""
        return _ACTION_TEXT[self]

    @property
    def requires_tls(self) -> bool:
        """TLS_REQUIRED_BY_REQTLS_POLICY(): opportunistic+starttls and enforce."""
        return self >= RequireTlsAction.OPPORTUNISTIC_STARTTLS

    def __str__(self) -> str:
        return self.text


_ACTION_TEXT = {
    RequireTlsAction.ERROR: "error",
    RequireTlsAction.DISABLE: "disable",
    RequireTlsAction.OPPORTUNISTIC: "opportunistic",
    RequireTlsAction.OPPORTUNISTIC_STARTTLS: "opportunistic+starttls",
    RequireTlsAction.ENFORCE: "enforce",
}
_BY_TEXT = {v: k for k, v in _ACTION_TEXT.items()}
_SEPARATORS = ", \t\r\n"


@dataclass(frozen=True, slots=True)
class PolicyTable:
    """A lookup table inside the policy, and whether it is fixed-string.

    Fixed-string tables (hash:, lmdb:, texthash:, inline: ...) are also
    queried with ``.parent`` domains; pattern tables (regexp:, pcre:, cidr:,
    socketmap:, tcp:) only with the name itself (Postfix DICT_FLAG_FIXED).
    """

    ref: str
    table: LookupTable
    fixed: bool = True


_PATTERN_TYPES = ("regexp", "pcre", "cidr", "socketmap", "tcp")


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class RequireTlsPolicy:
    """A parsed ``smtp_requiretls_policy`` (or ``lmtp_requiretls_policy``)."""

    origin: str
    items: tuple[str | PolicyTable, ...]

    @classmethod
    def parse(
        cls,
        text: str | Sequence[object],
        *,
        origin: str = "smtp_requiretls_policy",
        open_table: Callable[[str], LookupTable] | None = None,
    ) -> RequireTlsPolicy:
        """Parse the parameter (Postfix smtp_reqtls_policy_parse()).

        *text* is the main.cf value, or the already split list a
        :class:`~pyfix_smtp.config.Config` holds (actions and opened tables).
        ``type:name`` references are opened with *open_table* (default
        :func:`pyfix_smtp.maps.open_table`).

        Raises:
            TlsPolicyError: a table cannot be opened, or an item is neither
                an action nor a table.
        """
        opener = open_table if open_table is not None else _open
        raw = postfix_tokens(text, _SEPARATORS) if isinstance(text, str) else list(text)
        items: list[str | PolicyTable] = []
        for token in raw:
            if isinstance(token, str) and ":" not in token:
                items.append(token)
                continue
            table: LookupTable
            if isinstance(token, str):
                try:
                    table = opener(token)
                except (LookupTableError, OSError) as exc:
                    raise TlsPolicyError(f"cannot open table: {exc}", policy=token) from None
                ref = token
            elif isinstance(token, LookupTable):
                table, ref = token, str(getattr(token, "ref", token))
            else:
                raise TlsPolicyError(f"not an action or a table: {token!r}", policy=origin)
            kind = ref.split(":", 1)[0].lower()
            fixed = getattr(table, "fixed", kind not in _PATTERN_TYPES)
            items.append(PolicyTable(ref, table, fixed=bool(fixed)))
        return cls(origin, tuple(items))

    @classmethod
    def postfix_default(cls, mydomain: str, *, protocol: str = "smtp") -> RequireTlsPolicy:
        """Postfix 3.11's default: opportunistic for $mydomain, its subdomains,
        localhost and IP addresses, enforce elsewhere (SMTP); opportunistic for LMTP."""
        if protocol == "lmtp":
            return cls("lmtp_requiretls_policy", ("opportunistic",))
        domain = to_ascii(mydomain).lower()
        return cls.parse(
            f"inline:{{{{{domain}=opportunistic}}, {{.{domain}=opportunistic}},"
            " {localhost=opportunistic}},"
            " cidr:{{0.0.0.0/0 opportunistic}, {::/0 opportunistic}}, enforce"
        )

    def evaluate(self, nexthop: str) -> tuple[RequireTlsAction, str]:
        """The action for the TLS nexthop name (no ``[]``, port or service).

        Returns (action, explanation). Postfix smtp_reqtls_policy_eval().
        """
        return _eval(self.origin, self.items, nexthop)


def _open(ref: str) -> LookupTable:
    return open_table(ref, parameter="smtp_requiretls_policy")


def _eval(
    origin: str, items: Sequence[str | PolicyTable], nexthop: str
) -> tuple[RequireTlsAction, str]:
    for item in items:
        if isinstance(item, str):
            action = _BY_TEXT.get(item.lower())
            if action is None:
                return RequireTlsAction.ERROR, f"{origin}: unknown policy action: {item!r}"
            return action, f"{origin}: {action}"
        if _is_address(nexthop) or nexthop.isascii():
            name = nexthop
        else:
            try:
                name = to_ascii(nexthop)
            except ValueError:  # Postfix: malformed name -> the default policy
                return RequireTlsAction.ENFORCE, f"{origin}: malformed next-hop {nexthop!r}"
        while name:
            try:
                value = item.table.lookup(name)
            except (LookupTableError, OSError) as exc:
                return RequireTlsAction.ERROR, f"{item.ref}: table lookup error: {exc}"
            if value is not None:
                if ":" in value:
                    return RequireTlsAction.ERROR, f"{item.ref}: nested lookup result {value!r}"
                if any(c in value for c in _SEPARATORS):
                    return RequireTlsAction.ERROR, f"{item.ref}: composite lookup result {value!r}"
                action, why = _eval(item.ref, (value,), name)
                return action, f"{item.ref}: {name!r} -> {why.split(': ', 1)[-1]}"
            if not item.fixed or _is_address(name):
                break
            dot = name.find(".", 1)
            if dot < 0:
                break
            name = name[dot:]
    return RequireTlsAction.ENFORCE, f"{origin}: no match, enforce"


@dataclass(frozen=True, slots=True)
class SessionFailure:
    """A TLS/REQUIRETLS failure during a session.

    ``soft_non_final``: turn it into a 4.x.x deferral unless this is the last
    server (Postfix SMTP_MISC_FAIL_SOFT_NON_FINAL); REQUIRETLS failures are.
    ``reply`` is the server reply text when the failure quotes one.
    """

    failure: Failure
    soft_non_final: bool = False


def check_level(action: RequireTlsAction | None, level: TlsLevel, host: str) -> Failure | None:
    """Can this server's TLS level satisfy REQUIRETLS? (smtp_get_effective_tls_level()).

    *action* is None when the sender did not request REQUIRETLS.
    """
    if action is None:
        return None
    if action is RequireTlsAction.ENFORCE and not level.must_match:
        return Failure(
            "5.7.10",
            f"Sender requested REQUIRETLS, but my configured TLS security level '{level}'"
            f" disables certificate matching. The last attempted server was {host}",
        )
    if action is RequireTlsAction.OPPORTUNISTIC_STARTTLS and level is TlsLevel.NONE:
        return Failure(
            "5.7.10",
            f"Sender requested REQUIRETLS, but my configured TLS security level '{level}'"
            f" disables encryption. The last attempted server was {host}",
        )
    if action is RequireTlsAction.ERROR:
        return Failure(
            "4.7.10", f"REQUIRETLS policy configuration error. The last attempted server was {host}"
        )
    return None


def starttls_not_offered(
    action: RequireTlsAction | None, level: TlsLevel, namaddr: str
) -> SessionFailure | None:
    """The server did not announce STARTTLS (smtp_proto.c smtp_start_tls path)."""
    if action is not None and action.requires_tls:
        return SessionFailure(
            Failure(
                "5.7.30",
                f"Sender requested REQUIRETLS, but TLS service was not offered by host {namaddr}",
            ),
            soft_non_final=True,
        )
    if level.tls_required:
        return SessionFailure(
            Failure("4.7.4", f"TLS is required, but was not offered by host {namaddr}")
        )
    return None


def starttls_refused(
    action: RequireTlsAction | None, level: TlsLevel, namaddr: str, reply: str, reply_status: str
) -> SessionFailure | None:
    """The server answered STARTTLS with a non-2xx reply.

    Without a REQUIRETLS requirement the server's own status is used
    (Postfix smtp_site_fail() with the reply).
    """
    text = reply.replace("\n", " ")
    if action is not None and action.requires_tls:
        return SessionFailure(
            Failure(
                "5.7.10",
                f"Sender requested REQUIRETLS, but host {namaddr} refused to start TLS: {text}",
            ),
            soft_non_final=True,
        )
    if level.tls_required:
        return SessionFailure(
            Failure(
                reply_status, f"TLS is required, but host {namaddr} refused to start TLS: {text}"
            )
        )
    return None


def missing_requiretls(
    action: RequireTlsAction | None, offered: bool, namaddr: str
) -> SessionFailure | None:
    """After STARTTLS the EHLO reply lacks REQUIRETLS (smtp_proto.c smtp_helo())."""
    if action is RequireTlsAction.ENFORCE and not offered:
        return SessionFailure(
            Failure(
                "5.7.30",
                "Sender requested REQUIRETLS, but no server was found that supports"
                f" REQUIRETLS. The last attempted server was {namaddr}",
            ),
            soft_non_final=True,
        )
    return None


def certificate_not_matched(
    action: RequireTlsAction | None, trusted: bool, namaddr: str
) -> SessionFailure:
    """A must-match level found no matching certificate (smtp_proto.c smtp_start_tls())."""
    if action is RequireTlsAction.ENFORCE:
        what = "matching" if trusted else "trusted"
        return SessionFailure(
            Failure(
                "5.7.10",
                f"Sender requested REQUIRETLS, but no {what} server certificate was found."
                f" The last attempted server was {namaddr}",
            ),
            soft_non_final=True,
        )
    return SessionFailure(Failure("4.7.5", "Server certificate not verified"))


def mail_from_options(action: RequireTlsAction | None, offered: bool) -> tuple[bool, bool]:
    """(send ``REQUIRETLS`` on MAIL FROM, force ``RET=HDRS``).

    Postfix smtp_proto.c: REQUIRETLS is sent when the server offers it; when
    the sender asked for REQUIRETLS and the server does not offer it, a DSN
    ``RET=HDRS`` limits content exposure in bounces ("Fix 20250825").
    """
    if action is None or action <= RequireTlsAction.DISABLE:
        return False, False
    return offered, not offered
