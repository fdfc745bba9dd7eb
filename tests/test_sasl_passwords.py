"""smtp_sasl_password_maps lookup order (Postfix smtp_sasl_passwd_lookup())."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyfix_smtp.errors import ConfigError, LookupTableError
from pyfix_smtp.maps import TableList, open_table
from pyfix_smtp.sasl.passwords import (
    Credentials,
    LookupSource,
    lookup_credentials,
    password_lookup_keys,
    sender_lookup_keys,
    split_password_result,
)


class RecordingTable:
    """A dict-backed stand-in for a lookup table that records every query."""

    def __init__(self, data: dict[str, str] | None = None) -> None:
        self.data = data or {}
        self.queries: list[str] = []

    def lookup(self, key: str) -> str | None:
        self.queries.append(key)
        return self.data.get(key)


def keys(**kw: object) -> list[tuple[str, str, bool]]:
    return [(k.key, k.source.value, k.partial) for k in password_lookup_keys(**kw)]  # type: ignore[arg-type]


# --- the order table ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        # MX delivery: the MX host name, then the nexthop domain.
        (
            {"host": "mx1.example.com", "nexthop": "example.com"},
            [("mx1.example.com", "host", False), ("example.com", "nexthop", False)],
        ),
        # relayhost = [mail.isp.example]:587: bare host name, then the nexthop as written.
        (
            {"host": "mail.isp.example", "nexthop": "[mail.isp.example]:587"},
            [("mail.isp.example", "host", False), ("[mail.isp.example]:587", "nexthop", False)],
        ),
        # relayhost = [mail.isp.example] (no port).
        (
            {"host": "mail.isp.example", "nexthop": "[mail.isp.example]"},
            [("mail.isp.example", "host", False), ("[mail.isp.example]", "nexthop", False)],
        ),
        # Fallback relay: the current destination is the relay, not the original nexthop.
        (
            {"host": "relay.example.net", "nexthop": "[relay.example.net]:2525"},
            [("relay.example.net", "host", False), ("[relay.example.net]:2525", "nexthop", False)],
        ),
        # Address literal nexthop: the host is the address.
        (
            {"host": "192.0.2.7", "nexthop": "[192.0.2.7]"},
            [("192.0.2.7", "host", False), ("[192.0.2.7]", "nexthop", False)],
        ),
        # Sender-dependent off: the sender is ignored.
        (
            {"host": "mx", "nexthop": "dom", "sender": "a@example.org"},
            [("mx", "host", False), ("dom", "nexthop", False)],
        ),
        # Sender-dependent on: full address, @domain, then host and nexthop.
        (
            {"host": "mx", "nexthop": "dom", "sender": "a@example.org", "sender_dependent": True},
            [
                ("a@example.org", "sender", False),
                ("@example.org", "sender", True),
                ("mx", "host", False),
                ("dom", "nexthop", False),
            ],
        ),
        # The null sender is never looked up.
        (
            {"host": "mx", "nexthop": "dom", "sender": "", "sender_dependent": True},
            [("mx", "host", False), ("dom", "nexthop", False)],
        ),
        # LMTP never does sender-dependent lookups (Postfix: smtp_mode only).
        (
            {
                "host": "mx",
                "nexthop": "dom",
                "sender": "a@example.org",
                "sender_dependent": True,
                "protocol": "lmtp",
            },
            [("mx", "host", False), ("dom", "nexthop", False)],
        ),
    ],
)
def test_lookup_order(kw: dict[str, object], expected: list[tuple[str, str, bool]]) -> None:
    assert keys(**kw) == expected


@pytest.mark.parametrize(
    ("sender", "delimiter", "local", "expected"),
    [
        ("user+ext@example.org", "", (), ["user+ext@example.org", "@example.org"]),
        (
            "user+ext@example.org",
            "+",
            (),
            ["user+ext@example.org", "user@example.org", "@example.org"],
        ),
        # Several delimiter characters: the first one present splits.
        (
            "user-a+b@example.org",
            "+-",
            (),
            ["user-a+b@example.org", "user@example.org", "@example.org"],
        ),
        # Local domain: the bare local part (with, then without extension).
        (
            "user+ext@Example.ORG",
            "+",
            ("example.org",),
            [
                "user+ext@Example.ORG",
                "user@Example.ORG",
                "user+ext",
                "user",
                "@Example.ORG",
            ],
        ),
        # Never split postmaster/mailer-daemon, owner-foo and foo-request (with '-').
        ("mailer-daemon@example.org", "-", (), ["mailer-daemon@example.org", "@example.org"]),
        # ... but only the exact names: postmaster+x is an ordinary extension.
        (
            "postmaster+x@example.org",
            "+",
            (),
            ["postmaster+x@example.org", "postmaster@example.org", "@example.org"],
        ),
        ("owner-list@example.org", "-", (), ["owner-list@example.org", "@example.org"]),
        ("list-request@example.org", "-", (), ["list-request@example.org", "@example.org"]),
        ("list-request@example.org", "+", (), ["list-request@example.org", "@example.org"]),
        # An extension with an empty base is not split.
        ("+ext@example.org", "+", (), ["+ext@example.org", "@example.org"]),
        # A delimiter only in the domain does not split.
        ("user@my-domain.example", "-", (), ["user@my-domain.example", "@my-domain.example"]),
        # Quoting: the external (quoted) form first, then the internal form.
        (
            "john doe@example.org",
            "",
            (),
            ['"john doe"@example.org', "john doe@example.org", "@example.org"],
        ),
        # No domain at all: just the address.
        ("user", "", (), ["user"]),
    ],
)
def test_sender_keys(
    sender: str, delimiter: str, local: tuple[str, ...], expected: list[str]
) -> None:
    found = sender_lookup_keys(sender, recipient_delimiter=delimiter, local_domains=local)
    assert [k.key for k in found] == expected
    # Only the full address (either form) goes to pattern tables.
    full = {sender, expected[0]}
    assert [k.partial for k in found] == [k.key not in full for k in found]


def test_first_hit_wins_and_stops() -> None:
    table = RecordingTable({"mx1.example.com": "hostuser:hostpw", "example.com": "domuser:dompw"})
    creds = lookup_credentials(table, host="mx1.example.com", nexthop="example.com")
    assert creds == Credentials("hostuser", "hostpw", "mx1.example.com", LookupSource.HOST)
    assert table.queries == ["mx1.example.com"]


def test_nexthop_used_when_host_misses() -> None:
    table = RecordingTable({"[relay.example]:587": "u:p"})
    creds = lookup_credentials(table, host="relay.example", nexthop="[relay.example]:587")
    assert creds is not None
    assert creds.source is LookupSource.NEXTHOP
    assert table.queries == ["relay.example", "[relay.example]:587"]


def test_sender_dependent_hit_beats_host() -> None:
    table = RecordingTable({"@example.org": "orguser:orgpw", "mx": "hostuser:hostpw"})
    creds = lookup_credentials(
        table, host="mx", nexthop="dom", sender="a@example.org", sender_dependent=True
    )
    assert creds is not None
    assert (creds.username, creds.source) == ("orguser", LookupSource.SENDER)
    assert table.queries == ["a@example.org", "@example.org"]


def test_no_credentials() -> None:
    table = RecordingTable()
    assert lookup_credentials(table, host="mx", nexthop="dom") is None
    assert table.queries == ["mx", "dom"]


def test_empty_result_is_an_error() -> None:
    with pytest.raises(LookupTableError, match="empty string result"):
        lookup_credentials(RecordingTable({"mx": ""}), host="mx", nexthop="dom")


@pytest.mark.parametrize(
    ("value", "delimiter", "expected"),
    [
        ("user:pass", ":", ("user", "pass")),
        ("user:pa:ss", ":", ("user", "pa:ss")),  # the password may hold the delimiter
        ("user", ":", ("user", "")),  # no delimiter: empty password
        (":pass", ":", ("", "pass")),
        ("user@example.com|p:w", "|", ("user@example.com", "p:w")),
    ],
)
def test_split_password_result(value: str, delimiter: str, expected: tuple[str, str]) -> None:
    assert split_password_result(value, delimiter) == expected


def test_delimiter_must_be_one_character() -> None:
    with pytest.raises(ConfigError, match="exactly one character"):
        split_password_result("a::b", "::")


@settings(max_examples=100, deadline=None)
@given(username=st.text().filter(lambda s: ":" not in s), password=st.text())
def test_split_round_trip(username: str, password: str) -> None:
    assert split_password_result(f"{username}:{password}") == (username, password)


def test_credentials_repr_hides_password() -> None:
    creds = Credentials("u", "s3cret", "mx", LookupSource.HOST)
    assert "s3cret" not in repr(creds)


# --- with real Postfix-style tables (pyfix_smtp.maps) ---------------------------------


def test_partial_keys_skip_pattern_tables() -> None:
    # The regexp would match the stripped address, but Postfix never shows a
    # pattern table a partial key; the fixed-key @domain entry wins instead.
    table = TableList.parse(
        "regexp:{ {/^user@example\\.org$/ regexp-user:pw} }, inline:{ @example.org=domain-user:pw }"
    )
    creds = lookup_credentials(
        table,
        host="mx",
        nexthop="dom",
        sender="user+ext@example.org",
        sender_dependent=True,
        recipient_delimiter="+",
    )
    assert creds is not None
    assert (creds.username, creds.key) == ("domain-user", "@example.org")
    # The full address does go to the regexp table.
    creds = lookup_credentials(
        table, host="mx", nexthop="dom", sender="user@example.org", sender_dependent=True
    )
    assert creds is not None
    assert creds.username == "regexp-user"


def test_single_pattern_table_is_skipped_for_partial_keys() -> None:
    regexp = open_table("regexp:{ {/@example\\.org$/ any:pw} }")
    assert not regexp.fixed
    creds = lookup_credentials(
        regexp,
        host="",
        nexthop="",
        sender="a+b@example.org",
        sender_dependent=True,
        recipient_delimiter="+",
    )
    assert creds is not None
    assert creds.key == "a+b@example.org"  # only the full key reached it


def test_fixed_tables_fold_case() -> None:
    table = TableList.parse("inline:{ mx.example.com=u:p }")
    creds = lookup_credentials(table, host="MX.Example.COM", nexthop="example.com")
    assert creds is not None
    assert creds.source is LookupSource.HOST


def test_relayhost_keys_with_real_table() -> None:
    table = TableList.parse("inline:{ [mail.isp.example]:587=u:p }")
    # The bracketed form without the port is not a key Postfix tries.
    assert lookup_credentials(table, host="mail.isp.example", nexthop="[mail.isp.example]") is None
    creds = lookup_credentials(table, host="mail.isp.example", nexthop="[mail.isp.example]:587")
    assert creds is not None
    assert creds.source is LookupSource.NEXTHOP
