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
:mod:`.dane`, :mod:`.certs`, :mod:`.verify`, :mod:`.context` (ssl),
:mod:`.mtasts`, :mod:`.stscache`, :mod:`.fetch` (HTTPS), :mod:`.requiretls`,
:mod:`.protocols`, :mod:`.options`.
"""

from __future__ import annotations

from pyfix_smtp.tls.certs import MatchName
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
