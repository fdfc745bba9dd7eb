"""Connection-cache labels, built as Postfix's smtp_key.c builds them.

A cached connection is stored under two kinds of label (Postfix
smtp_reuse.c ``smtp_save_session()``):

* the **nexthop label** (``SMTP_KEY_MASK_SCACHE_DEST_LABEL``) for the first
  good session of a delivery request: service, sender (with
  sender-dependent SASL), the request's nexthop as written, TLS level,
  SMTPUTF8 requirement, REQUIRETLS level;
* the **endpoint label** (``SMTP_KEY_MASK_SCACHE_ENDP_LABEL``) for every
  good session: service, sender (sender-dependent SASL), current nexthop
  and host name (when SASL passwords are configured), current nexthop (when
  the TLS level must match certificates), address, port, TLS level,
  SMTPUTF8 requirement, REQUIRETLS level.

Fields end with ``\\n``; an empty or inapplicable field is ``*``; a value
containing ``\\n`` or ``*`` is base64-encoded (Postfix smtp_key_prefix()
with the ``"\\n*"`` delimiter of smtp_reuse.c).
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field

__all__ = ["KeyContext", "dest_label", "endpoint_label"]

_DELIM = "\n"
_NA = "*"


def _str(value: str | None) -> str:
    # Postfix smtp_key_append_str()
    if not value:
        return _NA + _DELIM
    if _DELIM in value or _NA in value:
        return base64.b64encode(value.encode("utf-8")).decode("ascii") + _DELIM
    return value + _DELIM


def _uint(value: int) -> str:
    return f"{value}{_DELIM}"  # Postfix smtp_key_append_uint()


@dataclass(frozen=True, slots=True)
class KeyContext:
    """The request-wide parts of every label.

    Attributes:
        service: stands in for Postfix's master.cf service name (what makes
            two configurations distinct).
        sender: the envelope sender, internal form.
        request_nexthop: the delivery request's nexthop as written.
        sender_dependent_sasl: ``smtp_sender_dependent_authentication`` with
            ``smtp_sasl_password_maps`` set (Postfix COND_SASL_SMTP_KEY_FLAG_SENDER).
        sasl_passwords: ``smtp_sasl_password_maps`` is set (Postfix
            COND_SASL_SMTP_KEY_FLAG_CUR_NEXTHOP / _HOSTNAME).
        requires_smtputf8: the delivery requires SMTPUTF8 (Postfix
            DELIVERY_REQUIRES_SMTPUTF8).
        requiretls_level: the REQUIRETLS enforcement level (0 = disabled).
    """

    service: str
    sender: str
    request_nexthop: str
    sender_dependent_sasl: bool = False
    sasl_passwords: bool = False
    requires_smtputf8: bool = False
    requiretls_level: int = 0
    # The hash of the fields, computed once: labels are looked up per message.
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "_hash",
            hash(
                (
                    self.service,
                    self.sender,
                    self.request_nexthop,
                    self.sender_dependent_sasl,
                    self.sasl_passwords,
                    self.requires_smtputf8,
                    self.requiretls_level,
                )
            ),
        )

    def __hash__(self) -> int:
        return self._hash

    def _tail(self, tls_level: int) -> str:
        # TLS level, REQUIRETLS level, SMTPUTF8: the last three fields of both masks
        return _uint(tls_level) + _uint(self.requiretls_level) + _uint(int(self.requires_smtputf8))


def dest_label(ctx: KeyContext, *, tls_level: int) -> str:
    """The nexthop label (Postfix SMTP_KEY_MASK_SCACHE_DEST_LABEL).

    Postfix looks nexthop labels up with the TLS level of a dummy policy
    (``none``, smtp_connect.c smtp_reuse_session()) but stores them with the
    session's actual level; callers pass whichever applies.
    """
    return _dest_label(ctx, tls_level)


# Labels are asked for twice per delivery (take, then save) with the same
# inputs, and again by the next delivery: remember the recent ones.
@functools.lru_cache(maxsize=1024)
def _dest_label(ctx: KeyContext, tls_level: int) -> str:
    head = _str(ctx.service)
    if ctx.sender_dependent_sasl:
        head += _str(ctx.sender)
    return head + _str(ctx.request_nexthop) + ctx._tail(tls_level)


def endpoint_label(
    ctx: KeyContext,
    *,
    current_nexthop: str,
    hostname: str,
    address: str,
    port: int,
    tls_level: int,
    tls_must_match: bool,
) -> str:
    """The endpoint label (Postfix SMTP_KEY_MASK_SCACHE_ENDP_LABEL)."""
    return _endpoint_label(ctx, current_nexthop, hostname, address, port, tls_level, tls_must_match)


@functools.lru_cache(maxsize=1024)
def _endpoint_label(
    ctx: KeyContext,
    current_nexthop: str,
    hostname: str,
    address: str,
    port: int,
    tls_level: int,
    tls_must_match: bool,
) -> str:
    out = _str(ctx.service)
    if ctx.sender_dependent_sasl:
        out += _str(ctx.sender)
    if ctx.sasl_passwords or tls_must_match:  # COND_SASL_ / COND_TLS_SMTP_KEY_FLAG_CUR_NEXTHOP
        out += _str(current_nexthop)
    if ctx.sasl_passwords:  # COND_SASL_SMTP_KEY_FLAG_HOSTNAME
        out += _str(hostname)
    out += _str(address) + _uint(port)
    return out + ctx._tail(tls_level)
