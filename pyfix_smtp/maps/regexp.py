"""``regexp:`` and ``pcre:`` tables (Postfix dict_regexp.c, dict_pcre.c).

Each logical line is one of::

    /pattern/flags result          first matching rule wins
    !/pattern/flags result         matches when the pattern does not
    /pattern1/!/pattern2/ result   regexp: only, pattern1 and not pattern2
    if /pattern/flags              rules up to the matching endif apply
    endif                          only when the pattern matches

Any non-alphanumeric character may delimit a pattern. The result may use
``$1``..``$9`` (also ``${n}``, ``$(n)``) for matched groups and ``$$`` for a
dollar. Where Postfix logs a warning and skips a malformed rule, we raise
:class:`LookupTableError` with the line number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyfix_smtp.errors import LookupTableError
from pyfix_smtp.maps.base import Table
from pyfix_smtp.maps.files import read_rules
from pyfix_smtp.maps.posix import pcre_to_python, posix_to_python
from pyfix_smtp.maps.syntax import logical_lines

__all__ = ["PatternTable", "open_pattern_table", "parse_pattern_table"]

_ISSPACE = " \t\n\v\f\r"
_Part = str | int  # literal text or a group number


@dataclass(frozen=True, slots=True)
class _Pattern:
    regex: re.Pattern[str]
    match: bool  # False when negated with '!'
    anchored: bool  # pcre flag A

    def test(self, key: str) -> re.Match[str] | bool | None:
        """Return the match object (positive) or a bool (negated pattern)."""
        found = self.regex.match(key) if self.anchored else self.regex.search(key)
        if self.match:
            return found
        return found is None


@dataclass(frozen=True, slots=True)
class _Rule:
    op: str  # "match", "if", "endif"
    first: _Pattern | None
    second: _Pattern | None
    result: tuple[_Part, ...]
    lineno: int
    block_end: int = -1


def _parse_result(text: str) -> tuple[_Part, ...]:
    """Split a result into literals and ``$n`` references (util/mac_parse.c)."""
    parts: list[_Part] = []
    literal: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != "$":
            literal.append(ch)
            i += 1
            continue
        if text.startswith("$", i + 1):
            literal.append("$")
            i += 2
            continue
        i += 1
        if i < n and text[i] in "({":
            close = ")" if text[i] == "(" else "}"
            end = text.find(close, i + 1)
            if end < 0:
                raise ValueError(f"truncated macro reference in result {text!r}")
            name = text[i + 1 : end]
            i = end + 1
        else:
            start = i
            while i < n and ((text[i].isalnum() and text[i].isascii()) or text[i] == "_"):
                i += 1
            name = text[start:i]
        if not name:
            raise ValueError(f"bad replacement syntax: empty name after '$' in {text!r}")
        if not (name.isascii() and name.isdigit()):
            raise ValueError(f'non-numeric replacement index "{name}"')
        if int(name) < 1:
            raise ValueError(f'out-of-range replacement index "{name}"')
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(int(name))
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


class _Compiler:
    """Per-table-type pattern syntax: delimiters, flags, translation."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def get_pattern(self, text: str) -> tuple[_Pattern, str]:
        """Parse ``[!]<d>pattern<d>flags`` at the start of *text*.

        dict_regexp.c ``dict_regexp_get_pat()`` / dict_pcre.c
        ``dict_pcre_get_pattern()``. Returns the compiled pattern and the
        remaining text.
        """
        match = True
        i = 0
        while i < len(text) and (text[i] == "!" or text[i] in _ISSPACE):
            if text[i] == "!":
                match = not match
            i += 1
        if i >= len(text):
            raise ValueError("no regexp")
        delim = text[i]
        i += 1
        start = i
        while i < len(text):
            if text[i] == "\\":
                if i + 1 >= len(text):
                    break
                i += 1
            elif text[i] == delim:
                break
            i += 1
        if i >= len(text):
            raise ValueError(f'no closing regexp delimiter "{delim}"')
        body = text[start:i]
        i += 1
        flag_start = i
        stop = _ISSPACE + ("!" if self.kind == "regexp" else "")
        while i < len(text) and text[i] not in stop:
            i += 1
        return self.compile(body, text[flag_start:i], match), text[i:]

    def compile(self, body: str, flags: str, match: bool) -> _Pattern:
        """Compile *body* with the table type's default flags toggled by *flags*."""
        anchored = False
        if self.kind == "regexp":
            icase, extended, newline = True, True, False
            for flag in flags:
                if flag == "i":
                    icase = not icase
                elif flag == "m":
                    newline = not newline
                elif flag == "x":
                    extended = not extended
                else:
                    raise ValueError(f'unknown regexp option "{flag}"')
            source = posix_to_python(body, extended=extended, newline=newline)
            options = re.MULTILINE if newline else re.DOTALL
            if icase:
                options |= re.IGNORECASE
        else:
            icase, multiline, dotall, verbose, endonly = True, False, True, False, False
            for flag in flags:
                if flag == "i":
                    icase = not icase
                elif flag == "m":
                    multiline = not multiline
                elif flag == "s":
                    dotall = not dotall
                elif flag == "x":
                    verbose = not verbose
                elif flag == "A":
                    anchored = not anchored
                elif flag == "E":
                    endonly = not endonly
                elif flag in "UX":
                    raise ValueError(f'regexp option "{flag}" is not supported with Python re')
                else:
                    raise ValueError(f'unknown regexp option "{flag}"')
            source = pcre_to_python(body, dollar_endonly=endonly and not multiline)
            options = re.RegexFlag(0)
            for enabled, bit in (
                (icase, re.IGNORECASE),
                (multiline, re.MULTILINE),
                (dotall, re.DOTALL),
                (verbose, re.VERBOSE),
            ):
                if enabled:
                    options |= bit
        try:
            regex = re.compile(source, options)
        except re.error as exc:
            raise ValueError(f"error in regex: {exc}") from None
        return _Pattern(regex, match, anchored)


def _keyword(line: str, word: str) -> bool:
    n = len(word)
    return line[:n].lower() == word and not line[n : n + 1].isalnum()


def _parse_line(compiler: _Compiler, line: str, depth: int) -> _Rule | None:
    """Compile one logical line; ``None`` for an ``endif`` (handled by caller)."""
    if not line[0].isalnum():
        first, rest = compiler.get_pattern(line)
        second = None
        if compiler.kind == "regexp" and rest.startswith("!"):
            # The '!' that introduces the second pattern negates it.
            second, rest = compiler.get_pattern(rest)
        result_text = rest.strip(_ISSPACE)
        if not result_text:
            raise ValueError("no replacement text")
        result = _parse_result(result_text)
        groups = [part for part in result if isinstance(part, int)]
        if groups and not first.match:
            raise ValueError("$number found in negative match replacement text")
        if groups and max(groups) > first.regex.groups:
            raise ValueError(f'out of range replacement index "{max(groups)}"')
        return _Rule("match", first, second, result, 0)
    if _keyword(line, "if"):
        pattern, rest = compiler.get_pattern(line[2:].lstrip(_ISSPACE))
        if rest.strip(_ISSPACE):
            raise ValueError(
                f"extra text after IF statement: {rest.strip(_ISSPACE)!r} "
                "(do not prepend whitespace to statements between IF and ENDIF)"
            )
        return _Rule("if", pattern, None, (), 0)
    if _keyword(line, "endif"):
        if depth == 0:
            raise ValueError("ENDIF without matching IF")
        if line[5:].strip(_ISSPACE):
            raise ValueError("extra text after ENDIF")
        return None
    raise ValueError(f"unrecognized request: {line!r}")


def parse_pattern_table(kind: str, text: str, *, ref: str, parameter: str) -> PatternTable:
    """Compile ``regexp`` or ``pcre`` table text."""
    compiler = _Compiler(kind)
    rules: list[_Rule] = []
    stack: list[int] = []
    try:
        lines = list(logical_lines(text))
    except ValueError as exc:
        raise LookupTableError(parameter, ref, str(exc)) from None
    for lineno, raw in lines:
        line = raw.rstrip(_ISSPACE)
        try:
            rule = _parse_line(compiler, line, len(stack))
        except ValueError as exc:
            raise LookupTableError(parameter, ref, str(exc), line=lineno) from None
        if rule is None:
            opener = stack.pop()
            old = rules[opener]
            rules[opener] = _Rule(old.op, old.first, None, (), old.lineno, len(rules))
            rules.append(_Rule("endif", None, None, (), lineno))
            continue
        rule = _Rule(rule.op, rule.first, rule.second, rule.result, lineno)
        if rule.op == "if":
            stack.append(len(rules))
        rules.append(rule)
    if stack:
        unclosed = rules[stack[-1]].lineno
        raise LookupTableError(parameter, ref, "IF has no matching ENDIF", line=unclosed)
    return PatternTable(tuple(rules), ref=ref)


class PatternTable(Table):
    """A compiled ``regexp:`` or ``pcre:`` table."""

    __slots__ = ("_rules", "fixed", "ref")

    def __init__(self, rules: tuple[_Rule, ...], *, ref: str) -> None:
        self._rules = rules
        self.ref = ref
        self.fixed = False

    def lookup(self, key: str) -> str | None:
        """Return the result of the first matching rule, with ``$n`` substituted.

        dict_regexp.c ``dict_regexp_lookup()``: an ``if`` whose pattern does
        not match skips to its ``endif``; a group that did not take part in
        the match, or matched empty text, substitutes as empty text.
        """
        rules = self._rules
        i = 0
        while i < len(rules):
            rule = rules[i]
            if rule.op == "match":
                assert rule.first is not None
                found = rule.first.test(key)
                if found and (rule.second is None or rule.second.test(key)):
                    return _substitute(rule.result, found)
            elif rule.op == "if":
                assert rule.first is not None
                if not rule.first.test(key):
                    i = rule.block_end
            i += 1
        return None


def _substitute(result: tuple[_Part, ...], found: re.Match[str] | bool) -> str:
    if len(result) == 1 and isinstance(result[0], str):
        return result[0]
    pieces: list[str] = []
    for part in result:
        if isinstance(part, str):
            pieces.append(part)
        elif isinstance(found, re.Match):
            pieces.append(found.group(part) or "")
    return "".join(pieces)


def open_pattern_table(kind: str, name: str, *, parameter: str) -> PatternTable:
    """Open ``regexp:``/``pcre:`` from a file path or the ``{ {rule}, ... }`` form."""
    text = read_rules(kind, name, parameter=parameter)
    return parse_pattern_table(kind, text, ref=f"{kind}:{name}", parameter=parameter)
