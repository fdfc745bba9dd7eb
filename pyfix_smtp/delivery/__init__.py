"""The delivery agent: destinations, sessions and per-recipient outcomes (sans-IO).

* :func:`deliver_steps` (:mod:`.core`) - the algorithm as a generator of
  :mod:`.effects` that drivers execute;
* :func:`build_request`, :class:`DeliveryRequest`, :class:`ContentSource`
  (:mod:`.request`) - what one delivery needs;
* :class:`DeliveryReport`, :class:`RecipientOutcome`, :class:`Action`
  (:mod:`.report`) - what came of it, with Postfix log lines;
* :mod:`.trouble` - Postfix's keep/defer/bounce rules;
  :mod:`.cache_keys` - connection-cache labels;
  :mod:`.options` - the Config, derived once.

Every name here is imported on first use, so importing one module of the
package (the effects, the report) does not load the whole core.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyfix_smtp.delivery.core import deliver_steps
    from pyfix_smtp.delivery.report import Action, DeliveryReport, MessageTimes, RecipientOutcome
    from pyfix_smtp.delivery.request import (
        ContentSource,
        DeliveryRequest,
        build_request,
        content_source,
    )

__all__ = [
    "Action",
    "ContentSource",
    "DeliveryReport",
    "DeliveryRequest",
    "MessageTimes",
    "RecipientOutcome",
    "build_request",
    "content_source",
    "deliver_steps",
]

_LAZY = {
    "Action": "pyfix_smtp.delivery.report",
    "ContentSource": "pyfix_smtp.delivery.request",
    "DeliveryReport": "pyfix_smtp.delivery.report",
    "DeliveryRequest": "pyfix_smtp.delivery.request",
    "MessageTimes": "pyfix_smtp.delivery.report",
    "RecipientOutcome": "pyfix_smtp.delivery.report",
    "build_request": "pyfix_smtp.delivery.request",
    "content_source": "pyfix_smtp.delivery.request",
    "deliver_steps": "pyfix_smtp.delivery.core",
}

# submodules reachable as attributes (``delivery.core``), imported on first use
_SUBMODULES = frozenset(
    {
        "cache_keys",
        "context",
        "core",
        "effects",
        "handshake",
        "options",
        "report",
        "request",
        "session",
        "state",
        "tlsplan",
        "transfer",
        "trouble",
    }
)


def __getattr__(name: str) -> object:
    if name in _SUBMODULES:
        return importlib.import_module(f"pyfix_smtp.delivery.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyfix_smtp.delivery' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
