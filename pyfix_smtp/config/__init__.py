"""Postfix parameters for the SMTP/LMTP client: :class:`Config`.

``Config`` knows every parameter of Postfix 3.11's smtp(8)/lmtp(8) with its
default and a Python type; ``Config.from_postconf(text)`` reads main.cf
syntax including ``$name`` expansion. :data:`PARAMETERS` is the registry
(one :class:`Param` per parameter, with its status in pyfix_smtp). See
``docs/configuration.md`` and the generated ``docs/parameters.md``.
"""

from __future__ import annotations

from pyfix_smtp.config.model import Config
from pyfix_smtp.config.params import BY_NAME, PARAMETERS, Param, Status
from pyfix_smtp.config.postconf import parse_main_cf

__all__ = ["BY_NAME", "PARAMETERS", "Config", "Param", "Status", "parse_main_cf"]
