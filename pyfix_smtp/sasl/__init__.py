"""SASL client support for the SMTP/LMTP client (Postfix smtp_sasl_*).

* :mod:`~pyfix_smtp.sasl.mechanisms` - PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1,
  SCRAM-SHA-256 and XOAUTH2 as sans-IO objects (raw bytes in and out).
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

__all__ = [
    "CramMd5",
    "Login",
    "Mechanism",
    "Plain",
    "ScramSha1",
    "ScramSha256",
    "XOAuth2",
    "create_mechanism",
    "saslprep",
    "supported_mechanisms",
]
