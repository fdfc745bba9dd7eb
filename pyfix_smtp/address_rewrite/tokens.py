"""RFC 822 address-list tokens as Postfix parses and prints them (global/tok822_*.c).

Postfix's smtp(8) rewrites header addresses with ``smtp_generic_maps`` by
parsing the header value into a token tree, replacing each address node and
printing the tree again (``smtp_proto.c`` ``smtp_header_rewrite()``). To put
the same octets on the wire this module follows Postfix's rules:

* tokens: atoms, quoted strings, comments (kept as written), domain literals
  and one-character operators (``|%!()<>@,;:\\".[]`` minus the openers);
  white space separates tokens and is otherwise dropped; an atom that holds a
  space, a control character or an operator becomes a quoted string
  (``tok822_scan()``);
* the parse groups the tokens of each address into an :data:`ADDR` node,
  right to left: ``<...>`` routes, comma-separated lists, named groups
  (``name: a, b;``), comments moved out of the way, and a comma inserted
  between two words that lack one (``tok822_parse()``);
* the internal form joins an address's tokens without quoting
  (``tok822_internalize()``); the external form quotes the local part of each
  address where it is not a dot-string and, for header output, starts a new
  line after each comma and cuts an address expression whose comments and
  phrases exceed 250 octets down to ``<address>`` (``tok822_externalize()``);
* :func:`quote_local` is Postfix's ``quote_822_local()``.

Text is ``str``; callers decode header octets with UTF-8 and
``surrogateescape`` so every octet comes back unchanged. Octets above 127 are
ordinary characters, as in Postfix (which leaves 8-bit data alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ADDR",
    "ATOM",
    "COMMENT",
    "DOMLIT",
    "QSTRING",
    "STARTGRP",
    "Token",
    "addresses",
    "externalize",
    "internalize",
    "parse",
    "quote_local",
    "scan",
    "unquote_local",
]

# Token kinds (Postfix tok822.h); operators are their character.
ATOM = "atom"
QSTRING = "qstring"
COMMENT = "comment"
DOMLIT = "domlit"
ADDR = "addr"
STARTGRP = "startgrp"

# Postfix lex_822.h LEX_822_SPECIALS plus "|%!" (tok822_parse.c tok822_opchar).
_OPCHARS = frozenset('|%!()<>@,;:\\".[]')
_WHITE = frozenset(" \t\r\n")
_NON_OPERATOR = frozenset((ATOM, QSTRING, COMMENT, DOMLIT, ADDR))
# Postfix tok822_externalize() MAX_NONADDR_LENGTH (CERT CA-2003-07 guard).
_MAX_NONADDR = 250
# quote_822_local.c is_822_dot_string(): characters that force quoting.
_NOT_IN_DOT_STRING = frozenset('()<>@,;:\\"[] ')


def _is_control(ch: str) -> bool:
    # Postfix ISCNTRL(): ASCII control characters only.
    code = ord(ch)
    return code < 0x20 or code == 0x7F


@dataclass(eq=False, slots=True)
class Token:
    """One node of the token tree (Postfix ``TOK822``).

    Attributes:
        kind: :data:`ATOM`, :data:`QSTRING`, :data:`COMMENT`, :data:`DOMLIT`,
            :data:`ADDR`, :data:`STARTGRP`, or the operator character.
        text: the token's text: unquoted for quoted strings and domain
            literals, as written (with the parentheses) for comments.
        children: the tokens of an :data:`ADDR` node.
        owned: True for tokens inside an address node; Postfix puts no
            space after them when printing.
    """

    kind: str
    text: str = ""
    children: list[Token] = field(default_factory=list)
    owned: bool = False
    prev: Token | None = field(default=None, repr=False)
    next: Token | None = field(default=None, repr=False)


def _collect(text: str, pos: int, stop: str | None) -> tuple[str, int]:
    """Collect a quoted string, domain literal or atom body (Postfix COLLECT()).

    A backslash takes the next character literally; white space becomes a
    space. With ``stop`` the collection ends at that character (which is
    skipped); without, at white space or an operator.
    """
    out: list[str] = []
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == "\\":
            pos += 1
            if pos >= n:
                break
            ch = text[pos]
        elif stop is not None:
            if ch == stop:
                pos += 1
                break
        elif ch in _WHITE or ch in _OPCHARS:
            break
        out.append(" " if ch in _WHITE else ch)
        pos += 1
    return "".join(out), pos


def _comment(text: str, pos: int) -> tuple[str, int]:
    """A comment as written, parentheses included; comments nest (RFC 822 §3.4.3)."""
    out = ["("]
    level = 1
    n = len(text)
    while pos < n:
        ch = text[pos]
        out.append(ch)
        pos += 1
        if ch == "(":
            level += 1
        elif ch == ")":
            level -= 1
            if level == 0:
                break
        elif ch == "\\":
            if pos >= n:
                break
            out.append(text[pos])
            pos += 1
    return "".join(out), pos


def scan(text: str) -> list[Token]:
    """Split *text* into a flat token list (Postfix ``tok822_scan()``)."""
    tokens: list[Token] = []
    n = len(text)
    pos = 0
    while pos < n:
        ch = text[pos]
        pos += 1
        if ch in _WHITE:
            continue
        if ch == "(":
            value, pos = _comment(text, pos)
            tokens.append(Token(COMMENT, value))
        elif ch == "[":
            value, pos = _collect(text, pos, "]")
            tokens.append(Token(DOMLIT, value))
        elif ch == '"':
            value, pos = _collect(text, pos, '"')
            tokens.append(Token(QSTRING, value))
        elif ch != "\\" and ch in _OPCHARS:
            tokens.append(Token(ch))
        else:
            value, pos = _collect(text, pos - 1, None)
            # tok822_quote_atom(): an atom that needs quotes becomes a quoted string.
            kind = (
                QSTRING if any(c == " " or _is_control(c) or c in _OPCHARS for c in value) else ATOM
            )
            tokens.append(Token(kind, value))
    return tokens


class _List:
    """A doubly linked token list between two sentinels, for the parser."""

    def __init__(self, tokens: list[Token]) -> None:
        self.head = Token("")
        self.tail = Token("")
        prev = self.head
        for token in tokens:
            prev.next = token
            token.prev = prev
            prev = token
        prev.next = self.tail
        self.tail.prev = prev

    @staticmethod
    def unlink(token: Token) -> Token | None:
        prev, nxt = token.prev, token.next
        if prev is not None:
            prev.next = nxt
        if nxt is not None:
            nxt.prev = prev
        token.prev = token.next = None
        return prev

    @staticmethod
    def insert_before(right: Token, token: Token) -> Token:
        prev = right.prev
        if prev is not None:
            prev.next = token
        token.prev = prev
        token.next = right
        right.prev = token
        return token

    @staticmethod
    def insert_after(left: Token, token: Token) -> Token:
        nxt = left.next
        left.next = token
        token.prev = left
        token.next = nxt
        if nxt is not None:
            nxt.prev = token
        return token

    def group(self, left: Token, right: Token, add_comma: bool) -> Token:
        """Put the tokens strictly between *left* and *right* under a new ADDR node.

        Postfix ``tok822_group()``: with *add_comma* a comma goes in front of
        the new node. Returns *left*.
        """
        first = left.next
        if left is right or first is right or first is None:
            return left
        members: list[Token] = []
        node: Token | None = first
        while node is not None and node is not right:
            members.append(node)
            node = node.next
        for member in members:
            member.prev = member.next = None
            member.owned = True
        addr = Token(ADDR, children=members)
        left.next = right
        right.prev = left
        self.insert_after(left, addr)
        if add_comma:
            self.insert_after(left, Token(","))
        return left

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        node = self.head.next
        while node is not None and node is not self.tail:
            out.append(node)
            node = node.next
        for token in out:
            token.prev = token.next = None
        return out


_WORD = 1  # Postfix DO_WORD: a word is fine here
_GROUP = 2  # Postfix DO_GROUP: inside a named group


def parse(text: str) -> list[Token]:
    """Parse a header value into a token tree (Postfix ``tok822_parse()``).

    The result is the top-level list; each address is an :data:`ADDR` node
    (see :func:`addresses`). Nothing is thrown away: text the parser does not
    understand stays in the list as it was.
    """
    tokens = scan(text)
    if not tokens:
        return []
    chain = _List(tokens)
    state = _WORD
    right = chain.tail
    tp = right.prev
    assert tp is not None
    while tp is not chain.head:
        assert tp is not None
        kind = tp.kind
        if kind == COMMENT:
            # Move the comment to the right, out of the address.
            prev = chain.unlink(tp)
            right = chain.insert_before(right, tp)
            tp = prev
            continue
        if kind == ";":
            right = chain.group(tp, right, add_comma=True)
            state = _GROUP | _WORD
        elif kind == ":" and state & _GROUP:
            tp.kind = STARTGRP
            chain.group(tp, right, add_comma=False)
            while tp.kind and tp.kind != ",":
                assert tp.prev is not None
                tp = tp.prev
            right = tp
            continue
        elif kind == ">":
            right = chain.group(tp, right, add_comma=True)
            while tp.kind and tp.kind != "<":
                if tp.kind == COMMENT:
                    prev = chain.unlink(tp)
                    right = chain.insert_before(right, tp)
                    assert prev is not None
                    tp = prev
                    continue
                assert tp.prev is not None
                tp = tp.prev
            chain.group(tp, right, add_comma=False)
            while tp.kind and (len(tp.kind) > 1 or tp.kind not in ">;,:"):
                assert tp.prev is not None
                tp = tp.prev
            right = tp
            state |= _WORD
            continue
        elif kind in (ATOM, QSTRING, DOMLIT):
            if not state & _WORD:
                # Two words in a row: an address ends here; add the missing comma.
                left = chain.group(tp, right, add_comma=True)
                assert left.next is not None
                right = left.next
            state &= ~_WORD
        elif kind == ",":
            right = chain.group(tp, right, add_comma=False)
            state |= _WORD
        else:
            state |= _WORD
        assert tp.prev is not None
        tp = tp.prev
    chain.group(tp, right, add_comma=False)
    return chain.tokens()


def addresses(tree: list[Token]) -> list[Token]:
    """The top-level address nodes of a parsed tree (Postfix ``tok822_grep()``)."""
    return [token for token in tree if token.kind == ADDR]


def _space_after(tokens: list[Token], index: int) -> bool:
    """Postfix ``tok822_append_space()``: a space between these two tokens?"""
    token = tokens[index]
    if index + 1 >= len(tokens) or token.owned:
        return False
    nxt = tokens[index + 1]
    if token.kind in (",", STARTGRP) or nxt.kind == "<":
        return True
    return token.kind in _NON_OPERATOR and nxt.kind in _NON_OPERATOR


def internalize(tokens: list[Token]) -> str:
    """The internal (unquoted) form of a token list (Postfix ``tok822_internalize()``)."""
    out: list[str] = []
    for index, token in enumerate(tokens):
        kind = token.kind
        if kind == ADDR:
            out.append(internalize(token.children))
        elif kind in (COMMENT, ATOM, QSTRING):
            out.append(token.text)
        elif kind == DOMLIT:
            out.append(f"[{token.text}]")
        elif kind == STARTGRP:
            out.append(":")
        else:
            out.append(kind)
        if _space_after(tokens, index):
            out.append(" ")
    return "".join(out)


def _escape(text: str, specials: str) -> str:
    if not any(c in specials for c in text):
        return text
    return "".join("\\" + c if c in specials else c for c in text)


@dataclass(frozen=True, slots=True)
class Printed:
    """The external form of a tree, and whether the 250-octet guard cut anything."""

    text: str
    stripped: tuple[str, ...] = ()


def externalize(tree: list[Token], *, lines: bool = False, truncate: bool = False) -> Printed:
    """The external (quoted) form of a token tree (Postfix ``tok822_externalize()``).

    With *lines* each comma is followed by a line break instead of a space
    (Postfix TOK822_STR_LINE, for header output). With *truncate* an address
    expression whose non-address text exceeds 250 octets is reduced to
    ``<address>`` (TOK822_STR_TRNC); :attr:`Printed.stripped` lists what was
    cut, for the warning Postfix logs.
    """
    out: list[str] = []
    size = 0  # characters in out
    start = 0
    addr: Token | None = None
    addr_len = 0
    stripped: list[str] = []

    def enforce() -> None:
        nonlocal size
        if truncate and addr is not None and size - addr_len > start + _MAX_NONADDR:
            text = "".join(out)
            stripped.append(text[start:])
            inner = "" if addr.kind != ADDR else quote_local(internalize(addr.children))
            kept = text[:start] + "<" + inner + ">"
            out.clear()
            out.append(kept)
            size = len(kept)

    for index, token in enumerate(tree):
        kind = token.kind
        if kind == ",":
            enforce()
            piece = ",\n" if lines else ", "
            out.append(piece)
            size += len(piece)
            start, addr, addr_len = size, None, 0
            continue
        if kind == ADDR:
            addr = token
            piece = quote_local(internalize(token.children))
            addr_len = len(piece)
        elif kind in (ATOM, COMMENT):
            piece = token.text
        elif kind == QSTRING:
            piece = '"' + _escape(token.text, '"\\\r\n') + '"'
        elif kind == DOMLIT:
            piece = "[" + _escape(token.text, "\\\r\n") + "]"
        elif kind == STARTGRP:
            piece = ":"
        else:
            if kind == "<" and index + 1 < len(tree) and tree[index + 1].kind == ">":
                addr, addr_len = token, 0  # "<>": the null address
            piece = kind
        if _space_after(tree, index):
            piece += " "
        out.append(piece)
        size += len(piece)
    enforce()
    return Printed("".join(out), tuple(stripped))


def _dot_string(local: str) -> bool:
    """Postfix quote_822_local.c ``is_822_dot_string()`` (8-bit clean)."""
    if not local or local[0] == "." or local[-1] == ".":
        return False
    if ".." in local:
        return False
    return not any(c in _NOT_IN_DOT_STRING or _is_control(c) for c in local)


def quote_local(address: str, *, bare_localpart: bool = False) -> str:
    """Quote the local part of an internal-form address (Postfix ``quote_822_local()``).

    A source route (``@a,@b:``) is kept in front unchanged; the local part
    runs to the last ``@`` (or the end, with *bare_localpart*). A local part
    that is not a dot-string becomes a quoted string with ``"``, ``\\`` and CR
    escaped. 8-bit characters need no quotes.
    """
    start = 0
    if address.startswith("@"):
        colon = address.find(":")
        if colon >= 0:
            start = colon + 1
    end = len(address) if bare_localpart else address.rfind("@")
    if end < start:
        end = len(address)
    local = address[start:end]
    if _dot_string(local):
        return address
    quoted = '"' + _escape(local, '"\\\r') + '"'
    return address[:start] + quoted + address[end:]


def unquote_local(address: str) -> str:
    """The internal form of an external-form address (Postfix ``unquote_822_local()``).

    Quotes and backslashes go from the local part; text after the last
    unquoted ``@`` is kept as it is.
    """
    start = 0
    prefix = ""
    if address.startswith("@"):
        colon = address.find(":")
        if colon >= 0:
            start = colon + 1
            prefix = address[:start]
    out: list[str] = []
    in_quote = False
    at_out = -1
    at_src = -1
    i = start
    n = len(address)
    while i < n:
        ch = address[i]
        if ch == '"':
            in_quote = not in_quote
            i += 1
            continue
        if ch == "@":
            if not in_quote:
                at_out = len(out)
                at_src = i
        elif ch == "\\":
            i += 1
            if i >= n:
                break  # a trailing backslash is dropped
            ch = address[i]
        out.append(ch)
        i += 1
    if at_out >= 0:
        return prefix + "".join(out[:at_out]) + address[at_src:]
    return prefix + "".join(out)
