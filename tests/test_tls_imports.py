"""cryptography is loaded only when a certificate must be parsed.

A delivery at ``none``, ``may`` or ``encrypt`` without CA files logs the
connection as "Untrusted" and computes fingerprints from the DER alone, so it
must not pay for importing cryptography (about 20 ms and 16 MiB). Each case
runs in a fresh interpreter that delivers to a STARTTLS-capable
:class:`~pyfix_smtp.testing.SinkServer` running in this (the test) process,
so the child never imports :mod:`pyfix_smtp.testing` (which makes
certificates with cryptography).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from pyfix_smtp.testing import SinkServer

_CHILD = r"""
import asyncio, json, sys
import pyfix_smtp

nexthop, level, driver, cafile = sys.argv[1:5]
params = {
    "myhostname": "client.example.test",
    "smtp_tls_security_level": level,
    "smtp_tls_loglevel": "1",
}
if cafile:
    params["smtp_tls_CAfile"] = cafile
cfg = pyfix_smtp.Config(**params)
env = pyfix_smtp.Envelope(sender="a@example.test", recipients=["b@example.test"])
content = b"Subject: lazy\r\n\r\nhello\r\n"
if driver == "async":
    report = asyncio.run(pyfix_smtp.deliver_async(env, content, nexthop, cfg))
else:
    report = pyfix_smtp.deliver(env, content, nexthop, cfg)
print(json.dumps({
    "status": [o.status for o in report.outcomes],
    "tls": [e.split(" TLS connection", 1)[0] for e in report.events
            if " TLS connection established" in e],
    "cryptography": sorted({m.split(".")[0] for m in sys.modules if m.startswith("cryptography")}),
}))
"""


@pytest.fixture(scope="module")
def sink() -> Iterator[SinkServer]:
    with SinkServer(starttls=True) as server:
        yield server


def _deliver(
    sink: SinkServer, level: str, driver: str = "sync", cafile: str = ""
) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, sink.nexthop, level, driver, cafile],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout.splitlines()[-1])
    return result


# level, driver, the label Postfix logs ([] = no TLS)
NO_PARSING = [
    ("none", "sync", []),
    ("may", "sync", ["Untrusted"]),
    ("encrypt", "sync", ["Untrusted"]),
    ("may", "async", ["Untrusted"]),
    ("encrypt", "async", ["Untrusted"]),
]


@pytest.mark.parametrize(("level", "driver", "label"), NO_PARSING)
def test_delivery_without_certificate_checks_does_not_load_cryptography(
    sink: SinkServer, level: str, driver: str, label: list[str]
) -> None:
    result = _deliver(sink, level, driver)
    assert result == {"status": ["2.0.0"], "tls": label, "cryptography": []}


def test_ca_files_at_may_load_cryptography_for_the_trusted_label(sink: SinkServer) -> None:
    # The control case: with smtp_tls_CAfile the chain is checked in Python
    # (the "Trusted" label), which needs the certificate parsed.
    result = _deliver(sink, "may", cafile=str(sink.ca_file))
    assert result == {"status": ["2.0.0"], "tls": ["Trusted"], "cryptography": ["cryptography"]}


def test_verify_loads_cryptography_for_the_name_check(sink: SinkServer) -> None:
    result = _deliver(sink, "verify", cafile=str(sink.ca_file))
    assert result["status"] == ["2.0.0"]
    assert result["tls"] == ["Verified"]
    assert result["cryptography"] == ["cryptography"]


def test_tls_modules_import_without_cryptography() -> None:
    code = (
        "import sys\n"
        "import pyfix_smtp.tls.policy, pyfix_smtp.tls.dane, pyfix_smtp.tls.verify\n"
        "import pyfix_smtp.tls.context, pyfix_smtp.tls.requiretls, pyfix_smtp.delivery.core\n"
        "print('cryptography' in sys.modules)\n"
        "from pyfix_smtp.tls.certs import MatchName, colon_hex, fingerprint, spki_der, to_ascii\n"
        "print('cryptography' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == ["False", "True"]
