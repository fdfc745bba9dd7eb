"""Faulty SMTP servers for faults a real server cannot be scripted to make.

Each is a :class:`pyfix_smtp.testing.SinkServer` (threaded, on loopback) with
a script that misbehaves at a chosen stage, and each records what the client
sent (``server.sessions[i].commands`` / ``.received``):

* :meth:`FaultyServers.hang` - accepts and never answers, or answers up to a
  stage and then goes silent (``CONNECT``, ``EHLO``, ``MAIL``, ``RCPT``,
  ``DATA``, ``BODY`` = stops reading the content, ``.`` = never answers the
  end of data);
* :meth:`FaultyServers.drop_mid_data` - closes the connection after part of
  the message content arrived;
* :meth:`FaultyServers.reply_421` - ``421`` and close at a chosen stage;
* :meth:`FaultyServers.own_hostname` - greets (and answers EHLO) with a name
  of our choosing: the client's own ``myhostname`` triggers loop detection;
* :meth:`FaultyServers.greet_554` - a ``554`` greeting (Postfix skips the host);
* :meth:`FaultyServers.garbage` - a malformed reply at a chosen stage.

Every server listens on a free port of a chosen ``127.0.0.x`` address, or on
a given port (two MX hosts must share one). ``faulty`` (function scope)
stops every server a test started.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pytest

from pyfix_smtp.testing import Disconnect, Hang, Raw, Script, SinkServer
from tests.peers import is_root, require_peer

FAULTY_HOSTNAME = "faulty.example.test"
STAGES = ("CONNECT", "EHLO", "HELO", "MAIL", "RCPT", "DATA", "BODY", ".", "QUIT")


def _stage(stage: str) -> str:
    name = stage.upper()
    if name not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
    return name


@dataclass
class FaultyServers:
    """Starts misbehaving servers; :meth:`stop_all` stops them."""

    started: list[SinkServer] = field(default_factory=list)

    def start(
        self,
        script: Mapping[str, Script],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hostname: str = FAULTY_HOSTNAME,
        **options: object,
    ) -> SinkServer:
        """Start a SinkServer with *script* (other options as SinkServer takes them)."""
        if 0 < port < 1024 and not is_root():
            require_peer(f"listening on port {port} needs root")
        server = SinkServer(
            host=host,
            port=port,
            hostname=hostname,
            script=script,
            **options,  # type: ignore[arg-type]
        )
        server.start()
        self.started.append(server)
        return server

    def hang(self, stage: str = "CONNECT", **options: object) -> SinkServer:
        """Answer every stage before *stage*, then never answer again."""
        return self.start({_stage(stage): Hang()}, **options)

    def drop_mid_data(
        self, after_bytes: int = 65536, *, reset: bool = True, **options: object
    ) -> SinkServer:
        """Accept DATA (354), read *after_bytes* of content, then drop the connection."""
        fault = Disconnect(after_bytes=after_bytes, reset=reset)
        return self.start({"BODY": fault}, **options)

    def reply_421(
        self, stage: str, text: str = "4.3.2 Service shutting down", **options: object
    ) -> SinkServer:
        """Reply ``421`` at *stage* and close the connection (RFC 5321 §3.8)."""
        name = _stage(stage)
        if name == "BODY":
            raise ValueError("a server cannot reply while the content arrives; use '.'")
        return self.start({name: Disconnect(f"421 {text}")}, **options)

    def own_hostname(self, hostname: str, **options: object) -> SinkServer:
        """Greet and answer EHLO as *hostname* (a mail loop when it is the client's name)."""
        return self.start({}, hostname=hostname, **options)

    def greet_554(self, text: str = "5.3.2 No SMTP service here", **options: object) -> SinkServer:
        """Greet with ``554`` (RFC 5321 §3.1), then answer only QUIT."""
        return self.start({"CONNECT": f"554 {text}"}, **options)

    def garbage(
        self, stage: str = "CONNECT", data: bytes = b"hello there\r\n", **options: object
    ) -> SinkServer:
        """Send *data* (not a valid reply) at *stage*, then keep the connection open."""
        return self.start({_stage(stage): Raw(data)}, **options)

    def stop_all(self) -> None:
        """Stop every server started so far."""
        while self.started:
            self.started.pop().stop()


@pytest.fixture
def faulty() -> Iterator[FaultyServers]:
    """Misbehaving loopback servers for one test; all stopped afterwards."""
    servers = FaultyServers()
    try:
        yield servers
    finally:
        servers.stop_all()
