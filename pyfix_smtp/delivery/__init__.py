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
"""

from __future__ import annotations

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
