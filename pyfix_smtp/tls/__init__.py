"""TLS policy for the SMTP/LMTP client: levels, policy tables, DANE, MTA-STS, REQUIRETLS.

The decision is pure and explainable; the ssl layer is thin::

    from pyfix_smtp import tls

    options = tls.TlsOptions(smtp_tls_security_level="dane", smtp_dns_support_level="dnssec")
    target = tls.TlsTarget(nexthop="example.com", domain="example.com",
                           host="mx.example.com", address_authentic=True,
                           mx=tls.MxFacts("example.com", authentic=True))
    policy = tls.evaluate(target, options, resolve=my_resolver)   # TLSA via resolve()
    print(policy.explain())
    ctx = tls.build_context(policy, options)                      # ssl.SSLContext
    ... handshake with server_hostname=policy.sni ...
    check = tls.check_handshake(policy, ssl_socket)               # DANE/fingerprint/names
    if check.failure: skip this server (4.7.5)

Modules: :mod:`.levels`, :mod:`.entry` (table syntax), :mod:`.policy`,
:mod:`.dane`, :mod:`.certs` (X.509 with cryptography), :mod:`.names`,
:mod:`.fingerprints`, :mod:`.verify`, :mod:`.context` (ssl),
:mod:`.mtasts`, :mod:`.stscache`, :mod:`.fetch` (HTTPS), :mod:`.requiretls`,
:mod:`.protocols`, :mod:`.options`.

Every name here is imported on first use (so ``import pyfix_smtp.tls.levels``
does not load ssl or cryptography). cryptography is loaded only when a
certificate must be parsed: DANE, fingerprint and trust-anchor checks,
``verify``/``secure`` name checks and the "Trusted" label with CA files.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyfix_smtp.tls.context import (
        build_context,
        check_handshake,
        handshake_failure,
        load_ca_certificates,
        peer_chain,
    )
    from pyfix_smtp.tls.dane import Association, DaneMatch, match_chain
    from pyfix_smtp.tls.entry import PolicyEntry, parse_entry
    from pyfix_smtp.tls.levels import TlsLevel, global_level
    from pyfix_smtp.tls.mtasts import (
        StsMode,
        StsOutcome,
        StsPolicy,
        discover,
        discover_async,
        discover_sync,
        parse_sts_policy,
    )
    from pyfix_smtp.tls.names import MatchName
    from pyfix_smtp.tls.options import TlsOptions
    from pyfix_smtp.tls.policy import (
        MxFacts,
        Reason,
        TlsPolicy,
        TlsTarget,
        evaluate,
        evaluate_async,
        evaluate_steps,
    )
    from pyfix_smtp.tls.requiretls import RequireTlsAction, RequireTlsPolicy
    from pyfix_smtp.tls.stscache import MemoryStsCache, SqliteStsCache
    from pyfix_smtp.tls.verify import PeerCheck, PeerStatus, check_peer

__all__ = [
    "Association",
    "DaneMatch",
    "MatchName",
    "MemoryStsCache",
    "MxFacts",
    "PeerCheck",
    "PeerStatus",
    "PolicyEntry",
    "Reason",
    "RequireTlsAction",
    "RequireTlsPolicy",
    "SqliteStsCache",
    "StsMode",
    "StsOutcome",
    "StsPolicy",
    "TlsLevel",
    "TlsOptions",
    "TlsPolicy",
    "TlsTarget",
    "build_context",
    "check_handshake",
    "check_peer",
    "discover",
    "discover_async",
    "discover_sync",
    "evaluate",
    "evaluate_async",
    "evaluate_steps",
    "global_level",
    "handshake_failure",
    "load_ca_certificates",
    "match_chain",
    "parse_entry",
    "parse_sts_policy",
    "peer_chain",
]

# name -> module, imported on first attribute access (PEP 562): importing
# one TLS module (levels, policy) does not load ssl or the rest.
_LAZY = {
    "Association": "pyfix_smtp.tls.dane",
    "DaneMatch": "pyfix_smtp.tls.dane",
    "MatchName": "pyfix_smtp.tls.names",
    "MemoryStsCache": "pyfix_smtp.tls.stscache",
    "MxFacts": "pyfix_smtp.tls.policy",
    "PeerCheck": "pyfix_smtp.tls.verify",
    "PeerStatus": "pyfix_smtp.tls.verify",
    "PolicyEntry": "pyfix_smtp.tls.entry",
    "Reason": "pyfix_smtp.tls.policy",
    "RequireTlsAction": "pyfix_smtp.tls.requiretls",
    "RequireTlsPolicy": "pyfix_smtp.tls.requiretls",
    "SqliteStsCache": "pyfix_smtp.tls.stscache",
    "StsMode": "pyfix_smtp.tls.mtasts",
    "StsOutcome": "pyfix_smtp.tls.mtasts",
    "StsPolicy": "pyfix_smtp.tls.mtasts",
    "TlsLevel": "pyfix_smtp.tls.levels",
    "TlsOptions": "pyfix_smtp.tls.options",
    "TlsPolicy": "pyfix_smtp.tls.policy",
    "TlsTarget": "pyfix_smtp.tls.policy",
    "build_context": "pyfix_smtp.tls.context",
    "check_handshake": "pyfix_smtp.tls.context",
    "check_peer": "pyfix_smtp.tls.verify",
    "discover": "pyfix_smtp.tls.mtasts",
    "discover_async": "pyfix_smtp.tls.mtasts",
    "discover_sync": "pyfix_smtp.tls.mtasts",
    "evaluate": "pyfix_smtp.tls.policy",
    "evaluate_async": "pyfix_smtp.tls.policy",
    "evaluate_steps": "pyfix_smtp.tls.policy",
    "global_level": "pyfix_smtp.tls.levels",
    "handshake_failure": "pyfix_smtp.tls.context",
    "load_ca_certificates": "pyfix_smtp.tls.context",
    "match_chain": "pyfix_smtp.tls.dane",
    "parse_entry": "pyfix_smtp.tls.entry",
    "parse_sts_policy": "pyfix_smtp.tls.mtasts",
    "peer_chain": "pyfix_smtp.tls.context",
}


# submodules reachable as attributes (``tls.dane``), imported on first use
_SUBMODULES = frozenset(
    {
        "certs",
        "context",
        "dane",
        "entry",
        "fetch",
        "fingerprints",
        "levels",
        "mtasts",
        "names",
        "options",
        "policy",
        "protocols",
        "requiretls",
        "stscache",
        "verify",
    }
)


def __getattr__(name: str) -> object:
    if name in _SUBMODULES:
        return importlib.import_module(f"pyfix_smtp.tls.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyfix_smtp.tls' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
