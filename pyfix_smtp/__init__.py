"""pyfix_smtp: Postfix's smtp(8)/lmtp(8) delivery client as a typed Python library.

The layers are importable on their own (see the documentation):

* :mod:`pyfix_smtp.config` - Postfix parameters (``Config``, main.cf parsing)
* :mod:`pyfix_smtp.destination` / :mod:`pyfix_smtp.address` - nexthops and mailboxes
* :mod:`pyfix_smtp.protocol` - the sans-IO SMTP/LMTP client state machine
* :mod:`pyfix_smtp.dns` - MX/SRV/address planning with DNSSEC tracking
* :mod:`pyfix_smtp.tls` - TLS policy, DANE, MTA-STS, REQUIRETLS
"""

from __future__ import annotations

from pyfix_smtp.config import Config
from pyfix_smtp.errors import (
    AddressError,
    ConfigError,
    DestinationError,
    DnsError,
    LocalProtocolError,
    LookupTableError,
    ProtocolError,
    PyfixError,
    RemoteProtocolError,
    SaslError,
    TlsPolicyError,
)
from pyfix_smtp.status import Failure, Reply

__version__ = "0.1.0.dev0"

__all__ = [
    "AddressError",
    "Config",
    "ConfigError",
    "DestinationError",
    "DnsError",
    "Failure",
    "LocalProtocolError",
    "LookupTableError",
    "ProtocolError",
    "PyfixError",
    "RemoteProtocolError",
    "Reply",
    "SaslError",
    "TlsPolicyError",
    "__version__",
]
