"""The stdlib HTTPS fetcher for MTA-STS policy files (I/O; RFC 8461 §3.3).

:func:`fetch_policy` executes a :class:`~pyfix_smtp.tls.mtasts.StsFetch`:
one HTTPS GET with strict certificate verification against
``mta-sts.<domain>`` (system CA store unless a context is given), no
redirects (``http.client`` never follows them; a 3xx is just a non-200
status), an overall deadline and a size limit.

RFC 8461 fixes port 443. ``connect_host``/``connect_port`` connect somewhere
else (a test server on loopback) while SNI, the Host header and certificate
verification still use ``mta-sts.<domain>``.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time

from pyfix_smtp.tls.mtasts import FetchResult, StsFetch

__all__ = ["fetch_policy"]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ``connect_to`` with TLS name checks against ``self.host``."""

    def __init__(
        self,
        host: str,
        *,
        connect_to: tuple[str, int],
        context: ssl.SSLContext,
        timeout: float,
    ) -> None:
        super().__init__(host, 443, timeout=timeout, context=context)
        self._connect_to = connect_to
        self._tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection(self._connect_to, timeout=self.timeout)
        try:
            self.sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def fetch_policy(
    request: StsFetch,
    *,
    context: ssl.SSLContext | None = None,
    connect_host: str | None = None,
    connect_port: int = 443,
) -> FetchResult:
    """GET the policy file of ``request.domain`` and return what happened.

    Never raises for network or TLS trouble: those come back as
    ``FetchResult(error=...)`` so discovery can fall back to a cached policy.
    """
    ctx = context if context is not None else ssl.create_default_context()
    if ctx.verify_mode != ssl.CERT_REQUIRED or not ctx.check_hostname:
        return FetchResult(error="refusing an SSL context without certificate verification")
    deadline = time.monotonic() + request.timeout
    conn = _PinnedHTTPSConnection(
        request.host,
        connect_to=(connect_host or request.host, connect_port),
        context=ctx,
        timeout=request.timeout,
    )
    try:
        conn.request(
            "GET",
            "/.well-known/mta-sts.txt",
            headers={"Host": request.host, "Accept": "text/plain", "Connection": "close"},
        )
        response = conn.getresponse()
        body = bytearray()
        while len(body) <= request.max_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return FetchResult(error=f"timeout after {request.timeout:g} s")
            if conn.sock is not None:
                conn.sock.settimeout(remaining)
            chunk = response.read(min(65536, request.max_bytes + 1 - len(body)))
            if not chunk:
                break
            body += chunk
        if len(body) > request.max_bytes:
            return FetchResult(
                status=response.status, error=f"policy larger than {request.max_bytes} bytes"
            )
        return FetchResult(
            status=response.status,
            body=bytes(body),
            content_type=response.getheader("Content-Type", "") or "",
        )
    except ssl.SSLCertVerificationError as exc:
        return FetchResult(error=f"certificate verification failed: {exc.verify_message}")
    except (OSError, http.client.HTTPException) as exc:
        return FetchResult(error=f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()
