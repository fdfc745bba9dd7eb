"""Postfix's small text-syntax helpers shared by main.cf and table parsing.

Postfix splits parameter values on commas and whitespace, keeps ``{ ... }``
groups together, reads files as *logical lines* (a line that starts with
whitespace continues the previous one) and trims ``{ }`` with ``extpar()``.
These helpers reproduce those rules exactly so that :mod:`pyfix_smtp.config`
and the table readers agree with Postfix on where one item ends.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = [
    "COMMA_SPACE",
    "SPACE",
    "LogicalLine",
    "balanced_length",
    "logical_lines",
    "split_nameval",
    "split_qnameval",
    "split_tokens",
    "strip_braces",
]

#: Postfix CHARS_SPACE (util/stringops.h).
SPACE = " \t\r\n"
#: Postfix CHARS_COMMA_SP: list separators in parameter values.
COMMA_SPACE = ", \t\r\n"
#: C isspace() in the "C" locale, used by Postfix's ISSPACE().
_ISSPACE = " \t\n\v\f\r"


def split_tokens(text: str, separators: str = COMMA_SPACE) -> list[str]:
    """Split *text* on *separators*, keeping ``{ ... }`` groups whole.

    Postfix util/mystrtok.c ``mystrtokq()``: a separator splits only outside
    braces; an unbalanced ``{`` makes the rest of the text one token (the
    caller's own syntax check then reports it). ``foo{ bar } baz`` gives
    ``["foo{ bar }", "baz"]``.
    """
    tokens: list[str] = []
    n = len(text)
    i = 0
    while i < n:
        while i < n and text[i] in separators:  # skip leading delimiters
            i += 1
        if i >= n:
            break
        start = i
        level = 0
        while i < n:
            ch = text[i]
            if ch == "{":
                level += 1
            elif ch == "}" and level > 0:
                level -= 1
            elif level == 0 and ch in separators:
                break
            i += 1
        tokens.append(text[start:i])
    return tokens


def balanced_length(text: str) -> int:
    """Length of the leading ``{...}`` group of *text*, 0 when unbalanced.

    Postfix util/balpar.c ``balpar()``.
    """
    if not text.startswith("{"):
        return 0
    level = 0
    for i, ch in enumerate(text):
        if ch == "{":
            level += 1
        elif ch == "}":
            level -= 1
            if level == 0:
                return i + 1
    return 0


def strip_braces(text: str, *, strip: bool = True) -> str:
    """Return the text inside ``{ ... }``; raise ValueError if malformed.

    Postfix util/extpar.c ``extpar()``: the text must start with ``{``, the
    braces must balance and nothing may follow the closing ``}``. With
    *strip*, whitespace just inside the braces is removed.
    """
    if not text.startswith("{"):
        raise ValueError(f"no '{{' at start of text in {text!r}")
    length = balanced_length(text)
    if length == 0:
        raise ValueError(f"missing '}}' in {text!r}")
    if length != len(text):
        raise ValueError(f"syntax error after '}}' in {text!r}")
    inner = text[1 : length - 1]
    return inner.strip(_ISSPACE) if strip else inner


def split_nameval(line: str) -> tuple[str, str]:
    """Split ``name = value``; raise ValueError with Postfix's wording.

    Postfix util/split_nameval.c: the name ends at whitespace or ``=``;
    whitespace around the value is trimmed.
    """
    text = line.lstrip(_ISSPACE)
    if not text or text[0] == "=":
        raise ValueError("missing attribute name")
    end = 0
    while end < len(text) and text[end] not in _ISSPACE and text[end] != "=":
        end += 1
    name = text[:end]
    rest = text[end:].lstrip(_ISSPACE)
    if not rest.startswith("="):
        raise ValueError("missing '=' after attribute name")
    return name, rest[1:].strip(_ISSPACE)


def split_qnameval(text: str) -> tuple[str, str]:
    """Split ``key = value`` where the key may be ``"quoted"``.

    Postfix util/split_qnameval.c (used by ``inline:``): a double-quoted key
    may contain whitespace and ``=``; backslash escapes the next character.
    The key keeps its quotes, as in Postfix.
    """
    i = 0
    n = len(text)
    while i < n and text[i] in _ISSPACE:
        i += 1
    if i >= n:
        raise ValueError("no key found; expected format: key = value")
    start = i
    in_quotes = False
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 1
            if i >= n:
                break
        elif ch in _ISSPACE or ch == "=":
            if not in_quotes:
                break
        elif ch == '"':
            in_quotes = not in_quotes
        i += 1
    if in_quotes:
        raise ValueError("unbalanced '\"'")
    key = text[start:i]
    rest = text[i:].lstrip(_ISSPACE)
    if not rest.startswith("="):
        raise ValueError("missing '=' after attribute name")
    return key, rest[1:].strip(_ISSPACE)


class LogicalLine(tuple[int, str]):
    """A logical line: ``(first physical line number, joined text)``."""

    __slots__ = ()

    @property
    def lineno(self) -> int:
        """1-based number of the physical line where this logical line starts."""
        return self[0]

    @property
    def text(self) -> str:
        """The joined text (continuation lines appended without the newline)."""
        return self[1]


def logical_lines(text: str) -> Iterator[LogicalLine]:
    """Yield the logical lines of a Postfix configuration or table file.

    Postfix util/readlline.c ``readllines()``: empty lines, all-blank lines
    and lines whose first non-blank character is ``#`` are ignored (a comment
    cannot follow other text); a line that starts with whitespace continues
    the previous logical line, with the newline removed and its leading
    whitespace kept. Raises ValueError (with the line number) for text that
    starts with a continuation line or contains a NUL byte.
    """
    current: str | None = None
    start = 0
    for number, line in enumerate(text.split("\n"), 1):
        if "\0" in line:
            raise ValueError(f"line {number}: NUL character")
        content = line.lstrip(_ISSPACE)
        if not content or content[0] == "#":
            continue
        if line[0] in _ISSPACE:
            if current is None:
                raise ValueError(
                    f"line {number}: logical line must not start with whitespace: {line!r}"
                )
            current += line
            continue
        if current is not None:
            yield LogicalLine((start, current))
        current = line
        start = number
    if current is not None:
        yield LogicalLine((start, current))
