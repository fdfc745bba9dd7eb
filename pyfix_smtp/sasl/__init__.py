"""SASL client support for the SMTP/LMTP client (Postfix smtp_sasl_*).

* :mod:`~pyfix_smtp.sasl.mechanisms` - PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1,
  SCRAM-SHA-256 and XOAUTH2 as sans-IO objects (raw bytes in and out).
* :mod:`~pyfix_smtp.sasl.selection` - ``smtp_sasl_mechanism_filter``, the
  security options and the choice of mechanism.
* :mod:`~pyfix_smtp.sasl.failures` - Postfix's failure texts and
  ``smtp_sasl_auth_soft_bounce``.
"""

from __future__ import annotations

from pyfix_smtp.sasl.mechanisms import (
    CramMd5,
    Login,
    Mechanism,
    Plain,
    ScramSha1,
    ScramSha256,
    XOAuth2,
    create_mechanism,
    supported_mechanisms,
)
from pyfix_smtp.sasl.saslprep import saslprep
from pyfix_smtp.sasl.selection import (
    MECHANISM_PROPERTIES,
    PREFERENCE,
    ConnectionSecurity,
    MechanismFilter,
    SecurityOption,
    choose_mechanism,
    parse_security_options,
)
from pyfix_smtp.sasl.tables import LookupTable

__all__ = [
    "MECHANISM_PROPERTIES",
    "PREFERENCE",
    "ConnectionSecurity",
    "CramMd5",
    "Login",
    "LookupTable",
    "Mechanism",
    "MechanismFilter",
    "Plain",
    "ScramSha1",
    "ScramSha256",
    "SecurityOption",
    "XOAuth2",
    "choose_mechanism",
    "create_mechanism",
    "parse_security_options",
    "saslprep",
    "supported_mechanisms",
]
