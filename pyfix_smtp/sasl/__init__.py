"""SASL client support for the SMTP/LMTP client (Postfix smtp_sasl_*).

* :mod:`~pyfix_smtp.sasl.mechanisms` - PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1,
  SCRAM-SHA-256 and XOAUTH2 as sans-IO objects (raw bytes in and out).
* :mod:`~pyfix_smtp.sasl.selection` - ``smtp_sasl_mechanism_filter``, the
  security options and the choice of mechanism.
* :mod:`~pyfix_smtp.sasl.failures` - Postfix's failure texts and
  ``smtp_sasl_auth_soft_bounce``.
* :mod:`~pyfix_smtp.sasl.passwords` - ``smtp_sasl_password_maps`` lookups.
* :mod:`~pyfix_smtp.sasl.cache` - the 535 failure cache (memory, sqlite3).
* :mod:`~pyfix_smtp.sasl.options` - :class:`SaslOptions` from a Config.
* :mod:`~pyfix_smtp.sasl.session` - one AUTH attempt in Postfix's order:
  :func:`start_auth` and :func:`finish_auth`.
"""

from __future__ import annotations

from pyfix_smtp.sasl.cache import (
    AuthCacheStore,
    AuthFailureCache,
    CachedFailure,
    MemoryAuthCacheStore,
    SqliteAuthCacheStore,
    open_auth_cache,
)
from pyfix_smtp.sasl.failures import auth_soft_bounce
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
from pyfix_smtp.sasl.options import SaslOptions
from pyfix_smtp.sasl.passwords import (
    Credentials,
    LookupKey,
    LookupSource,
    lookup_credentials,
    password_lookup_keys,
)
from pyfix_smtp.sasl.saslprep import saslprep
from pyfix_smtp.sasl.selection import (
    MECHANISM_PROPERTIES,
    PREFERENCE,
    ConnectionSecurity,
    MechanismFilter,
    SecurityOption,
    choose_mechanism,
    filter_offered,
    parse_security_options,
)
from pyfix_smtp.sasl.session import (
    AuthAttempt,
    answer_challenge,
    finish_auth,
    mechanism_failure,
    start_auth,
)
from pyfix_smtp.sasl.tables import LookupTable

__all__ = [
    "MECHANISM_PROPERTIES",
    "PREFERENCE",
    "AuthAttempt",
    "AuthCacheStore",
    "AuthFailureCache",
    "CachedFailure",
    "ConnectionSecurity",
    "CramMd5",
    "Credentials",
    "Login",
    "LookupKey",
    "LookupSource",
    "LookupTable",
    "Mechanism",
    "MechanismFilter",
    "MemoryAuthCacheStore",
    "Plain",
    "SaslOptions",
    "ScramSha1",
    "ScramSha256",
    "SecurityOption",
    "SqliteAuthCacheStore",
    "XOAuth2",
    "answer_challenge",
    "auth_soft_bounce",
    "choose_mechanism",
    "create_mechanism",
    "filter_offered",
    "finish_auth",
    "lookup_credentials",
    "mechanism_failure",
    "open_auth_cache",
    "parse_security_options",
    "password_lookup_keys",
    "saslprep",
    "start_auth",
    "supported_mechanisms",
]
