"""Shared pytest configuration: real-peer fixtures live in tests/peers/."""

from __future__ import annotations

pytest_plugins = [
    "tests.peers.certs",
    "tests.peers.dns",
    "tests.peers.mtasts",
    "tests.peers.postfix",
    "tests.peers.sink",
]
