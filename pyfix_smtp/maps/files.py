"""Reading table sources: files on disk and the ``{ {rule}, {rule} }`` inline form."""

from __future__ import annotations

from pyfix_smtp.errors import LookupTableError
from pyfix_smtp.maps.syntax import COMMA_SPACE, split_tokens, strip_braces

__all__ = ["read_rules", "read_table_text"]


def read_table_text(path: str, *, ref: str, parameter: str) -> str:
    """Return the UTF-8 text of a table file; unreadable files are errors.

    Postfix opens tables when the daemon starts and refuses to use a table
    it cannot open; we read the file once, when the table is opened.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise LookupTableError(parameter, ref, f"cannot open {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LookupTableError(parameter, ref, "malformed UTF-8", line=line) from None


def read_rules(kind: str, name: str, *, parameter: str) -> str:
    """Return the rule text for a ``regexp:``/``pcre:``/``cidr:`` table.

    A name that starts with ``{`` is the inline form
    ``{ {rule}, {rule} ... }``: each braced rule becomes one line (Postfix
    util/dict_stream.c ``dict_inline_to_multiline()``). Otherwise the name is
    a file path.
    """
    ref = f"{kind}:{name}"
    if not name.startswith("{"):
        return read_table_text(name, ref=ref, parameter=parameter)
    try:
        body = strip_braces(name, strip=False)
        rules = [strip_braces(token) for token in split_tokens(body, COMMA_SPACE)]
    except ValueError as exc:
        raise LookupTableError(parameter, ref, f"{kind} map: {exc}") from None
    return "".join(rule + "\n" for rule in rules)
