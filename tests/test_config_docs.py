"""docs/parameters.md is generated from the registry and must not drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pyfix_smtp.config import PARAMETERS
from pyfix_smtp.config.reference import render_markdown

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "parameters.md"


def test_committed_page_equals_generated_page() -> None:
    assert PAGE.read_text(encoding="utf-8") == render_markdown(), (
        "docs/parameters.md is stale: run scripts/gen_parameters_doc.py"
    )


def test_page_lists_every_parameter_once() -> None:
    page = render_markdown()
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert len(rows) == len(PARAMETERS)
    for param in PARAMETERS:
        assert sum(row.startswith(f"| `{param.name}`") for row in rows) == 1


def test_generator_check_mode() -> None:
    script = ROOT / "scripts" / "gen_parameters_doc.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
