"""Fixtures of tests/peers/ modules that tests/conftest.py does not list yet.

``tests.peers.tls_lab`` (the DANE/MTA-STS lab) belongs in the root
conftest's ``pytest_plugins``; until it is there, importing its fixtures here
makes them visible to the integration tests (one definition, so one
session-scoped lab).
"""

from __future__ import annotations

from tests.peers.tls_lab import lab_deliverer, tls_lab

__all__ = ["lab_deliverer", "tls_lab"]
