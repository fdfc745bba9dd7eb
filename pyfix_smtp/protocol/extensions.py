"""EHLO/LHLO reply parsing into a frozen :class:`Extensions` value.

Follows Postfix smtp_proto.c ``smtp_helo()``: each reply line is split into
the reply code, a keyword (ended by space, tab or ``=``, which accepts the
old ``AUTH=LOGIN`` form) and its parameters; the first line names the
server. Keywords listed in ``smtp_discard_ehlo_keywords`` (or found for the
server address in ``smtp_discard_ehlo_keyword_address_maps``, which the
caller resolves into a keyword list) are ignored.

Beyond Postfix's client, ``CHUNKING``, ``BINARYMIME``,
``ENHANCEDSTATUSCODES`` and ``LIMITS`` (RFC 9422) are recorded too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from pyfix_smtp.status import Reply

__all__ = [
    "DISCARDABLE_KEYWORDS",
    "XFORWARD_ATTRIBUTES",
    "EhloDiscard",
    "Extensions",
    "greeting_announces_esmtp",
    "is_pix_greeting",
    "parse_ehlo",
]

#: Keywords ``smtp_discard_ehlo_keywords`` understands (global/ehlo_mask.c,
#: plus LIMITS, CHUNKING and BINARYMIME, which this client also interprets).
DISCARDABLE_KEYWORDS = frozenset(
    {
        "8BITMIME",
        "AUTH",
        "ETRN",
        "PIPELINING",
        "SIZE",
        "VERP",
        "VRFY",
        "XCLIENT",
        "XFORWARD",
        "STARTTLS",
        "ENHANCEDSTATUSCODES",
        "DSN",
        "SMTPUTF8",
        "CHUNKING",
        "REQUIRETLS",
        "LIMITS",
        "BINARYMIME",
    }
)

#: XFORWARD attribute names (global/mail_proto.h); ``SOURCE`` is Postfix's
#: XFORWARD_DOMAIN.
XFORWARD_ATTRIBUTES = frozenset({"NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"})

_SILENT = "SILENT-DISCARD"
_LIST_SPLIT = re.compile(r"[\s,]+")
_LIMIT_NAMES = frozenset({"RCPTMAX", "MAILMAX", "RCPTDOMAINMAX"})
_PIX_BANNER = re.compile(r"[20 *\t\n]*\Z")  # smtp_helo(): strspn(resp, "20 *\t\n") == len


@dataclass(frozen=True, slots=True)
class EhloDiscard:
    """Which EHLO keywords to ignore (``smtp_discard_ehlo_keywords``).

    Attributes:
        keywords: upper-case keywords to discard.
        silent: ``silent-discard`` was listed: do not report the discards.
    """

    keywords: frozenset[str] = frozenset()
    silent: bool = False

    def __post_init__(self) -> None:
        bad = [k for k in self.keywords if k != k.upper() or k not in DISCARDABLE_KEYWORDS]
        if bad:
            raise ValueError(f"unknown or non-upper-case EHLO keywords: {sorted(bad)}")

    @classmethod
    def parse(cls, value: str | Iterable[str]) -> EhloDiscard:
        """Build from a parameter value: names separated by commas or spaces.

        As in Postfix (ehlo_mask.c, ``NAME_MASK_ANY_CASE | NAME_MASK_IGNORE``)
        names are case-insensitive and unknown names are ignored, so a
        main.cf can be shared between versions.
        """
        words = _LIST_SPLIT.split(value) if isinstance(value, str) else list(value)
        found: set[str] = set()
        silent = False
        for word in words:
            upper = word.strip().upper()
            if upper == _SILENT:
                silent = True
            elif upper in DISCARDABLE_KEYWORDS:
                found.add(upper)
        return cls(frozenset(found), silent)


@dataclass(frozen=True, slots=True)
class Extensions:
    """What the server offers after a successful EHLO, HELO or LHLO.

    The connection emits it as the event that ends the hello stage.

    Attributes:
        command: ``"EHLO"``, ``"HELO"`` (no ESMTP) or ``"LHLO"``.
        reply: the hello reply.
        server_name: first word of the first reply line (Postfix
            ``session->helo``), or ``None``.
        keywords: announced keywords (upper case) with their parameter text,
            in reply order, discarded ones left out.
        discarded: announced keywords ignored because of the discard list.
        silent: the discard list said ``silent-discard``.
        size: SIZE announced.
        size_limit: the SIZE value (0: none given, no limit).
        pipelining: PIPELINING announced and kept.
        eightbitmime: 8BITMIME announced and kept; also true when the
            server offers SMTPUTF8 but not 8BITMIME (Postfix does the same).
        dsn: DSN announced and kept.
        smtputf8: SMTPUTF8 announced and kept.
        starttls: STARTTLS announced and kept.
        requiretls: REQUIRETLS announced and kept; counts only on a
            TLS-protected session.
        chunking: CHUNKING announced and kept.
        binarymime: BINARYMIME announced and kept.
        enhancedstatuscodes: ENHANCEDSTATUSCODES announced and kept.
        auth: AUTH announced.
        auth_mechanisms: the union of all AUTH lines.
        xforward: the XFORWARD attributes the server accepts.
        rcptmax: the RFC 9422 LIMITS RCPTMAX value, when announced.
        mailmax: the RFC 9422 LIMITS MAILMAX value, when announced.
        warnings: problems found while parsing (bad SIZE value ...).
    """

    command: str
    reply: Reply
    server_name: str | None = None
    keywords: tuple[tuple[str, str], ...] = ()
    discarded: tuple[str, ...] = ()
    silent: bool = False
    size: bool = False
    size_limit: int = 0
    pipelining: bool = False
    eightbitmime: bool = False
    dsn: bool = False
    smtputf8: bool = False
    starttls: bool = False
    requiretls: bool = False
    chunking: bool = False
    binarymime: bool = False
    enhancedstatuscodes: bool = False
    auth: bool = False
    auth_mechanisms: tuple[str, ...] = ()
    xforward: frozenset[str] = field(default_factory=frozenset)
    rcptmax: int | None = None
    mailmax: int | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.command not in ("EHLO", "HELO", "LHLO"):
            raise ValueError(f"hello command must be EHLO, HELO or LHLO: {self.command!r}")
        if self.size_limit < 0:
            raise ValueError(f"size_limit must not be negative: {self.size_limit}")
        if not self.xforward <= XFORWARD_ATTRIBUTES:
            raise ValueError(f"unknown XFORWARD attributes: {sorted(self.xforward)}")

    @property
    def esmtp(self) -> bool:
        """True unless the session fell back to HELO (no extensions at all)."""
        return self.command != "HELO"

    def has(self, keyword: str) -> bool:
        """True when *keyword* (any case) was announced and not discarded."""
        upper = keyword.upper()
        return any(k == upper for k, _ in self.keywords)

    def params(self, keyword: str) -> str | None:
        """Parameter text of the first *keyword* line, or ``None``."""
        upper = keyword.upper()
        for k, value in self.keywords:
            if k == upper:
                return value
        return None

    def without_starttls(self) -> Extensions:
        """A copy with STARTTLS cleared (Postfix does this after a rejected STARTTLS)."""
        return replace(self, starttls=False)


def _tokens(text: str, delims: str) -> tuple[str | None, str]:
    # Postfix mystrtok(): skip leading delimiters, take one token, and leave
    # the remainder after the single delimiter that ended it.
    pos = 0
    while pos < len(text) and text[pos] in delims:
        pos += 1
    if pos == len(text):
        return None, ""
    end = pos
    while end < len(text) and text[end] not in delims:
        end += 1
    return text[pos:end], text[end + 1 :]


def _words(text: str) -> list[str]:
    return text.replace("\t", " ").split()


def parse_ehlo(
    reply: Reply,
    *,
    command: str = "EHLO",
    discard: EhloDiscard | None = None,
    tls_active: bool = False,
) -> Extensions:
    """Parse a positive EHLO or LHLO *reply* into :class:`Extensions`.

    Args:
        reply: the complete hello reply (its :attr:`Reply.wire_lines` are
            parsed; a reply built by hand falls back to its ``lines``).
        command: ``"EHLO"`` or ``"LHLO"``.
        discard: keywords to ignore.
        tls_active: the session is TLS-protected (REQUIRETLS counts only
            then, smtp_proto.c).
    """
    if command not in ("EHLO", "LHLO"):
        raise ValueError(f"parse_ehlo() parses EHLO or LHLO replies, not {command!r}")
    discard = discard or _NO_DISCARD
    lines = reply.wire_lines or tuple(f"{reply.code} {line}" for line in reply.lines)
    # A server answers every connection alike: remember recent results.
    key = (command, lines, discard, tls_active)
    known = _PARSED.get(key)
    if known is not None:
        return known if known.reply is reply else replace(known, reply=reply)
    ext = _parse_ehlo(reply, lines, command, discard, tls_active)
    if len(_PARSED) >= 64:
        _PARSED.clear()
    _PARSED[key] = ext
    return ext


_NO_DISCARD = EhloDiscard()
_PARSED: dict[tuple[str, tuple[str, ...], EhloDiscard, bool], Extensions] = {}


def _parse_ehlo(
    reply: Reply, lines: tuple[str, ...], command: str, discard: EhloDiscard, tls_active: bool
) -> Extensions:
    found: set[str] = set()
    keywords: list[tuple[str, str]] = []
    discarded: list[str] = []
    warnings: list[str] = []
    mechanisms: list[str] = []
    xforward: set[str] = set()
    server_name: str | None = None
    size_limit = 0
    rcptmax: int | None = None
    mailmax: int | None = None
    first = True
    for line in lines:
        code, rest = _tokens(line, "- ")  # Postfix: mystrtok(&words, "- ")
        if code is None:
            continue
        word, params = _tokens(rest, " \t=")
        if word is None:
            continue
        if first:
            first = False
            server_name = word
            continue
        upper = word.upper()
        if upper in discard.keywords:
            discarded.append(upper)
            continue
        keywords.append((upper, params))
        found.add(upper)
        if upper == "SIZE":
            value = next(iter(_words(params)), None)
            if value is not None:
                if value.isascii() and value.isdigit():
                    size_limit = int(value)
                else:
                    warnings.append(f'bad EHLO SIZE limit "{value}"')
        elif upper == "XFORWARD":
            xforward.update(w.upper() for w in _words(params) if w.upper() in XFORWARD_ATTRIBUTES)
        elif upper == "AUTH":
            words = _words(params)
            if not words:
                warnings.append("offered null AUTH mechanism list")
            known = {m.upper() for m in mechanisms}
            mechanisms.extend(m for m in words if m.upper() not in known)
        elif upper == "LIMITS":
            for item in _words(params):
                name, _, value = item.partition("=")
                name = name.upper()
                if name not in _LIMIT_NAMES:
                    continue
                if not (value.isascii() and value.isdigit()) or int(value) < 1:
                    warnings.append(f'bad EHLO LIMITS value "{item}"')
                elif name == "RCPTMAX":
                    rcptmax = int(value)
                elif name == "MAILMAX":
                    mailmax = int(value)
    smtputf8 = "SMTPUTF8" in found
    eightbitmime = "8BITMIME" in found
    if smtputf8 and not eightbitmime:
        # Postfix smtp_helo() "Fix 20140706": SMTPUTF8 implies 8BITMIME.
        eightbitmime = True
        warnings.append("host offers SMTPUTF8 support, but not 8BITMIME")
    return Extensions(
        command=command,
        reply=reply,
        server_name=server_name,
        keywords=tuple(keywords),
        discarded=tuple(discarded),
        silent=discard.silent,
        size="SIZE" in found,
        size_limit=size_limit,
        pipelining="PIPELINING" in found,
        eightbitmime=eightbitmime,
        dsn="DSN" in found,
        smtputf8=smtputf8,
        starttls="STARTTLS" in found,
        requiretls=tls_active and "REQUIRETLS" in found,
        chunking="CHUNKING" in found,
        binarymime="BINARYMIME" in found,
        enhancedstatuscodes="ENHANCEDSTATUSCODES" in found,
        auth="AUTH" in found,
        auth_mechanisms=tuple(mechanisms),
        xforward=frozenset(xforward),
        rcptmax=rcptmax,
        mailmax=mailmax,
        warnings=tuple(warnings),
    )


def _joined(reply: Reply) -> str:
    return "\n".join(reply.wire_lines or tuple(f"{reply.code} {t}" for t in reply.lines))


def greeting_announces_esmtp(reply: Reply, *, myhostname: str | None = None) -> bool:
    """True when a greeting banner contains the word ``ESMTP`` (any case).

    Postfix smtp_helo(): the code is skipped, then every word counts except
    a first word equal to our own host name (that one is the loop check).
    """
    _, words = _tokens(_joined(reply), "- \t\n")
    for n, word in enumerate(words.replace("\t", " ").replace("\n", " ").split()):
        if n == 0 and myhostname is not None and word.lower() == myhostname.lower():
            continue
        if word.upper() == "ESMTP":
            return True
    return False


def is_pix_greeting(reply: Reply) -> bool:
    """True for a banner made of ``2``, ``0``, ``*`` and blanks only.

    That is the Cisco PIX "SMTP fixup" signature for which Postfix applies
    ``smtp_pix_workarounds`` (smtp_proto.c smtp_helo()).
    """
    return _PIX_BANNER.match(_joined(reply)) is not None
