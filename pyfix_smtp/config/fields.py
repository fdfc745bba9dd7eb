"""The typed fields of :class:`~pyfix_smtp.config.Config`, one per parameter.

This class only declares the attributes (so that type checkers see each
parameter with its Python type); the registry in
:mod:`pyfix_smtp.config.params` defines their meaning, and
:mod:`pyfix_smtp.config.model` checks at import time that both agree.
Attributes are named by the smtp_* (or global) parameter name; in an LMTP
Config they hold the value of the lmtp_* twin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pyfix_smtp.maps import Table, TableList

__all__ = ["ConfigFields"]


@dataclass(frozen=True, slots=True, init=False, repr=False)
class ConfigFields:
    """Typed parameter attributes (see :class:`~pyfix_smtp.config.Config`)."""

    protocol: Literal["smtp", "lmtp"]
    ignore_mx_lookup_error: bool
    smtp_always_send_ehlo: bool
    smtp_never_send_ehlo: bool
    smtp_defer_if_no_mx_address_found: bool
    smtp_line_length_limit: int
    smtp_pix_workaround_delay_time: float
    smtp_pix_workaround_threshold_time: float
    smtp_pix_workarounds: tuple[str, ...]
    smtp_pix_workaround_maps: TableList
    smtp_quote_rfc821_envelope: bool
    smtp_reply_filter: TableList
    smtp_skip_5xx_greeting: bool
    smtp_skip_quit_response: bool
    smtp_skip_4xx_greeting: bool
    smtp_discard_ehlo_keyword_address_maps: TableList
    smtp_discard_ehlo_keywords: tuple[str, ...]
    smtp_generic_maps: TableList
    smtp_cname_overrides_servername: bool
    send_cyrus_sasl_authzid: bool
    smtp_header_checks: TableList
    smtp_mime_header_checks: TableList
    smtp_nested_header_checks: TableList
    smtp_body_checks: TableList
    tcp_windowsize: int
    smtp_dns_resolver_options: tuple[str, ...]
    smtp_per_record_deadline: bool
    smtp_send_dummy_mail_auth: bool
    smtp_dns_support_level: str
    smtp_delivery_status_filter: TableList
    smtp_dns_reply_filter: TableList
    smtp_balance_inet_protocols: bool
    info_log_address_format: str
    dnssec_probe: str
    known_tcp_ports: tuple[tuple[str, int], ...]
    smtp_per_request_deadline: bool
    smtp_min_data_rate: int
    header_from_format: str
    use_srv_lookup: tuple[str, ...]
    ignore_srv_lookup_error: bool
    allow_srv_lookup_fallback: bool
    disable_mime_output_conversion: bool
    mime_boundary_length_limit: int
    mime_nesting_limit: int
    smtp_send_xforward_command: bool
    smtp_sasl_auth_enable: bool
    smtp_sasl_password_maps: TableList
    smtp_sasl_security_options: tuple[str, ...]
    smtp_sasl_mechanism_filter: tuple[str, ...]
    smtp_sender_dependent_authentication: bool
    smtp_sasl_path: str
    smtp_sasl_type: str
    smtp_sasl_auth_cache_name: str
    smtp_sasl_auth_cache_time: float
    smtp_sasl_auth_soft_bounce: bool
    smtp_sasl_password_result_delimiter: str
    smtp_tls_security_level: str
    smtp_sasl_tls_security_options: tuple[str, ...]
    smtp_starttls_timeout: float
    smtp_tls_cert_file: str
    smtp_tls_mandatory_ciphers: str
    smtp_tls_exclude_ciphers: tuple[str, ...]
    smtp_tls_mandatory_exclude_ciphers: tuple[str, ...]
    smtp_tls_dcert_file: str
    smtp_tls_dkey_file: str
    smtp_tls_key_file: str
    smtp_tls_loglevel: str
    smtp_tls_note_starttls_offer: bool
    smtp_tls_policy_maps: TableList
    smtp_tls_mandatory_protocols: tuple[str, ...]
    smtp_tls_scert_verifydepth: int
    smtp_tls_secure_cert_match: tuple[str, ...]
    smtp_tls_session_cache_database: str
    smtp_tls_session_cache_timeout: float
    smtp_tls_verify_cert_match: tuple[str, ...]
    tls_daemon_random_bytes: int
    tls_high_cipherlist: str
    tls_medium_cipherlist: str
    tls_null_cipherlist: str
    tls_low_cipherlist: str
    tls_export_cipherlist: str
    smtp_sasl_tls_verified_security_options: tuple[str, ...]
    smtp_tls_fingerprint_cert_match: tuple[str, ...]
    smtp_tls_fingerprint_digest: str
    smtp_tls_protocols: tuple[str, ...]
    smtp_tls_ciphers: str
    smtp_tls_eccert_file: str
    smtp_tls_eckey_file: str
    smtp_tls_block_early_mail_reply: bool
    tls_disable_workarounds: tuple[str, ...]
    tls_dane_digest_agility: str
    tls_dane_trust_anchor_digest_enable: bool
    smtp_tls_trust_anchor_file: tuple[str, ...]
    smtp_tls_force_insecure_host_tlsa_lookup: bool
    tlsmgr_service_name: str
    smtp_tls_wrappermode: bool
    smtp_tls_dane_insecure_mx_policy: str
    tls_eecdh_auto_curves: tuple[str, ...]
    smtp_tls_connection_reuse: bool
    smtp_tls_chain_files: tuple[str, ...]
    smtp_tls_servername: str
    tls_fast_shutdown_enable: bool
    tls_ffdhe_auto_groups: tuple[str, ...]
    tls_config_file: str
    tls_config_name: str
    smtp_tls_enable_rpk: bool
    smtp_tlsrpt_enable: bool
    smtp_tlsrpt_socket_name: str
    smtp_tlsrpt_skip_reused_handshakes: bool
    tls_required_enable: bool
    smtp_tls_enforce_sts_mx_patterns: bool
    requiretls_enable: bool
    smtp_requiretls_policy: tuple[str | Table, ...]
    smtp_log_tls_feature_status: bool
    smtp_use_tls: bool
    smtp_enforce_tls: bool
    smtp_tls_enforce_peername: bool
    smtp_tls_per_site: TableList
    smtp_tls_cipherlist: str
    smtp_connect_timeout: float
    smtp_helo_timeout: float
    smtp_xforward_timeout: float
    smtp_mail_timeout: float
    smtp_rcpt_timeout: float
    smtp_data_init_timeout: float
    smtp_data_xfer_timeout: float
    smtp_data_done_timeout: float
    smtp_quit_timeout: float
    smtp_mx_address_limit: int
    smtp_mx_session_limit: int
    smtp_rset_timeout: float
    lmtp_cache_connection: bool
    smtp_connection_cache_destinations: tuple[str, ...]
    smtp_connection_cache_on_demand: bool
    smtp_connection_reuse_time_limit: float
    smtp_connection_cache_time_limit: float
    connection_cache_protocol_timeout: float
    smtp_connection_reuse_count_limit: int
    smtp_destination_concurrency_limit: int
    smtp_destination_recipient_limit: int
    smtputf8_enable: bool
    smtputf8_autodetect_classes: tuple[str, ...]
    enable_idna2003_compatibility: bool
    debug_peer_level: int
    debug_peer_list: tuple[str, ...]
    error_notice_recipient: str
    internal_mail_filter_classes: tuple[str, ...]
    notify_classes: tuple[str, ...]
    best_mx_transport: str
    config_directory: str
    daemon_timeout: float
    delay_logging_resolution_limit: int
    disable_dns_lookups: bool
    inet_interfaces: tuple[str, ...]
    inet_protocols: tuple[str, ...]
    ipc_timeout: float
    lmtp_assume_final: bool
    max_idle: float
    max_use: int
    process_id: str
    process_name: str
    proxy_interfaces: tuple[str, ...]
    smtp_address_preference: str
    smtp_bind_address: str
    smtp_bind_address6: str
    smtp_helo_name: str
    smtp_host_lookup: tuple[str, ...]
    smtp_randomize_addresses: bool
    syslog_facility: str
    syslog_name: str
    fallback_relay: tuple[str, ...]
    smtp_fallback_relay: tuple[str, ...]
    smtp_address_verify_target: str
    smtp_tcp_port: str
    service_name: str
    smtp_bind_address_enforce: bool
    smtp_tls_CAfile: str
    smtp_tls_CApath: str
    smtp_mta_sts_enable: bool
    compatibility_level: str
    myhostname: str
    mydomain: str
    relayhost: str
    soft_bounce: bool
    minimal_backoff_time: float
    queue_run_delay: float
    default_destination_recipient_limit: int
    default_destination_concurrency_limit: int
    default_delivery_status_filter: TableList
    propagate_unmatched_extensions: tuple[str, ...]
    recipient_delimiter: str
    myorigin: str
    mydestination: tuple[str, ...]
    owner_request_special: bool
    double_bounce_sender: str
    line_length_limit: int
    header_size_limit: int
    _unknown_items: tuple[tuple[str, str], ...]
    _texts: tuple[tuple[str, str], ...] = field(compare=False)
    _objects: tuple[tuple[str, object], ...] = field(compare=False)
