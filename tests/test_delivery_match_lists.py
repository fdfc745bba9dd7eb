"""Postfix string_list matching (match_ops.c match_string()) for
``smtp_connection_cache_destinations``, and its effect on the connection cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyfix_smtp.delivery import Action
from pyfix_smtp.delivery.effects import CacheSave
from pyfix_smtp.delivery.match_lists import StringList
from pyfix_smtp.errors import ConfigError
from tests.test_delivery_support import World, config, deliver, happy, request


@pytest.mark.parametrize(
    ("patterns", "string", "match"),
    [
        (["example.net"], "example.net", True),
        (["Example.NET"], "example.net", True),  # case-insensitive
        (["example.net"], "EXAMPLE.net", True),
        # a whole-string match: no parent or subdomain matching (unlike namadr lists)
        (["example.net"], "mx.example.net", False),
        (["mx.example.net"], "example.net", False),
        (["[192.0.2.1]:25"], "[192.0.2.1]:25", True),  # nexthops are strings too
        # first match wins; "!" negates
        (["!example.net", "example.net"], "example.net", False),
        (["!!example.net"], "example.net", True),
        (["other.example", "example.net"], "example.net", True),
        # type:table: the string is a key
        (["inline:{example.net=yes}"], "example.net", True),
        (["inline:{example.net=yes}"], "example.org", False),
        (["!inline:{example.net=yes}", "example.net"], "example.net", False),
        ([], "example.net", False),
    ],
)
def test_string_list_match(patterns: list[str], string: str, match: bool) -> None:
    assert StringList(patterns, parameter="p").matches(string) is match


def test_file_patterns_are_read_in_order(tmp_path: Path) -> None:
    listing = tmp_path / "cache-dest"
    listing.write_text("# bulk destinations\nexample.net, example.org\n  !example.com\n")
    names = StringList([str(listing)], parameter="smtp_connection_cache_destinations")
    assert names.matches("example.org")
    assert not names.matches("example.com")
    # a negated file negates its patterns
    assert not StringList([f"!{listing}", "example.net"], parameter="p").matches("example.net")


@pytest.mark.parametrize(
    ("patterns", "problem"),
    [(["!"], "no pattern after '!'"), (["/nonexistent/cache-dest"], "/nonexistent/cache-dest")],
)
def test_bad_patterns_are_config_errors(patterns: list[str], problem: str) -> None:
    with pytest.raises(ConfigError, match="smtp_connection_cache_destinations") as caught:
        StringList(patterns, parameter="smtp_connection_cache_destinations")
    assert problem in str(caught.value)


def one_mx() -> World:
    return World().mx("example.net", (10, "mx1.example.net")).a("mx1.example.net", "192.0.2.1")


@pytest.mark.parametrize(
    ("destinations", "cached"),
    [
        ("", False),
        ("example.net", True),
        ("EXAMPLE.NET", True),
        ("mx1.example.net", False),
        ("inline:{example.net=bulk}", True),
        ("!example.net, example.net", False),
    ],
)
def test_cache_destinations_turn_caching_on_without_on_demand(
    destinations: str, cached: bool
) -> None:
    # Postfix smtp_cache_policy(): a nexthop in the list is cached even when
    # smtp_connection_cache_on_demand is off.
    world = one_mx()
    srv = world.server("192.0.2.1", 25, happy())
    cfg = config(
        smtp_connection_cache_on_demand=False,
        smtp_connection_cache_destinations=destinations,
    )
    report = deliver(request(cfg=cfg, connection_cache=True), world)
    assert report.outcomes[0].action is Action.RELAYED
    assert bool(world.of(CacheSave)) is cached
    assert srv.text.endswith("QUIT\r\n") is not cached
