"""Everything the delivery core reads from a :class:`~pyfix_smtp.config.Config`, derived once.

Parsing a Config into option objects (DNS planner, TLS, SASL, protocol,
content encoder, REQUIRETLS policy, timeouts) costs far more than sending
a small message over a cached connection, so :func:`delivery_options`
builds a :class:`DeliveryOptions` once per Config (a bounded
``functools.lru_cache``; Config is frozen and hashable) and every delivery
with that Config shares it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pyfix_smtp.address_rewrite import GenericMaps
from pyfix_smtp.config import Config
from pyfix_smtp.errors import ConfigError, TlsPolicyError
from pyfix_smtp.maps import TableList
from pyfix_smtp.protocol.connection import ClientOptions
from pyfix_smtp.protocol.content import EncoderOptions
from pyfix_smtp.protocol.events import Stage
from pyfix_smtp.protocol.header_checks import ContentChecks
from pyfix_smtp.sasl.options import SaslOptions
from pyfix_smtp.tls.levels import TlsLevel
from pyfix_smtp.tls.options import TlsOptions
from pyfix_smtp.tls.requiretls import RequireTlsPolicy

__all__ = ["TIMEOUT_PARAMETERS", "DeliveryOptions", "delivery_options"]

#: Every time limit the core applies, by Postfix parameter name (the
#: protocol machine names the one for its current stage).
TIMEOUT_PARAMETERS = (
    "smtp_connect_timeout",
    "smtp_helo_timeout",
    "smtp_starttls_timeout",
    "smtp_xforward_timeout",
    "smtp_mail_timeout",
    "smtp_rcpt_timeout",
    "smtp_data_init_timeout",
    "smtp_data_xfer_timeout",
    "smtp_data_done_timeout",
    "smtp_quit_timeout",
    "smtp_rset_timeout",
)


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """The delivery core's view of one Config (see :func:`delivery_options`).

    Attribute names are Postfix parameter names where there is one; in an
    LMTP Config they hold the ``lmtp_*`` values, as in Postfix.
    """

    config: Config
    protocol: str
    timeouts: Mapping[str, float]
    #: ``smtp_per_request_deadline``; the old ``smtp_per_record_deadline``
    #: only feeds its default (Postfix 3.11 mail_params.h DEF_SMTP_REQ_DEADLINE).
    per_request_deadline: bool
    smtp_min_data_rate: int
    client: ClientOptions
    encoder: EncoderOptions
    tls: TlsOptions
    sasl: SaslOptions
    requiretls_policy: RequireTlsPolicy | None
    global_tls_level: TlsLevel
    smtp_mx_address_limit: int
    smtp_mx_session_limit: int
    smtp_skip_5xx_greeting: bool
    soft_bounce: bool
    myhostname: str
    minimal_backoff_time: float
    smtp_address_verify_target: str
    lmtp_assume_final: bool
    smtp_bind_address: str
    smtp_bind_address6: str
    smtp_bind_address_enforce: bool
    smtp_fallback_relay: tuple[str, ...]
    smtp_tcp_port: str
    use_srv_lookup: tuple[str, ...]
    known_tcp_ports: Mapping[str, int]
    disable_dns_lookups: bool
    smtp_connection_cache_on_demand: bool
    smtp_connection_cache_destinations: tuple[str, ...]
    smtp_connection_cache_time_limit: float
    smtp_connection_reuse_time_limit: float
    smtp_connection_reuse_count_limit: int
    smtp_discard_ehlo_keyword_address_maps: TableList
    smtp_pix_workaround_maps: TableList
    #: The PIX ``delay_dotcrlf`` pause before the final "." and the message
    #: age it needs (Postfix var_smtp_pix_delay and var_smtp_pix_thresh).
    smtp_pix_workaround_delay_time: float
    smtp_pix_workaround_threshold_time: float
    delay_logging_resolution_limit: int
    #: ``smtp_generic_maps`` with the parameters that shape its lookups, or
    #: None when no table is configured (the envelope is sent as given).
    generic_maps: GenericMaps | None
    #: The header/body checks and header address rewriting, or None when
    #: nothing is configured (the encoder then runs without a hook).
    content_checks: ContentChecks | None
    #: Stands in for Postfix's master.cf service name in connection-cache
    #: keys: ``service_name`` plus a digest of the whole Config, so that
    #: deliveries with different settings never share a cached connection.
    service_key: str
    sasl_enabled: bool = field(default=False)
    #: ``smtp_tlsrpt_enable`` after Postfix's start-up checks (smtp.c
    #: pre_init(), smtp_tlsrpt_post_jail()): off for LMTP and without DNS.
    tlsrpt_enable: bool = field(default=False)
    #: ``smtp_tlsrpt_skip_reused_handshakes``.
    tlsrpt_skip_reused: bool = field(default=False)
    #: Why TLSRPT was switched off although enabled (Postfix's warning), or None.
    tlsrpt_warning: str | None = field(default=None)
    #: Values derived from this Config and reused across deliveries (parsed
    #: nexthops, planner options, address plans of literal nexthops, TLS
    #: policies that needed no DNS); bounded by their users.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False, hash=False)
    #: The time limit of each protocol stage (None: idle, the hello timeout),
    #: what :meth:`timeout` gives for the stage's parameter.
    stage_timeouts: Mapping[Stage | None, float] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )
    #: Connection-cache label parts (KeyContext) by sender, nexthop and
    #: SMTPUTF8 need: one instance per value. Bounded by the core.
    key_contexts: dict[Any, Any] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    def timeout(self, parameter: str | None) -> float:
        """The value of a timeout parameter (``smtp_helo_timeout`` when None)."""
        return self.timeouts[parameter or "smtp_helo_timeout"]


def _mapping(pairs: tuple[tuple[str, int], ...]) -> dict[str, int]:
    return dict(pairs)


def _plain_names(values: tuple[str, ...]) -> tuple[str, ...]:
    """The domain names of a ``mydestination``-style list (tables and files left out)."""
    return tuple(v for v in values if "/" not in v and ":" not in v)


_BY_ID: dict[int, tuple[Config, DeliveryOptions]] = {}


def _tlsrpt_enable(cfg: Config) -> tuple[bool, str | None]:
    """``smtp_tlsrpt_enable`` after Postfix smtp.c pre_init() and smtp_tlsrpt_post_jail().

    An empty ``smtp_tlsrpt_socket_name`` does not switch TLSRPT off here
    (Postfix does): the results still reach the DeliveryReport, and the
    transport sends datagrams only when a socket is named.
    """
    if not cfg.smtp_tlsrpt_enable:
        return False, None
    if cfg.protocol != "smtp":
        return False, "TLSRPT support is not implemented for LMTP"  # smtp.c pre_init()
    if cfg.disable_dns_lookups or cfg.smtp_dns_support_level.lower() == "disabled":
        return False, "Cannot enable TLSRPT support: DNS is disabled"  # smtp_tlsrpt_post_jail()
    return True, None


def delivery_options(config: Config) -> DeliveryOptions:
    """The options of *config*, computed once per Config.

    Raises:
        ConfigError: a parameter the core needs has an unusable value
            (the error names it).
    """
    hit = _BY_ID.get(id(config))
    if hit is not None and hit[0] is config:
        return hit[1]
    options = _by_value(config)
    if len(_BY_ID) >= 64:
        _BY_ID.clear()
    _BY_ID[id(config)] = (config, options)  # keeps config alive: its id stays unique
    return options


@functools.lru_cache(maxsize=64)
def _by_value(config: Config) -> DeliveryOptions:
    return _build(config)


def _build(config: Config) -> DeliveryOptions:
    cfg = config
    lmtp = cfg.protocol == "lmtp"
    timeouts = {name: float(getattr(cfg, name)) for name in TIMEOUT_PARAMETERS}
    for name, value in timeouts.items():
        if value < 0:
            raise ConfigError(name, value, "a time limit cannot be negative")
    if cfg.smtp_min_data_rate < 1:
        raise ConfigError("smtp_min_data_rate", cfg.smtp_min_data_rate, "must be at least 1")
    # Per server the core replaces peer_name, and the EHLO keyword and PIX
    # workaround lists when their address maps have an entry.
    client = ClientOptions.from_config(cfg, peer_name="unknown")
    if cfg.line_length_limit != client.line_length_limit:
        # Postfix smtp_chat.c smtp_chat_resp(): reply lines are read up to line_length_limit.
        client = replace(client, line_length_limit=cfg.line_length_limit)
    encoder = EncoderOptions.from_config(cfg)
    if cfg.header_size_limit != encoder.header_size_limit:
        encoder = replace(encoder, header_size_limit=cfg.header_size_limit)
    tls = TlsOptions.from_config(cfg)
    sasl = SaslOptions.from_config(cfg)
    if sasl.sender_dependent_authentication and sasl.password_maps is not None:
        # Postfix smtp_sasl_glue.c: mail_addr_find() on the sender, which strips
        # recipient_delimiter extensions and tries the bare user of local domains.
        sasl = replace(
            sasl,
            recipient_delimiter=cfg.recipient_delimiter,
            local_domains=(cfg.myorigin, *_plain_names(cfg.mydestination)),
        )
    # Postfix smtp.c pre_init(): smtp_generic_maps, then the header/body checks.
    generic = GenericMaps.from_config(cfg)
    content_checks = ContentChecks.from_config(cfg, generic=generic)
    requiretls: RequireTlsPolicy | None = None
    if cfg.requiretls_enable:
        origin = "lmtp_requiretls_policy" if lmtp else "smtp_requiretls_policy"
        try:
            requiretls = RequireTlsPolicy.parse(cfg.smtp_requiretls_policy, origin=origin)
        except TlsPolicyError as exc:
            raise ConfigError(origin, cfg.smtp_requiretls_policy, exc.reason) from None
    target = cfg.smtp_address_verify_target.lower()
    if target not in ("rcpt", "data"):
        raise ConfigError(
            "smtp_address_verify_target", cfg.smtp_address_verify_target, "expected rcpt or data"
        )
    for name in ("smtp_mx_address_limit", "smtp_mx_session_limit"):
        if getattr(cfg, name) < 0:
            raise ConfigError(name, getattr(cfg, name), "must be 0 (no limit) or more")
    tlsrpt_enable, tlsrpt_warning = _tlsrpt_enable(cfg)
    return DeliveryOptions(
        config=cfg,
        protocol=cfg.protocol,
        timeouts=timeouts,
        per_request_deadline=cfg.smtp_per_request_deadline,  # Postfix smtp_proto.c
        smtp_min_data_rate=cfg.smtp_min_data_rate,
        client=client,
        encoder=encoder,
        tls=tls,
        sasl=sasl,
        requiretls_policy=requiretls,
        global_tls_level=tls.global_level,
        smtp_mx_address_limit=cfg.smtp_mx_address_limit,
        smtp_mx_session_limit=cfg.smtp_mx_session_limit,
        smtp_skip_5xx_greeting=cfg.smtp_skip_5xx_greeting,
        soft_bounce=cfg.soft_bounce,
        myhostname=cfg.myhostname,
        minimal_backoff_time=cfg.minimal_backoff_time,
        smtp_address_verify_target=target,
        lmtp_assume_final=cfg.lmtp_assume_final,
        smtp_bind_address=cfg.smtp_bind_address,
        smtp_bind_address6=cfg.smtp_bind_address6,
        smtp_bind_address_enforce=cfg.smtp_bind_address_enforce,
        smtp_fallback_relay=cfg.smtp_fallback_relay,
        smtp_tcp_port=cfg.smtp_tcp_port,
        use_srv_lookup=cfg.use_srv_lookup,
        known_tcp_ports=_mapping(cfg.known_tcp_ports),
        disable_dns_lookups=cfg.disable_dns_lookups
        or cfg.smtp_dns_support_level.lower() == "disabled",
        smtp_connection_cache_on_demand=cfg.smtp_connection_cache_on_demand,
        smtp_connection_cache_destinations=cfg.smtp_connection_cache_destinations,
        smtp_connection_cache_time_limit=cfg.smtp_connection_cache_time_limit,
        smtp_connection_reuse_time_limit=cfg.smtp_connection_reuse_time_limit,
        smtp_connection_reuse_count_limit=cfg.smtp_connection_reuse_count_limit,
        smtp_discard_ehlo_keyword_address_maps=cfg.smtp_discard_ehlo_keyword_address_maps,
        smtp_pix_workaround_maps=cfg.smtp_pix_workaround_maps,
        smtp_pix_workaround_delay_time=cfg.smtp_pix_workaround_delay_time,
        smtp_pix_workaround_threshold_time=cfg.smtp_pix_workaround_threshold_time,
        delay_logging_resolution_limit=cfg.delay_logging_resolution_limit,
        generic_maps=generic,
        content_checks=content_checks,
        service_key=f"{cfg.service_name or cfg.protocol}#{hash(cfg) & 0xFFFFFFFF:08x}",
        sasl_enabled=cfg.smtp_sasl_auth_enable,
        tlsrpt_enable=tlsrpt_enable,
        tlsrpt_skip_reused=cfg.smtp_tlsrpt_skip_reused_handshakes,
        tlsrpt_warning=tlsrpt_warning,
        stage_timeouts={
            None: timeouts["smtp_helo_timeout"],
            **{stage: timeouts[stage.timeout_parameter] for stage in Stage},
        },
    )
