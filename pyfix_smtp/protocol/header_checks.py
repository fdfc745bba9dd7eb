"""Postfix smtp(8) header and body checks, and generic rewriting of header addresses.

``smtp_header_checks``, ``smtp_mime_header_checks``,
``smtp_nested_header_checks`` and ``smtp_body_checks`` are "restricted
header_checks(5) tables for the Postfix SMTP client" (Postfix 2.5 and
later). They run while the message goes out, on what Postfix's MIME parser
hands to smtp(8)'s output routines (``smtp_proto.c``
``smtp_header_rewrite()`` and ``smtp_body_rewrite()`` with
``global/header_body_checks.c`` ``hbc_header_checks()``/``hbc_body_checks()``):

* headers: one logical header at a time (a folded header is one lookup key,
  its lines joined with a newline, ``Name: value``). Which table applies:
  MIME headers (Content-Type, Content-Transfer-Encoding, Content-ID,
  Content-Description, Content-Disposition, MIME-Version) anywhere, and every
  header after a multipart boundary, use ``smtp_mime_header_checks``; other
  primary headers ``smtp_header_checks``; other headers at the start of an
  attached message ``smtp_nested_header_checks``;
* body: every line after the primary headers (the empty line that ends a
  header block, preambles, boundaries, epilogues included), after 8bit ->
  quoted-printable conversion, in pieces of at most ``line_length_limit``
  (2048) octets; empty lines are never looked up;
* actions: the smtp(8) client supports ``WARN``, ``INFO``, ``REPLACE``,
  ``PREPEND``, ``STRIP``, ``IGNORE``, ``DUNNO`` and ``OK`` (smtp(8) registers
  no extension callback). Every other action (``DISCARD``, ``REJECT``,
  ``HOLD``, ``REDIRECT``, ``FILTER``, ``BCC``, ``PASS`` ...) is logged as
  "unsupported command" and the line goes out unchanged: smtp(8) never
  discards or rejects a message because of these tables.

When ``smtp_generic_maps`` is set, the addresses of primary sender and
recipient headers are rewritten after the checks
(:meth:`pyfix_smtp.address_rewrite.GenericMaps.rewrite_header`).

:class:`ContentChecks` holds the tables (build it once, with
:meth:`ContentChecks.from_config`); :meth:`ContentChecks.start` gives a
:class:`MessageChecks` for one message, which the content encoder runs as
its hook and which collects :class:`CheckNote` log records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pyfix_smtp.address_rewrite import GenericMaps
from pyfix_smtp.errors import ConfigError, ContentError, LookupTableError
from pyfix_smtp.maps import TableList
from pyfix_smtp.protocol.mime_downgrade import HeaderClass

__all__ = [
    "DEFAULT_BODY_PIECE",
    "MIME_HEADERS",
    "CheckNote",
    "ChecksConfig",
    "ContentChecks",
    "HeaderClass",
    "MessageChecks",
]

DEFAULT_BODY_PIECE = 2048
"""Postfix ``line_length_limit``: body checks see lines in pieces of this size."""

#: Headers that always use the MIME table (Postfix header_opts.c HDR_OPT_MIME).
MIME_HEADERS = frozenset(
    {
        b"content-description",
        b"content-disposition",
        b"content-id",
        b"content-transfer-encoding",
        b"content-type",
        b"mime-version",
    }
)

# Postfix is_header.c is_header_buf(): a name of printable ASCII other than
# ":", optional spaces/tabs, then ":".
_HEADER = re.compile(rb"([\x21-\x39\x3b-\x7e]+)([ \t]*):")
_HEADER_TEXT = re.compile(r"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_ISSPACE = " \t\n\v\f\r"
# The lookup key and log text: header_body_checks.c passes raw octets.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\udc80-\udcff]")
# smtp_proto.c smtp_hbc_logger(): "%.200s" of the triggering line.
_LOG_CONTENT = 200


def _text(octets: bytes) -> str:
    return octets.decode("utf-8", "surrogateescape")


def _octets(text: str) -> bytes:
    # A CR must never reach the encoder's last stage: make it a space, as
    # stray CRs elsewhere in the message (cleanup_replace_stray_cr_lf).
    return text.encode("utf-8", "surrogateescape").replace(b"\r", b" ")


@dataclass(frozen=True, slots=True)
class CheckNote:
    """One log record from the checks (what Postfix's smtp(8) logs).

    Attributes:
        severity: ``"info"`` (Postfix msg_info) or ``"warning"`` (msg_warn).
        message: Postfix's text, without the queue id in front: for actions
            ``"<action>: <where> <line>[: <text>]"`` (smtp_hbc_logger()), for
            table problems the warning (``"unsupported command in
            smtp_header_checks map: DISCARD"``).
        action: the logged action (``"warning"``, ``"info"``, ``"replace"``,
            ``"prepend"``, ``"strip"``), or ``None`` for a warning about a
            table or a mapping.
        parameter: the parameter of the table involved.
        line: the header or body line that triggered it, complete.
        where: ``"header"`` or ``"body"`` for an action, else empty.
        text: the action's optional text (the replacement for REPLACE,
            the new line for PREPEND).
    """

    severity: Literal["info", "warning"]
    message: str
    action: str | None = None
    parameter: str = ""
    line: str = ""
    where: str = ""
    text: str = ""


class ChecksConfig(Protocol):
    """The configuration parameters :meth:`ContentChecks.from_config` reads."""

    @property
    def protocol(self) -> str:
        """``"smtp"`` or ``"lmtp"``."""
        ...

    @property
    def smtp_header_checks(self) -> TableList:
        """Postfix ``smtp_header_checks``."""
        ...

    @property
    def smtp_mime_header_checks(self) -> TableList:
        """Postfix ``smtp_mime_header_checks``."""
        ...

    @property
    def smtp_nested_header_checks(self) -> TableList:
        """Postfix ``smtp_nested_header_checks``."""
        ...

    @property
    def smtp_body_checks(self) -> TableList:
        """Postfix ``smtp_body_checks``."""
        ...


@dataclass(frozen=True, slots=True)
class ContentChecks:
    """The header/body check tables and generic maps of the SMTP client.

    Attributes:
        header_checks: ``smtp_header_checks`` (primary headers).
        mime_header_checks: ``smtp_mime_header_checks`` (MIME headers, and
            all headers after a multipart boundary).
        nested_header_checks: ``smtp_nested_header_checks`` (headers of
            attached messages).
        body_checks: ``smtp_body_checks``.
        generic: ``smtp_generic_maps`` with its parameters, or ``None``.
        body_piece: Postfix ``line_length_limit``: body lines are checked in
            pieces of at most this many octets.
        prefix: ``"smtp"`` or ``"lmtp"``: the parameter names used in messages.
    """

    header_checks: TableList = field(default_factory=TableList)
    mime_header_checks: TableList = field(default_factory=TableList)
    nested_header_checks: TableList = field(default_factory=TableList)
    body_checks: TableList = field(default_factory=TableList)
    generic: GenericMaps | None = None
    body_piece: int = DEFAULT_BODY_PIECE
    prefix: str = "smtp"

    def __post_init__(self) -> None:
        for name in ("header_checks", "mime_header_checks", "nested_header_checks", "body_checks"):
            if not isinstance(getattr(self, name), TableList):
                raise ConfigError(
                    f"{self.prefix}_{name}", getattr(self, name), "must be a TableList"
                )
        if self.generic is not None and not isinstance(self.generic, GenericMaps):
            raise ConfigError(f"{self.prefix}_generic_maps", self.generic, "must be GenericMaps")
        if isinstance(self.body_piece, bool) or not isinstance(self.body_piece, int):
            raise ConfigError("line_length_limit", self.body_piece, "must be an integer")
        if self.body_piece < 1:
            raise ConfigError("line_length_limit", self.body_piece, "must be at least 1")
        if self.prefix not in ("smtp", "lmtp"):
            raise ConfigError("protocol", self.prefix, 'must be "smtp" or "lmtp"')

    @classmethod
    def from_config(
        cls,
        cfg: ChecksConfig,
        *,
        generic: GenericMaps | None = None,
        body_piece: int | None = None,
    ) -> ContentChecks | None:
        """The checks of *cfg*, or ``None`` when no table is configured.

        ``generic`` is the ``smtp_generic_maps`` part
        (:meth:`GenericMaps.from_config`). ``body_piece`` defaults to
        *cfg*'s ``line_length_limit`` when it has one, else 2048. ``None``
        means the encoder runs without a hook, exactly as before.
        """
        if body_piece is None:
            configured = getattr(cfg, "line_length_limit", None)
            body_piece = configured if isinstance(configured, int) else DEFAULT_BODY_PIECE
        checks = cls(
            header_checks=cfg.smtp_header_checks,
            mime_header_checks=cfg.smtp_mime_header_checks,
            nested_header_checks=cfg.smtp_nested_header_checks,
            body_checks=cfg.smtp_body_checks,
            generic=generic,
            body_piece=body_piece,
            prefix="lmtp" if cfg.protocol == "lmtp" else "smtp",
        )
        return checks if checks.active else None

    @property
    def active(self) -> bool:
        """Whether any table or generic map is configured."""
        return bool(
            self.header_checks
            or self.mime_header_checks
            or self.nested_header_checks
            or self.body_checks
            or self.generic is not None
        )

    def start(self) -> MessageChecks:
        """A fresh per-message hook for :class:`~pyfix_smtp.protocol.content.ContentEncoder`."""
        return MessageChecks(self)


_HEADER_ALL = frozenset(HeaderClass)
_HEADER_PRIMARY = frozenset({HeaderClass.PRIMARY})


class _Verdict:
    """What an action does to its line: keep it, replace it, or drop it."""

    __slots__ = ("drop", "prepend", "replace")

    def __init__(self) -> None:
        self.drop = False
        self.replace: str | None = None
        self.prepend: str | None = None


class MessageChecks:
    """The checks applied to one message: a content hook that records log notes.

    Pass it to :class:`~pyfix_smtp.protocol.content.ContentEncoder` (``hook=``)
    and read :attr:`notes` afterwards (and while sending, to log as it goes).

    Raises:
        ContentError: from the encoder, status 4.3.0, when a table lookup
            fails (Postfix: "smtp header checks lookup error", the delivery is
            deferred) or generic mapping meets a bad result (Postfix stops
            with "smtp_generic_maps map lookup problem").
    """

    __slots__ = ("_body_limit", "_classes", "_config", "_line_open", "notes")

    def __init__(self, config: ContentChecks) -> None:
        self._config = config
        self.notes: list[CheckNote] = []
        """Log records in message order."""
        header_tables = (
            config.header_checks or config.mime_header_checks or config.nested_header_checks
        )
        if header_tables:
            self._classes = _HEADER_ALL
        elif config.generic is not None:
            self._classes = _HEADER_PRIMARY
        else:
            self._classes = frozenset()
        self._body_limit = config.body_piece if config.body_checks else 0
        self._line_open = False  # body text of the current line went out without LF

    # -- ContentHook ----------------------------------------------------------

    @property
    def header_classes(self) -> frozenset[HeaderClass]:
        """Every header block with header checks; primary headers for generic maps."""
        return self._classes

    @property
    def body_piece_limit(self) -> int:
        """``line_length_limit`` with body checks, else 0."""
        return self._body_limit

    def header(self, header_class: HeaderClass, text: bytes, *, synthetic: bool) -> bytes:
        """Apply the header checks, then generic mapping (Postfix smtp_header_rewrite())."""
        match = _HEADER.match(text)
        if match is None:  # pragma: no cover - the MIME parser only passes headers
            return text + b"\n"
        verdict = self._header_action(header_class, text, match, synthetic)
        prepend = b"" if verdict.prepend is None else _octets(verdict.prepend) + b"\n"
        if verdict.drop:
            return prepend
        out = text if verdict.replace is None else _octets(verdict.replace)
        generic = self._config.generic
        if generic is not None and header_class is HeaderClass.PRIMARY and not synthetic:
            out = self._rewrite_addresses(generic, out)
        return prepend + out + b"\n"

    def header_start(self, header_class: HeaderClass, text: bytes) -> tuple[bytes, bool]:
        """The checks on a header cut at ``header_size_limit``; generic mapping is skipped."""
        match = _HEADER.match(text)
        if match is None:  # pragma: no cover - the MIME parser only passes headers
            return text, True
        verdict = self._header_action(header_class, text, match, False)
        prepend = b"" if verdict.prepend is None else _octets(verdict.prepend) + b"\n"
        generic = self._config.generic
        if (
            generic is not None
            and header_class is HeaderClass.PRIMARY
            and not verdict.drop
            and verdict.replace is None
            and generic.is_address_header(_text(match.group(1)))
        ):
            self.notes.append(
                CheckNote(
                    "warning",
                    f"{_text(match.group(1))} header longer than header_size_limit:"
                    f" {generic.parameter} not applied to it",
                    parameter=generic.parameter,
                    line=_text(text),
                )
            )
        if verdict.drop:
            return prepend, False
        if verdict.replace is not None:
            return prepend + _octets(verdict.replace) + b"\n", False
        return prepend + text, True

    def body(self, piece: bytes, *, end: bool) -> bytes:
        """Apply the body checks to one piece of a line (Postfix smtp_body_rewrite())."""
        tables = self._config.body_checks
        out = piece
        prepend = b""
        # maps_find(): an empty line is never looked up.
        if piece and tables:
            verdict = self._act(tables, f"{self._config.prefix}_body_checks", "body", piece)
            if verdict.prepend is not None:
                prepend = _octets(verdict.prepend) + b"\n"
            if verdict.drop:
                out = b""
                if end and self._line_open:
                    # Postfix writes nothing and glues the next line onto what
                    # went out of this one; we end the line (docs/content.md).
                    self._line_open = False
                    return prepend + b"\n"
                if end:
                    return prepend
            elif verdict.replace is not None:
                out = _octets(verdict.replace)
        if end:
            self._line_open = False
            return prepend + out + b"\n"
        if out:
            self._line_open = True
        elif prepend:
            self._line_open = False
        return prepend + out

    # -- checks ---------------------------------------------------------------

    def _header_action(
        self, header_class: HeaderClass, text: bytes, match: re.Match[bytes], synthetic: bool
    ) -> _Verdict:
        """Look the header up in the table for its class (hbc_header_checks())."""
        config = self._config
        name = match.group(1).lower()
        # header_body_checks.c: a known MIME header uses the MIME table.
        if header_class is HeaderClass.MULTIPART or (not synthetic and name in MIME_HEADERS):
            tables, suffix = config.mime_header_checks, "mime_header_checks"
        elif header_class is HeaderClass.PRIMARY:
            tables, suffix = config.header_checks, "header_checks"
        else:
            tables, suffix = config.nested_header_checks, "nested_header_checks"
        parameter = f"{config.prefix}_{suffix}"
        if not tables:
            return _Verdict()
        if match.group(2):
            # mime_state.c: "Name :" is looked up (and logged) as "Name:".
            text = match.group(1) + text[match.end(2) :]
        return self._act(tables, parameter, "header", text)

    def _act(self, tables: TableList, parameter: str, where: str, line: bytes) -> _Verdict:
        """Look *line* up and apply the action (header_body_checks.c hbc_action())."""
        key = _text(line)
        try:
            action = tables.lookup(key)
        except LookupTableError as exc:
            # smtp_proto.c: "smtp header checks lookup error", SMTP_ERR_DATA
            # (the text says "smtp" for lmtp(8) too).
            raise ContentError(f"smtp {where} checks lookup error: {exc}", status="4.3.0") from exc
        verdict = _Verdict()
        if action is None:
            return verdict
        word_end = len(action)
        for i, ch in enumerate(action):
            if ch in " \t":
                word_end = i
                break
        word = action[:word_end].upper()
        args = action[word_end:].lstrip(_ISSPACE)
        if word == "WARN":
            self._log("warning", where, key, args, parameter)
        elif word == "INFO":
            self._log("info", where, key, args, parameter)
        elif word == "REPLACE":
            if not args:
                self._warn(f"REPLACE action without text in {parameter} map", parameter, key)
            elif where == "header" and _HEADER_TEXT.match(args) is None:
                self._warn(
                    f'bad REPLACE header text "{args}" in {parameter} map -- need'
                    ' "headername: headervalue"',
                    parameter,
                    key,
                )
            else:
                self._log("replace", where, key, args, parameter)
                verdict.replace = args
        elif word == "PREPEND":
            if not args:
                self._warn(f"PREPEND action without text in {parameter} map", parameter, key)
            elif where == "header" and _HEADER_TEXT.match(args) is None:
                self._warn(
                    f'bad PREPEND header text "{args}" in {parameter} map -- need'
                    ' "headername: headervalue"',
                    parameter,
                    key,
                )
            else:
                self._log("prepend", where, key, args, parameter)
                verdict.prepend = args
        elif word == "STRIP":
            self._log("strip", where, key, args, parameter)
            verdict.drop = True
        elif word == "IGNORE":
            verdict.drop = True  # not logged, as in cleanup(8)
        elif word not in ("DUNNO", "OK"):
            # No extension callback in smtp(8): DISCARD, REJECT, HOLD ... do nothing.
            self._warn(f"unsupported command in {parameter} map: {action}", parameter, key)
        return verdict

    def _log(self, action: str, where: str, line: str, text: str, parameter: str) -> None:
        """Postfix smtp_hbc_logger(): ``<action>: <where> <line>[: <text>]``.

        Postfix's log writer shows control characters (and invalid UTF-8) as
        ``?`` (msg_output.c ``printable()``).
        """
        shown = line[:_LOG_CONTENT]
        message = f"{action}: {where} {shown}: {text}" if text else f"{action}: {where} {shown}"
        message = _UNPRINTABLE.sub("?", message)
        self.notes.append(CheckNote("info", message, action, parameter, line, where, text))

    def _warn(self, message: str, parameter: str, line: str) -> None:
        message = _UNPRINTABLE.sub("?", message)
        self.notes.append(CheckNote("warning", message, None, parameter, line))

    def _rewrite_addresses(self, generic: GenericMaps, header: bytes) -> bytes:
        """Generic mapping of a primary sender/recipient header, if it is one."""
        match = _HEADER.match(header)
        if match is None or not generic.is_address_header(_text(match.group(1))):
            return header
        text = _text(header)
        try:
            rewrite = generic.rewrite_header(text)
        except LookupTableError as exc:
            # smtp_map11.c: "%s map lookup problem for %s" (fatal: deferred).
            raise ContentError(
                f"{generic.parameter} map lookup problem: {exc}", status="4.3.0"
            ) from exc
        if rewrite is None:
            return header
        for mapping in rewrite.mappings:
            warning = mapping.warning
            if warning is not None:
                self._warn(warning, generic.parameter, text)
        for cut in rewrite.stripped:
            shown = _UNPRINTABLE.sub("?", cut[:100])
            # tok822_externalize() strip_address()
            self._warn(f"stripping too many comments from address: {shown}...", "", text)
        return _octets(rewrite.text)
