"""The delivery agent: destinations, sessions and per-recipient outcomes (sans-IO)."""
