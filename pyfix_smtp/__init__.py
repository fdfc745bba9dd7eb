"""pyfix_smtp: Postfix's smtp(8)/lmtp(8) delivery client as a typed Python library.

The layers are importable on their own (see the documentation):

* :mod:`pyfix_smtp.config` - Postfix parameters (``Config``, main.cf parsing)
* :mod:`pyfix_smtp.destination` / :mod:`pyfix_smtp.address` - nexthops and mailboxes
* :mod:`pyfix_smtp.protocol` - the sans-IO SMTP/LMTP client state machine
* :mod:`pyfix_smtp.dns` - MX/SRV/address planning with DNSSEC tracking
* :mod:`pyfix_smtp.tls` - TLS policy, DANE, MTA-STS, REQUIRETLS
* :mod:`pyfix_smtp.transport` - :func:`deliver`, :func:`deliver_async`, :class:`Client`

``Config`` and the delivery API (``deliver``, ``Envelope``,
``DeliveryReport`` ...) are imported on first use, so ``import pyfix_smtp``
stays fast.
"""

from __future__ import annotations

import importlib

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

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (6 ms)
if TYPE_CHECKING:
    from pyfix_smtp.config import Config
    from pyfix_smtp.delivery.report import Action, DeliveryReport, RecipientOutcome
    from pyfix_smtp.protocol.envelope import Envelope, Recipient
    from pyfix_smtp.status import Failure, Reply
    from pyfix_smtp.transport.client import (
        AsyncClient,
        Client,
        close_connections,
        deliver,
        deliver_async,
    )

__version__ = "0.1.0.dev0"

# name -> module, imported on first attribute access (PEP 562)
_LAZY = {
    "Config": "pyfix_smtp.config",
    "Failure": "pyfix_smtp.status",
    "Reply": "pyfix_smtp.status",
    "Action": "pyfix_smtp.delivery.report",
    "DeliveryReport": "pyfix_smtp.delivery.report",
    "RecipientOutcome": "pyfix_smtp.delivery.report",
    "Envelope": "pyfix_smtp.protocol.envelope",
    "Recipient": "pyfix_smtp.protocol.envelope",
    "AsyncClient": "pyfix_smtp.transport.client",
    "Client": "pyfix_smtp.transport.client",
    "close_connections": "pyfix_smtp.transport.client",
    "deliver": "pyfix_smtp.transport.client",
    "deliver_async": "pyfix_smtp.transport.client",
}


# layers reachable as attributes (``smtp.tls.evaluate(...)``), imported on first use
_LAZY_SUBMODULES = frozenset(
    {"address", "config", "delivery", "destination", "dns", "maps", "protocol", "sasl", "tls"}
)


def __getattr__(name: str) -> object:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"pyfix_smtp.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyfix_smtp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Action",
    "AddressError",
    "AsyncClient",
    "Client",
    "Config",
    "ConfigError",
    "DeliveryReport",
    "DestinationError",
    "DnsError",
    "Envelope",
    "Failure",
    "LocalProtocolError",
    "LookupTableError",
    "ProtocolError",
    "PyfixError",
    "Recipient",
    "RecipientOutcome",
    "RemoteProtocolError",
    "Reply",
    "SaslError",
    "TlsPolicyError",
    "__version__",
    "close_connections",
    "deliver",
    "deliver_async",
]
