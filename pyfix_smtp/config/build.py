"""Turning explicit settings into parameter values (the Config constructor's core).

Settings arrive as Postfix text keyed by the Postfix name that was set
(main.cf lines, or ``str`` keyword arguments) and as Python values keyed by
attribute name. Every parameter's value is its setting or its default,
with ``$name`` references expanded against the same settings, then parsed
by the parameter's :class:`~pyfix_smtp.config.values.Kind`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from pyfix_smtp.config.expand import Expander
from pyfix_smtp.config.params import PARAMETERS, DefaultContext, Param
from pyfix_smtp.errors import ConfigError

__all__ = ["Resolved", "Settings", "add_setting", "known_name", "resolve"]

_ISSPACE = " \t\n\v\f\r"
PROTOCOLS = ("smtp", "lmtp")


def _index(protocol: str) -> tuple[dict[str, Param], dict[str, Param]]:
    active: dict[str, Param] = {}
    inactive: dict[str, Param] = {}
    for param in PARAMETERS:
        active[param.name_for(protocol)] = param
        if param.lmtp:
            other = "smtp" if protocol == "lmtp" else "lmtp"
            inactive[param.name_for(other)] = param
    return active, inactive


#: Per protocol: Postfix name -> Param for names that configure it, and for
#: names that configure the other protocol's client (ignored, like Postfix).
_ACTIVE: dict[str, dict[str, Param]] = {}
_INACTIVE: dict[str, dict[str, Param]] = {}
for _protocol in PROTOCOLS:
    _ACTIVE[_protocol], _INACTIVE[_protocol] = _index(_protocol)
_ATTRS: dict[str, Param] = {p.name: p for p in PARAMETERS}
# Globals first, so that a bad compatibility_level or myhostname is reported
# under its own name rather than under a parameter whose default uses it.
_ORDER = sorted(PARAMETERS, key=lambda p: not p.section.startswith("GLOBAL"))
_ALIASES: dict[str, Param] = {p.alias: p for p in PARAMETERS if p.alias}


@dataclass(slots=True)
class Settings:
    """Explicit settings: Postfix text by Postfix name, Python values by attribute."""

    protocol: str
    texts: dict[str, str]
    objects: dict[str, object]


@dataclass(frozen=True, slots=True)
class Resolved:
    """The outcome: a value per attribute and the names pyfix_smtp does not know."""

    values: dict[str, object]
    unknown: dict[str, str]


def known_name(protocol: str, name: str) -> Param | None:
    """The parameter *name* sets for *protocol* (attribute, Postfix or manual name).

    Raises ConfigError when *name* configures the other protocol's client.
    """
    param = _ACTIVE[protocol].get(name) or _ATTRS.get(name) or _ALIASES.get(name)
    if param is not None:
        return param
    if name in _INACTIVE[protocol]:
        other = "lmtp" if protocol == "smtp" else "smtp"
        raise ConfigError(
            name,
            None,
            f"configures the {other.upper()} client; this Config has protocol={protocol!r}",
        )
    return None


def _suggest(name: str) -> str:
    candidates = difflib.get_close_matches(name, [*_ATTRS, *_ALIASES, *_INACTIVE["smtp"]], n=1)
    return f"; did you mean {candidates[0]!r}?" if candidates else ""


def normalise_text(name: str, text: str) -> str:
    """Make a ``str`` setting behave exactly like the same main.cf value.

    Surrounding whitespace is trimmed; a newline followed by whitespace is a
    main.cf continuation (the newline disappears); any other line break, a
    carriage return or NUL has no main.cf spelling and is an error.
    """
    if "\r" in text or "\0" in text:
        raise ConfigError(name, text, "carriage return or NUL in a parameter value")
    if "\n" in text:
        pieces = text.split("\n")
        for piece in pieces[1:]:
            if piece and piece[0] not in _ISSPACE:
                raise ConfigError(
                    name, text, "a line break must be followed by whitespace (a continuation)"
                )
        text = "".join(pieces)
    return text.strip(_ISSPACE)


def add_setting(settings: Settings, name: str, value: object) -> None:
    """Record one keyword setting, replacing any earlier one for the same parameter."""
    param = known_name(settings.protocol, name)
    if param is None:
        raise ConfigError(name, value, "unknown parameter" + _suggest(name))
    postfix_name = param.name_for(settings.protocol)
    settings.texts.pop(postfix_name, None)
    settings.objects.pop(param.name, None)
    if isinstance(value, str):
        settings.texts[postfix_name] = normalise_text(name, value)
    else:
        settings.objects[param.name] = param.kind.coerce(value, name)


def _escape(text: str) -> str:
    return text.replace("$", "$$")


def resolve(settings: Settings, shown: Mapping[str, str] | None = None) -> Resolved:
    """Compute every parameter's value from *settings*.

    *shown* maps attribute names to the name the caller used, for error
    messages (``smtp_connect_timeout`` given to an LMTP Config).
    """
    protocol = settings.protocol
    active = _ACTIVE[protocol]
    inactive = _INACTIVE[protocol]
    other = "lmtp" if protocol == "smtp" else "smtp"
    texts = settings.texts
    objects = settings.objects

    def raw(name: str) -> str | None:
        if name in texts:
            return texts[name]
        param = active.get(name)
        if param is not None:
            if param.name in objects:
                return _escape(param.kind.format(objects[param.name], name))
            if param.computed is not None:
                return _escape(param.computed(context))
            return param.default_for(protocol)
        twin = inactive.get(name)
        if twin is not None:
            return twin.default_for(other)
        return None

    def is_explicit(name: str) -> bool:
        param = active.get(name)
        return name in texts or (param is not None and param.name in objects)

    expander = Expander(raw, is_explicit)

    def explicit(name: str) -> str | None:
        return expander.value(name) if is_explicit(name) else None

    context = DefaultContext(protocol, explicit, expander.value)
    values: dict[str, object] = {}
    for param in _ORDER:
        if param.name in objects:
            values[param.name] = objects[param.name]
            continue
        postfix_name = param.name_for(protocol)
        text = expander.value(postfix_name)
        assert text is not None  # every parameter has a default
        label = (shown or {}).get(param.name, postfix_name)
        values[param.name] = param.kind.parse(text, label)
    unknown = {
        name: text for name, text in texts.items() if name not in active and name not in inactive
    }
    return Resolved(values, unknown)
