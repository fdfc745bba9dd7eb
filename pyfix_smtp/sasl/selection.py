"""Which SASL mechanism to use: Postfix's mechanism filter and Cyrus's security options.

Postfix picks a mechanism in two steps, and so do we:

1. ``smtp_sasl_mechanism_filter`` trims the server's EHLO AUTH list
   (Postfix smtp_sasl_proto.c ``smtp_sasl_helo_auth()`` with
   global/sasl_mech_filter.c). When nothing is left, authentication fails
   with "offered no compatible authentication mechanisms".
2. The SASL library (Cyrus, lib/client.c ``sasl_client_start()``) takes the
   strongest of its own mechanisms that the server offers and that has every
   property the security options demand. Postfix passes
   ``smtp_sasl_security_options`` on plaintext connections,
   ``smtp_sasl_tls_security_options`` over TLS and
   ``smtp_sasl_tls_verified_security_options`` over TLS with a matched server
   certificate (smtp_sasl_proto.c ``smtp_sasl_helo_login()``). Postfix never
   tells Cyrus about the TLS layer, so ``noplaintext`` excludes PLAIN and
   LOGIN even over TLS.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pyfix_smtp.errors import ConfigError, SaslMechanismError
from pyfix_smtp.maps import open_table as maps_open_table
from pyfix_smtp.maps.syntax import COMMA_SPACE, split_tokens
from pyfix_smtp.sasl.failures import no_compatible_mechanisms, no_mechanism_available
from pyfix_smtp.sasl.tables import LookupTable

__all__ = [
    "MECHANISM_PROPERTIES",
    "PREFERENCE",
    "ConnectionSecurity",
    "MechanismFilter",
    "SecurityOption",
    "choose_mechanism",
    "filter_offered",
    "parse_security_options",
    "split_list",
]


class SecurityOption(enum.Enum):
    """A SASL security property (Postfix xsasl_cyrus_security.c names).

    Each option *demands* a property; a mechanism without it is excluded.
    """

    NOPLAINTEXT = "noplaintext"  # not susceptible to passive attack (no cleartext secret)
    NOACTIVE = "noactive"  # not susceptible to active (non-dictionary) attack
    NODICTIONARY = "nodictionary"  # not susceptible to passive dictionary attack
    FORWARD_SECRECY = "forward_secrecy"  # forward secrecy between sessions
    NOANONYMOUS = "noanonymous"  # no anonymous login
    MUTUAL_AUTH = "mutual_auth"  # the server authenticates itself too


_S = SecurityOption

#: The properties each mechanism has, as its Cyrus SASL plugin declares them
#: (plugins/plain.c, login.c, cram.c, scram.c; XOAUTH2 as the
#: cyrus-sasl-xoauth2 plugin). A mechanism is allowed when it has every
#: property the security options demand.
MECHANISM_PROPERTIES: Mapping[str, frozenset[SecurityOption]] = {
    "SCRAM-SHA-256": frozenset({_S.NOPLAINTEXT, _S.NOANONYMOUS, _S.NOACTIVE, _S.MUTUAL_AUTH}),
    "SCRAM-SHA-1": frozenset({_S.NOPLAINTEXT, _S.NOANONYMOUS, _S.NOACTIVE, _S.MUTUAL_AUTH}),
    "CRAM-MD5": frozenset({_S.NOPLAINTEXT, _S.NOANONYMOUS}),
    "PLAIN": frozenset({_S.NOANONYMOUS}),
    "LOGIN": frozenset({_S.NOANONYMOUS}),
    "XOAUTH2": frozenset({_S.NOANONYMOUS}),
}

#: Strongest first. Cyrus lib/client.c ``mech_compare()`` ranks by properties
#: (noanonymous, noplaintext, mutual_auth, noactive, ...), then hash strength,
#: which gives SCRAM-SHA-256 > SCRAM-SHA-1 > CRAM-MD5 > the plaintext ones.
#: Cyrus leaves PLAIN, LOGIN and XOAUTH2 tied (plugin load order decides); we
#: fix PLAIN (a standard), then LOGIN, then XOAUTH2 (needs a token, not a password).
PREFERENCE: tuple[str, ...] = (
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "CRAM-MD5",
    "PLAIN",
    "LOGIN",
    "XOAUTH2",
)


class ConnectionSecurity(enum.Enum):
    """What protects the SMTP session when AUTH starts; selects the options parameter."""

    PLAINTEXT = "smtp_sasl_security_options"
    TLS = "smtp_sasl_tls_security_options"
    TLS_VERIFIED = "smtp_sasl_tls_verified_security_options"  # TLS_CERT_IS_MATCHED

    @property
    def parameter(self) -> str:
        """The Postfix parameter whose options apply (smtp_* name)."""
        return self.value


def split_list(value: str | Iterable[str]) -> tuple[str, ...]:
    """Split a Postfix list value on commas and whitespace, keeping ``{...}`` whole.

    Postfix match_list.c uses mystrtokq() with ``CHARS_COMMA_SP``.
    """
    items = [value] if isinstance(value, str) else list(value)
    return tuple(word for item in items for word in split_tokens(item, COMMA_SPACE))


def parse_security_options(
    value: str | Iterable[str], parameter: str = "smtp_sasl_security_options"
) -> frozenset[SecurityOption]:
    """Parse a security options value (``"noplaintext, noanonymous"``).

    Names are case-sensitive, as in Postfix (``name_mask_opt()`` without
    ``NAME_MASK_ANY_CASE``); an unknown name is a :class:`ConfigError`, where
    Postfix fails the connection with "bad per-session SASL security properties".
    """
    options = set()
    for word in split_list(value):
        try:
            options.add(SecurityOption(word))
        except ValueError:
            valid = ", ".join(o.value for o in SecurityOption)
            raise ConfigError(
                parameter, value, f"unknown SASL security option {word!r} (valid: {valid})"
            ) from None
    return frozenset(options)


TableOpener = Callable[[str], LookupTable]


def _is_table(item: str) -> bool:
    # Postfix MATCH_DICTIONARY(): "type:name" where ':' comes before any '/' or '['.
    colon = item.find(":")
    return colon > 0 and "/" not in item[:colon] and "[" not in item[:colon]


@dataclass(frozen=True, slots=True)
class MechanismFilter:
    """``smtp_sasl_mechanism_filter``: a Postfix match list over mechanism names.

    Each pattern is a mechanism name (case-insensitive) or a lookup table
    (any result means "match"); a leading ``!`` negates. The first pattern
    that matches decides; a mechanism that no pattern matches is dropped
    (Postfix util/match_list.c ``match_list_match()``). An empty filter keeps
    everything.

    Attributes:
        patterns: ``(negated, name_or_table)`` pairs in order; names are upper case.
        text: the original value, for messages.
    """

    patterns: tuple[tuple[bool, str | LookupTable], ...] = ()
    text: str = ""

    @classmethod
    def parse(
        cls,
        value: str | Iterable[str],
        *,
        open_table: TableOpener | None = None,
        parameter: str = "smtp_sasl_mechanism_filter",
    ) -> MechanismFilter:
        """Build a filter from a list value; ``/file/name`` items are read in place.

        *open_table* opens ``type:name`` items (default
        :func:`pyfix_smtp.maps.open_table`).
        """
        words = split_list(value)
        patterns: list[tuple[bool, str | LookupTable]] = []
        for word in words:
            cls._parse_item(word, False, patterns, open_table, parameter, value)
        return cls(tuple(patterns), " ".join(words))

    @classmethod
    def _parse_item(
        cls,
        word: str,
        negated: bool,
        patterns: list[tuple[bool, str | LookupTable]],
        open_table: TableOpener | None,
        parameter: str,
        value: object,
    ) -> None:
        item = word
        while item.startswith("!"):  # match_list_parse(): each '!' flips the sense
            negated = not negated
            item = item[1:]
        if not item:
            raise ConfigError(parameter, value, f"no pattern after '!' in {word!r}")
        if item.startswith("/"):
            try:
                lines = Path(item).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(parameter, value, f"cannot read {item}: {exc}") from exc
            for line in lines:
                if line.strip() and not line.lstrip().startswith("#"):
                    for inner in split_list(line):
                        cls._parse_item(inner, negated, patterns, open_table, parameter, value)
        elif _is_table(item):
            if open_table is not None:
                patterns.append((negated, open_table(item)))
            else:
                patterns.append((negated, maps_open_table(item, parameter=parameter)))
        else:
            patterns.append((negated, item.upper()))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, mechanism: str) -> bool:
        """True when *mechanism* survives the filter (always, for an empty filter)."""
        if not self.patterns:
            return True
        name = mechanism.upper()
        for negated, pattern in self.patterns:
            if isinstance(pattern, str):
                hit = pattern == name
            else:
                hit = pattern.lookup(name.lower()) is not None  # match_list casefolds keys
            if hit:
                return not negated
        return False

    def apply(self, offered: Iterable[str]) -> tuple[str, ...]:
        """The offered mechanisms that survive, in the server's order (sasl_mech_filter())."""
        return tuple(mech for mech in offered if self.matches(mech))


def _options_text(options: frozenset[SecurityOption]) -> str:
    return ", ".join(o.value for o in SecurityOption if o in options)


def filter_offered(
    offered: Iterable[str],
    mechanism_filter: MechanismFilter | None = None,
    *,
    server: str = "server",
) -> tuple[str, ...]:
    """Apply ``smtp_sasl_mechanism_filter``; raise :class:`SaslMechanismError` if nothing is left.

    Postfix smtp_sasl_proto.c: an empty result fails authentication with
    "offered no compatible authentication mechanisms" (once credentials exist).
    """
    offered = tuple(offered)
    kept = mechanism_filter.apply(offered) if mechanism_filter else offered
    if kept:
        return kept
    failure = no_compatible_mechanisms(server)
    if not offered or mechanism_filter is None:
        message = f"no SASL mechanism left: server {server} offers an empty AUTH list"
        parameter = None
    else:
        message = (
            f"no SASL mechanism left: server {server} offers {' '.join(offered)}; "
            f"smtp_sasl_mechanism_filter = {mechanism_filter.text} removes them all"
        )
        parameter = "smtp_sasl_mechanism_filter"
    raise SaslMechanismError(
        message, offered=offered, parameter=parameter, status=failure.status, reason=failure.reason
    )


def choose_mechanism(
    offered: Iterable[str],
    *,
    security_options: frozenset[SecurityOption],
    security: ConnectionSecurity = ConnectionSecurity.PLAINTEXT,
    mechanism_filter: MechanismFilter | None = None,
    server: str = "server",
    available: Iterable[str] = PREFERENCE,
) -> str:
    """Pick the mechanism to authenticate with, or raise :class:`SaslMechanismError`.

    *offered* is the server's EHLO AUTH list; *security_options* the parsed
    value of the parameter *security* names; *server* is Postfix's
    ``host[addr]`` for the failure text; *available* limits and orders our
    own mechanisms (default: all, strongest first).
    """
    offered = tuple(offered)
    kept = filter_offered(offered, mechanism_filter, server=server)
    wanted = {mech.upper() for mech in kept}
    ours = [mech for mech in available if mech in wanted]
    excluded: dict[str, frozenset[SecurityOption]] = {}
    for mech in ours:
        missing = security_options - MECHANISM_PROPERTIES[mech]
        if not missing:
            return mech  # Cyrus sasl_client_start(): first acceptable in rank order
        excluded[mech] = missing
    # Cyrus SASL_NOMECH -> Postfix smtp_sasl_glue.c smtp_sasl_authenticate().
    failure = no_mechanism_available(server)
    if not ours:
        message = (
            f"no SASL mechanism left: server {server} offers {' '.join(kept)}; "
            f"pyfix_smtp implements {' '.join(available)}"
        )
        raise SaslMechanismError(
            message, offered=offered, parameter=None, status=failure.status, reason=failure.reason
        )
    parameter = security.parameter
    blocking = frozenset(option for missing in excluded.values() for option in missing)
    why = ", ".join(f"{mech} ({_options_text(missing)})" for mech, missing in excluded.items())
    message = (
        f"no SASL mechanism left: server {server} offers {' '.join(kept)}; "
        f"{parameter} = {_options_text(security_options)} excludes {why}"
    )
    relaxed = _options_text(security_options - blocking) or "(empty)"
    if security is ConnectionSecurity.PLAINTEXT and SecurityOption.NOPLAINTEXT in blocking:
        message += (
            "; to allow them over TLS, require TLS (smtp_tls_security_level = encrypt) "
            f"and set smtp_sasl_tls_security_options = {relaxed}"
        )
    else:
        message += f"; set {parameter} = {relaxed} to allow them"
    raise SaslMechanismError(
        message, offered=offered, parameter=parameter, status=failure.status, reason=failure.reason
    )
