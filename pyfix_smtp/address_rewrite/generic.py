"""``smtp_generic_maps``: generic(5) address rewriting in the SMTP client.

Postfix's smtp(8) rewrites the envelope sender (unless null), each envelope
recipient (not the DSN original recipient) and the addresses in the primary
message headers that carry sender or recipient addresses (``From:``,
``To:``, ``Cc:``, ``Reply-To:`` ...), using one-to-one lookups
(``smtp_map11.c``, ``smtp_misc.c`` ``smtp_rewrite_generic_internal()``,
``smtp_proto.c`` ``smtp_header_rewrite()``).

The search is Postfix's ``mail_addr_find_opt()`` with its default strategy,
querying the external (quoted) form of the address; each key is offered to
every table before the next key is tried:

1. ``user+ext@domain`` (all tables);
2. ``user@domain`` when ``recipient_delimiter`` splits off an extension
   (fixed-key tables only: ``texthash:``, ``inline:``, mappings);
3. when *domain* is local (``myorigin``, ``mydestination``, an address
   literal of ``inet_interfaces``/``proxy_interfaces``): ``user+ext`` then
   ``user`` (fixed-key tables only);
4. ``@domain`` (fixed-key tables only).

A result ``@otherdomain`` keeps the original local part (without an
unmatched extension). The result is parsed as an address list; only the
first address is used (a warning says when there were more). An extension
that only the stripped key matched is appended to the result when
``propagate_unmatched_extensions`` lists ``generic`` (by default it does
not). A result without ``@domain`` gets ``@$myorigin``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

from pyfix_smtp.address import Mailbox
from pyfix_smtp.address_rewrite import tokens
from pyfix_smtp.errors import AddressError, ConfigError, LookupTableError
from pyfix_smtp.maps import TableList
from pyfix_smtp.protocol.envelope import Envelope, Recipient

__all__ = [
    "ADDRESS_HEADERS",
    "AddressMapping",
    "GenericConfig",
    "GenericMaps",
    "HeaderRewrite",
    "default_mydestination",
]

#: Primary headers whose addresses generic mapping rewrites: Postfix
#: header_opts.c entries with HDR_OPT_SENDER or HDR_OPT_RECIP (lower case).
ADDRESS_HEADERS = frozenset(
    {
        "apparently-to",
        "bcc",
        "cc",
        "disposition-notification-to",
        "errors-to",
        "from",
        "mail-followup-to",
        "reply-to",
        "resent-bcc",
        "resent-cc",
        "resent-from",
        "resent-reply-to",
        "resent-sender",
        "resent-to",
        "return-path",
        "return-receipt-to",
        "sender",
        "to",
    }
)

# Postfix mail_addr.h MAIL_ADDR_POSTMASTER / MAIL_ADDR_MAIL_DAEMON: never split.
_UNSPLIT = frozenset({"postmaster", "mailer-daemon"})
# smtp_proto.c smtp_header_rewrite(): join rewritten lines while shorter than this.
_FOLD_WIDTH = 70


def _octets(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def default_mydestination(myhostname: str, mydomain: str) -> tuple[str, ...]:
    """Postfix's default ``mydestination``: ``$myhostname, localhost.$mydomain, localhost``."""
    return (myhostname, f"localhost.{mydomain}", "localhost")


class GenericConfig(Protocol):
    """The configuration parameters :meth:`GenericMaps.from_config` reads."""

    @property
    def protocol(self) -> str:
        """``"smtp"`` or ``"lmtp"``."""
        ...

    @property
    def smtp_generic_maps(self) -> TableList:
        """Postfix ``smtp_generic_maps`` (``lmtp_generic_maps`` for LMTP)."""
        ...

    @property
    def propagate_unmatched_extensions(self) -> tuple[str, ...]:
        """Postfix ``propagate_unmatched_extensions``."""
        ...

    @property
    def myhostname(self) -> str:
        """Postfix ``myhostname``."""
        ...

    @property
    def mydomain(self) -> str:
        """Postfix ``mydomain``."""
        ...

    @property
    def inet_interfaces(self) -> tuple[str, ...]:
        """Postfix ``inet_interfaces``."""
        ...

    @property
    def proxy_interfaces(self) -> tuple[str, ...]:
        """Postfix ``proxy_interfaces``."""
        ...


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _interface_addresses(values: Iterable[str]) -> frozenset[IPAddress]:
    """The explicit IP addresses of an ``inet_interfaces``-style list.

    ``loopback-only`` means 127.0.0.1 and ::1; ``all`` cannot be listed
    without asking the operating system and adds nothing; host names are
    not resolved (no I/O here).
    """
    found: set[IPAddress] = set()
    for value in values:
        text = value.strip().strip("[]")
        if text.lower() == "loopback-only":
            found.update((ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")))
            continue
        try:
            found.add(ipaddress.ip_address(text))
        except ValueError:
            continue
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class AddressMapping:
    """The outcome of one successful generic lookup.

    Attributes:
        original: the address looked up (internal, unquoted form).
        address: the replacement (internal form): the first address of the
            table result.
        results: every address the table result held; Postfix uses the
            first and warns about the others.
        parameter: the parameter the table came from (for the warning).
    """

    original: str
    address: str
    results: tuple[str, ...]
    parameter: str = "smtp_generic_maps"

    @property
    def warning(self) -> str | None:
        """Postfix's warning for a result with several addresses, else ``None``."""
        if len(self.results) > 1:
            # smtp_map11.c smtp_map11_internal()
            return f"multi-valued {self.parameter} result for {self.original}"
        return None


@dataclass(frozen=True, slots=True)
class HeaderRewrite:
    """A header whose addresses matched the table, printed as Postfix prints it.

    Attributes:
        text: the new logical header: lines joined with LF, each continuation
            line starting with white space (a TAB where Postfix adds one).
        mappings: the lookups that matched, in header order.
        stripped: address expressions cut to ``<address>`` because their
            comments and phrases exceeded 250 octets (Postfix logs
            "stripping too many comments from address").
    """

    text: str
    mappings: tuple[AddressMapping, ...]
    stripped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GenericMaps:
    """``smtp_generic_maps`` with the parameters that shape its lookups.

    Attributes:
        tables: the generic(5) tables, searched in order.
        parameter: the parameter name for messages (``lmtp_generic_maps``
            for LMTP).
        recipient_delimiter: Postfix ``recipient_delimiter``: the characters
            that start an address extension (empty: none).
        propagate_extensions: ``generic`` is in Postfix
            ``propagate_unmatched_extensions``.
        myorigin: Postfix ``myorigin``: its addresses are local, and it is
            appended to a result without ``@domain``.
        local_domains: the other domains whose users match a bare ``user``
            key (Postfix ``mydestination``), compared without case.
        local_addresses: addresses whose literals (``user@[192.0.2.1]``) are
            local (``inet_interfaces``, ``proxy_interfaces``).
        owner_request_special: Postfix ``owner_request_special``: with ``-``
            as a delimiter, ``owner-x`` and ``x-request`` are not split.
        double_bounce_sender: Postfix ``double_bounce_sender``, never split.
    """

    tables: TableList
    parameter: str = "smtp_generic_maps"
    recipient_delimiter: str = ""
    propagate_extensions: bool = False
    myorigin: str = ""
    local_domains: frozenset[str] = frozenset()
    local_addresses: frozenset[IPAddress] = frozenset()
    owner_request_special: bool = True
    double_bounce_sender: str = "double-bounce"
    _domains: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.tables, TableList):
            raise ConfigError(self.parameter, self.tables, "must be a TableList")
        for name in ("recipient_delimiter", "myorigin", "double_bounce_sender"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ConfigError(name, value, "must be a str")
        if any(c in self.recipient_delimiter for c in "@\r\n\0"):
            raise ConfigError(
                "recipient_delimiter", self.recipient_delimiter, "must not contain @, CR, LF or NUL"
            )
        domains = {d.rstrip(".").casefold() for d in self.local_domains if d}
        if self.myorigin:
            domains.add(self.myorigin.rstrip(".").casefold())
        object.__setattr__(self, "_domains", frozenset(domains))

    @classmethod
    def from_config(
        cls,
        cfg: GenericConfig,
        *,
        recipient_delimiter: str | None = None,
        myorigin: str | None = None,
        mydestination: Iterable[str] | None = None,
    ) -> GenericMaps | None:
        """The generic maps of *cfg*, or ``None`` when none are configured.

        ``recipient_delimiter``, ``myorigin`` and ``mydestination`` come from
        the arguments, else from *cfg* when it has them, else Postfix's
        defaults (none, ``$myhostname``, :func:`default_mydestination`);
        ``owner_request_special`` and ``double_bounce_sender`` from *cfg*
        when it has them, else Postfix's defaults (yes, ``double-bounce``).
        """
        tables = cfg.smtp_generic_maps
        if not tables:
            return None
        delimiter = recipient_delimiter
        if delimiter is None:
            delimiter = _optional_str(cfg, "recipient_delimiter") or ""
        origin = myorigin if myorigin is not None else _optional_str(cfg, "myorigin")
        if origin is None:
            origin = cfg.myhostname
        destinations: Iterable[str] | None = mydestination
        if destinations is None:
            configured = getattr(cfg, "mydestination", None)
            if isinstance(configured, tuple):
                destinations = tuple(str(d) for d in configured)
            else:
                destinations = default_mydestination(cfg.myhostname, cfg.mydomain)
        owner_request = getattr(cfg, "owner_request_special", True)
        double_bounce = _optional_str(cfg, "double_bounce_sender")
        return cls(
            tables,
            parameter=f"{'lmtp' if cfg.protocol == 'lmtp' else 'smtp'}_generic_maps",
            owner_request_special=owner_request if isinstance(owner_request, bool) else True,
            double_bounce_sender=double_bounce if double_bounce is not None else "double-bounce",
            recipient_delimiter=delimiter,
            propagate_extensions="generic" in cfg.propagate_unmatched_extensions,
            myorigin=origin,
            local_domains=frozenset(d for d in destinations if "/" not in d and ":" not in d),
            local_addresses=_interface_addresses((*cfg.inet_interfaces, *cfg.proxy_interfaces)),
        )

    # -- lookups --------------------------------------------------------------

    def split_extension(self, address: str) -> tuple[str, str] | None:
        """``(address without extension, extension)`` or ``None`` when there is none.

        Postfix strip_addr.c ``strip_addr_internal()`` and split_addr.c
        ``split_addr()``: the local part is split at the first delimiter
        character (which starts the extension); ``postmaster``,
        ``MAILER-DAEMON``, the double-bounce sender, ``owner-*`` and
        ``*-request`` (with ``-`` as a delimiter) are never split, nor is a
        split that would leave an empty local part.
        """
        delims = self.recipient_delimiter
        if not delims or not any(c in address for c in delims):
            return None
        at = address.rfind("@")
        local = address if at < 0 else address[:at]
        folded = local.casefold()
        if folded in _UNSPLIT or folded == self.double_bounce_sender.casefold():
            return None
        owner_request = folded.startswith("owner-") or (
            len(local) > 8 and folded.endswith("-request")
        )
        if "-" in delims and self.owner_request_special and owner_request:
            return None
        positions = [i for i in (local.find(c) for c in delims) if i >= 0]
        if not positions or min(positions) == 0:
            return None
        cut = min(positions)
        domain = "" if at < 0 else address[at:]
        return local[:cut] + domain, local[cut:]

    def is_local(self, domain: str) -> bool:
        """Whether *domain* is this system's (Postfix ``resolve_local()`` plus ``myorigin``)."""
        if domain.endswith(".") and not domain.endswith(".."):
            domain = domain[:-1]
        if not domain or domain.endswith("."):
            return False
        if domain.casefold() in self._domains:
            return True
        if domain.startswith("[") and domain.endswith("]"):
            literal = domain[1:-1]
            if literal[:5].lower() == "ipv6:":
                literal = literal[5:]
            try:
                return ipaddress.ip_address(literal) in self.local_addresses
            except ValueError:
                return False
        return False

    def _find(self, address: str, *, fixed_only: bool, bare_localpart: bool = False) -> str | None:
        # mail_addr_find.c find_addr() with MA_FORM_EXTERNAL: the quoted form.
        key = tokens.quote_local(address, bare_localpart=bare_localpart)
        return self.tables.lookup(key, fixed_only=fixed_only)

    def find(self, address: str) -> tuple[str, str | None] | None:
        """The raw table result for *address* and the extension it leaves unmatched.

        Postfix mail_addr_find.c ``mail_addr_find_opt()`` (default strategy,
        internal-form input, external-form queries). Returns ``(result,
        extension)``, where *extension* is set when only the key without the
        extension matched, or ``None`` when no key matched.

        Raises:
            LookupTableError: a table failed or returned an empty result.
        """
        split = self.split_extension(address)
        result = self._find(address, fixed_only=False)
        if result is not None:
            return result, None
        if split is not None:
            result = self._find(split[0], fixed_only=True)
            if result is not None:
                return result, split[1]
        at = address.rfind("@")
        if at < 0:
            return None
        if self.is_local(address[at + 1 :]):
            result = self._find(address[:at], fixed_only=True, bare_localpart=True)
            if result is not None:
                return result, None
            if split is not None:
                bare = split[0]
                result = self._find(bare[: bare.rfind("@")], fixed_only=True, bare_localpart=True)
                if result is not None:
                    return result, split[1]
        # The "@domain" key is the internal form, as Postfix passes it.
        result = self.tables.lookup(address[at:], fixed_only=True)
        return (result, None) if result is not None else None

    def map_address(self, address: str) -> AddressMapping | None:
        """Map one internal-form address, or ``None`` when no key matched.

        Postfix ``mail_addr_map_internal()`` and ``smtp_map11_internal()``.
        The empty address is never looked up.

        Raises:
            LookupTableError: a table failed, returned an empty result, or a
                result that holds no address.
        """
        if not address:
            return None
        found = self.find(address)
        if found is None:
            return None
        result, extension = found
        text = result
        if text.startswith("@"):
            # "@otherdomain": the same user (without the unmatched extension).
            at = address.rfind("@")
            user = address if at < 0 else address[:at]
            if extension:
                user = user[: len(user) - len(extension)]
            text = tokens.quote_local(user + text)
        results = self._crunch(text, extension if self.propagate_extensions else None)
        if not results:
            # mail_addr_map.c: a warning and a lookup error (smtp_map11: fatal).
            raise LookupTableError(
                self.parameter, result, f'lookup of {address} returns non-address result "{text}"'
            )
        return AddressMapping(address, results[0], results, self.parameter)

    def _crunch(self, text: str, extension: str | None) -> tuple[str, ...]:
        """Postfix mail_addr_crunch.c: every address in a result, canonical and internal."""
        if not text or text == "<>":
            text = '""'
        found: list[str] = []
        for node in tokens.addresses(tokens.parse(text)):
            external = tokens.externalize(node.children).text
            internal = self._canonical(tokens.unquote_local(external), node.children)
            if extension:
                at = internal.rfind("@")
                internal = (
                    internal + extension if at < 0 else internal[:at] + extension + internal[at:]
                )
            found.append(internal)
        return tuple(found)

    def _canonical(self, internal: str, parts: list[tokens.Token]) -> str:
        """The parts of trivial-rewrite(8)'s "local" rewriting a library can do.

        Postfix rewrite.c ``rewrite_tree()``: a lone ``@`` is the empty
        address; a source route is dropped; ``@$myorigin`` is appended to an
        address without ``@`` (``append_at_myorigin = yes``); one trailing dot
        goes (not ``..`` or ``@.``). Bang paths, the percent hack and
        ``append_dot_mydomain`` are not applied.
        """
        kinds = [p.kind for p in parts]
        if kinds == ["@"]:
            return ""
        if kinds[:1] == ["@"] and ":" in kinds[:-1]:
            internal = internal[internal.index(":") + 1 :]
            kinds = [p.kind for p in tokens.scan(tokens.quote_local(internal))]
        if "@" not in kinds and self.myorigin:
            internal = f"{internal}@{self.myorigin}"
            kinds = ["@", *(p.kind for p in tokens.scan(self.myorigin))]
        if len(kinds) > 1 and kinds[-1] == "." and kinds[-2] not in (".", "@"):
            internal = internal[:-1]
        return internal

    # -- envelope -------------------------------------------------------------

    def rewrite_mailbox(self, mailbox: Mailbox) -> tuple[Mailbox, AddressMapping | None]:
        """The rewritten envelope address and the mapping used (``None``: unchanged).

        The null sender is never rewritten (``smtp_rewrite_generic_internal()``).

        Raises:
            LookupTableError: see :meth:`map_address`; also when the result is
                not a valid envelope address.
        """
        if mailbox.is_null:
            return mailbox, None
        mapping = self.map_address(mailbox.unquoted)
        if mapping is None:
            return mailbox, None
        try:
            new = Mailbox.from_unquoted(mapping.address, enforce_limits=mailbox.enforce_limits)
        except AddressError as exc:
            raise LookupTableError(
                self.parameter,
                mapping.address,
                f"result for {mailbox.unquoted} is not a valid address: {exc.reason}",
            ) from None
        return new, mapping

    def rewrite_envelope(self, envelope: Envelope) -> tuple[Envelope, tuple[AddressMapping, ...]]:
        """The envelope with sender and recipients rewritten, and the mappings used.

        Postfix ``smtp_loop()``: ``MAIL FROM`` and each ``RCPT TO`` carry the
        rewritten address; ORCPT, NOTIFY and everything else stay as they
        were (the original recipient is reported in DSNs).
        """
        mappings: list[AddressMapping] = []
        sender, mapping = self.rewrite_mailbox(envelope.sender)
        if mapping is not None:
            mappings.append(mapping)
        recipients: list[Recipient] = []
        changed = sender is not envelope.sender
        for rcpt in envelope.recipients:
            address, mapping = self.rewrite_mailbox(rcpt.address)
            if mapping is None:
                recipients.append(rcpt)
                continue
            mappings.append(mapping)
            changed = True
            recipients.append(Recipient(address, orcpt=rcpt.orcpt, notify=rcpt.notify))
        if not changed:
            return envelope, ()
        return replace(envelope, sender=sender, recipients=tuple(recipients)), tuple(mappings)

    # -- headers --------------------------------------------------------------

    @staticmethod
    def is_address_header(name: str) -> bool:
        """Whether generic mapping applies to a primary header of this name."""
        return name.strip(" \t").lower() in ADDRESS_HEADERS

    def rewrite_header(self, header: str) -> HeaderRewrite | None:
        """Rewrite the addresses of one logical header ``Name: value``.

        Postfix ``smtp_header_rewrite()``: every address is looked up; when
        at least one matched (even if it maps to itself) the header is
        printed again from its tokens, one address per line, lines joined
        while shorter than 70 octets, continuation lines indented with a TAB.
        Returns ``None`` when no address matched: the header then goes out
        unchanged. The caller checks :meth:`is_address_header` first.

        Raises:
            LookupTableError: see :meth:`map_address`.
        """
        colon = header.find(":")
        if colon < 0:
            return None
        name = header[:colon].rstrip(" \t")
        tree = tokens.parse(header[colon + 1 :])
        mappings: list[AddressMapping] = []
        for node in tokens.addresses(tree):
            internal = tokens.internalize(node.children)
            mapping = self.map_address(internal)
            if mapping is not None:
                mappings.append(mapping)
                internal = mapping.address
            # smtp_map11_tree(): the address is rebuilt from its quoted form either way.
            node.children = tokens.scan(tokens.quote_local(internal))
        if not mappings:
            return None
        printed = tokens.externalize(tree, lines=True, truncate=True)
        return HeaderRewrite(_fold(f"{name}: {printed.text}"), tuple(mappings), printed.stripped)


def _fold(text: str) -> str:
    """Join address lines while shorter than 70 octets; indent the rest with a TAB.

    Postfix smtp_header_rewrite() (after cleanup_fold_header() and
    cleanup_out_header()).
    """
    segments = text.split("\n")
    lines = [segments[0]]
    width = _octets(segments[0])
    for segment in segments[1:]:
        size = _octets(segment)
        if width + 1 + size < _FOLD_WIDTH:
            lines[-1] += " " + segment
            width += 1 + size
        else:
            lines.append(segment)
            width = size
    return "\n".join(
        [lines[0], *(line if line[:1] in (" ", "\t") else "\t" + line for line in lines[1:])]
    )


def _optional_str(cfg: object, name: str) -> str | None:
    value = getattr(cfg, name, None)
    return value if isinstance(value, str) else None
