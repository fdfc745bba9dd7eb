"""Postfix ``$name`` expansion for main.cf values (util/mac_parse.c, mac_expand.c).

Supported, as in Postfix 3.11:

* ``$name``, ``${name}``, ``$(name)``: the value of *name*, expanded
  recursively; an undefined name expands to nothing; ``$$`` is one ``$``.
* ``${name?text}``, ``${name?{text}}``: *text* when *name* is non-empty.
* ``${name:text}``, ``${name:{text}}``: *text* when *name* is empty/undefined.
* ``${name?{text1}:{text2}}``: either branch.
* ``${{a} == {b} ? {t} : {f}}`` with ``==``, ``!=``, ``<``, ``<=``, ``>=``,
  ``>`` (numeric when both sides are all digits) and the ``level`` variants
  (``<level``...) that compare compatibility levels.
* ``${domain_to_ascii{text}}`` and ``${domain_to_utf8{text}}``.

A reference loop raises :class:`ConfigError` naming the loop; Postfix gives up
after 100 nesting levels instead.
"""

from __future__ import annotations

from collections.abc import Callable

from pyfix_smtp.config.values import compat_level_key
from pyfix_smtp.errors import ConfigError

__all__ = ["Expander"]

_WS = " \t\r\n"
_OPS = ("==", "!=", "<=", ">=", "<", ">")
_OP_CHARS = "<>!=?+-*/~&|%"

#: Returns the raw (unexpanded) text of a name, or None when undefined.
RawLookup = Callable[[str], str | None]


def _domain_to_ascii(text: str) -> str:
    if text.isascii():
        return text
    import idna  # deferred: rarely needed

    try:
        return idna.encode(text, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"bad domain argument in domain_to_ascii{{{text}}}: {exc}") from None


def _domain_to_utf8(text: str) -> str:
    if not text.isascii():
        return text
    import idna

    try:
        return idna.decode(text)
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"bad domain argument in domain_to_utf8{{{text}}}: {exc}") from None


_FUNCTIONS: dict[str, Callable[[str], str]] = {
    "domain_to_ascii": _domain_to_ascii,
    "domain_to_utf8": _domain_to_utf8,
}


def _compare(left: str, op: str, right: str, suffix: str) -> bool:
    """mac_expand.c ``mac_exp_eval()`` / compat_level.c ``compat_relop_eval()``."""
    if suffix == "level":
        lkey, rkey = compat_level_key(left), compat_level_key(right)
        if lkey is None or rkey is None:
            raise ValueError(f"bad compatibility level in {left!r} {op}level {right!r}")
        a: tuple[int, ...] | int | str = lkey
        b: tuple[int, ...] | int | str = rkey
    elif suffix:
        raise ValueError(f"bad operator suffix {op}{suffix}")
    elif left.isascii() and left.isdigit() and right.isascii() and right.isdigit():
        a, b = int(left), int(right)
    else:
        a, b = left, right
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">=":
        return a >= b  # type: ignore[operator]
    return a > b  # type: ignore[operator]


def _curly(text: str, i: int, strip: bool = False) -> tuple[str, int]:
    """Extract a balanced ``{...}`` at ``text[i]``; return payload and the index after
    the trailing whitespace (mac_expand.c ``mac_exp_extract_curly_payload()``)."""
    level = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            level += 1
        elif text[j] == "}":
            level -= 1
            if level == 0:
                payload = text[i + 1 : j]
                k = j + 1
                while k < len(text) and text[k] in _WS:
                    k += 1
                return (payload.strip(_WS) if strip else payload), k
    raise ValueError(f"unbalanced {{}} in attribute expression: {text[i:]!r}")


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


class Expander:
    """Expands main.cf text against a name lookup, with loop detection.

    *lookup* returns a name's raw text (its main.cf value, or its default
    text) or ``None`` when the name is undefined. *explicit* tells whether a
    name was set explicitly: ``${name?...}`` tests the raw text of an
    explicit setting but the expanded value of a default, which is what a
    Postfix daemon's parameter dictionary holds once defaults are
    initialised. Expansion results are memoised per name.
    """

    def __init__(self, lookup: RawLookup, explicit: Callable[[str], bool] | None = None) -> None:
        self._lookup = lookup
        self._explicit = explicit or (lambda name: True)
        self._cache: dict[str, str] = {}
        self._active: list[str] = []

    def value(self, name: str) -> str | None:
        """The fully expanded value of *name*, or ``None`` when undefined."""
        if name in self._cache:
            return self._cache[name]
        raw = self._lookup(name)
        if raw is None:
            return None
        if name in self._active:
            loop = [*self._active[self._active.index(name) :], name]
            raise ConfigError(name, raw, "parameter expansion loop: " + " -> ".join(loop))
        self._active.append(name)
        try:
            result = self.expand(raw, name)
        finally:
            self._active.pop()
        self._cache[name] = result
        return result

    def expand(self, text: str, name: str) -> str:
        """Expand *text* (the value of parameter *name*, for error messages)."""
        if "$" not in text:
            return text
        try:
            return self._parse(text, name)
        except ValueError as exc:
            raise ConfigError(name, text, str(exc)) from None

    def _parse(self, text: str, name: str) -> str:
        """mac_parse.c ``mac_parse()``: literal text, ``$$``, ``$name``, ``${...}``."""
        out: list[str] = []
        i = 0
        n = len(text)
        while i < n:
            dollar = text.find("$", i)
            if dollar < 0:
                out.append(text[i:])
                break
            out.append(text[i:dollar])
            i = dollar + 1
            if i < n and text[i] == "$":
                out.append("$")
                i += 1
                continue
            if i < n and text[i] in "({":
                opener = text[i]
                closer = ")" if opener == "(" else "}"
                level = 1
                j = i + 1
                while j < n and level:
                    if text[j] == opener:
                        level += 1
                    elif text[j] == closer:
                        level -= 1
                    j += 1
                if level:
                    raise ValueError(f"truncated macro reference: {text!r}")
                expr = text[i + 1 : j - 1]
                i = j
            else:
                j = i
                while j < n and ((text[j].isascii() and text[j].isalnum()) or text[j] == "_"):
                    j += 1
                expr = text[i:j]
                i = j
            if not expr:
                raise ValueError(f"empty macro name: {text!r}")
            out.append(self._expression(expr, name))
        return "".join(out)

    def _expression(self, expr: str, name: str) -> str:
        """mac_expand.c ``mac_expand_callback()`` for one ``${...}`` body."""
        i = _skip_ws(expr, 0)
        if i < len(expr) and expr[i] == "{":
            truth, i = self._relational(expr, i, name)
            test_value: str | None = truth
            if i < len(expr) and expr[i] not in "?:":
                raise ValueError(f'"?" or ":" expected at: {expr[i:]!r}')
        else:
            start = i
            while True:
                k = _skip_ws(expr, i)
                if k >= len(expr):
                    ref = expr[start:i]
                    mode_test = False
                    i = k
                    break
                ch = expr[k]
                if ch in "?:":
                    ref = expr[start:i]
                    mode_test = True
                    i = k
                    break
                if ch == "{":
                    return self._function(expr[start:i], expr, k, name)
                ch = expr[i]
                if not ((ch.isascii() and ch.isalnum()) or ch == "_"):
                    raise ValueError(f"attribute name syntax error at: {expr[i:]!r}")
                i += 1
            if not mode_test:
                value = self.value(ref)
                return "" if value is None else value
            test_value = self._lookup(ref) if self._explicit(ref) else self.value(ref)
        if i >= len(expr):
            return "true" if test_value else ""
        true_branch = bool(test_value)
        result = ""
        if expr[i] == "?":
            i = _skip_ws(expr, i + 1)
            if i < len(expr) and expr[i] == "{":
                text, i = _curly(expr, i)
            else:
                text, i = expr[i:], len(expr)
            if true_branch:
                result = self._parse(text, name)
            if i >= len(expr):
                return result
            if expr[i] != ":":
                raise ValueError(f'":" expected at: {expr[i:]!r}')
        i = _skip_ws(expr, i + 1)
        if i < len(expr) and expr[i] == "{":
            text, i = _curly(expr, i)
        else:
            text, i = expr[i:], len(expr)
        if i < len(expr):
            raise ValueError(f"unexpected input at: {expr[i:]!r}")
        if not true_branch:
            result = self._parse(text, name)
        return result

    def _relational(self, expr: str, i: int, name: str) -> tuple[str, int]:
        """``{left} op {right}``: return ``"true"`` or ``""`` and the next index."""
        left, i = _curly(expr, i)
        start = i
        while i < len(expr) and expr[i] in _OP_CHARS:
            i += 1
        op = expr[start:i]
        if op not in _OPS:
            raise ValueError(f'"==", "!=", "<", "<=", ">=" or ">" expected at: {expr[start:]!r}')
        suffix_start = i
        while i < len(expr) and expr[i].isascii() and expr[i].isalnum():
            i += 1
        suffix = expr[suffix_start:i]
        i = _skip_ws(expr, i)
        if i >= len(expr) or expr[i] != "{":
            raise ValueError(f'"{{expression}}" expected at: {expr[i:]!r}')
        right, i = _curly(expr, i)
        outcome = _compare(self._parse(left, name), op, self._parse(right, name), suffix)
        return ("true" if outcome else ""), i

    def _function(self, fname: str, expr: str, i: int, name: str) -> str:
        """``${name{text}}``: a registered function applied to the expanded text."""
        arg, i = _curly(expr, i, strip=True)
        if i < len(expr):
            raise ValueError(f"unexpected input at: {expr[i:]!r}")
        function = _FUNCTIONS.get(fname)
        if function is None:
            raise ValueError(f'unknown function "{fname}"')
        return function(self._parse(arg, name))
