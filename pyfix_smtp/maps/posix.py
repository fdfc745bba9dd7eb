"""Translate POSIX (``regexp:``) and PCRE (``pcre:``) patterns to Python ``re``.

Postfix ``regexp:`` tables use POSIX regcomp(3): extended syntax by default
(basic with the ``x`` flag), case-insensitive, and without REG_NEWLINE
(``.`` and ``[^x]`` match a newline, ``$`` matches only at the very end)
unless the ``m`` flag is given. Python's ``re`` differs in bracket
expressions (``[[:alpha:]]``, a literal backslash), in ``$`` and in escapes,
so patterns are translated token by token. ``pcre:`` patterns are close to
Python already; the few PCRE-only spellings are rewritten.
"""

from __future__ import annotations

import re

__all__ = ["pcre_to_python", "posix_to_python"]

_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "0-9a-zA-Z",
    "upper": "A-Z",
    "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v",
    "blank": " \\t",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "print": "\\x20-\\x7e",
    "graph": "\\x21-\\x7e",
    "cntrl": "\\x00-\\x1f\\x7f",
    "xdigit": "0-9A-Fa-f",
}
_WORD_ESCAPES = {
    "w": "\\w",
    "W": "\\W",
    "s": "\\s",
    "S": "\\S",
    "b": "\\b",
    "B": "\\B",
    "<": "\\b(?=\\w)",
    ">": "\\b(?<=\\w)",
    "`": "\\A",
    "'": "\\Z",
}


def _class_char(ch: str) -> str:
    """A literal character inside a Python character set."""
    return "\\" + ch if ch in "\\[]^-&~|" else ch


def _bracket(pattern: str, i: int, newline: bool) -> tuple[str, int]:
    """Translate the POSIX bracket expression starting at ``pattern[i] == '['``.

    Returns the Python set and the index after the closing ``]``. Inside a
    POSIX bracket a backslash is an ordinary character.
    """
    n = len(pattern)
    j = i + 1
    negate = j < n and pattern[j] == "^"
    if negate:
        j += 1
    items: list[str] = []
    first = True
    while True:
        if j >= n:
            raise ValueError("unmatched [ in pattern")
        ch = pattern[j]
        if ch == "]" and not first:
            j += 1
            break
        first = False
        if ch == "[" and j + 1 < n and pattern[j + 1] in ":=.":
            kind = pattern[j + 1]
            end = pattern.find(kind + "]", j + 2)
            if end < 0:
                raise ValueError("unterminated [" + kind + " in bracket expression")
            name = pattern[j + 2 : end]
            if kind == ":":
                if name not in _CLASSES:
                    raise ValueError(f"unknown character class [:{name}:]")
                items.append(_CLASSES[name])
            elif len(name) == 1:
                items.append(_class_char(name))
            else:
                raise ValueError(f"unsupported collating element [{kind}{name}{kind}]")
            j = end + 2
            continue
        if ch == "-" and items and j + 1 < n and pattern[j + 1] != "]":
            items.append("-")  # a range between the previous and next item
        else:
            items.append(_class_char(ch))
        j += 1
    if negate and newline:
        items.append("\\n")  # REG_NEWLINE: [^x] does not match a newline
    return "[" + ("^" if negate else "") + "".join(items) + "]", j


def posix_to_python(pattern: str, *, extended: bool = True, newline: bool = False) -> str:
    """Translate a POSIX regular expression to Python ``re`` syntax.

    *extended* selects ERE (REG_EXTENDED) over BRE; *newline* is
    REG_NEWLINE. Compile the result with ``re.DOTALL`` unless *newline*, and
    with ``re.MULTILINE`` when *newline*. Raises ValueError for syntax that
    POSIX rejects or that has no faithful translation.
    """
    out: list[str] = []
    n = len(pattern)
    i = 0
    # BRE: '^' is an anchor at the start (or after \( or \|), '*' is literal there.
    at_start = True
    while i < n:
        ch = pattern[i]
        start_here = at_start
        at_start = False
        if ch == "\\":
            if i + 1 >= n:
                raise ValueError("trailing backslash")
            nxt = pattern[i + 1]
            i += 2
            if not extended and nxt in "(){}|+?":
                out.append(nxt)
                at_start = nxt in "(|"
            elif nxt in "123456789":
                out.append("\\" + nxt)
            elif nxt in _WORD_ESCAPES:
                out.append(_WORD_ESCAPES[nxt])
            else:
                out.append(re.escape(nxt))
            continue
        if ch == "[":
            translated, i = _bracket(pattern, i, newline)
            out.append(translated)
            continue
        i += 1
        if ch == "$":
            anchor = extended or i == n or pattern.startswith(("\\)", "\\|"), i)
            out.append(("$" if newline else "\\Z") if anchor else "\\$")
        elif ch == "^":
            out.append("^" if extended or start_here else "\\^")
            at_start = start_here
        elif ch == "*" and not extended and start_here:
            out.append("\\*")
        elif ch in "(){}|+?" and not extended:
            out.append("\\" + ch)
        elif ch == "(":
            if pattern.startswith("?", i):
                raise ValueError("'(?' is not POSIX syntax")
            out.append("(")
            at_start = True
        elif ch == "|":
            out.append("|")
            at_start = True
        else:
            out.append(ch)
    return "".join(out)


_PCRE_NAMED = re.compile(r"\(\?<(?=[A-Za-z_])")


def pcre_to_python(pattern: str, *, dollar_endonly: bool = False) -> str:
    """Rewrite PCRE-only spellings for Python ``re``.

    ``(?<name>`` becomes ``(?P<name>``, ``\\z`` becomes ``\\Z`` and PCRE's
    ``\\Z`` (end or before a final newline) becomes ``(?=\\n?\\Z)``;
    ``\\Q...\\E`` quotes; with *dollar_endonly* (flag ``E``) an unescaped
    ``$`` outside a class matches only at the very end.
    """
    out: list[str] = []
    n = len(pattern)
    i = 0
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
                out.append(re.escape(literal))
                i = n if end < 0 else end + 2
                continue
            if not in_class and nxt == "z":
                out.append("\\Z")
            elif not in_class and nxt == "Z":
                out.append("(?=\\n?\\Z)")
            else:
                out.append(ch + nxt)
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("\\]")
                i += 1
            continue
        if ch == "$" and dollar_endonly:
            out.append("\\Z")
        elif ch == "(" and _PCRE_NAMED.match(pattern, i):
            out.append("(?P<")
            i += 3
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)
