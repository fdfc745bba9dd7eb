"""``SaslOptions``: the smtp_sasl_* parameters the SASL client needs, typed and checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyfix_smtp.errors import ConfigError
from pyfix_smtp.sasl.cache import AuthFailureCache, open_auth_cache
from pyfix_smtp.sasl.passwords import Credentials, lookup_credentials
from pyfix_smtp.sasl.selection import (
    ConnectionSecurity,
    MechanismFilter,
    SecurityOption,
    parse_security_options,
)
from pyfix_smtp.sasl.tables import LookupTable

if TYPE_CHECKING:
    from pyfix_smtp.config import Config
    from pyfix_smtp.maps import TableList

__all__ = ["DEFAULT_SECURITY_OPTIONS", "SaslOptions"]

#: smtp_sasl_security_options default: "noplaintext, noanonymous".
DEFAULT_SECURITY_OPTIONS = frozenset({SecurityOption.NOPLAINTEXT, SecurityOption.NOANONYMOUS})

_NINETY_DAYS = 90 * 86400.0


@dataclass(frozen=True, slots=True)
class SaslOptions:
    """The SASL client settings, named after their Postfix parameters.

    ``tls_security_options`` and ``tls_verified_security_options`` left as
    ``None`` take Postfix's defaults (``$smtp_sasl_security_options`` and
    ``$smtp_sasl_tls_security_options``); after construction they are always set.

    Attributes:
        auth_enable: ``smtp_sasl_auth_enable``.
        password_maps: ``smtp_sasl_password_maps`` (a TableList or any
            :class:`~pyfix_smtp.sasl.tables.LookupTable`), or ``None``.
        password_result_delimiter: ``smtp_sasl_password_result_delimiter``.
        sender_dependent_authentication: ``smtp_sender_dependent_authentication``.
        mechanism_filter: ``smtp_sasl_mechanism_filter``.
        security_options: ``smtp_sasl_security_options``.
        tls_security_options: ``smtp_sasl_tls_security_options``.
        tls_verified_security_options: ``smtp_sasl_tls_verified_security_options``.
        send_authzid: ``send_cyrus_sasl_authzid``.
        auth_soft_bounce: ``smtp_sasl_auth_soft_bounce``.
        auth_cache_name: ``smtp_sasl_auth_cache_name`` (``sqlite:/path``, ``memory:``).
        auth_cache_time: ``smtp_sasl_auth_cache_time`` in seconds.
        sasl_type: ``smtp_sasl_type``; only ``cyrus`` exists for the Postfix client.
        protocol: ``"smtp"`` or ``"lmtp"`` (LMTP skips sender-dependent lookups).
        recipient_delimiter: ``recipient_delimiter``, for sender lookups.
        local_domains: ``$myorigin`` and ``$mydestination`` names, for sender lookups.
    """

    auth_enable: bool = False
    password_maps: LookupTable | None = None
    password_result_delimiter: str = ":"
    sender_dependent_authentication: bool = False
    mechanism_filter: MechanismFilter = field(default_factory=MechanismFilter)
    security_options: frozenset[SecurityOption] = DEFAULT_SECURITY_OPTIONS
    tls_security_options: frozenset[SecurityOption] | None = None
    tls_verified_security_options: frozenset[SecurityOption] | None = None
    send_authzid: bool = False
    auth_soft_bounce: bool = True
    auth_cache_name: str = ""
    auth_cache_time: float = _NINETY_DAYS
    sasl_type: str = "cyrus"
    protocol: str = "smtp"
    recipient_delimiter: str = ""
    local_domains: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.password_result_delimiter) != 1:
            # smtp_params.c: VAR_SMTP_SASL_PASSWD_RES_DELIM, min and max length 1.
            raise ConfigError(
                "smtp_sasl_password_result_delimiter",
                self.password_result_delimiter,
                "must be exactly one character",
            )
        if self.sasl_type != "cyrus":
            # xsasl_client.c: the only Postfix SASL *client* implementation is cyrus.
            raise ConfigError(
                "smtp_sasl_type",
                self.sasl_type,
                "unsupported SASL client implementation (only cyrus exists for the client)",
            )
        if self.protocol not in ("smtp", "lmtp"):
            raise ConfigError("protocol", self.protocol, "must be smtp or lmtp")
        if self.auth_cache_time < 0:
            raise ConfigError("smtp_sasl_auth_cache_time", self.auth_cache_time, "negative")
        if self.tls_security_options is None:
            object.__setattr__(self, "tls_security_options", self.security_options)
        if self.tls_verified_security_options is None:
            object.__setattr__(self, "tls_verified_security_options", self.tls_security_options)

    @classmethod
    def from_config(cls, cfg: Config) -> SaslOptions:
        """Build the options from a :class:`pyfix_smtp.config.Config`.

        In an LMTP config the smtp_* attributes hold the lmtp_* values, and
        errors name the lmtp_* parameters. ``recipient_delimiter`` comes
        from the Config; the local domains for sender lookups (``myorigin``
        and ``mydestination``) are filled in by the delivery options.
        """
        protocol = cfg.protocol

        def options(name: str) -> frozenset[SecurityOption]:
            value: tuple[str, ...] = getattr(cfg, name)
            return parse_security_options(value, _name(name, protocol))

        maps: TableList = cfg.smtp_sasl_password_maps
        return cls(
            auth_enable=cfg.smtp_sasl_auth_enable,
            password_maps=maps if maps else None,
            password_result_delimiter=cfg.smtp_sasl_password_result_delimiter,
            sender_dependent_authentication=cfg.smtp_sender_dependent_authentication,
            mechanism_filter=MechanismFilter.parse(
                cfg.smtp_sasl_mechanism_filter,
                parameter=_name("smtp_sasl_mechanism_filter", protocol),
            ),
            security_options=options("smtp_sasl_security_options"),
            tls_security_options=options("smtp_sasl_tls_security_options"),
            tls_verified_security_options=options("smtp_sasl_tls_verified_security_options"),
            send_authzid=cfg.send_cyrus_sasl_authzid,
            auth_soft_bounce=cfg.smtp_sasl_auth_soft_bounce,
            auth_cache_name=cfg.smtp_sasl_auth_cache_name,
            auth_cache_time=cfg.smtp_sasl_auth_cache_time,
            sasl_type=cfg.smtp_sasl_type,
            protocol=protocol,
        )

    def security_options_for(self, security: ConnectionSecurity) -> frozenset[SecurityOption]:
        """The options Postfix passes to the SASL library for this connection.

        Postfix smtp_sasl_proto.c smtp_sasl_helo_login(): plaintext, TLS, or
        TLS with a matched server certificate.
        """
        if security is ConnectionSecurity.PLAINTEXT:
            return self.security_options
        if security is ConnectionSecurity.TLS:
            assert self.tls_security_options is not None  # set in __post_init__
            return self.tls_security_options
        assert self.tls_verified_security_options is not None
        return self.tls_verified_security_options

    def credentials(self, *, host: str, nexthop: str, sender: str = "") -> Credentials | None:
        """The username and password for this server, or ``None`` (do not authenticate)."""
        if not self.auth_enable or self.password_maps is None:
            return None
        return lookup_credentials(
            self.password_maps,
            host=host,
            nexthop=nexthop,
            sender=sender,
            sender_dependent=self.sender_dependent_authentication,
            protocol=self.protocol,
            delimiter=self.password_result_delimiter,
            recipient_delimiter=self.recipient_delimiter,
            local_domains=self.local_domains,
        )

    def open_cache(self) -> AuthFailureCache | None:
        """Open the failure cache ``auth_cache_name`` names (``None`` when unset)."""
        return open_auth_cache(self.auth_cache_name, self.auth_cache_time)


def _name(parameter: str, protocol: str) -> str:
    # In an LMTP config the smtp_* attribute holds the lmtp_* parameter.
    return "lmtp_" + parameter.removeprefix("smtp_") if protocol == "lmtp" else parameter
