"""examples/explain_tls_policy.py explains decisions from canned DNS answers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "explain_tls_policy.py"
HEX = "01" * 32
ANSWERS = [
    "--answer", "MX example.com 10 mx.example.com",
    "--answer", "MX example.com 20 mx2.example.com",
    "--answer", "A mx.example.com 192.0.2.1",
    "--answer", "A mx2.example.com 192.0.2.2",
    "--answer", f"TLSA _25._tcp.mx.example.com 3 1 1 {HEX}",
]  # fmt: skip


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("explain_tls_policy", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert load().main(["example.com", *args]) == 0
    return capsys.readouterr().out


def test_dane_per_mx_host(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "--level", "dane", *ANSWERS)
    first, second = out.strip().split("\n\n")
    assert first.startswith("TLS policy for mx.example.com port 25")
    assert "=> level dane" in first
    assert f"TLSA: 3 1 1 {HEX}" in first
    assert "no TLSA records found: level may" in second


def test_insecure_mx_gives_halfdane(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "--level", "dane", "--insecure", "example.com", *ANSWERS)
    assert "MX RRset of example.com is insecure" in out
    assert "=> level halfdane" in out


def test_tlsa_lookup_failure_skips_the_host(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "--level", "dane", "--servfail", "_25._tcp.mx.example.com", *ANSWERS)
    assert "=> skip this server: 4.7.5 TLSA lookup error for mx.example.com:25" in out


def test_policy_table_and_sts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = run(capsys, "--policy-maps", "inline:{.com=verify}", *ANSWERS)
    assert "'.com' -> 'verify'" in out
    sts = tmp_path / "mta-sts.txt"
    sts.write_text("version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n")
    out = run(capsys, "--sts-policy", str(sts), *ANSWERS)
    assert "enforce -> secure" in out
    assert "=> skip this server: 4.7.5 MX host mx2.example.com does not match" in out
