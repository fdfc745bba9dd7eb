"""Envelope addresses: RFC 5321 mailboxes, IDNA domains, xtext and uxtext.

* :class:`Mailbox` is one envelope address: a local part and a domain (a host
  name in A-label or U-label form, or an address literal), or the null sender
  :data:`NULL_SENDER`. :meth:`Mailbox.parse` reads RFC 5321 / RFC 6531 syntax;
  :meth:`Mailbox.for_wire` renders the ``<...>`` path for MAIL FROM and RCPT
  TO, quoting the local part like Postfix's ``quote_821_local()``.
* :func:`to_ascii_domain` / :func:`to_unicode_domain` convert host names
  between U-labels and A-labels (IDNA2008 with UTS 46 mapping, via ``idna``).
* :func:`xtext_encode` / :func:`xtext_decode` implement RFC 3461 §4 xtext
  (ENVID, ORCPT); :func:`uxtext_encode`, :func:`unitext_encode` and
  :func:`uxtext_decode` implement RFC 6533 §3 utf-8-addr-xtext and
  utf-8-addr-unitext; :func:`encode_orcpt` / :func:`decode_orcpt` build and
  read the ORCPT value.

Nothing here is repaired silently: bad input raises
:class:`~pyfix_smtp.errors.AddressError` with the offending text, the reason
and the 0-based position of the first bad character when there is one.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import KW_ONLY, dataclass, field
from typing import Final

import idna

from pyfix_smtp.errors import AddressError

__all__ = [
    "MAX_DOMAIN_OCTETS",
    "MAX_LABEL_OCTETS",
    "MAX_LOCAL_PART_OCTETS",
    "MAX_PATH_OCTETS",
    "NULL_SENDER",
    "Mailbox",
    "decode_orcpt",
    "encode_orcpt",
    "is_ascii",
    "is_dot_string",
    "needs_smtputf8",
    "parse_address_literal",
    "quote_local_part",
    "to_ascii_domain",
    "to_unicode_domain",
    "unitext_encode",
    "uxtext_decode",
    "uxtext_encode",
    "xtext_decode",
    "xtext_decode_bytes",
    "xtext_encode",
]

MAX_LOCAL_PART_OCTETS: Final = 64  # RFC 5321 §4.5.3.1.1
MAX_DOMAIN_OCTETS: Final = 255  # RFC 5321 §4.5.3.1.2
MAX_PATH_OCTETS: Final = 256  # RFC 5321 §4.5.3.1.3, "<" and ">" included
MAX_LABEL_OCTETS: Final = 63  # RFC 1035 §2.3.4; Postfix valid_hostname() VALID_LABEL_LEN

# Characters that never belong in an address: C0 controls (CR, LF, NUL ...),
# DEL, C1 controls and lone surrogates (not encodable as UTF-8).
_BAD_CHAR_RE: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# RFC 5321 §4.1.2 Dot-string of atext; RFC 6531 §3.3 adds UTF8-non-ascii to
# atext (C1 controls and surrogates excluded).
_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u00a0-\ud7ff\ue000-\U0010ffff]"
_DOT_STRING_RE: Final = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_ATEXT_RE: Final = re.compile(_ATEXT)

# One host name label: letters, digits, hyphen, and "_" (Postfix
# valid_hostname() accepts "_"; RFC 5321 Let-dig does not, but real names have it).
_LABEL_RE: Final = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_ASCII_HOST_RE: Final = re.compile(
    r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*"
)
# UTS 46 §2.3: these full stops separate labels just like "."
_LABEL_SEP_RE: Final = re.compile("[.\u3002\uff0e\uff61]")
_DOT_RE: Final = re.compile(r"\.")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_ascii(text: str) -> bool:
    """Return True when *text* is pure US-ASCII (RFC 6531: no SMTPUTF8 needed)."""
    return text.isascii()


def _bad_char(text: str) -> tuple[int, str] | None:
    """Return (position, description) of the first control character, if any."""
    m = _BAD_CHAR_RE.search(text)
    if m is None:
        return None
    return m.start(), f"control character U+{ord(m.group()):04X}"


# --------------------------------------------------------------------------
# Domains


def _label_problem(label: str) -> tuple[str, int] | None:
    """Check one ASCII label; return (reason, index in label) or None."""
    if _LABEL_RE.fullmatch(label):
        if label[:4].lower() == "xn--":
            try:  # RFC 5890 §2.3.2.1: an A-label must decode to a valid U-label
                idna.ulabel(label)
            except UnicodeError as exc:
                return f"invalid A-label ({exc})", 0
        return None
    if not label:
        return "empty label (misplaced '.')", 0
    for i, ch in enumerate(label):
        if not (ch.isascii() and (ch.isalnum() or ch in "-_")):
            return f"invalid character {ch!r} in domain", i
    if label[0] == "-":  # RFC 952/1123; Postfix valid_hostname() "misplaced hyphen"
        return "label starts with '-'", 0
    if label[-1] == "-":
        return "label ends with '-'", len(label) - 1
    return f"label longer than {MAX_LABEL_OCTETS} octets", MAX_LABEL_OCTETS


def _check_ascii_labels(name: str, labels: list[str], starts: list[int]) -> None:
    """Validate ASCII labels (reporting positions in *name*) and the whole name."""
    for label, start in zip(labels, starts, strict=True):
        problem = _label_problem(label)
        if problem is not None:
            raise AddressError(name, problem[0], start + problem[1])
    ascii_name = ".".join(labels)
    if len(ascii_name) > MAX_DOMAIN_OCTETS:  # RFC 5321 §4.5.3.1.2
        raise AddressError(name, f"domain longer than {MAX_DOMAIN_OCTETS} octets", None)
    if all(label.isdigit() for label in labels):  # Postfix valid_hostname() "numeric hostname"
        raise AddressError(
            name, "numeric domain name (an address must be written as [192.0.2.1])", 0
        )


def _split_with_starts(name: str, pattern: re.Pattern[str]) -> tuple[list[str], list[int]]:
    labels: list[str] = []
    starts: list[int] = []
    pos = 0
    for m in pattern.finditer(name):
        labels.append(name[pos : m.start()])
        starts.append(pos)
        pos = m.end()
    labels.append(name[pos:])
    starts.append(pos)
    return labels, starts


def to_ascii_domain(domain: str) -> str:
    """Return *domain* with every U-label converted to its A-label.

    ASCII names are validated and returned unchanged (case kept): letters,
    digits, ``-`` and ``_`` (as Postfix's ``valid_hostname()``), labels of at
    most 63 octets, at most 255 octets in all, not all-numeric, and any
    ``xn--`` label must be a valid A-label. Non-ASCII labels are mapped with
    UTS 46 (non-transitional) and converted with IDNA2008, as Postfix's
    ``midna_domain_to_ascii()`` does.

    Raises:
        AddressError: the name is empty, malformed, or not valid IDNA.
    """
    if not domain:
        raise AddressError(domain, "empty domain", 0)
    if domain.isascii():
        if (
            _ASCII_HOST_RE.fullmatch(domain)
            and len(domain) <= MAX_DOMAIN_OCTETS
            and "xn--" not in domain.lower()
            and not _all_numeric(domain)
        ):
            return domain  # fast path: plain LDH name
        labels, starts = _split_with_starts(domain, _DOT_RE)
        _check_ascii_labels(domain, labels, starts)
        return domain
    bad = _bad_char(domain)
    if bad is not None:
        raise AddressError(domain, bad[1], bad[0])
    out_labels: list[str] = []
    out_starts: list[int] = []
    labels, starts = _split_with_starts(domain, _LABEL_SEP_RE)
    for label, start in zip(labels, starts, strict=True):
        if label.isascii():
            out_labels.append(label)
            out_starts.append(start)
            continue
        try:  # UTS 46 §4 mapping; Postfix midna_domain.c uidna_openUTS46(NONTRANSITIONAL)
            mapped = idna.uts46_remap(label, std3_rules=False)
        except UnicodeError as exc:
            raise AddressError(
                domain, f"invalid international domain name ({exc})", start
            ) from None
        for sub in mapped.split("."):
            if sub.isascii():
                out_labels.append(sub)
            else:
                try:  # RFC 5891 §4: U-label -> A-label (IDNA2008 rules)
                    out_labels.append(idna.alabel(sub).decode("ascii"))
                except UnicodeError as exc:
                    raise AddressError(domain, f"invalid IDNA label ({exc})", start) from None
            out_starts.append(start)
    _check_ascii_labels(domain, out_labels, out_starts)
    return ".".join(out_labels)


def _all_numeric(name: str) -> bool:
    return name.replace(".", "").isdigit()


def to_unicode_domain(domain: str) -> str:
    """Return *domain* with every A-label (``xn--``) shown as its U-label.

    The name is validated first (see :func:`to_ascii_domain`); non-ASCII
    labels come back in their UTS 46 mapped form, ASCII labels unchanged.

    Raises:
        AddressError: the name is malformed or not valid IDNA.
    """
    return _unicode_from_ascii(to_ascii_domain(domain))


def _unicode_from_ascii(ascii_name: str) -> str:
    """U-label form of a name already validated by :func:`to_ascii_domain`."""
    if "xn--" not in ascii_name.lower():
        return ascii_name
    return ".".join(
        idna.ulabel(label) if label[:4].lower() == "xn--" else label
        for label in ascii_name.split(".")
    )


def parse_address_literal(text: str) -> IPAddress:
    """Parse an RFC 5321 §4.1.3 address literal such as ``[192.0.2.1]``.

    Accepts ``[IPv4]`` and ``[IPv6:addr]`` (tag case-insensitive). General
    address literals (``[tag:...]``), zone indexes and IPv4 octets with leading
    zeros are rejected.

    Raises:
        AddressError: not a well-formed IPv4 or IPv6 address literal.
    """
    if text[:1] == "[" and (len(text) < 2 or text[-1] != "]"):
        raise AddressError(text, "unbalanced '[' in address literal", 0)
    if len(text) < 2 or text[0] != "[" or text[-1] != "]":
        raise AddressError(text, "address literal must be enclosed in [ ]", 0)
    body = text[1:-1]
    if body[:5].lower() == "ipv6:":  # RFC 5321 §4.1.3 IPv6-address-literal
        addr = body[5:]
        if "%" in addr:
            raise AddressError(text, "zone index not allowed in address literal", text.index("%"))
        try:
            return ipaddress.IPv6Address(addr)
        except ValueError:
            raise AddressError(text, "malformed IPv6 address literal", 6) from None
    if ":" in body:  # RFC 5321 §4.1.3 General-address-literal: no tag is registered
        raise AddressError(text, "unsupported address literal (use [IPv6:...] for IPv6)", 1)
    try:
        return ipaddress.IPv4Address(body)
    except ValueError:
        raise AddressError(text, "malformed IPv4 address literal", 1) from None


# --------------------------------------------------------------------------
# Local parts


def is_dot_string(local_part: str) -> bool:
    """True when *local_part* can be sent unquoted (RFC 5321 Dot-string, RFC 6531 atext)."""
    return _DOT_STRING_RE.fullmatch(local_part) is not None


def quote_local_part(local_part: str) -> str:
    """Render a local part for the wire, like Postfix ``quote_821_local()``.

    A valid Dot-string is returned as is; anything else becomes a
    Quoted-string with ``\\`` before ``"`` and ``\\``. UTF-8 characters stay
    as they are (Postfix quotes with ``QUOTE_FLAG_8BITCLEAN``).

    Raises:
        AddressError: the local part holds a control character, which no
            RFC 5321 form can carry.
    """
    if _DOT_STRING_RE.fullmatch(local_part):  # Postfix quote_821_local.c is_821_dot_string()
        return local_part
    bad = _bad_char(local_part)
    if bad is not None:
        raise AddressError(local_part, bad[1] + " in local part", bad[0])
    # Postfix quote_821_local.c make_821_quoted_string(); RFC 5321 §4.1.2 quoted-pairSMTP
    escaped = local_part.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _parse_local_part(text: str, start: int, end: int) -> tuple[str, int]:
    """Parse the local part in text[start:end]; return (value, index after it)."""
    if start < end and text[start] == '"':
        # RFC 5321 §4.1.2 Quoted-string = DQUOTE *QcontentSMTP DQUOTE
        chars: list[str] = []
        i = start + 1
        while i < end:
            ch = text[i]
            if ch == '"':
                return "".join(chars), i + 1
            if ch == "\\":
                # quoted-pairSMTP = %d92 %d32-126
                if i + 1 >= end:
                    break
                nxt = text[i + 1]
                if not " " <= nxt <= "~":
                    raise AddressError(text, "backslash must be followed by printable ASCII", i)
                chars.append(nxt)
                i += 2
                continue
            # qtextSMTP = %d32-33 / %d35-91 / %d93-126; RFC 6531 adds UTF8-non-ascii
            chars.append(ch)
            i += 1
        raise AddressError(text, "unterminated quoted string", start)
    at = text.find("@", start, end)
    stop = end if at < 0 else at
    local = text[start:stop]
    if _DOT_STRING_RE.fullmatch(local):
        return local, stop
    # Say exactly what is wrong with the Dot-string.
    if not local:
        raise AddressError(text, "empty local part", start)
    for i in range(start, stop):
        ch = text[i]
        if ch == ".":
            if i == start:
                raise AddressError(text, "local part starts with '.'", i)
            if i + 1 == stop:
                raise AddressError(text, "local part ends with '.'", i)
            if text[i + 1] == ".":
                raise AddressError(text, "'..' in unquoted local part", i)
        elif not _ATEXT_RE.fullmatch(ch):
            what = "quote" if ch == '"' else repr(ch)
            raise AddressError(text, f"character {what} not allowed in unquoted local part", i)
    raise AddressError(text, "malformed local part", start)  # pragma: no cover


# --------------------------------------------------------------------------
# Mailbox


@dataclass(frozen=True, slots=True)
class Mailbox:
    """One envelope address (RFC 5321 Mailbox), or the null sender.

    Attributes:
        local_part: the local part as a value: without the quotes and
            backslashes of a Quoted-string (``john doe`` for
            ``"john doe"@example.com``). May contain UTF-8 (RFC 6531).
        domain: the domain as given: a host name in A-label or U-label form, or
            an address literal such as ``[192.0.2.1]`` or ``[IPv6:2001:db8::1]``.
            Empty only for the null sender and for the bare ``postmaster``
            recipient (RFC 5321 §4.1.1.3).
        enforce_limits: when True (default) the local part (64 octets) and path
            (256 octets) limits of RFC 5321 §4.5.3.1 are enforced; Postfix does
            not enforce them when sending, so pass False to accept longer
            addresses (e.g. SRS or VERP addresses); see :attr:`within_limits`.
        ascii_domain: the domain with A-labels (what DNS and non-SMTPUTF8
            servers see); the literal text for an address literal.
        unicode_domain: the domain with U-labels, for display.
        literal: the IP address of an address literal, else None.
        quoted_local: the local part as RFC 5321 requires it on the wire.

    Two mailboxes are equal when local part and domain text are equal.

    Raises:
        AddressError: a control character, a malformed domain or literal, an
            empty domain (except ``postmaster``), or an over-long part.
    """

    local_part: str
    domain: str
    _: KW_ONLY
    enforce_limits: bool = field(default=True, compare=False, repr=False)
    ascii_domain: str = field(init=False, compare=False, repr=False)
    unicode_domain: str = field(init=False, compare=False, repr=False)
    literal: IPAddress | None = field(init=False, compare=False, repr=False)
    quoted_local: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        local, domain = self.local_part, self.domain
        if not isinstance(local, str) or not isinstance(domain, str):
            raise TypeError("Mailbox local_part and domain must be str")
        literal: IPAddress | None = None
        if not domain:
            ascii_domain = unicode_domain = ""
            if local and local.lower() != "postmaster":  # RFC 5321 §4.1.1.3 <Postmaster>
                raise AddressError(local, "missing '@domain'", len(local))
        elif domain[0] == "[":
            literal = parse_address_literal(domain)
            ascii_domain = unicode_domain = domain
        else:
            ascii_domain = to_ascii_domain(domain)
            unicode_domain = _unicode_from_ascii(ascii_domain)
            if len(domain.encode()) > MAX_DOMAIN_OCTETS:  # RFC 5321 §4.5.3.1.2
                raise AddressError(domain, f"domain longer than {MAX_DOMAIN_OCTETS} octets")
        quoted = quote_local_part(local) if (local or domain) else ""  # null: nothing to quote
        object.__setattr__(self, "ascii_domain", ascii_domain)
        object.__setattr__(self, "unicode_domain", unicode_domain)
        object.__setattr__(self, "literal", literal)
        object.__setattr__(self, "quoted_local", quoted)
        if self.enforce_limits:
            problem = self._limit_problem()
            if problem is not None:
                raise AddressError(str(self), problem)

    # -- construction -----------------------------------------------------

    @classmethod
    def null(cls) -> Mailbox:
        """The null reverse-path ``<>`` (RFC 5321 §4.5.5), i.e. :data:`NULL_SENDER`."""
        return NULL_SENDER

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        allow_null: bool = False,
        allow_postmaster: bool = False,
        enforce_limits: bool = True,
    ) -> Mailbox:
        """Parse an RFC 5321 Mailbox (``local@domain``) or Path (``<local@domain>``).

        Args:
            text: the address. No surrounding whitespace, no comments, no
                display names; nothing is trimmed or repaired.
            allow_null: accept ``<>`` (and the empty string) as the null sender.
            allow_postmaster: accept ``postmaster`` / ``<Postmaster>`` without a
                domain (RFC 5321 §4.1.1.3, RCPT TO only).
            enforce_limits: see :attr:`enforce_limits`.

        Raises:
            AddressError: with the reason and the position of the problem.
        """
        if not isinstance(text, str):
            raise TypeError("Mailbox.parse() needs a str")
        bad = _bad_char(text)
        if bad is not None:
            raise AddressError(text, bad[1], bad[0])
        start, end = 0, len(text)
        if text.startswith("<"):
            if not text.endswith(">") or end == 1:
                raise AddressError(text, "unbalanced '<'", 0)
            start, end = 1, end - 1
        elif text.endswith(">"):
            raise AddressError(text, "unbalanced '>'", end - 1)
        if start == end:
            if allow_null:
                return NULL_SENDER
            raise AddressError(text, "null address not allowed here", 0)
        if text[start] == "@":
            if ":" in text[start:end]:  # RFC 5321 §4.1.2 A-d-l; Appendix C: obsolete
                raise AddressError(text, "source route (@host:...) not supported", start)
            raise AddressError(text, "empty local part", start)
        local, pos = _parse_local_part(text, start, end)
        if pos == end:
            if allow_postmaster and local.lower() == "postmaster":
                return cls(local, "", enforce_limits=enforce_limits)
            raise AddressError(text, "missing '@domain'", end)
        if text[pos] != "@":
            raise AddressError(text, "'@' expected after the local part", pos)
        dom_start = pos + 1
        domain = text[dom_start:end]
        if not domain:
            raise AddressError(text, "empty domain", dom_start)
        try:
            if domain[0] == "[":
                parse_address_literal(domain)
            else:
                to_ascii_domain(domain)
        except AddressError as exc:
            pos_in = None if exc.position is None else dom_start + exc.position
            raise AddressError(text, exc.reason, pos_in) from None
        try:
            return cls(local, domain, enforce_limits=enforce_limits)
        except AddressError as exc:
            raise AddressError(text, exc.reason, None) from None

    @classmethod
    def from_unquoted(cls, text: str, *, enforce_limits: bool = True) -> Mailbox:
        """Build a Mailbox from Postfix's internal (unquoted) form ``local@domain``.

        The split is at the last ``@``, as Postfix ``quote_821_local()`` does;
        the empty string is the null sender. ``john doe@example.com`` gives the
        local part ``john doe``.

        Raises:
            AddressError: no ``@`` (other than ``postmaster``), control
                characters, a malformed domain, over-long parts.
        """
        if text == "":
            return NULL_SENDER
        at = text.rfind("@")
        if at < 0:
            return cls(text, "", enforce_limits=enforce_limits)
        return cls(text[:at], text[at + 1 :], enforce_limits=enforce_limits)

    # -- views --------------------------------------------------------------

    @property
    def is_null(self) -> bool:
        """True for the null sender ``<>``."""
        return not self.local_part and not self.domain

    @property
    def needs_smtputf8(self) -> bool:
        """True when this address can only be sent with SMTPUTF8 (UTF-8 local part).

        A U-label domain does not need SMTPUTF8: :meth:`for_wire` sends its
        A-label form to servers without SMTPUTF8 (RFC 5890 §2.3.2.1: the
        forms are equivalent).
        """
        return not self.local_part.isascii()

    @property
    def unquoted(self) -> str:
        """Postfix's internal form: local part and domain without quoting."""
        if not self.domain:
            return self.local_part
        return f"{self.local_part}@{self.domain}"

    @property
    def within_limits(self) -> bool:
        """True when the RFC 5321 §4.5.3.1 size limits hold (see :attr:`enforce_limits`)."""
        return self._limit_problem() is None

    def _limit_problem(self) -> str | None:
        if self.is_null:
            return None
        if len(self.quoted_local.encode()) > MAX_LOCAL_PART_OCTETS:  # RFC 5321 §4.5.3.1.1
            return f"local part longer than {MAX_LOCAL_PART_OCTETS} octets"
        at = 1 if self.domain else 0
        local_len = len(self.quoted_local.encode())
        longest = max(len(self.ascii_domain), len(self.domain.encode()))
        if 2 + local_len + at + longest > MAX_PATH_OCTETS:  # RFC 5321 §4.5.3.1.3
            return f"path longer than {MAX_PATH_OCTETS} octets"
        return None

    def for_wire(self, smtputf8: bool = False, *, quote: bool = True) -> str:
        """Return the ``<...>`` path for MAIL FROM / RCPT TO.

        Args:
            smtputf8: True when the SMTPUTF8 extension is used for this
                transaction: the domain goes out as given (U-labels allowed).
                When False the A-label form is sent, and a UTF-8 local part
                is an error.
            quote: Postfix ``smtp_quote_rfc821_envelope``: when False the local
                part goes out unquoted (Postfix's internal form).

        Raises:
            AddressError: the local part is UTF-8 and *smtputf8* is False.
        """
        if self.is_null:
            return "<>"
        local = self.quoted_local if quote else self.local_part
        if smtputf8:
            domain = self.domain
        else:
            if not self.local_part.isascii():  # RFC 6531 §3.2: UTF-8 local part needs SMTPUTF8
                raise AddressError(self.unquoted, "UTF-8 local part requires SMTPUTF8")
            domain = self.ascii_domain
        if not domain:
            return f"<{local}>"
        return f"<{local}@{domain}>"

    def __str__(self) -> str:
        """RFC 5321 text: quoted local part, ``@`` and the domain as given."""
        if not self.domain:
            return self.quoted_local
        return f"{self.quoted_local}@{self.domain}"


NULL_SENDER: Final = Mailbox("", "")
"""The null reverse-path ``<>`` used for bounces (RFC 5321 §4.5.5)."""


def needs_smtputf8(mailbox: Mailbox) -> bool:
    """True when *mailbox* cannot be sent without SMTPUTF8 (a UTF-8 local part).

    U-label domains are sent as A-labels instead. Postfix itself treats any
    non-ASCII address as needing SMTPUTF8 (qmgr_deliver.c
    SMTPUTF8_FLAG_RECIPIENT); see docs/differences.md.
    """
    return mailbox.needs_smtputf8


# --------------------------------------------------------------------------
# xtext (RFC 3461 §4)

# xchar = "!" .. "~" except "+" and "="
_XTEXT_SPECIAL_RE: Final = re.compile(rb"[^\x21-\x2a\x2c-\x3c\x3e-\x7e]")
_XTEXT_TOKEN_RE: Final = re.compile(r"\+([0-9A-Fa-f]{2})|([\x21-\x2a\x2c-\x3c\x3e-\x7e]+)")


def xtext_encode(value: str | bytes) -> str:
    """Encode *value* as RFC 3461 xtext (``+XX`` for ``+``, ``=``, SP, controls, 8-bit).

    A str is encoded as UTF-8 first; each octet outside ``!``..``~`` and each
    ``+`` or ``=`` becomes ``+`` and two uppercase hex digits, like Postfix's
    ``xtext_quote(..., "+=")``.
    """
    data = value.encode("utf-8", "strict") if isinstance(value, str) else bytes(value)
    if _XTEXT_SPECIAL_RE.search(data) is None:
        return data.decode("ascii")
    return _XTEXT_SPECIAL_RE.sub(lambda m: b"+%02X" % m.group()[0], data).decode("ascii")


def xtext_decode_bytes(text: str) -> bytes:
    """Decode RFC 3461 xtext to octets.

    Lowercase hex digits are accepted (as Postfix does); a ``+`` not followed
    by two hex digits, and any character outside ``xchar`` (space, controls,
    ``=``, non-ASCII) is an error.

    Raises:
        AddressError: with the position of the malformed sequence.
    """
    out = bytearray()
    pos = 0
    end = len(text)
    while pos < end:
        m = _XTEXT_TOKEN_RE.match(text, pos)
        if m is None:
            ch = text[pos]
            if ch == "+":
                raise AddressError(text, "'+' must be followed by two hex digits", pos)
            raise AddressError(text, f"character {ch!r} not allowed in xtext", pos)
        if m.group(1) is not None:
            out.append(int(m.group(1), 16))
        else:
            out += m.group(2).encode("ascii")
        pos = m.end()
    return bytes(out)


def xtext_decode(text: str) -> str:
    """Decode RFC 3461 xtext to a str (the octets must be UTF-8).

    Raises:
        AddressError: malformed xtext, or octets that are not UTF-8.
    """
    data = xtext_decode_bytes(text)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AddressError(text, "decoded xtext is not UTF-8", None) from exc


# --------------------------------------------------------------------------
# utf-8-addr-xtext / utf-8-addr-unitext (RFC 6533 §3)

# QCHAR = %x21-2a / %x2c-3c / %x3e-5b / %x5d-7e (printable ASCII except SP \ + =)
_UX_ASCII_SPECIAL: Final = "[\x00-\x20+=\\\\\x7f]"
_UXTEXT_ESCAPE_RE: Final = re.compile(f"{_UX_ASCII_SPECIAL}|[^\x00-\x7f]")
# unitext keeps UTF-8 raw, but C1 controls are escaped too (never raw in our output)
_UNITEXT_ESCAPE_RE: Final = re.compile(f"{_UX_ASCII_SPECIAL}|[\x80-\x9f]")
_UXTEXT_TOKEN_RE: Final = re.compile(
    r"\\x\{([0-9A-Fa-f]{1,6})\}|([\x21-\x2a\x2c-\x3c\x3e-\x5b\x5d-\x7e]+)|([^\x00-\x7f]+)"
)


def _ux_escape(m: re.Match[str]) -> str:
    return f"\\x{{{ord(m.group()):02X}}}"


def _check_ux_input(text: str) -> None:
    i = text.find("\x00")
    if i >= 0:  # RFC 6533 §3 HEXPOINT cannot express NUL
        raise AddressError(text, "NUL cannot be encoded", i)
    m = re.search("[\ud800-\udfff]", text)
    if m is not None:
        raise AddressError(text, "lone surrogate cannot be encoded", m.start())


def uxtext_encode(text: str) -> str:
    """Encode as RFC 6533 utf-8-addr-xtext (7-bit: every non-QCHAR as ``\\x{HEX}``).

    ASCII controls, space, ``+``, ``=``, ``\\`` and every non-ASCII character
    become ``\\x{XX}`` (at least two uppercase hex digits), as Postfix
    ``uxtext_quote(..., "+=")``. Safe in ORCPT without SMTPUTF8.

    Raises:
        AddressError: the text holds NUL or a lone surrogate.
    """
    _check_ux_input(text)
    return _UXTEXT_ESCAPE_RE.sub(_ux_escape, text)


def unitext_encode(text: str) -> str:
    """Encode as RFC 6533 utf-8-addr-unitext (UTF-8 kept, ASCII specials escaped).

    Like :func:`uxtext_encode` but non-ASCII characters stay as they are
    (C1 controls excepted). Only for use when the SMTPUTF8 extension is in use.

    Raises:
        AddressError: the text holds NUL or a lone surrogate.
    """
    _check_ux_input(text)
    return _UNITEXT_ESCAPE_RE.sub(_ux_escape, text)


def _hexpoint_ok(digits: str, cp: int) -> bool:
    """RFC 6533 §3 HEXPOINT: canonical digits for "\\", SP, "+", "=", controls, non-ASCII."""
    if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF or cp == 0:
        return False
    if len(digits) != max(2, len(f"{cp:X}")):  # no superfluous leading zeros
        return False
    # ASCII escapes are allowed only for the characters that may not appear raw.
    return cp >= 0x80 or cp <= 0x20 or cp in (0x2B, 0x3D, 0x5C, 0x7F)


def uxtext_decode(text: str) -> str:
    """Decode RFC 6533 utf-8-addr-xtext or utf-8-addr-unitext.

    Raw UTF-8 characters (unitext) and ``\\x{HEX}`` escapes are both
    accepted. Escapes must be canonical HEXPOINTs: no NUL, surrogates or values
    above U+10FFFF, no needless leading zeros, and no escaped character that
    could have been written plainly.

    Raises:
        AddressError: with the position of the malformed sequence.
    """
    out: list[str] = []
    pos = 0
    end = len(text)
    while pos < end:
        m = _UXTEXT_TOKEN_RE.match(text, pos)
        if m is None:
            ch = text[pos]
            if ch == "\\":
                raise AddressError(text, "'\\' must start a \\x{HEX} escape", pos)
            raise AddressError(text, f"character {ch!r} not allowed in utf-8-addr-xtext", pos)
        digits = m.group(1)
        if digits is not None:
            cp = int(digits, 16)
            if not _hexpoint_ok(digits, cp):
                raise AddressError(text, f"invalid escape \\x{{{digits}}}", pos)
            out.append(chr(cp))
        else:
            chunk = m.group(2) or m.group(3)
            bad = _BAD_CHAR_RE.search(chunk)
            if bad is not None:
                raise AddressError(text, "control character not allowed raw", pos + bad.start())
            out.append(chunk)
        pos = m.end()
    return "".join(out)


# --------------------------------------------------------------------------
# ORCPT (RFC 3461 §4.2, RFC 6533 §3)

_ADDR_TYPE_RE: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*)")


def encode_orcpt(address: str | Mailbox) -> str:
    """Build the ORCPT parameter value for an original recipient address.

    An ASCII address gives ``rfc822;`` + xtext (RFC 3461 §4.2); an address
    with UTF-8 gives ``utf-8;`` + utf-8-addr-xtext (RFC 6533 §3), which is safe
    whether or not the server offers SMTPUTF8.

    Raises:
        AddressError: the address is empty or cannot be encoded.
    """
    text = str(address)
    if not text:
        raise AddressError(text, "empty ORCPT address", 0)
    if text.isascii():
        return "rfc822;" + xtext_encode(text)
    return "utf-8;" + uxtext_encode(text)


def decode_orcpt(value: str) -> tuple[str, str]:
    """Split and decode an ORCPT value into (address type, address).

    The type is returned lowercased. ``utf-8`` values are decoded as RFC 6533
    utf-8-addr-xtext/unitext, every other type as RFC 3461 xtext.

    Raises:
        AddressError: no ``;``, a malformed type, or a malformed encoding.
    """
    semi = value.find(";")
    if semi < 0:
        raise AddressError(value, "ORCPT needs addr-type;address", None)
    addr_type = value[:semi]
    if not _ADDR_TYPE_RE.fullmatch(addr_type):
        raise AddressError(value, "malformed ORCPT address type", 0)
    encoded = value[semi + 1 :]
    if not encoded:
        raise AddressError(value, "empty ORCPT address", semi + 1)
    try:
        utf8 = addr_type.lower() == "utf-8"
        decoded = uxtext_decode(encoded) if utf8 else xtext_decode(encoded)
    except AddressError as exc:
        pos = None if exc.position is None else semi + 1 + exc.position
        raise AddressError(value, exc.reason, pos) from None
    return addr_type.lower(), decoded
