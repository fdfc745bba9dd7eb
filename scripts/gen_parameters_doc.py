#!/usr/bin/env python3
"""Write docs/parameters.md from the parameter registry (pyfix_smtp/config/params.py).

Usage: gen_parameters_doc.py [--check]

With --check, exit 1 (and write nothing) when the committed page differs
from what the registry generates.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyfix_smtp.config.reference import render_markdown  # noqa: E402

PAGE = ROOT / "docs" / "parameters.md"


def main(argv: list[str]) -> int:
    text = render_markdown()
    if "--check" in argv:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE} is out of date; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
