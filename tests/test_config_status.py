"""The registry's statuses against the code: "implemented" must be more than a claim.

Two guards:

* every implemented parameter is named somewhere in ``pyfix_smtp/`` outside
  ``pyfix_smtp/config/`` (cheap: catches a status nobody reads);
* changing an implemented parameter changes what the delivery core derives
  from the Config (``delivery_options()`` and the DNS planner's
  ``PlanOptions``), unless the parameter is read elsewhere at delivery
  time (listed below with the place).
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from pyfix_smtp.config import PARAMETERS, Config, Status
from pyfix_smtp.config.params import Param
from pyfix_smtp.config.values import Bool, CompatLevel, Enum, HostAddress, Int, List, Tables, Time
from pyfix_smtp.delivery.options import delivery_options
from pyfix_smtp.dns.options import PlanOptions

PACKAGE = Path(__file__).resolve().parent.parent / "pyfix_smtp"

IMPLEMENTED = [p for p in PARAMETERS if p.status is Status.IMPLEMENTED]

#: Implemented parameters the code never names: they act through Config's
#: computed defaults (the reason), so a text search cannot find them.
NOT_NAMED_IN_CODE = {
    "compatibility_level": "selects the version-dependent defaults inside Config",
    "fallback_relay": "the default of smtp_fallback_relay ($fallback_relay)",
    "default_delivery_status_filter": "the default of smtp_delivery_status_filter",
}

#: Implemented parameters read from the Config at delivery time rather
#: than folded into the derived options, with the place that reads them.
READ_AT_DELIVERY = {
    "smtp_tls_note_starttls_offer": "delivery/handshake.py reads it from the Config",
    "tcp_windowsize": "delivery/core.py passes it to each Connect effect",
    "smtp_delivery_status_filter": "delivery/core.py gives it to the recipients' bookkeeping",
    "info_log_address_format": "delivery/core.py gives it to the report",
    "smtp_log_tls_feature_status": "delivery/core.py gives it to the report",
    "debug_peer_list": "delivery/core.py builds its matcher once per Config",
    "dnssec_probe": "transport/client.py probes once per client",
    "smtp_tlsrpt_socket_name": "transport/client.py sends the results there after the delivery",
}


def _source_texts() -> dict[str, str]:
    config_dir = PACKAGE / "config"
    return {
        str(path.relative_to(PACKAGE)): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
        if config_dir not in path.parents
    }


SOURCES = _source_texts()


def _named_in_code(name: str) -> list[str]:
    word = re.compile(rf"\b{re.escape(name)}\b")
    return [path for path, text in SOURCES.items() if word.search(text)]


NAMED = [p for p in IMPLEMENTED if p.name not in NOT_NAMED_IN_CODE]


@pytest.mark.parametrize("param", NAMED, ids=[p.name for p in NAMED])
def test_implemented_parameter_is_named_in_the_code(param: Param) -> None:
    assert _named_in_code(param.name), (
        f"{param.name} is marked implemented ({param.note}) but nothing outside "
        "pyfix_smtp/config/ names it"
    )


def test_exceptions_are_current() -> None:
    """The exception lists name implemented parameters, and only where needed."""
    implemented = {p.name for p in IMPLEMENTED}
    for name in NOT_NAMED_IN_CODE:
        assert name in implemented, name
        assert not _named_in_code(name), f"{name} is named in the code now: drop the exception"
    for name in READ_AT_DELIVERY:
        assert name in implemented, name
        assert _named_in_code(name), name


NOT_READ = [p for p in PARAMETERS if p.status is Status.ACCEPTED and p.note.startswith("not read")]


@pytest.mark.parametrize("param", NOT_READ, ids=[p.name for p in NOT_READ])
def test_parameters_noted_as_not_read_are_not_named_in_the_code(param: Param) -> None:
    """When code starts reading one of these, its status must be looked at again."""
    assert not _named_in_code(param.name), (
        f"{param.name} is marked '{param.status.value}: {param.note}', but "
        f"{', '.join(_named_in_code(param.name))} now names it: update its status "
        "in pyfix_smtp/config/params.py and run scripts/gen_parameters_doc.py"
    )


def test_statuses_say_where_or_why() -> None:
    for param in PARAMETERS:
        assert param.note, f"{param.name} has no note"
        if param.partly:
            assert param.status is Status.IMPLEMENTED, param.name
        if param.status is Status.ACCEPTED:
            # What is missing, in words a user can act on.
            assert len(param.note) > 20, param.name


# -- changing an implemented parameter changes what the core derives ----------

#: A base whose interface lists need no system lookups (PlanOptions refuses
#: "all" without resolved addresses).
BASE: dict[str, object] = {"inet_interfaces": "192.0.2.1", "proxy_interfaces": ""}

#: Settings a parameter only acts together with.
_GENERIC = {"smtp_generic_maps": "inline:{{a@example.org=b@example.net}}"}
TOGETHER_WITH: dict[str, dict[str, object]] = {
    "smtp_send_dummy_mail_auth": {"smtp_sasl_auth_enable": True},
    # The generic(5) lookup parameters shape GenericMaps, built only with a table.
    "recipient_delimiter": _GENERIC,
    "propagate_unmatched_extensions": _GENERIC,
    "myorigin": _GENERIC,
    "mydestination": _GENERIC,
    "owner_request_special": _GENERIC,
    "double_bounce_sender": _GENERIC,
}

#: Values that differ from the default where the type alone cannot pick one.
OTHER_VALUE: dict[str, object] = {
    "inet_interfaces": "192.0.2.2",
    "proxy_interfaces": "198.51.100.7",
    "inet_protocols": "ipv4",
    "known_tcp_ports": "smtp=2525",
    "smtp_tcp_port": "2525",
    "use_srv_lookup": "submission",
    "smtp_fallback_relay": "relay.example.net",
    "fallback_relay": "relay.example.net",
    "relayhost": "[relay.example.net]",
    "best_mx_transport": "local",
    "smtp_helo_name": "helo.example.org",
    "myhostname": "other.example.org",
    "mydomain": "other.example.org",
    "compatibility_level": "3.10",
    "smtp_tls_security_level": "encrypt",
    "smtp_tls_loglevel": "2",
    "smtp_tls_protocols": ">=TLSv1.2",
    "smtp_tls_mandatory_protocols": ">=TLSv1.3",
    "smtp_tls_exclude_ciphers": "aNULL",
    "smtp_tls_mandatory_exclude_ciphers": "aNULL",
    "smtp_tls_fingerprint_digest": "sha512",
    "smtp_tls_fingerprint_cert_match": "AB:CD",
    "smtp_tls_verify_cert_match": "nexthop",
    "smtp_tls_secure_cert_match": "nexthop",
    "smtp_tls_servername": "hostname",
    "smtp_tls_trust_anchor_file": "/nonexistent/anchors.pem",
    "smtp_tls_chain_files": "/nonexistent/chain.pem",
    "tls_high_cipherlist": "HIGH",
    "tls_medium_cipherlist": "MEDIUM",
    "tls_null_cipherlist": "eNULL",
    "smtp_sasl_security_options": "noanonymous",
    "smtp_sasl_tls_security_options": "noplaintext",
    "smtp_sasl_tls_verified_security_options": "noactive",
    "smtp_sasl_mechanism_filter": "plain",
    "smtp_sasl_auth_cache_name": "memory:",
    "smtp_sasl_password_result_delimiter": ";",
    "smtp_requiretls_policy": "disable",
    "smtp_discard_ehlo_keywords": "pipelining",
    "smtp_pix_workarounds": "disable_esmtp",
    "smtp_address_verify_target": "data",
    "smtp_address_preference": "ipv6",
    "smtp_host_lookup": "native",
    "smtp_dns_support_level": "dnssec",
    "smtp_dns_resolver_options": "res_dnsrch",
    "smtp_tls_dane_insecure_mx_policy": "may",
    "smtp_bind_address": "192.0.2.9",
    "smtp_bind_address6": "2001:db8::9",
    "smtp_connection_cache_destinations": "example.com",
    "propagate_unmatched_extensions": "generic",
    "mydestination": "mail.example.org",
    "recipient_delimiter": "+",
    "myorigin": "example.org",
    "double_bounce_sender": "bounce-twice",
    "tls_disable_workarounds": "TLSEXT_PADDING",
}


def _other_value(param: Param, cfg: Config) -> object:
    if param.name in OTHER_VALUE:
        return OTHER_VALUE[param.name]
    kind = param.kind
    value = getattr(cfg, param.name)
    if isinstance(kind, Bool):
        return not value
    if isinstance(kind, Time):
        return float(value) + 7.0
    if isinstance(kind, Int):
        return int(value) + 3
    if isinstance(kind, Tables):
        return "inline:{{192.0.2.1=x}}"
    if isinstance(kind, Enum):
        return next(c for c in kind.choices if c and c != value)
    if isinstance(kind, CompatLevel | HostAddress | List):
        raise AssertionError(f"give {param.name} a value in OTHER_VALUE")
    return "/nonexistent/other"


def _derived(cfg: Config) -> dict[str, object]:
    """What the delivery core derives from *cfg*, by field name."""
    opts = delivery_options(cfg)
    skip = {"config", "memo", "service_key"}
    out: dict[str, object] = {
        f.name: getattr(opts, f.name) for f in fields(opts) if f.name not in skip
    }
    plan = PlanOptions.from_config(cfg)
    out.update({"plan." + f.name: getattr(plan, f.name) for f in fields(plan)})
    return out


WIRED = [
    p for p in IMPLEMENTED if p.name not in READ_AT_DELIVERY and p.name not in NOT_NAMED_IN_CODE
]


def test_the_comparison_sees_equal_configs_as_equal() -> None:
    assert _derived(Config("smtp", **BASE)) == _derived(Config("smtp", **BASE))
    assert _derived(Config("smtp", **BASE)) == _derived(
        Config("smtp", **BASE).replace(smtp_sasl_path="/x")
    )


@pytest.mark.parametrize("param", WIRED, ids=[p.name for p in WIRED])
def test_changing_an_implemented_parameter_changes_the_delivery(param: Param) -> None:
    base = Config("smtp", **BASE, **TOGETHER_WITH.get(param.name, {}))
    other = base.replace(**{param.name: _other_value(param, base)})
    assert getattr(other, param.name) != getattr(base, param.name)
    before, after = _derived(base), _derived(other)
    changed = sorted(key for key in before if before[key] != after[key])
    assert changed, (
        f"{param.name} is marked implemented ({param.note}), but changing it changes "
        "nothing the delivery core derives from the Config"
    )
