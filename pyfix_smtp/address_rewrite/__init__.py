"""Address rewriting in the SMTP client: ``smtp_generic_maps`` (generic(5)).

* :mod:`pyfix_smtp.address_rewrite.generic`: the lookups, the envelope and
  the header rewriting (:class:`GenericMaps`);
* :mod:`pyfix_smtp.address_rewrite.tokens`: RFC 822 address-list tokens as
  Postfix parses and prints them, so rewritten headers match Postfix octet
  for octet.

Everything here is pure: tables are searched in memory, nothing is resolved.
"""

from __future__ import annotations

from pyfix_smtp.address_rewrite.generic import (
    ADDRESS_HEADERS,
    AddressMapping,
    GenericConfig,
    GenericMaps,
    HeaderRewrite,
    default_mydestination,
)

__all__ = [
    "ADDRESS_HEADERS",
    "AddressMapping",
    "GenericConfig",
    "GenericMaps",
    "HeaderRewrite",
    "default_mydestination",
]
