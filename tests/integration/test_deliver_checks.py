"""Header/body checks and smtp_generic_maps through the public delivery API.

Three references:

* the ten scenarios recorded from Postfix 3.7.11's smtp(8)
  (``tests/data/checks/``, see ``tests/test_header_checks_postfix.py``),
  replayed here end to end: a :class:`~pyfix_smtp.config.Config` naming the
  same table files, ``pyfix_smtp.deliver`` (sync and asyncio) to a
  :class:`~pyfix_smtp.testing.SinkServer` that announces what the recording
  server announced; what arrived, the MAIL/RCPT commands and the log lines
  must be Postfix's;
* smtp-sink (PEERS.md §1b) without 8BITMIME: checks applied to the
  quoted-printable text, seen in what the sink dumped;
* a private Postfix 3.7 client delivering the same message to the same
  server, for what the recordings do not hold: ORCPT for rewritten
  recipients when the server offers DSN, and ``to=<...>`` lines that name
  the original recipients.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from pyfix_smtp import Action, Config, Envelope
from pyfix_smtp.errors import LookupTableError
from pyfix_smtp.testing import SinkServer
from tests.peers.delivery import MYHOSTNAME, Deliverer, check_outcomes
from tests.peers.postfix_client import start_postfix_client
from tests.peers.sink import SinkFactory
from tests.test_header_checks_postfix import BY_NAME, DATA, POSTFIX, _postfix_wire

pytestmark = pytest.mark.peers

QUEUE_ID = "4QX1"
#: What the recording's main.cf and tests/peers/postfix_client.py set.
RECORDED_SETTINGS: dict[str, object] = {
    "myhostname": MYHOSTNAME,
    "mydomain": "pyfix.test",
    "myorigin": "pyfix.test",
    "mydestination": "",
    "inet_interfaces": "loopback-only",
    "recipient_delimiter": "+",
    "smtp_tls_security_level": "none",
}
#: The recording server's EHLO keywords (record_postfix.py _Capture).
EIGHTBIT = ("PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES")
SEVENBIT = ("PIPELINING", "ENHANCEDSTATUSCODES")


def _config(case: dict[str, Any], **more: object) -> Config:
    tables = {
        param: f"{file.split('.')[-1]}:{DATA / file}" for param, file in case["tables"].items()
    }
    return Config("smtp", **RECORDED_SETTINGS, **tables, **case.get("opts", {}), **more)


def _check_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Our log lines other than the per-recipient ones, as Postfix writes them."""
    lines = []
    for record in caplog.records:
        if record.name != "pyfix_smtp.delivery" or ": to=<" in record.message:
            continue
        text = record.message.removeprefix(f"{QUEUE_ID}: ")
        lines.append(f"warning: {text}" if record.levelno == logging.WARNING else text)
    return lines


def _same_but_cut(ours: str, postfix: str) -> bool:
    """Equal, or equal but for the triggering line Postfix 3.7 cut at 60 characters.

    Postfix 3.7 logs ``action: where <line cut at 60>: text``, 3.11 (and
    pyfix_smtp) cut at 200: what Postfix wrote must be ours with a middle
    part left out.
    """
    if ours == postfix:
        return True
    return len(ours) > len(postfix) and any(
        ours.startswith(postfix[:k]) and ours.endswith(postfix[k:]) for k in range(len(postfix))
    )


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_recorded_scenarios_through_deliver(
    deliverer: Deliverer, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    case = BY_NAME[name]
    message = (POSTFIX / f"{case['message']}.msg").read_bytes()
    # Postfix's queue manager hands recipients over sorted.
    rcpts = sorted(f"{r}@{case['domain']}" for r in case.get("rcpts", ["r"]))
    envelope = Envelope(case.get("sender", "sender@pyfix.test"), rcpts)
    extensions = EIGHTBIT if case.get("eightbit", True) else SEVENBIT
    with (
        SinkServer(extensions=extensions) as server,
        caplog.at_level(logging.INFO, logger="pyfix_smtp.delivery"),
    ):
        report = deliverer(envelope, message, server.nexthop, _config(case), queue_id=QUEUE_ID)
    check_outcomes(report, rcpts, rcpts)
    # The content octets Postfix sent (after DATA, without its Received: header).
    assert len(server.messages) == 1
    assert server.messages[0].content + b".\r\n" == _postfix_wire(case)
    # The same MAIL FROM and RCPT TO addresses.
    commands = [c for c in server.sessions[0].commands if c.startswith(("MAIL", "RCPT"))]
    assert commands == case["commands"]
    # The same log lines, in order (Postfix's "breaking line" notes come from
    # its 998-octet folding, which the content comparison covers).
    expected = [line for line in case["log"] if not line.startswith("breaking line")]
    ours = _check_lines(caplog)
    assert len(ours) == len(expected), ours
    for mine, theirs in zip(ours, expected, strict=True):
        assert _same_but_cut(mine, theirs), (mine, theirs)
    # Reports name the recipients as given, whatever went on the wire.
    assert [o.recipient for o in report] == rcpts
    assert all(f"to=<{r}>" in line for r, line in zip(rcpts, report.log_lines(), strict=True))


def test_checks_on_converted_content_reach_smtp_sink(
    deliverer: Deliverer, sink_factory: SinkFactory
) -> None:
    """Without 8BITMIME the body is quoted-printable before the body checks see it."""
    sink = sink_factory.start(["-8"], dump=True)  # -8: no 8BITMIME
    cfg = Config(
        myhostname=MYHOSTNAME,
        smtp_tls_security_level="none",
        # "$$1": Config values are main.cf text, where "$1" would be a parameter.
        smtp_header_checks=(
            "regexp:{{/^Subject: (.*)/ REPLACE Subject: [ext] $$1}, {/^X-Drop:/ IGNORE},"
            " {/^Content-Transfer-Encoding:/ INFO cte}}"
        ),
        smtp_mime_header_checks="regexp:{{/^Content-Type:/ INFO ctype}}",
        smtp_body_checks="regexp:{{/^caf=C3=A9/ REPLACE coffee}, {/^secret/ STRIP}}",
    )
    message = (
        b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: menu\r\nX-Drop: me\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9 au lait\r\nsecret line\r\nend\r\n"
    )
    envelope = Envelope("alice@example.org", ["bob@example.net"])
    report = deliverer(envelope, message, f"[{sink.host}]:{sink.port}", cfg)
    check_outcomes(report, ["bob@example.net"], ["bob@example.net"])
    assert sink.dump_dir is not None
    (dumped,) = [p.read_bytes() for p in sink.dump_dir.rglob("*") if p.is_file()]
    # smtp-sink -d writes LF line ends: its X-Client-Addr ... X-Rcpt-Args
    # headers, then the message as received.
    message_start = dumped.index(b"\nFrom: ") + 1
    assert dumped[message_start:] == (
        b"From: alice@example.org\nTo: bob@example.net\nSubject: [ext] menu\n"
        b"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: quoted-printable\n\ncoffee\nend\n\n"
    )
    # The Content-Transfer-Encoding header the conversion writes is a primary
    # header for the tables (recorded: downgrade-leaf); the 8bit one is gone.
    assert report.events == (
        "replace: header Subject: menu: Subject: [ext] menu",
        "info: header Content-Type: text/plain; charset=utf-8: ctype",
        "info: header Content-Transfer-Encoding: quoted-printable: cte",
        "replace: body caf=C3=A9 au lait: coffee",
        "strip: body secret line",
    )


def test_broken_table_files_are_refused_when_the_config_is_built(tmp_path: Path) -> None:
    """A table is read with the Config: a missing file or a bad rule fails there.

    (Postfix opens a surrogate table that fails every lookup, so each
    delivery defers; here nothing can be sent with such a Config.)
    """
    missing = tmp_path / "missing.regexp"
    with pytest.raises(LookupTableError) as info:
        Config(smtp_header_checks=f"regexp:{missing}")
    assert info.value.parameter == "smtp_header_checks"
    bad = tmp_path / "bad.regexp"
    bad.write_text("/^Subject: (unclosed/ WARN x\n")
    with pytest.raises(LookupTableError) as info:
        Config(smtp_body_checks=f"regexp:{bad}")
    assert info.value.parameter == "smtp_body_checks"
    assert info.value.line == 1


def test_table_failing_at_lookup_time_defers_and_nothing_arrives(deliverer: Deliverer) -> None:
    def backend(key: str) -> str | None:
        raise LookupTableError("python:backend", key, "connection refused")

    cfg = Config(myhostname=MYHOSTNAME, smtp_tls_security_level="none", smtp_header_checks=backend)
    rcpts = ["bob@example.net", "carol@example.net"]
    with SinkServer() as server:
        report = deliverer(
            Envelope("alice@example.org", rcpts), b"Subject: x\r\n\r\nbody\r\n", server.nexthop, cfg
        )
    check_outcomes(report, rcpts, [])
    host = "127.0.0.1[127.0.0.1]"
    assert [(o.action, o.status, o.reason) for o in report] == [
        (Action.DEFERRED, "4.3.0", f"local data error while talking to {host}")
    ] * len(rcpts)
    assert server.messages == []  # the DATA phase was never ended


def test_generic_lookup_failure_defers_without_connecting(deliverer: Deliverer) -> None:
    def backend(key: str) -> str | None:
        raise LookupTableError("python:backend", key, "connection refused")

    cfg = Config(myhostname=MYHOSTNAME, smtp_tls_security_level="none", smtp_generic_maps=backend)
    envelope = Envelope("alice@example.org", ["bob@example.net"])
    with SinkServer() as server:
        report = deliverer(envelope, b"Subject: x\r\n\r\nbody\r\n", server.nexthop, cfg)
    assert [(o.action, o.status, o.relay) for o in report] == [(Action.DEFERRED, "4.3.0", "none")]
    assert report.outcomes[0].reason.startswith("smtp_generic_maps map lookup problem: ")
    assert server.sessions == []


# -- the same message from Postfix's smtp(8) and from pyfix_smtp ------------------------


_QUEUED = re.compile(r"queued as \w+")


def test_generic_maps_and_checks_against_postfix(
    deliverer: Deliverer, caplog: pytest.LogCaptureFixture
) -> None:
    case = BY_NAME["generic-and-checks"]
    tables = {
        param: f"{file.split('.')[-1]}:{DATA / file}" for param, file in case["tables"].items()
    }
    message = (POSTFIX / "generic.msg").read_bytes()
    sender = "sender+x@pyfix.test"
    rcpts = ["r1+ext@generic.test", "r1@generic.test"]  # both rewritten; sorted as qmgr does
    with SinkServer() as server:  # offers DSN: ORCPT goes out
        postfix = start_postfix_client(
            services={"g": tables},
            routes={"generic.test": f"g:{server.nexthop}"},
            main_cf={"recipient_delimiter": "+"},
        )
        try:
            postfix.submit(sender, rcpts, message)
            theirs = postfix.wait(rcpts)
            postfix_log = postfix.log()
        finally:
            postfix.stop()
        with caplog.at_level(logging.INFO, logger="pyfix_smtp.delivery"):
            report = deliverer(
                Envelope(sender, rcpts),
                message,
                server.nexthop,
                Config("smtp", **RECORDED_SETTINGS, **tables),
                queue_id=QUEUE_ID,
            )
        assert len(server.messages) == len(server.sessions) == 2

    def transaction(commands: list[str]) -> list[str]:
        # SIZE differs: Postfix counts its queue file's message, with Received:.
        found = [c for c in commands if c.startswith(("MAIL", "RCPT"))]
        return [re.sub(r" SIZE=\d+", "", c) for c in found]

    postfix_session, our_session = server.sessions
    assert transaction(our_session.commands) == transaction(postfix_session.commands)
    assert "RCPT TO:<rewritten1@example.com> ORCPT=rfc822;r1@generic.test" in transaction(
        our_session.commands
    )
    # Content: Postfix's pickup adds a Received: header (two lines); the rest is equal.
    postfix_message, our_message = server.messages
    received_end = postfix_message.content.index(
        b"\r\n", postfix_message.content.index(b"\r\n") + 2
    )
    assert postfix_message.content[received_end + 2 :] == our_message.content
    # to=<...> lines: the original recipients, the same status and relay.
    ours = {o.recipient: o for o in report}
    for rcpt in rcpts:
        (result,) = theirs[rcpt]
        outcome = ours[rcpt]
        assert (outcome.relay, outcome.status, outcome.action.value) == (
            result.relay,
            result.dsn,
            "relayed" if result.status == "sent" else result.status,
        )
        assert _QUEUED.sub("", outcome.reason) == _QUEUED.sub("", result.reason)
    # Warnings and check actions: what Postfix's smtp(8) logged, in the same order.
    postfix_lines = [
        re.sub(r"^[0-9A-F]{6,}: ", "", line.split("]: ", 1)[1])
        for line in postfix_log.splitlines()
        if "postfix/smtp[" in line and ": to=<" not in line
    ]
    ours_lines = _check_lines(caplog)
    assert len(ours_lines) == len(postfix_lines) > 0, (ours_lines, postfix_lines)
    for mine, postfix_line in zip(ours_lines, postfix_lines, strict=True):
        assert _same_but_cut(mine, postfix_line), (mine, postfix_line)
