"""``python -m pyfix_smtp`` and the ``pyfix-smtp`` script: see :mod:`pyfix_smtp.cli`."""

from __future__ import annotations

import sys

from pyfix_smtp.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
