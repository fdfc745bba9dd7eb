"""The :class:`Config` object: every Postfix SMTP/LMTP client parameter, typed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from types import MappingProxyType
from typing import Literal

from pyfix_smtp.config.build import (
    PROTOCOLS,
    Settings,
    add_setting,
    known_name,
    resolve,
)
from pyfix_smtp.config.fields import ConfigFields
from pyfix_smtp.config.params import BY_NAME, PARAMETERS
from pyfix_smtp.config.postconf import parse_main_cf, write_main_cf
from pyfix_smtp.errors import ConfigError

__all__ = ["Config"]

Protocol = Literal["smtp", "lmtp"]


class Config(ConfigFields):
    """Postfix smtp(8)/lmtp(8) parameters with Postfix 3.11 defaults.

    Each parameter is an attribute named by its smtp_* (or global) Postfix
    name, with a Python type: ``bool``, ``float`` seconds for times, ``int``,
    ``str`` (enumerations are validated and lower-cased), ``tuple[str, ...]``
    for lists and :class:`~pyfix_smtp.maps.TableList` for lookup tables::

        cfg = Config(smtp_tls_security_level="dane", smtp_connect_timeout=10)
        cfg = Config.from_postconf(open("/etc/postfix/main.cf").read())
        cfg2 = cfg.replace(myhostname="mx.example.org")

    Keyword values may be Postfix text (``"5m"``, ``"yes"``,
    ``"inline:{a=b}"``, ``"$myhostname"``: expanded exactly like main.cf) or
    Python values (``300``, ``True``, ``["dns", "native"]``, a mapping or
    callable for a table). Unknown keyword names raise
    :class:`~pyfix_smtp.errors.ConfigError`; unknown main.cf names are kept
    in :attr:`unknown`.

    LMTP: ``Config(protocol="lmtp")`` serves the LMTP client. As in Postfix,
    which binds one variable to the smtp_* or lmtp_* name depending on the
    process name, the *smtp_** attribute then holds the value of the
    *lmtp_** parameter (``cfg.smtp_connect_timeout`` is
    ``lmtp_connect_timeout``, default 0s; ``cfg.smtp_helo_name`` is
    ``lmtp_lhlo_name``), and main.cf smtp_* settings for such parameters are
    ignored. Parameters without an LMTP twin (global ones, and the few
    SMTP-only ones) keep their own name.
    """

    __slots__ = ()

    def __init__(self, protocol: Protocol = "smtp", **overrides: object) -> None:
        if protocol not in PROTOCOLS:
            raise ConfigError("protocol", protocol, 'expected "smtp" or "lmtp"')
        settings = Settings(protocol, {}, {})
        shown: dict[str, str] = {}
        for name, value in overrides.items():
            param = known_name(protocol, name)
            if param is not None and param.name in shown:
                raise ConfigError(name, value, f"also given as {shown[param.name]}")
            add_setting(settings, name, value)
            if param is not None:
                shown[param.name] = name
        self._init(settings, shown)

    def _init(self, settings: Settings, shown: Mapping[str, str]) -> None:
        resolved = resolve(settings, shown)
        setter = object.__setattr__
        setter(self, "protocol", settings.protocol)
        for name, value in resolved.values.items():
            setter(self, name, value)
        setter(self, "_unknown_items", tuple(resolved.unknown.items()))
        setter(self, "_texts", tuple(settings.texts.items()))
        setter(self, "_objects", tuple(settings.objects.items()))

    @classmethod
    def from_postconf(cls, text: str, protocol: Protocol = "smtp") -> Config:
        """Read main.cf syntax (see :func:`pyfix_smtp.config.postconf.parse_main_cf`).

        For ``protocol="lmtp"`` the lmtp_* names set the mirrored parameters
        and their smtp_* names are ignored, as in Postfix's lmtp(8).
        """
        if protocol not in PROTOCOLS:
            raise ConfigError("protocol", protocol, 'expected "smtp" or "lmtp"')
        settings = Settings(protocol, parse_main_cf(text), {})
        config = cls.__new__(cls)
        config._init(settings, {})
        return config

    def replace(self, **changes: object) -> Config:
        """A copy with *changes* applied; defaults that refer to changed
        parameters (``smtp_helo_name = $myhostname``) follow them."""
        settings = Settings(self.protocol, dict(self._texts), dict(self._objects))
        for name, value in changes.items():
            add_setting(settings, name, value)
        config = type(self).__new__(type(self))
        config._init(settings, {})
        return config

    def get(self, name: str) -> object:
        """The value of parameter *name*: an attribute name, the Postfix name
        for this protocol (``lmtp_lhlo_name`` in an LMTP Config) or the
        manual's name (``transport_destination_recipient_limit``). An
        unknown main.cf name gives its raw text; anything else raises
        :class:`~pyfix_smtp.errors.ConfigError`."""
        param = known_name(self.protocol, name)
        if param is not None:
            value: object = getattr(self, param.name)
            return value
        unknown = dict(self._unknown_items)
        if name in unknown:
            return unknown[name]
        raise ConfigError(name, None, "unknown parameter")

    @property
    def unknown(self) -> Mapping[str, str]:
        """main.cf names pyfix_smtp does not know, with their raw values."""
        return MappingProxyType(dict(self._unknown_items))

    @property
    def explicit(self) -> Mapping[str, object]:
        """The settings this Config was built from, by the name they set."""
        items: dict[str, object] = dict(self._texts)
        for attr, value in self._objects:
            items[BY_NAME[attr].name_for(self.protocol)] = value
        return MappingProxyType(items)

    def to_postconf(self, *, include_defaults: bool = False) -> str:
        """main.cf text for this Config: the explicit settings (like
        ``postconf -n``), or every parameter with *include_defaults*.

        ``Config.from_postconf(cfg.to_postconf(), cfg.protocol) == cfg``.
        Settings made with Python objects that have no main.cf spelling
        (a Python table, fractional seconds) raise ConfigError.
        """
        lines: list[tuple[str, str]] = []
        texts = dict(self._texts)
        objects = dict(self._objects)
        done: set[str] = set()
        for param in PARAMETERS:
            name = param.name_for(self.protocol)
            if name in texts:
                lines.append((name, texts[name]))
            elif param.name in objects:
                text = param.kind.format(objects[param.name], name)
                lines.append((name, text.replace("$", "$$")))
            elif include_defaults:
                text = param.kind.format(getattr(self, param.name), name)
                lines.append((name, text.replace("$", "$$")))
            done.add(name)
        lines.extend((name, text) for name, text in texts.items() if name not in done)
        return write_main_cf(lines)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.explicit.items())
        prefix = f"protocol={self.protocol!r}"
        return f"Config({prefix}{', ' if shown else ''}{shown})"


def _check_fields() -> None:
    """The typed fields and the registry must describe the same parameters."""
    declared = {f.name: f.type for f in fields(ConfigFields)}
    for name in ("protocol", "_unknown_items", "_texts", "_objects"):
        declared.pop(name)
    expected = {p.name: p.kind.python_type for p in PARAMETERS}
    if declared != expected:
        diff = set(declared.items()) ^ set(expected.items())
        raise RuntimeError(f"Config fields and parameter registry disagree: {sorted(diff)}")


_check_fields()
