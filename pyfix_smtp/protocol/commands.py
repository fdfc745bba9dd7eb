"""SMTP/LMTP command builders: the exact bytes Postfix's smtp(8) sends.

Every builder takes typed inputs (:mod:`pyfix_smtp.protocol.envelope`) and
what the server announced (:class:`~pyfix_smtp.protocol.extensions.Extensions`)
and returns one command line, CRLF included. The parameter rules and their
order follow Postfix smtp_proto.c ``smtp_loop()``:

* ``MAIL FROM:<sender>`` then ``SIZE=`` (server offers SIZE and no MIME
  downgrade applies), ``BODY=8BITMIME``/``BODY=7BIT`` (server offers
  8BITMIME, from the declared encoding), ``ENVID=`` and ``RET=`` (server
  offers DSN; ``RET=HDRS`` forced when REQUIRETLS was requested but the
  server lacks it), ``SMTPUTF8`` (requested and offered), ``REQUIRETLS``
  (requested and offered), ``AUTH=<>`` (``smtp_send_dummy_mail_auth``).
* ``RCPT TO:<recipient>`` then ``ORCPT=`` and ``NOTIFY=`` when the server
  offers DSN.

No builder can produce a command containing CR, LF or NUL: values are
validated when the inputs are built and checked again here.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Callable

from pyfix_smtp.address import Mailbox, uxtext_encode, xtext_encode
from pyfix_smtp.errors import AddressError, CommandError
from pyfix_smtp.protocol.envelope import BodyType, Envelope, Recipient, Ret, Xforward
from pyfix_smtp.protocol.extensions import Extensions
from pyfix_smtp.status import Failure

__all__ = [
    "MAX_AUTH_LINE",
    "auth_command",
    "auth_response",
    "envelope_failure",
    "hello_command",
    "mail_command",
    "mime_downgrade_applies",
    "rcpt_command",
    "smtputf8_in_use",
    "xforward_commands",
]

#: RFC 5321 §4.5.3.1.4: a command line is at most 512 octets with CRLF;
#: Postfix defers an AUTH initial response that would not fit
#: (smtp_sasl_glue.c smtp_sasl_authenticate()).
MAX_AUTH_LINE = 512
_MAX_COMMAND_LINE = 512
_FORBIDDEN = (b"\r", b"\n", b"\0")
_ANY_FORBIDDEN = re.compile(rb"[\r\n\0]")


def _line(text: str, what: str) -> bytes:
    data = text.encode("utf-8")
    if _ANY_FORBIDDEN.search(data) is not None:
        for bad in _FORBIDDEN:
            if bad in data:
                raise CommandError(what, text, f"command would contain {bad!r}")
    return data + b"\r\n"


@functools.lru_cache(maxsize=64)
def hello_command(verb: str, name: str) -> bytes:
    """``EHLO name``, ``HELO name`` or ``LHLO name`` (``smtp_helo_name``).

    Raises:
        CommandError: unknown verb, empty name, or a name with white space
            or control characters.
    """
    if verb not in ("EHLO", "HELO", "LHLO"):
        raise CommandError("verb", verb, "must be EHLO, HELO or LHLO")
    if not name or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in name):
        raise CommandError("helo_name", name, "must be a non-empty word without controls")
    return _line(f"{verb} {name}", "helo_name")


def smtputf8_in_use(envelope: Envelope, ext: Extensions) -> bool:
    """True when MAIL FROM carries ``SMTPUTF8``: requested and offered."""
    return envelope.smtputf8 and ext.smtputf8


def mime_downgrade_applies(
    envelope: Envelope, ext: Extensions, *, disable_mime_output_conversion: bool = False
) -> bool:
    """Postfix SMTP_MIME_DOWNGRADE: 8bit->7bit conversion will happen.

    The server lacks 8BITMIME, the message is not declared 7bit, and
    ``disable_mime_output_conversion`` is off (smtp_proto.c).
    """
    return (
        not disable_mime_output_conversion
        and not ext.eightbitmime
        and envelope.body is not BodyType.SEVEN_BIT
    )


def _path(mailbox: Mailbox, *, utf8: bool, quote: bool) -> str:
    # A UTF-8 local part without SMTPUTF8 in use goes out as is (Postfix does
    # not refuse it unless the sender requested SMTPUTF8).
    utf8 = utf8 or mailbox.needs_smtputf8
    return mailbox.for_wire(utf8, quote=quote)


def mail_command(
    envelope: Envelope,
    ext: Extensions,
    *,
    disable_mime_output_conversion: bool = False,
    send_dummy_mail_auth: bool = False,
    quote_rfc821_envelope: bool = True,
) -> bytes:
    """``MAIL FROM:<sender>`` with the parameters Postfix adds.

    Args:
        envelope: the message envelope.
        ext: what the server announced.
        disable_mime_output_conversion: Postfix parameter of that name.
        send_dummy_mail_auth: ``smtp_sasl_auth_enable`` and
            ``smtp_send_dummy_mail_auth`` are both on: add ``AUTH=<>`` when
            the server offers AUTH.
        quote_rfc821_envelope: ``smtp_quote_rfc821_envelope``.
    """
    utf8 = smtputf8_in_use(envelope, ext)
    parts = [f"MAIL FROM:{_path(envelope.sender, utf8=utf8, quote=quote_rfc821_envelope)}"]
    # smtp_loop(): "Don't announce SIZE if we're going to MIME downgrade."
    if (
        ext.size
        and envelope.size is not None
        and not mime_downgrade_applies(
            envelope, ext, disable_mime_output_conversion=disable_mime_output_conversion
        )
    ):
        parts.append(f"SIZE={envelope.size}")  # RFC 1870
    if ext.eightbitmime:  # RFC 6152
        if envelope.body is BodyType.EIGHT_BIT:
            parts.append("BODY=8BITMIME")
        elif envelope.body is BodyType.SEVEN_BIT:
            parts.append("BODY=7BIT")
    if ext.dsn:  # RFC 3461 §4.3, §4.4
        if envelope.envid is not None:
            parts.append("ENVID=" + xtext_encode(envelope.envid))
        if envelope.requiretls and not ext.requiretls:
            # smtp_loop() "Fix 20250825: limit content exposure in bounce."
            parts.append(f"RET={Ret.HDRS.value}")
        elif envelope.ret is not None:
            parts.append(f"RET={envelope.ret.value}")
    if utf8:  # RFC 6531 §3.4
        parts.append("SMTPUTF8")
    if envelope.requiretls and ext.requiretls:  # RFC 8689 §4.1
        parts.append("REQUIRETLS")
    if send_dummy_mail_auth and ext.auth:  # RFC 4954 §5
        parts.append("AUTH=<>")
    return _line(" ".join(parts), "MAIL FROM")


def _orcpt_value(recipient: Recipient) -> str | None:
    orcpt = recipient.orcpt
    if orcpt is None:
        return None
    # smtp_loop(): the quoting method must match the ORCPT type.
    try:
        if orcpt.addr_type.lower() == "utf-8":
            return f"{orcpt.addr_type};{uxtext_encode(orcpt.address)}"  # RFC 6533 §3
        return f"{orcpt.addr_type};{xtext_encode(orcpt.address)}"  # RFC 3461 §4.2
    except AddressError:
        return None  # Postfix: "handle uxtext encoder errors" by sending none


def rcpt_command(
    recipient: Recipient,
    ext: Extensions,
    *,
    smtputf8: bool = False,
    quote_rfc821_envelope: bool = True,
) -> bytes:
    """``RCPT TO:<recipient>`` with ``ORCPT=`` and ``NOTIFY=`` when DSN is offered.

    Args:
        recipient: the recipient.
        ext: what the server announced.
        smtputf8: SMTPUTF8 is in use for this transaction
            (:func:`smtputf8_in_use`).
        quote_rfc821_envelope: ``smtp_quote_rfc821_envelope``.
    """
    parts = [f"RCPT TO:{_path(recipient.address, utf8=smtputf8, quote=quote_rfc821_envelope)}"]
    if ext.dsn:
        orcpt = _orcpt_value(recipient)
        if orcpt is not None:
            parts.append("ORCPT=" + orcpt)
        if recipient.notify is not None:
            parts.append("NOTIFY=" + recipient.notify.wire)
    return _line(" ".join(parts), "RCPT TO")


def _known(value: str | None) -> bool:
    # smtp_proto.c _ATTR_AVAIL_AND_KNOWN_
    return bool(value) and value is not None and value.lower() != "unknown"


def _avail(value: str | None) -> bool:
    return bool(value)


_XFORWARD_GROUPS: tuple[tuple[tuple[str, str, Callable[[str | None], bool]], ...], ...] = (
    (("NAME", "name", _known), ("ADDR", "addr", _known), ("PORT", "port", _known)),
    (
        ("PROTO", "proto", _known),
        ("HELO", "helo", _avail),
        ("IDENT", "ident", _avail),
        ("SOURCE", "source", _avail),
    ),
)


def _xtext_plain(value: str) -> str:
    # Postfix xtext_quote_append(..., ""): "+" and octets outside 33..126 are
    # encoded, "=" is not (XFORWARD values are not DSN values).
    return xtext_encode(value).replace("+3D", "=")


def xforward_commands(attrs: Xforward, ext: Extensions) -> tuple[bytes | None, bytes | None]:
    """The two XFORWARD commands Postfix may send before MAIL FROM.

    smtp_loop(): NAME/ADDR/PORT go in the first command, PROTO/HELO/IDENT/
    SOURCE in the second; an attribute goes out only when the server lists
    it and the value is available (and not ``unknown`` for NAME, ADDR,
    PORT, PROTO). A command without attributes is not sent (``None``).

    Raises:
        CommandError: a command would exceed 512 octets (RFC 5321
            §4.5.3.1.4); Postfix relies on sanitised values instead.
    """
    commands: list[bytes | None] = []
    for group in _XFORWARD_GROUPS:
        words = ["XFORWARD"]
        for attr, field, usable in group:
            value = getattr(attrs, field)
            if attr in ext.xforward and usable(value):
                words.append(f"{attr}={_xtext_plain(value)}")
        line: bytes | None = None
        if len(words) > 1:
            line = _line(" ".join(words), "XFORWARD")
            if len(line) > _MAX_COMMAND_LINE:
                raise CommandError("xforward", line, f"command longer than {_MAX_COMMAND_LINE}")
        commands.append(line)
    return commands[0], commands[1]


def auth_command(mechanism: str, initial_response: bytes | None) -> tuple[bytes, bytes | None]:
    """``AUTH mechanism [initial-response]`` and the response to send later, if any.

    The initial response is base64-encoded (``=`` for an empty one, RFC 4954
    §4). When the command would exceed 512 octets it is sent without the
    response, which then answers the server's first (empty) challenge, as
    Postfix does.

    Returns:
        (command line, deferred response line or ``None``)
    """
    if not mechanism or not all(c.isascii() and (c.isalnum() or c in "-_") for c in mechanism):
        raise CommandError("mechanism", mechanism, "not a SASL mechanism name")
    if initial_response is None:
        return _line(f"AUTH {mechanism}", "AUTH"), None
    encoded = base64.b64encode(initial_response).decode("ascii") or "="
    if len(mechanism) + len(encoded) + 8 <= MAX_AUTH_LINE:
        return _line(f"AUTH {mechanism} {encoded}", "AUTH"), None
    return _line(f"AUTH {mechanism}", "AUTH"), _line(encoded, "AUTH")


def auth_response(data: bytes) -> bytes:
    """One base64 client response line for a 334 challenge (RFC 4954 §4)."""
    return base64.b64encode(data) + b"\r\n"


def envelope_failure(envelope: Envelope, ext: Extensions, *, server: str) -> Failure | None:
    """A reason not to send MAIL FROM at all on this session, or ``None``.

    * SMTPUTF8 is required (requested and UTF-8 present) but not offered:
      5.6.7, Postfix smtp_helo() (soft at a non-final server: the delivery
      layer decides).
    * The message is larger than the server's SIZE limit: 5.3.4, Postfix
      smtp_xfer().

    Args:
        server: the server as Postfix names it (``host[address]``).
    """
    if envelope.requires_smtputf8 and not ext.smtputf8:
        return Failure(
            "5.6.7",
            "message requires SMTPUTF8, but no server was found that supports "
            f"SMTPUTF8. The last attempted server was {server}",
        )
    if envelope.size is not None and 0 < ext.size_limit < envelope.size:
        return Failure(
            "5.3.4",
            f"message size {envelope.size} exceeds size limit {ext.size_limit} of server {server}",
        )
    return None
