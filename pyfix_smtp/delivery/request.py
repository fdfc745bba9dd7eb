"""One delivery request: envelope, re-readable content, nexthop, Config and context.

A :class:`DeliveryRequest` holds everything the sans-IO core
(:func:`pyfix_smtp.delivery.core.deliver_steps`) needs and nothing it would
have to look up itself: like Postfix's ``DELIVER_REQUEST`` plus the few
facts a library caller must supply (the message's arrival time, whether it
is an address-verification probe, our own interface addresses for mail-loop
detection, the caches). :func:`build_request` turns what users pass to
``pyfix_smtp.deliver()`` into one.

The content is read once per delivery *attempt* (a failed session may be
followed by another server), so it must be re-readable: a
:class:`ContentSource`. Bytes, an ``email.message.Message`` and seekable
binary files qualify directly; a one-shot iterator has to be spooled first,
which is I/O and therefore the transport's job (see *spool* in
:func:`build_request`).
"""

from __future__ import annotations

import io
import ipaddress
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields, replace
from email.message import Message

from pyfix_smtp.config import Config
from pyfix_smtp.delivery.options import delivery_options
from pyfix_smtp.destination import Destination, sites
from pyfix_smtp.dns.options import PlanOptions
from pyfix_smtp.errors import ConfigError
from pyfix_smtp.protocol.content import DEFAULT_READ_SIZE, declares_8bit
from pyfix_smtp.protocol.envelope import BodyType, Envelope
from pyfix_smtp.sasl.cache import AuthFailureCache
from pyfix_smtp.tls.mtasts import StsCache

__all__ = [
    "ContentSource",
    "DeliveryRequest",
    "build_request",
    "content_source",
    "plan_options_for",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ContentSource:
    """Message content that can be read from the start as often as needed.

    :meth:`open` returns a fresh iterator of bytes chunks each time. *size*
    is the content size in octets when known (used for ``SIZE=`` and the
    server's SIZE limit when the envelope does not give one).

    Build one with :meth:`from_bytes`, :meth:`from_file` or
    :meth:`from_message`, or pass any re-callable *opener*.
    """

    __slots__ = ("_data", "_opener", "size")

    def __init__(self, opener: Callable[[], Iterable[bytes]], *, size: int | None = None) -> None:
        if size is not None and (isinstance(size, bool) or size < 0):
            raise ValueError(f"content size must be a non-negative int, not {size!r}")
        self._opener = opener
        self._data: bytes | None = None
        self.size = size

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> ContentSource:
        """Content held in memory."""
        blob = bytes(data)
        source = cls(lambda: (blob,), size=len(blob))
        source._data = blob
        return source

    @classmethod
    def from_message(cls, message: Message) -> ContentSource:
        """An ``email.message.Message``, serialised once with ``as_bytes()``."""
        return cls.from_bytes(message.as_bytes())

    @classmethod
    def from_file(cls, file: io.IOBase, *, read_size: int = DEFAULT_READ_SIZE) -> ContentSource:
        """A seekable binary file, read from its current position on every :meth:`open`.

        Raises:
            TypeError: the file is not seekable or not binary.
        """
        if not file.seekable():
            raise TypeError("content file must be seekable (or pass a ContentSource)")
        start = file.tell()
        end = file.seek(0, io.SEEK_END)
        file.seek(start)

        def opener() -> Iterator[bytes]:
            file.seek(start)
            while True:
                chunk = file.read(read_size)
                if not chunk:
                    return
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    raise TypeError("content file must be opened in binary mode")
                yield bytes(chunk)

        return cls(opener, size=end - start)

    @property
    def data(self) -> bytes | None:
        """The whole content when it is held in memory, else None."""
        return self._data

    def open(self) -> Iterator[bytes]:
        """A new iterator over the content, from the first octet."""
        return iter(self._opener())


def _rereadable(content: object) -> bool:
    """Content :func:`content_source` accepts without spooling."""
    if isinstance(content, ContentSource | bytes | bytearray | memoryview | Message | str):
        return True
    seekable = getattr(content, "seekable", None)
    return callable(seekable) and bool(seekable())


def content_source(content: object) -> ContentSource:
    """Make a :class:`ContentSource` from what users pass as message content.

    Raises:
        TypeError: ``str`` content, or a one-shot iterator (spool it first:
            the transport does that for ``pyfix_smtp.deliver()``).
    """
    if isinstance(content, ContentSource):
        return content
    if isinstance(content, str):
        raise TypeError("message content must be bytes, not str (encode it first)")
    if isinstance(content, bytes | bytearray | memoryview):
        return ContentSource.from_bytes(content)
    if isinstance(content, Message):
        return ContentSource.from_message(content)
    if isinstance(content, io.TextIOBase):
        raise TypeError("message content files must be opened in binary mode ('rb')")
    if isinstance(content, io.IOBase) or hasattr(content, "seekable"):
        return ContentSource.from_file(content)  # type: ignore[arg-type]
    raise TypeError(
        f"message content of type {type(content).__name__} cannot be read twice; "
        "pass bytes, a Message, a seekable binary file or a ContentSource "
        "(pyfix_smtp.deliver() spools iterators for you)"
    )


@dataclass(frozen=True, slots=True)
class DeliveryRequest:
    """Everything one delivery needs (Postfix ``DELIVER_REQUEST`` and more).

    Attributes:
        envelope: sender, recipients (in order) and DSN/SMTPUTF8/REQUIRETLS
            requests; ``size`` filled in from the content when unknown.
        content: the message, re-readable.
        nexthop: the destination as Postfix writes it (``example.com``,
            ``[mx.example.com]:587``, ``inet:host:24``, ``unix:/path``).
        destinations: *nexthop* then ``smtp_fallback_relay``, parsed.
        config: the Postfix parameters.
        rng: randomness for MX shuffling (injected; never the global one).
        arrival: when the message entered the system (Postfix
            ``incoming_arrival``), for ``delay=``, the plaintext-fallback
            ``minimal_backoff_time`` rule and the PIX
            ``smtp_pix_workaround_threshold_time``; None means "now" (a first
            attempt).
        queue_id: a queue id for log lines (may be empty).
        verify_probe: this is an address-verification probe (Postfix
            trace-only request): stop at ``smtp_address_verify_target`` and
            allow plaintext fallback at once.
        tls_required_no: the message carries ``TLS-Required: no`` (RFC 8689 §5).
        nexthop_is_relayhost: *nexthop* is the configured ``relayhost``: a
            hard failure of every server becomes 4.3.5 (Postfix compares the
            nexthop with ``$relayhost``).
        plan_options: DNS planner options with our interface addresses, or
            None to derive them from *config*, *own_addresses* and
            *proxy_addresses*.
        own_addresses, proxy_addresses: the addresses of ``inet_interfaces``
            and ``proxy_interfaces`` (best-MX loop detection).
        connection_cache: the driver keeps connections between deliveries
            (``CacheTake``/``CacheSave`` effects are used).
        mta_sts: look up MTA-STS policies (beyond Postfix; needs *sts_cache*).
        sts_cache: MTA-STS policy cache shared across deliveries.
        sasl_cache: SASL authentication-failure cache shared across deliveries.
    """

    envelope: Envelope
    content: ContentSource
    nexthop: str
    destinations: tuple[Destination, ...]
    config: Config
    rng: random.Random
    arrival: float | None = None
    queue_id: str = ""
    verify_probe: bool = False
    tls_required_no: bool = False
    nexthop_is_relayhost: bool = False
    plan_options: PlanOptions | None = None
    own_addresses: tuple[str, ...] | None = None
    proxy_addresses: tuple[str, ...] | None = None
    connection_cache: bool = False
    mta_sts: bool = False
    sts_cache: StsCache | None = None
    sasl_cache: AuthFailureCache | None = None

    def planner_options(self) -> PlanOptions:
        """The DNS planner options for this request (derived once per Config).

        Raises:
            ConfigError: ``inet_interfaces`` needs the system's addresses and
                none were given (SMTP only).
        """
        opts = self.plan_options
        if opts is None:
            opts = plan_options_for(self.config, self.own_addresses, self.proxy_addresses)
        if self.nexthop_is_relayhost and opts.relayhost != self.destinations[0].text:
            # One instance per (options, relayhost): literal sites are
            # remembered per PlanOptions identity.
            memo = delivery_options(self.config).memo
            key = ("relayhost", id(opts), self.destinations[0].text)
            found = memo.get(key)
            if found is None or found[0] is not opts:
                found = (opts, replace(opts, relayhost=self.destinations[0].text))
                if len(memo) > 4096:
                    memo.clear()
                memo[key] = found
            opts = found[1]
        return opts


def plan_options_for(
    config: Config,
    own_addresses: tuple[str, ...] | None = None,
    proxy_addresses: tuple[str, ...] | None = None,
) -> PlanOptions:
    """:meth:`PlanOptions.from_config`, computed once per (Config, addresses)."""
    memo = delivery_options(config).memo
    key = ("plan", own_addresses, proxy_addresses)
    found = memo.get(key)
    if found is None:
        found = PlanOptions.from_config(
            config, own_addresses=own_addresses, proxy_addresses=proxy_addresses
        )
        memo[key] = found
    assert isinstance(found, PlanOptions)
    return found


def _destinations(nexthop: str, config: Config) -> tuple[Destination, ...]:
    """The parsed nexthop, once per (nexthop, Config)."""
    memo = delivery_options(config).memo
    key = ("nexthop", nexthop)
    found = memo.get(key)
    if found is None:
        if len(memo) > 4096:
            memo.clear()
        found = memo[key] = _parse_destinations(nexthop, config)
    assert isinstance(found, tuple)
    return found


def _parse_destinations(nexthop: str, config: Config) -> tuple[Destination, ...]:
    """Postfix smtp_connect(): the nexthop's sites, then the fallback relays."""
    text = nexthop
    if config.protocol == "lmtp" and text.startswith("inet:"):
        text = text[5:]  # smtp_connect.c smtp_connect(): "inet:" applies to the whole list
    return sites(
        text,
        config.smtp_fallback_relay,
        protocol=config.protocol,
        use_srv_lookup=config.use_srv_lookup,
        disable_dns_lookups=config.disable_dns_lookups
        or config.smtp_dns_support_level.lower() == "disabled",
        known_tcp_ports=dict(config.known_tcp_ports),
        smtp_tcp_port=config.smtp_tcp_port,
    )


_SHARED_RNG = random.Random()
_ENVELOPE_FIELDS = tuple(f.name for f in fields(Envelope))


def _envelope_with(envelope: Envelope, name: str, value: object) -> Envelope:
    """A copy of a (valid) envelope with one field set to a value already checked.

    ``dataclasses.replace()`` would run every check of ``Envelope()`` again,
    which costs more than the rest of building a request.
    """
    copy = object.__new__(Envelope)
    for field_name in _ENVELOPE_FIELDS:
        object.__setattr__(copy, field_name, getattr(envelope, field_name))
    object.__setattr__(copy, name, value)
    return copy


def _addresses(value: Iterable[str | IPAddress] | None, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise ConfigError(name, value, "expected a list of addresses, not one string")
    return tuple(str(v) for v in value)


def build_request(
    envelope: Envelope,
    content: object,
    *,
    nexthop: str,
    config: Config | None = None,
    rng: random.Random | None = None,
    arrival: float | None = None,
    queue_id: str = "",
    verify_probe: bool = False,
    tls_required_no: bool = False,
    nexthop_is_relayhost: bool = False,
    plan_options: PlanOptions | None = None,
    own_addresses: Iterable[str | IPAddress] | None = None,
    proxy_addresses: Iterable[str | IPAddress] | None = None,
    connection_cache: bool = False,
    mta_sts: bool = False,
    sts_cache: StsCache | None = None,
    sasl_cache: AuthFailureCache | None = None,
    spool: Callable[[Iterable[bytes]], ContentSource] | None = None,
    detect_8bit: bool = True,
) -> DeliveryRequest:
    """Check and assemble a :class:`DeliveryRequest` (see its attributes).

    *content* is bytes, a ``Message``, a seekable binary file, a
    :class:`ContentSource`, or (with *spool*) any iterable of bytes chunks:
    *spool* copies it somewhere re-readable (the transport passes a
    temporary-file spooler). When the envelope has no ``size``, the
    content's size is used. With *detect_8bit* and an undeclared body, the
    content's MIME headers decide ``BODY=8BITMIME`` as Postfix cleanup(8)
    does (:func:`pyfix_smtp.protocol.content.declares_8bit`); pure ASCII
    content in memory skips that scan.

    Raises:
        DestinationError: the nexthop or a fallback relay does not parse.
        ConfigError: a parameter has an unusable value.
        TypeError: content that cannot be re-read and no *spool*.
    """
    cfg = config if config is not None else Config()
    if not isinstance(envelope, Envelope):
        raise TypeError(f"envelope must be a pyfix_smtp Envelope, not {type(envelope).__name__}")
    if spool is not None and not _rereadable(content) and isinstance(content, Iterable):
        source = spool(content)
    else:
        source = content_source(content)
    destinations = _destinations(nexthop, cfg)
    env = envelope
    if env.size is None and source.size is not None:
        env = _envelope_with(env, "size", source.size)
    if detect_8bit and env.body is BodyType.UNDECLARED:
        data = source.data
        if (data is None or not data.isascii()) and declares_8bit(source.open()):
            env = _envelope_with(env, "body", BodyType.EIGHT_BIT)
    request = DeliveryRequest(
        envelope=env,
        content=source,
        nexthop=nexthop,
        destinations=destinations,
        config=cfg,
        rng=rng if rng is not None else _SHARED_RNG,
        arrival=arrival,
        queue_id=queue_id,
        verify_probe=verify_probe,
        tls_required_no=tls_required_no,
        nexthop_is_relayhost=nexthop_is_relayhost,
        plan_options=plan_options,
        own_addresses=_addresses(own_addresses, "inet_interfaces"),
        proxy_addresses=_addresses(proxy_addresses, "proxy_interfaces"),
        connection_cache=connection_cache,
        mta_sts=mta_sts,
        sts_cache=sts_cache,
        sasl_cache=sasl_cache,
    )
    if plan_options is None and destinations[0].path is None and cfg.protocol == "smtp":
        request.planner_options()  # fail early on unresolved inet_interfaces
    return request
