"""Reading and writing main.cf syntax (Postfix util/dict.c ``dict_load_fp()``)."""

from __future__ import annotations

from collections.abc import Iterable

from pyfix_smtp.errors import ConfigError
from pyfix_smtp.maps.syntax import logical_lines, split_nameval

__all__ = ["parse_main_cf", "write_main_cf"]


def parse_main_cf(text: str) -> dict[str, str]:
    """Return the ``name = value`` assignments of main.cf *text*, in order.

    As Postfix reads main.cf: a line whose first non-blank character is
    ``#`` is a comment (a ``#`` after other text is part of the value);
    blank lines are ignored; a line starting with whitespace continues the
    previous line; whitespace around the name and the value is trimmed; a
    later assignment to the same name wins. Values are kept unexpanded.
    Malformed lines raise :class:`ConfigError` with the line number.
    """
    assignments: dict[str, str] = {}
    try:
        lines = list(logical_lines(text))
    except ValueError as exc:
        raise ConfigError("main.cf", text, str(exc)) from None
    for lineno, line in lines:
        try:
            name, value = split_nameval(line)
        except ValueError as exc:
            raise ConfigError("main.cf", line, f"line {lineno}: {exc}") from None
        assignments[name] = value
    return assignments


def write_main_cf(assignments: Iterable[tuple[str, str]]) -> str:
    """Format ``(name, value)`` pairs as main.cf lines."""
    return "".join(f"{name} = {value}\n" if value else f"{name} =\n" for name, value in assignments)
