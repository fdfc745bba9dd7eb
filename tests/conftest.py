"""Shared pytest configuration: real-peer fixtures live in tests/peers/."""

from __future__ import annotations

import os

from hypothesis import settings

# CI explores the same examples on every run (a property failure there is
# reproducible, never luck); local runs keep drawing new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Modules that others import come first, so pytest can rewrite their asserts.
pytest_plugins = [
    "tests.peers.certs",
    "tests.peers.dns",
    "tests.peers.sink",
    "tests.peers.postfix",
    "tests.peers.dovecot",
    "tests.peers.faulty",
    "tests.peers.mtasts",
    "tests.peers.mx_lab",
    "tests.peers.delivery",
    "tests.peers.postfix_client",
    "tests.peers.tls_lab",
    "tests.peers.tlsrpt",
]
