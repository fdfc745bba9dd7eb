"""An HTTPS server on loopback serving an MTA-STS policy (PEERS.md section 3b).

``mta_sts_server`` (one server per session, reset for each test) serves
``/.well-known/mta-sts.txt`` with the ``lab_certs`` certificate (valid for
``mta-sts.example.test``) on a free port. Tests change what it serves with
:meth:`MtaStsServer.serve` (body, status, content type, or a redirect) and
read the requests it got. RFC 8461 fixes port 443, so clients reach it
through a host/port override.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.peers.certs import LabCerts

POLICY_HOST = "mta-sts.example.test"
DEFAULT_POLICY = "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 86400\n"


@dataclass
class Served:
    """What the server answers: status, body and headers."""

    status: int = 200
    body: bytes = DEFAULT_POLICY.encode()
    content_type: str = "text/plain"
    location: str | None = None


@dataclass
class MtaStsServer:
    """A running policy server."""

    host: str
    port: int
    httpd: ThreadingHTTPServer
    thread: threading.Thread
    served: Served = field(default_factory=Served)
    policy_host: str = POLICY_HOST
    requests: list[tuple[str, str]] = field(default_factory=list)  # (Host header, path)

    def serve(
        self,
        body: str | bytes = DEFAULT_POLICY,
        *,
        status: int = 200,
        content_type: str = "text/plain",
        location: str | None = None,
    ) -> None:
        """Change the answer for the following requests."""
        data = body.encode() if isinstance(body, str) else body
        self.served = Served(status, data, content_type, location)

    def stop(self) -> None:
        """Shut the server down and join its thread."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def start_mta_sts_server(certs: LabCerts, host: str = "127.0.0.1") -> MtaStsServer:
    """Start the policy server on a free port of *host*."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certs.server_pem), str(certs.server_key))
    holder: list[MtaStsServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server = holder[0]
            server.requests.append((self.headers.get("Host", ""), self.path))
            served = server.served
            if self.path != "/.well-known/mta-sts.txt":
                self.send_error(404)
                return
            self.send_response(served.status)
            if served.location:
                self.send_header("Location", served.location)
            self.send_header("Content-Type", served.content_type)
            self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            self.wfile.write(served.body)

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer((host, 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, name="mta-sts", daemon=True)
    server = MtaStsServer(host, int(httpd.server_address[1]), httpd, thread)
    holder.append(server)
    thread.start()
    return server


@pytest.fixture(scope="session")
def mta_sts_server_session(lab_certs: LabCerts) -> Iterator[MtaStsServer]:
    """The MTA-STS policy server process for the session."""
    server = start_mta_sts_server(lab_certs)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mta_sts_server(mta_sts_server_session: MtaStsServer) -> MtaStsServer:
    """The session's policy server, reset to the default policy for each test.

    Tests change what it serves; the reset keeps one test's policy from
    leaking into the next.
    """
    mta_sts_server_session.serve()
    mta_sts_server_session.requests.clear()
    return mta_sts_server_session
