"""TLS options: the Postfix parameters the TLS layer reads, as one frozen value.

Names are Postfix's parameter names (smtp_*; an LMTP configuration puts the
lmtp_* values in the same fields). :meth:`TlsOptions.from_config` builds
one from a :class:`pyfix_smtp.config.Config`; tests and callers without a
Config build it directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sized
from dataclasses import dataclass, fields
from typing import Protocol, runtime_checkable

from pyfix_smtp.errors import ConfigError
from pyfix_smtp.maps import TableList
from pyfix_smtp.tls.levels import TlsLevel, global_level
from pyfix_smtp.tls.loglevel import TlsLog, parse_log_level
from pyfix_smtp.tls.protocols import (
    DEFAULT_HIGH_CIPHERLIST,
    DEFAULT_MEDIUM_CIPHERLIST,
    DEFAULT_NULL_CIPHERLIST,
)
from pyfix_smtp.tls.workarounds import disabled_workarounds

__all__ = [
    "MAX_SESSION_CACHE_TIMEOUT",
    "MIN_SESSION_CACHE_TIMEOUT",
    "LookupTable",
    "TlsOptions",
    "as_table",
]

#: Postfix mail_params.h MAX_SMTP_TLS_SCACHETIME: the longest session cache timeout.
MAX_SESSION_CACHE_TIMEOUT = 8640000.0
#: Postfix tls_scache.h TLS_SESSION_LIFEMIN: a shorter positive timeout is raised to this.
MIN_SESSION_CACHE_TIMEOUT = 120.0


@runtime_checkable
class LookupTable(Protocol):
    """What the policy code needs from a Postfix lookup table (``maps.TableList``).

    ``lookup`` returns the value for *key* or None; it raises
    :class:`pyfix_smtp.errors.LookupTableError` (or OSError) when the table
    cannot be read, which the policy treats as a table lookup error.
    """

    def lookup(self, key: str) -> str | None:
        """The value for *key*, or None when the table has no such key."""
        ...


def as_table(value: object, parameter: str) -> LookupTable | None:
    """A table from a :class:`~pyfix_smtp.maps.TableList`, a table, a
    ``type:name`` text or a mapping; None when empty."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        value = TableList.parse(value, parameter=parameter)
    elif isinstance(value, Mapping):
        value = TableList([value]) if value else TableList()
    if isinstance(value, LookupTable):
        if isinstance(value, Sized) and len(value) == 0:  # an empty TableList
            return None
        return value
    raise ConfigError(parameter, value, "not a lookup table")


def _text(value: str | tuple[str, ...] | list[str]) -> str:
    return value if isinstance(value, str) else " ".join(value)


def _words(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.replace(",", " ").split())
    return tuple(value)


_INSECURE_MX = ("may", "encrypt", "dane")
_DIGESTS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """The TLS-related parameters, with Postfix 3.11 defaults.

    ``smtp_tls_CAfile``/``smtp_tls_CApath`` are documented in smtp(8) but
    not in the parameter table; when both are empty the system store is
    used (Postfix would trust no CA at all; see docs/differences.md).
    ``smtp_mta_sts_enable`` is ours (Postfix needs an external MTA-STS
    policy server): the delivery layer reads it to decide whether to run
    :func:`pyfix_smtp.tls.mtasts.discover` and pass the policy to ``evaluate``.
    """

    protocol: str = "smtp"
    smtp_tls_security_level: str = "may"
    smtp_use_tls: bool = False
    smtp_enforce_tls: bool = False
    smtp_tls_enforce_peername: bool = True
    smtp_tls_policy_maps: object = None
    smtp_tls_per_site: object = None
    smtp_tls_protocols: str = ">=TLSv1"
    smtp_tls_mandatory_protocols: str = ">=TLSv1"
    smtp_tls_ciphers: str = "medium"
    smtp_tls_mandatory_ciphers: str = "medium"
    smtp_tls_exclude_ciphers: str = ""
    smtp_tls_mandatory_exclude_ciphers: str = ""
    tls_high_cipherlist: str = DEFAULT_HIGH_CIPHERLIST
    tls_medium_cipherlist: str = DEFAULT_MEDIUM_CIPHERLIST
    tls_null_cipherlist: str = DEFAULT_NULL_CIPHERLIST
    smtp_tls_servername: str = ""
    smtp_tls_verify_cert_match: tuple[str, ...] = ("hostname",)
    smtp_tls_secure_cert_match: tuple[str, ...] = ("nexthop", "dot-nexthop")
    smtp_tls_fingerprint_cert_match: tuple[str, ...] = ()
    smtp_tls_fingerprint_digest: str = "sha256"
    smtp_tls_trust_anchor_file: tuple[str, ...] = ()
    smtp_tls_CAfile: str = ""
    smtp_tls_CApath: str = ""
    smtp_tls_cert_file: str = ""
    smtp_tls_key_file: str = ""
    smtp_tls_dcert_file: str = ""
    smtp_tls_dkey_file: str = ""
    smtp_tls_eccert_file: str = ""
    smtp_tls_eckey_file: str = ""
    smtp_tls_chain_files: tuple[str, ...] = ()
    smtp_tls_scert_verifydepth: int = 9
    smtp_tls_dane_insecure_mx_policy: str = "dane"
    smtp_tls_force_insecure_host_tlsa_lookup: bool = False
    smtp_dns_support_level: str = ""
    smtp_host_lookup: tuple[str, ...] = ("dns",)
    ignore_mx_lookup_error: bool = False
    smtp_dns_resolver_options: tuple[str, ...] = ()
    smtp_tls_connection_reuse: bool = False
    smtp_tls_enable_rpk: bool = False
    smtp_tls_wrappermode: bool = False
    tls_required_enable: bool = True
    smtp_tls_enforce_sts_mx_patterns: bool = True
    smtp_mta_sts_enable: bool = False
    tls_disable_workarounds: tuple[str, ...] = ()
    smtp_tls_loglevel: str = "0"
    smtp_tls_session_cache_database: str = ""
    smtp_tls_session_cache_timeout: float = 3600.0

    def __post_init__(self) -> None:
        if self.protocol not in ("smtp", "lmtp"):
            raise ConfigError("protocol", self.protocol, "must be smtp or lmtp")
        global_level(
            self.smtp_tls_security_level,
            smtp_use_tls=self.smtp_use_tls,
            smtp_enforce_tls=self.smtp_enforce_tls,
            smtp_tls_enforce_peername=self.smtp_tls_enforce_peername,
        )
        if self.smtp_tls_dane_insecure_mx_policy.lower() not in _INSECURE_MX:
            raise ConfigError(
                "smtp_tls_dane_insecure_mx_policy",
                self.smtp_tls_dane_insecure_mx_policy,
                "must be may, encrypt or dane",
            )
        if self.smtp_tls_fingerprint_digest.lower() not in _DIGESTS:
            raise ConfigError(
                "smtp_tls_fingerprint_digest",
                self.smtp_tls_fingerprint_digest,
                f"unsupported digest; use one of {', '.join(_DIGESTS)}",
            )
        timeout = self.smtp_tls_session_cache_timeout
        if not 0 <= timeout <= MAX_SESSION_CACHE_TIMEOUT:
            # Postfix mail_params.h MAX_SMTP_TLS_SCACHETIME (8640000 s, 100 days)
            raise ConfigError(
                self._parameter("smtp_tls_session_cache_timeout"),
                timeout,
                f"must be between 0 and {MAX_SESSION_CACHE_TIMEOUT} seconds",
            )
        if self.smtp_tls_scert_verifydepth < 1:
            raise ConfigError(
                "smtp_tls_scert_verifydepth", self.smtp_tls_scert_verifydepth, "must be >= 1"
            )
        for name in (
            "smtp_tls_verify_cert_match",
            "smtp_tls_secure_cert_match",
            "smtp_tls_fingerprint_cert_match",
            "smtp_tls_trust_anchor_file",
            "smtp_tls_chain_files",
            "smtp_host_lookup",
            "smtp_dns_resolver_options",
            "tls_disable_workarounds",
        ):
            object.__setattr__(self, name, _words(getattr(self, name)))
        disabled_workarounds(self.tls_disable_workarounds)  # unknown names: ConfigError
        object.__setattr__(self, "smtp_tls_loglevel", _text(self.smtp_tls_loglevel))
        parse_log_level(self.smtp_tls_loglevel, self._parameter("smtp_tls_loglevel"))
        for name in (
            "smtp_tls_protocols",
            "smtp_tls_mandatory_protocols",
            "smtp_tls_exclude_ciphers",
            "smtp_tls_mandatory_exclude_ciphers",
        ):
            object.__setattr__(self, name, _text(getattr(self, name)))  # Config gives lists
        for name in ("smtp_tls_policy_maps", "smtp_tls_per_site"):
            object.__setattr__(self, name, as_table(getattr(self, name), name))

    @property
    def global_level(self) -> TlsLevel:
        """The default level (Postfix global_tls_level())."""
        return global_level(
            self.smtp_tls_security_level,
            smtp_use_tls=self.smtp_use_tls,
            smtp_enforce_tls=self.smtp_enforce_tls,
            smtp_tls_enforce_peername=self.smtp_tls_enforce_peername,
        )

    def _parameter(self, name: str) -> str:
        """The parameter's name as the user wrote it (lmtp_* in an LMTP configuration)."""
        return "lmtp" + name[4:] if self.protocol == "lmtp" and name.startswith("smtp_") else name

    @property
    def log_mask(self) -> TlsLog:
        """``smtp_tls_loglevel`` as Postfix's TLS_LOG_* feature bits (see :mod:`.loglevel`)."""
        return parse_log_level(self.smtp_tls_loglevel)

    @property
    def session_cache_timeout(self) -> float:
        """How long a TLS session is resumable; 0: no session cache.

        Postfix tlsmgr.c: a non-positive ``smtp_tls_session_cache_timeout``
        disables the cache, a positive one is raised to at least 120 s
        (tls_scache.h ``TLS_SESSION_LIFEMIN``); and without a
        ``smtp_tls_session_cache_database`` there is no cache at all (the
        default). The database's name is otherwise unused: sessions are
        kept in memory, per client.
        """
        timeout = self.smtp_tls_session_cache_timeout
        if not self.smtp_tls_session_cache_database.strip() or timeout <= 0:
            return 0.0
        return max(timeout, MIN_SESSION_CACHE_TIMEOUT)

    @property
    def workaround_mask(self) -> int:
        """The SSL_OP_* bits ``tls_disable_workarounds`` clears (see :mod:`.workarounds`)."""
        return disabled_workarounds(self.tls_disable_workarounds)

    @property
    def insecure_mx_policy(self) -> TlsLevel:
        """smtp_tls_dane_insecure_mx_policy as a level."""
        return TlsLevel.parse(
            self.smtp_tls_dane_insecure_mx_policy, parameter="smtp_tls_dane_insecure_mx_policy"
        )

    @property
    def policy_table(self) -> LookupTable | None:
        """smtp_tls_policy_maps as a table (None when empty)."""
        table = self.smtp_tls_policy_maps
        return table if isinstance(table, LookupTable) else None

    @property
    def per_site_table(self) -> LookupTable | None:
        """The obsolete smtp_tls_per_site (None when empty)."""
        table = self.smtp_tls_per_site
        return table if isinstance(table, LookupTable) else None

    @classmethod
    def from_config(cls, cfg: object) -> TlsOptions:
        """Build from a :class:`pyfix_smtp.config.Config` (attributes by parameter name).

        Parameters the Config does not have keep their defaults.
        """
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "protocol":
                proto = getattr(cfg, "protocol", None)
                if isinstance(proto, str):
                    values["protocol"] = proto
                continue
            if hasattr(cfg, f.name):
                values[f.name] = getattr(cfg, f.name)
        return cls(**values)  # type: ignore[arg-type]
