"""smtp(8) header and body checks as an encoder hook: actions, classes, keys, limits.

The rules come from Postfix 3.11 ``global/header_body_checks.c``
(``hbc_action()``, ``hbc_header_checks()``, ``hbc_body_checks()``),
``smtp/smtp_proto.c`` (``smtp_header_rewrite()``, ``smtp_body_rewrite()``,
``smtp_hbc_logger()``) and ``global/mime_state.c``; the end-to-end behaviour
is compared with real Postfix in ``test_header_checks_postfix.py``. Tables
are the real files under ``tests/data/checks/`` or small inline/callable
tables where a test needs to see the lookup keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyfix_smtp.address_rewrite import GenericMaps
from pyfix_smtp.config import Config
from pyfix_smtp.errors import ContentError, LocalProtocolError
from pyfix_smtp.maps import TableList
from pyfix_smtp.protocol.content import ContentEncoder, EncoderOptions, encode_bdat, encode_data
from pyfix_smtp.protocol.header_checks import (
    CheckNote,
    ContentChecks,
    HeaderClass,
    MessageChecks,
)
from tests.test_content_smuggling import strict_read

DATA = Path(__file__).parent / "data" / "checks"


def _table(path: str) -> TableList:
    return TableList.parse(f"{path.split('.')[-1]}:{DATA / path}")


def _rules(*rules: str, kind: str = "regexp") -> TableList:
    """An inline pattern table: ``regexp:{ {rule}, ... }``."""
    return TableList.parse(f"{kind}:{{ " + ", ".join("{" + r + "}" for r in rules) + " }")


@dataclass
class Recorder:
    """A pattern table that records every key and answers from a function."""

    answer: Callable[[str], str | None] = lambda key: None
    keys: list[str] = field(default_factory=list)

    def __call__(self, key: str) -> str | None:
        self.keys.append(key)
        return self.answer(key)

    def tables(self) -> TableList:
        return TableList([self])


def run(
    message: bytes, checks: ContentChecks, *, downgrade: bool = False, **options: int
) -> tuple[bytes, list[CheckNote]]:
    """Encode *message* with the checks; return the content in LF form and the notes."""
    hook = checks.start()
    wire = b"".join(
        encode_data(message, EncoderOptions(downgrade_8bit=downgrade, **options), hook=hook)
    )
    assert wire.endswith(b".\r\n")
    return wire[:-3].replace(b"\r\n", b"\n"), hook.notes


def messages(notes: list[CheckNote]) -> list[str]:
    return [f"{n.severity}: {n.message}" for n in notes]


SIMPLE = b"From: a@example.org\nX-A: 1\nSubject: s\n\nb-line\nkeep\n"

# (action text, output headers, notes): the action fires on "X-A: 1"
KEPT = b"From: a@example.org\nX-A: 1\nSubject: s\n"
GONE = b"From: a@example.org\nSubject: s\n"
UNSUPPORTED = "warning: unsupported command in smtp_header_checks map: "
NEED = 'in smtp_header_checks map -- need "headername: headervalue"'
HEADER_ACTIONS = [
    ("WARN some text", KEPT, ["info: warning: header X-A: 1: some text"]),
    ("WARN", KEPT, ["info: warning: header X-A: 1"]),
    ("warn lower case", KEPT, ["info: warning: header X-A: 1: lower case"]),
    ("INFO note", KEPT, ["info: info: header X-A: 1: note"]),
    (
        "REPLACE X-B: 2",
        KEPT.replace(b"X-A: 1", b"X-B: 2"),
        ["info: replace: header X-A: 1: X-B: 2"],
    ),
    (
        "REPLACE   X-B :2",
        KEPT.replace(b"X-A: 1", b"X-B :2"),
        ["info: replace: header X-A: 1: X-B :2"],
    ),
    ("REPLACE no header", KEPT, [f'warning: bad REPLACE header text "no header" {NEED}']),
    ("REPLACE", KEPT, ["warning: REPLACE action without text in smtp_header_checks map"]),
    (
        "PREPEND X-P: 0",
        KEPT.replace(b"X-A", b"X-P: 0\nX-A"),
        ["info: prepend: header X-A: 1: X-P: 0"],
    ),
    ("PREPEND nope", KEPT, [f'warning: bad PREPEND header text "nope" {NEED}']),
    ("PREPEND", KEPT, ["warning: PREPEND action without text in smtp_header_checks map"]),
    ("STRIP gone", GONE, ["info: strip: header X-A: 1: gone"]),
    ("STRIP", GONE, ["info: strip: header X-A: 1"]),
    ("IGNORE", GONE, []),
    ("ignore", GONE, []),
    ("IGNORE with text", GONE, []),
    ("DUNNO", KEPT, []),
    ("OK", KEPT, []),
    ("DISCARD spam", KEPT, [UNSUPPORTED + "DISCARD spam"]),
    ("REJECT 5.7.1 no", KEPT, [UNSUPPORTED + "REJECT 5.7.1 no"]),
    ("HOLD", KEPT, [UNSUPPORTED + "HOLD"]),
    ("REDIRECT x@example.net", KEPT, [UNSUPPORTED + "REDIRECT x@example.net"]),
    ("FILTER smtp:[h]", KEPT, [UNSUPPORTED + "FILTER smtp:[h]"]),
    ("BCC x@example.net", KEPT, [UNSUPPORTED + "BCC x@example.net"]),
    ("PASS", KEPT, [UNSUPPORTED + "PASS"]),
    ("DELAY 1h", KEPT, [UNSUPPORTED + "DELAY 1h"]),
    ("WARNING not WARN", KEPT, [UNSUPPORTED + "WARNING not WARN"]),
]


@pytest.mark.parametrize(("action", "headers", "notes"), HEADER_ACTIONS)
def test_header_actions(action: str, headers: bytes, notes: list[str]) -> None:
    table = Recorder(lambda key: action if key == "X-A: 1" else None)
    out, got = run(SIMPLE, ContentChecks(header_checks=table.tables()))
    assert out == headers + b"\nb-line\nkeep\n"
    assert messages(got) == notes
    assert table.keys == ["From: a@example.org", "X-A: 1", "Subject: s"]


# (action text, output body, notes): the action fires on "b-line"
BODY_ACTIONS = [
    ("WARN w", b"b-line\nkeep\n", ["info: warning: body b-line: w"]),
    ("INFO", b"b-line\nkeep\n", ["info: info: body b-line"]),
    ("REPLACE any text", b"any text\nkeep\n", ["info: replace: body b-line: any text"]),
    ("PREPEND new line", b"new line\nb-line\nkeep\n", ["info: prepend: body b-line: new line"]),
    ("STRIP s", b"keep\n", ["info: strip: body b-line: s"]),
    ("IGNORE", b"keep\n", []),
    ("DUNNO", b"b-line\nkeep\n", []),
    (
        "DISCARD",
        b"b-line\nkeep\n",
        ["warning: unsupported command in smtp_body_checks map: DISCARD"],
    ),
    (
        "REPLACE",
        b"b-line\nkeep\n",
        ["warning: REPLACE action without text in smtp_body_checks map"],
    ),
]


@pytest.mark.parametrize(("action", "body", "notes"), BODY_ACTIONS)
def test_body_actions(action: str, body: bytes, notes: list[str]) -> None:
    table = Recorder(lambda key: action if key == "b-line" else None)
    out, got = run(SIMPLE, ContentChecks(body_checks=table.tables()))
    assert out == b"From: a@example.org\nX-A: 1\nSubject: s\n\n" + body
    assert messages(got) == notes
    # Headers are not body lines; the empty separator line is never looked up.
    assert table.keys == ["b-line", "keep"]


NESTED = b"""From: a@example.org
X-Top: 1
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b

preamble
--b
Content-Type: text/plain
X-Part: 1

part body
--b
Content-Type: message/rfc822
Content-Description: attached

Subject: inner
X-Inner: 1
Content-Type: text/plain
Content-ID: <c@example.org>

inner body
--b--
epilogue
"""


def test_header_classes_choose_the_table() -> None:
    """MIME headers anywhere and all part headers: MIME table (header_body_checks.c)."""
    primary, mime, nested, body = Recorder(), Recorder(), Recorder(), Recorder()
    checks = ContentChecks(
        header_checks=primary.tables(),
        mime_header_checks=mime.tables(),
        nested_header_checks=nested.tables(),
        body_checks=body.tables(),
    )
    out, notes = run(NESTED, checks)
    assert out == NESTED
    assert notes == []
    assert primary.keys == ["From: a@example.org", "X-Top: 1"]
    assert mime.keys == [
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=b",
        "Content-Type: text/plain",
        "X-Part: 1",
        "Content-Type: message/rfc822",
        "Content-Description: attached",
        "Content-Type: text/plain",
        "Content-ID: <c@example.org>",
    ]
    assert nested.keys == ["Subject: inner", "X-Inner: 1"]
    assert body.keys == ["preamble", "--b", "part body", "--b", "inner body", "--b--", "epilogue"]


def test_missing_class_tables_leave_headers_alone() -> None:
    nested = Recorder(lambda key: "IGNORE")
    out, _ = run(NESTED, ContentChecks(nested_header_checks=nested.tables()))
    assert out == NESTED.replace(b"Subject: inner\nX-Inner: 1\n", b"")
    assert nested.keys == ["Subject: inner", "X-Inner: 1"]


def test_multi_line_header_is_one_key_with_its_line_breaks() -> None:
    table = Recorder()
    message = b"Subject: one\n two\n\tthree\nX-B: 1\n\nbody\n"
    out, _ = run(message, ContentChecks(header_checks=table.tables()))
    assert out == message
    assert table.keys == ["Subject: one\n two\n\tthree", "X-B: 1"]
    # The same from CRLF input.
    table.keys.clear()
    run(message.replace(b"\n", b"\r\n"), ContentChecks(header_checks=table.tables()))
    assert table.keys == ["Subject: one\n two\n\tthree", "X-B: 1"]


def test_pcre_pattern_sees_the_newline_and_replace_keeps_it() -> None:
    table = _rules(r"/^Subject: (one\n two)$/ REPLACE X-Was: $1", kind="pcre")
    out, notes = run(b"Subject: one\n two\n\nb\n", ContentChecks(header_checks=table))
    assert out == b"X-Was: one\n two\n\nb\n"
    # Postfix's log shows line breaks as "?".
    assert messages(notes) == ["info: replace: header Subject: one? two: X-Was: one? two"]


def test_obsolete_name_space_colon_is_looked_up_as_name_colon() -> None:
    """mime_state.c normalises "Name :" before the lookup; the text stays as written."""
    table = Recorder(lambda key: "WARN seen" if key.startswith("X-Old:") else None)
    out, notes = run(b"X-Old  : v\n\nb\n", ContentChecks(header_checks=table.tables()))
    assert table.keys == ["X-Old: v"]
    assert out == b"X-Old  : v\n\nb\n"
    assert messages(notes) == ["info: warning: header X-Old: v: seen"]


@pytest.mark.parametrize(
    ("length", "pieces"),
    [
        (10, [10]),
        (2047, [2047]),
        (2048, [2048]),  # then an empty last piece, never looked up
        (2049, [2048, 1]),
        (5000, [2048, 2048, 904]),
    ],
)
def test_body_lines_are_checked_in_line_length_limit_pieces(length: int, pieces: list[int]) -> None:
    table = Recorder()
    line = bytes(range(97, 123)) * (length // 26) + b"a" * (length % 26)
    out, _ = run(
        b"X: 1\n\n" + line + b"\nend\n",
        ContentChecks(body_checks=table.tables()),
        line_length_limit=0,
    )
    assert out == b"X: 1\n\n" + line + b"\nend\n"
    assert [len(k) for k in table.keys] == [*pieces, 3]
    assert "".join(table.keys[:-1]).encode() == line


def test_body_piece_size_follows_line_length_limit() -> None:
    table = Recorder()
    run(b"\n" + b"x" * 25 + b"\n", ContentChecks(body_checks=table.tables(), body_piece=10))
    assert table.keys == ["x" * 10, "x" * 10, "x" * 5]


def test_actions_on_pieces_of_a_long_line() -> None:
    def answer(key: str) -> str | None:
        return {"a" * 10: "REPLACE A", "b" * 10: "IGNORE", "c" * 5: "PREPEND before c"}.get(key)

    table = Recorder(answer)
    line = b"a" * 10 + b"b" * 10 + b"c" * 5
    out, notes = run(b"\n" + line + b"\n", ContentChecks(body_checks=table.tables(), body_piece=10))
    # smtp_body_rewrite(): a replaced piece continues the line; PREPEND writes a
    # line of its own at that point (it ends the line so far).
    assert out == b"\nAbefore c\nccccc\n"
    assert messages(notes) == [
        "info: replace: body aaaaaaaaaa: A",
        "info: prepend: body ccccc: before c",
    ]


def test_ignored_last_piece_still_ends_the_line() -> None:
    """Postfix would glue the next line on (recorded in test_header_checks_postfix.py)."""
    table = Recorder(lambda key: "IGNORE" if key.startswith("z") else None)
    line = b"w" * 10 + b"zz"
    out, _ = run(
        b"\n" + line + b"\nnext\nzz\nlast\n",
        ContentChecks(body_checks=table.tables(), body_piece=10),
    )
    assert out == b"\n" + b"w" * 10 + b"\nnext\nlast\n"


def test_body_checks_see_lines_after_quoted_printable_conversion() -> None:
    table = Recorder()
    message = (
        "Content-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\ncafé " + "é" * 40 + "\n"
    ).encode()
    out, _ = run(message, ContentChecks(body_checks=table.tables()), downgrade=True)
    encoded = out.split(b"\n\n", 1)[1]
    assert [k.encode() for k in table.keys] == encoded.rstrip(b"\n").split(b"\n")
    assert table.keys[0].startswith("caf=C3=A9 =C3=A9")
    assert table.keys[0].endswith("=")  # a soft line break is part of the line


def test_conversion_header_is_checked_without_its_mime_class() -> None:
    """mime_state.c passes no header information with the new Content-Transfer-Encoding."""
    primary, mime = Recorder(), Recorder()
    message = b"Content-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\n\xc3\xa9\n"
    checks = ContentChecks(header_checks=primary.tables(), mime_header_checks=mime.tables())
    out, _ = run(message, checks, downgrade=True)
    assert (
        out == b"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n=C3=A9\n"
    )
    assert mime.keys == ["Content-Type: text/plain"]  # the 8bit one is gone, unchecked
    assert primary.keys == ["Content-Transfer-Encoding: quoted-printable"]


def test_real_table_files() -> None:
    checks = ContentChecks(
        header_checks=_table("header_checks.regexp"),
        body_checks=_table("body_checks.regexp"),
    )
    message = b"Subject: replace me\nX-Strip: 1\nX-Prepend: 1\n\nbody-replace x\nbody-ignore y\n"
    out, notes = run(message, checks)
    assert out == b"Subject: replaced\nX-Added: yes\nX-Prepend: 1\n\nreplaced body line\n"
    assert [n.action for n in notes] == ["replace", "strip", "prepend", "replace"]
    assert {n.parameter for n in notes} == {"smtp_header_checks", "smtp_body_checks"}


def test_replacement_text_never_carries_a_cr() -> None:
    table = Recorder(lambda key: "REPLACE X-R: a\rb" if key == "X-A: 1" else "REPLACE c\rd")
    out, _ = run(
        b"X-A: 1\n\nline\n", ContentChecks(header_checks=table.tables(), body_checks=table.tables())
    )
    assert out == b"X-R: a b\n\nc d\n"


def test_log_line_is_cut_at_200_characters() -> None:
    table = Recorder(lambda key: "INFO long")
    _, notes = run(b"\n" + b"x" * 300 + b"\n", ContentChecks(body_checks=table.tables()))
    assert notes[0].message == "info: body " + "x" * 200 + ": long"
    assert notes[0].line == "x" * 300


def test_utf8_and_raw_octets_round_trip() -> None:
    table = _rules("/^Subject: (caf.*)$/ REPLACE X-Was: $1", kind="pcre")
    message = "Subject: café ".encode() + b"\xff\xfe\n\nbody\n"
    out, notes = run(message, ContentChecks(header_checks=table))
    assert out == "X-Was: café ".encode() + b"\xff\xfe\n\nbody\n"
    # Postfix's log shows invalid UTF-8 as "?".
    assert notes[0].message == "replace: header Subject: café ??: X-Was: café ??"


# -- long headers ---------------------------------------------------------------

LONG = b"X-Long: " + b"v" * 40 + b"\n " + b"w" * 40 + b"\n " + b"z" * 40 + b"\nX-After: 1\n\nbody\n"


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("DUNNO", LONG),
        ("WARN long", LONG),
        ("PREPEND X-P: 1", b"X-P: 1\n" + LONG),
        ("IGNORE", b"X-After: 1\n\nbody\n"),
        ("STRIP", b"X-After: 1\n\nbody\n"),
        ("REPLACE X-Short: 1", b"X-Short: 1\nX-After: 1\n\nbody\n"),
    ],
)
def test_header_longer_than_header_size_limit(action: str, expected: bytes) -> None:
    """The checks see the first header_size_limit octets; the action covers all of it."""
    table = Recorder(lambda key: action if key.startswith("X-Long") else None)
    out, _ = run(LONG, ContentChecks(header_checks=table.tables()), header_size_limit=50)
    assert out == expected
    assert table.keys == [LONG[:50].decode(), "X-After: 1"]
    # The same key and output however the header arrives.
    hook = ContentChecks(header_checks=table.tables()).start()
    encoder = ContentEncoder(EncoderOptions(header_size_limit=50), hook=hook)
    wire = (
        b"".join(encoder.feed(LONG[i : i + 7]) for i in range(0, len(LONG), 7)) + encoder.finish()
    )
    assert wire[:-3].replace(b"\r\n", b"\n") == expected
    assert table.keys[-2:] == [LONG[:50].decode(), "X-After: 1"]


def test_long_address_header_is_not_rewritten_and_says_so() -> None:
    generic = GenericMaps(TableList([{"a@example.org": "b@example.org"}]))
    message = b"To: a@example.org,\n " + b"c" * 60 + b"@example.org\n\nbody\n"
    out, notes = run(message, ContentChecks(generic=generic), header_size_limit=40)
    assert out == message
    assert messages(notes) == [
        "warning: To header longer than header_size_limit: smtp_generic_maps not applied to it"
    ]


# -- errors -----------------------------------------------------------------------


def test_lookup_error_defers_with_4_3_0_and_stops_the_encoder() -> None:
    checks = ContentChecks(body_checks=TableList([lambda key: ""]))  # an empty result is an error
    encoder = ContentEncoder(hook=checks.start())
    assert encoder.feed(b"Subject: s\n\n") == b"Subject: s\r\n\r\n"
    with pytest.raises(ContentError) as info:
        encoder.feed(b"line\n")
    assert info.value.status == "4.3.0"
    assert info.value.reason.startswith("smtp body checks lookup error")
    with pytest.raises(LocalProtocolError):
        encoder.finish()


def test_generic_lookup_error_in_a_header_is_a_content_error() -> None:
    generic = GenericMaps(TableList([{"a@example.org": "(no address)"}]))
    with pytest.raises(ContentError) as info:
        run(b"From: a@example.org\n\nb\n", ContentChecks(generic=generic))
    assert info.value.status == "4.3.0"
    assert "smtp_generic_maps map lookup problem" in info.value.reason


# -- configuration ----------------------------------------------------------------


def test_nothing_configured_means_no_hook() -> None:
    assert ContentChecks.from_config(Config()) is None
    assert GenericMaps.from_config(Config()) is None
    assert not ContentChecks().active


def test_from_config_reads_the_four_parameters() -> None:
    path = DATA / "header_checks.regexp"
    cfg = Config(
        smtp_header_checks=f"regexp:{path}",
        smtp_body_checks=f"regexp:{DATA / 'body_checks.regexp'}",
    )
    checks = ContentChecks.from_config(cfg)
    assert checks is not None
    assert checks.header_checks.refs == (f"regexp:{path}",)
    assert not checks.mime_header_checks
    hook = checks.start()
    assert hook.header_classes == frozenset(HeaderClass)
    assert hook.body_piece_limit == 2048


def test_lmtp_names_its_parameters() -> None:
    cfg = Config(protocol="lmtp", lmtp_header_checks="regexp:{ {/^X-A:/ DISCARD} }")
    checks = ContentChecks.from_config(cfg)
    assert checks is not None
    assert checks.prefix == "lmtp"
    _, notes = run(b"X-A: 1\n\nb\n", checks)
    assert messages(notes) == ["warning: unsupported command in lmtp_header_checks map: DISCARD"]


def test_generic_only_hook_holds_primary_headers_only() -> None:
    hook = ContentChecks(generic=GenericMaps(TableList([{"x@y.z": "a@b.c"}]))).start()
    assert hook.header_classes == frozenset({HeaderClass.PRIMARY})
    assert hook.body_piece_limit == 0


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("header_checks", "regexp:/x"), ("body_piece", 0), ("body_piece", True), ("prefix", "esmtp")],
)
def test_bad_options_are_config_errors(field_name: str, value: object) -> None:
    from pyfix_smtp.errors import ConfigError

    with pytest.raises(ConfigError):
        ContentChecks(**{field_name: value})  # type: ignore[arg-type]


# -- properties -------------------------------------------------------------------

_LINES = st.sampled_from(
    [
        b"From: a@example.org",
        b"Subject: hello",
        b" folded",
        b"\tfolded tab",
        b"X-Weird :  value",
        b"MIME-Version: 1.0",
        b"Content-Type: multipart/mixed; boundary=zz",
        b"Content-Type: message/rfc822",
        b"Content-Type: text/plain",
        b"Content-Transfer-Encoding: 8bit",
        b"--zz",
        b"--zz--",
        b"",
        b".",
        b"..x",
        b"caf\xc3\xa9 \xff",
        b"x" * 3000,
        b"trailing space ",
        b"a\rb",
        b"body-replace",
        b"dot-line",
    ]
)
_MESSAGE = st.lists(_LINES, max_size=25).map(lambda ls: b"\n".join(ls))
_SPLITS = st.lists(st.integers(min_value=1, max_value=300), max_size=30)


def _pieces(data: bytes, sizes: tuple[int, ...] | list[int]) -> list[bytes]:
    out, pos = [], 0
    for size in sizes:
        out.append(data[pos : pos + size])
        pos += size
    out.append(data[pos:])
    return [p for p in out if p]


def _encode(
    data: bytes,
    hook: MessageChecks | None,
    downgrade: bool,
    sizes: tuple[int, ...] | list[int] = (),
) -> bytes:
    encoder = ContentEncoder(EncoderOptions(downgrade_8bit=downgrade), hook=hook)
    return b"".join(encoder.feed(p) for p in _pieces(data, sizes)) + encoder.finish()


def _never() -> ContentChecks:
    none = TableList([lambda key: None])
    return ContentChecks(
        header_checks=none, mime_header_checks=none, nested_header_checks=none, body_checks=none
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_MESSAGE, downgrade=st.booleans(), sizes=_SPLITS)
def test_checks_that_never_match_change_nothing(
    data: bytes, downgrade: bool, sizes: list[int]
) -> None:
    plain = _encode(data, None, downgrade)
    assert _encode(data, ContentChecks().start(), downgrade, sizes) == plain
    assert _encode(data, _never().start(), downgrade, sizes) == plain


def _active() -> ContentChecks:
    return ContentChecks(
        header_checks=_rules(
            "/^Subject:/ PREPEND X-Pre: .", "/^From:/ IGNORE", "/^X-Weird/ REPLACE X-W: ."
        ),
        mime_header_checks=_rules("/^Content-Type: text/ REPLACE Content-Type: text/plain; x=."),
        body_checks=_rules("/^body-replace/ REPLACE .", "/^dot-line/ PREPEND .", "/^x+$/ IGNORE"),
        body_piece=700,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_MESSAGE, downgrade=st.booleans(), sizes=_SPLITS)
def test_active_checks_do_not_depend_on_the_split(
    data: bytes, downgrade: bool, sizes: list[int]
) -> None:
    assert _encode(data, _active().start(), downgrade, sizes) == _encode(
        data, _active().start(), downgrade
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_MESSAGE, downgrade=st.booleans(), sizes=_SPLITS)
def test_checks_keep_one_end_of_data_at_the_end(
    data: bytes, downgrade: bool, sizes: list[int]
) -> None:
    """Lines a table adds ("." among them) are dot-stuffed and framed like any other."""
    wire = _encode(data, _active().start(), downgrade, sizes)
    lines, used = strict_read(wire)
    assert used == len(wire)
    # The same message framed for BDAT (no dot-stuffing, no end line).
    options = EncoderOptions(downgrade_8bit=downgrade)
    bdat = b"".join(c.data for c in encode_bdat(data, options, hook=_active().start()))
    assert b"".join(line + b"\r\n" for line in lines) == bdat


def test_bdat_applies_the_same_checks() -> None:
    checks = ContentChecks(body_checks=_rules("/^b-line$/ REPLACE .hidden"))
    data = b"".join(c.data for c in encode_bdat(SIMPLE, hook=checks.start()))
    assert data == SIMPLE.replace(b"b-line", b".hidden").replace(b"\n", b"\r\n")
