"""Typed inputs for one mail transaction: envelope, recipients, DSN, XFORWARD.

These frozen values carry what Postfix keeps in a delivery request
(``DELIVER_REQUEST``): the sender, the recipients with their DSN original
recipient (ORCPT) and NOTIFY, the DSN envelope id and RET, the message size,
the declared body encoding, the SMTPUTF8 and REQUIRETLS requests, and the
XFORWARD client attributes. Command text is built from them in
:mod:`pyfix_smtp.protocol.commands`.

Strings are accepted where addresses are expected and parsed with
:meth:`pyfix_smtp.address.Mailbox.parse`; everything is validated when the
value is built, so a bad input fails early with a typed error.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from pyfix_smtp.address import Mailbox, is_ascii
from pyfix_smtp.errors import CommandError

__all__ = [
    "BodyType",
    "Envelope",
    "Notify",
    "OriginalRecipient",
    "Recipient",
    "Ret",
    "Xforward",
]


class Notify(enum.Flag):
    """RFC 3461 §4.1 NOTIFY values (Postfix global/dsn_mask.c)."""

    NEVER = enum.auto()
    SUCCESS = enum.auto()
    FAILURE = enum.auto()
    DELAY = enum.auto()

    @property
    def wire(self) -> str:
        """The NOTIFY parameter value, in Postfix's order (``SUCCESS,FAILURE,DELAY``)."""
        return ",".join(
            name
            for name, member in (
                ("NEVER", Notify.NEVER),
                ("SUCCESS", Notify.SUCCESS),
                ("FAILURE", Notify.FAILURE),
                ("DELAY", Notify.DELAY),
            )
            if member in self
        )

    @classmethod
    def parse(cls, text: str) -> Notify:
        """Parse a comma-separated NOTIFY list such as ``"FAILURE,DELAY"`` (any case)."""
        value = cls(0)
        for word in text.split(","):
            try:
                value |= cls[word.strip().upper()]
            except KeyError:
                raise CommandError("notify", text, f"unknown NOTIFY value {word!r}") from None
        _check_notify(value)
        return value


def _check_notify(value: Notify) -> None:
    # RFC 3461 §4.1: NEVER excludes the others; an empty list is not allowed.
    if not value:
        raise CommandError("notify", value, "empty NOTIFY list")
    if Notify.NEVER in value and value != Notify.NEVER:
        raise CommandError("notify", value, "NEVER cannot be combined with other values")


class Ret(enum.Enum):
    """RFC 3461 §4.3 RET: return the full message or only its headers in a DSN."""

    FULL = "FULL"
    HDRS = "HDRS"


class BodyType(enum.Enum):
    """The message's declared content encoding (Postfix ``request->encoding``).

    ``EIGHT_BIT`` when a MIME ``Content-Transfer-Encoding: 8bit``/``binary``
    was seen or the sender declared ``BODY=8BITMIME``; ``SEVEN_BIT`` when the
    message was declared 7bit; ``UNDECLARED`` otherwise. Postfix sends
    ``BODY=8BITMIME`` / ``BODY=7BIT`` from this declaration, never from
    looking at the bytes.
    """

    UNDECLARED = ""
    SEVEN_BIT = "7bit"
    EIGHT_BIT = "8bit"


@dataclass(frozen=True, slots=True)
class OriginalRecipient:
    """An RFC 3461 ORCPT value before encoding: address type and address.

    Attributes:
        addr_type: ``"rfc822"`` or ``"utf-8"`` (RFC 6533), or another
            registered type received from upstream.
        address: the decoded original recipient address.
    """

    addr_type: str
    address: str

    def __post_init__(self) -> None:
        t = self.addr_type
        if not t or not t.isascii() or not all(c.isalnum() or c == "-" for c in t):
            raise CommandError("orcpt", t, "malformed ORCPT address type")
        if not self.address:
            raise CommandError("orcpt", self.address, "empty ORCPT address")
        if "\0" in self.address:
            raise CommandError("orcpt", self.address, "NUL in ORCPT address")

    @classmethod
    def for_address(cls, address: str | Mailbox) -> OriginalRecipient:
        """The ORCPT Postfix derives from an original recipient address.

        smtp_proto.c smtp_loop(): ``rfc822`` for ASCII, ``utf-8`` when the
        address holds UTF-8 (the local part is quoted as needed).
        """
        text = str(address) if isinstance(address, Mailbox) else _quoted(address)
        return cls("rfc822" if is_ascii(text) else "utf-8", text)


def _quoted(address: str) -> str:
    # Postfix keeps orig_addr unquoted and quotes the local part when
    # building ORCPT (quote_822_local()).
    try:
        return str(Mailbox.from_unquoted(address, enforce_limits=False))
    except ValueError as exc:
        raise CommandError("orcpt", address, f"unusable original recipient: {exc}") from None


@dataclass(frozen=True, slots=True, init=False)
class Recipient:
    """One envelope recipient with its DSN attributes.

    Attributes:
        address: where to deliver (RCPT TO).
        orcpt: the DSN original recipient, sent as ``ORCPT=`` when the server
            offers DSN; ``None`` sends none.
        notify: DSN NOTIFY, sent when the server offers DSN; ``None`` sends
            none.
    """

    address: Mailbox
    orcpt: OriginalRecipient | None
    notify: Notify | None

    def __init__(
        self,
        address: Mailbox | str,
        *,
        orcpt: OriginalRecipient | Mailbox | str | None = None,
        notify: Notify | str | None = None,
    ) -> None:
        mailbox = (
            address
            if isinstance(address, Mailbox)
            else Mailbox.parse(address, allow_postmaster=True)
        )
        if mailbox.is_null:
            raise CommandError("recipient", address, "the null address is not a recipient")
        if orcpt is not None and not isinstance(orcpt, OriginalRecipient):
            orcpt = OriginalRecipient.for_address(orcpt)
        if isinstance(notify, str):
            notify = Notify.parse(notify)
        elif notify is not None:
            _check_notify(notify)
        object.__setattr__(self, "address", mailbox)
        object.__setattr__(self, "orcpt", orcpt)
        object.__setattr__(self, "notify", notify)


_XFORWARD_FIELDS = ("name", "addr", "port", "proto", "helo", "ident", "source")


@dataclass(frozen=True, slots=True)
class Xforward:
    """Client attributes for XFORWARD (Postfix XFORWARD_README).

    ``None`` (or an empty string) means the attribute is not available.
    Postfix sends NAME, ADDR, PORT and PROTO only when the value is not
    ``unknown``; ``source`` is ``"LOCAL"`` or ``"REMOTE"``.
    """

    name: str | None = None
    addr: str | None = None
    port: str | None = None
    proto: str | None = None
    helo: str | None = None
    ident: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        for field_name in _XFORWARD_FIELDS:
            value = getattr(self, field_name)
            if value is not None and not isinstance(value, str):
                raise CommandError(f"xforward.{field_name}", value, "must be a str or None")
            if value and "\0" in value:
                raise CommandError(f"xforward.{field_name}", value, "NUL is not allowed")
        if self.source not in (None, "", "LOCAL", "REMOTE"):
            raise CommandError("xforward.source", self.source, "must be LOCAL or REMOTE")


@dataclass(frozen=True, slots=True, init=False)
class Envelope:
    """The envelope of one message, as the SMTP client needs it.

    Attributes:
        sender: the reverse-path (the null sender ``<>`` for bounces).
        recipients: one or more recipients, in order.
        envid: DSN envelope id (ENVID, RFC 3461 §4.4), sent xtext-encoded
            when the server offers DSN.
        ret: DSN RET, sent when the server offers DSN.
        size: message size in octets for ``SIZE=`` and the server's SIZE
            limit check; ``None`` sends no SIZE and skips the check.
        body: the declared content encoding (``BODY=``).
        smtputf8: the sender requested SMTPUTF8 (or Postfix's
            ``smtputf8_autodetect_classes`` decided so).
        utf8_headers: the message headers contain UTF-8 (Postfix
            SMTPUTF8_FLAG_HEADER); with *smtputf8* it makes SMTPUTF8
            mandatory.
        requiretls: REQUIRETLS (RFC 8689) was requested and the REQUIRETLS
            policy is not ``disable``.
        xforward: client attributes for XFORWARD, when forwarding them.
    """

    sender: Mailbox
    recipients: tuple[Recipient, ...]
    envid: str | None
    ret: Ret | None
    size: int | None
    body: BodyType
    smtputf8: bool
    utf8_headers: bool
    requiretls: bool
    xforward: Xforward | None

    def __init__(
        self,
        sender: Mailbox | str,
        recipients: Iterable[Recipient | Mailbox | str],
        *,
        envid: str | None = None,
        ret: Ret | str | None = None,
        size: int | None = None,
        body: BodyType = BodyType.UNDECLARED,
        smtputf8: bool = False,
        utf8_headers: bool = False,
        requiretls: bool = False,
        xforward: Xforward | None = None,
    ) -> None:
        mailbox = sender if isinstance(sender, Mailbox) else Mailbox.parse(sender, allow_null=True)
        rcpts = tuple(r if isinstance(r, Recipient) else Recipient(r) for r in recipients)
        if not rcpts:
            raise CommandError("recipients", (), "an envelope needs at least one recipient")
        if envid is not None and (not envid or "\0" in envid):
            raise CommandError("envid", envid, "ENVID must be non-empty and without NUL")
        if isinstance(ret, str):
            try:
                ret = Ret(ret.upper())
            except ValueError:
                raise CommandError("ret", ret, "RET must be FULL or HDRS") from None
        if size is not None and (isinstance(size, bool) or size < 0):
            raise CommandError("size", size, "SIZE must be a non-negative integer")
        if not isinstance(body, BodyType):
            raise CommandError("body", body, "body must be a BodyType")
        object.__setattr__(self, "sender", mailbox)
        object.__setattr__(self, "recipients", rcpts)
        object.__setattr__(self, "envid", envid)
        object.__setattr__(self, "ret", ret)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "smtputf8", bool(smtputf8))
        object.__setattr__(self, "utf8_headers", bool(utf8_headers))
        object.__setattr__(self, "requiretls", bool(requiretls))
        object.__setattr__(self, "xforward", xforward)

    @property
    def has_utf8(self) -> bool:
        """UTF-8 that needs SMTPUTF8: in the headers or in an address's local part.

        Postfix SMTPUTF8_FLAG_DERIVED; see :func:`pyfix_smtp.address.needs_smtputf8`
        for why a U-label domain alone does not count.
        """
        return (
            self.utf8_headers
            or self.sender.needs_smtputf8
            or any(r.address.needs_smtputf8 for r in self.recipients)
        )

    @property
    def requires_smtputf8(self) -> bool:
        """Postfix DELIVERY_REQUIRES_SMTPUTF8: requested *and* UTF-8 present."""
        return self.smtputf8 and self.has_utf8
