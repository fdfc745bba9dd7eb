"""Send TLSRPT results to the local collector (libtlsrpt's transport).

Each result of :attr:`~pyfix_smtp.delivery.report.DeliveryReport.tlsrpt`
goes as one datagram to the UNIX-domain datagram socket
``smtp_tlsrpt_socket_name``, where ``tlsrpt-collectd`` (sys4's TLSRPT
reporter) stores it. As in libtlsrpt.c: a new ``SOCK_DGRAM`` socket per
report, ``sendto()`` with ``MSG_DONTWAIT`` so a full or absent collector
never blocks the delivery. A relative name is used as given, relative to
the working directory (Postfix: relative to ``$queue_directory``, the
working directory of smtp(8)).

Errors are logged as warnings with Postfix's text (tlsrpt_wrapper.c
trw_munge_report_result()) and never change a delivery's outcome.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Iterable

from pyfix_smtp.tls.tlsrpt import TlsrptResult

__all__ = ["send_results"]

LOGGER = logging.getLogger("pyfix_smtp.delivery")

_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)


def send_results(socket_name: str, results: Iterable[TlsrptResult]) -> int:
    """Send each result's datagram to *socket_name*; return how many were sent.

    An empty *socket_name* sends nothing (the results stay in the report).
    """
    if not socket_name:
        return 0
    sent = 0
    for result in results:
        try:
            datagram = result.datagram()
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(datagram, _DONTWAIT, socket_name)
        except (OSError, ValueError) as exc:
            # ValueError: text that cannot be encoded (a lone surrogate in the
            # result or in the socket name); EMSGSIZE (a datagram larger than
            # the socket takes) is an OSError. Neither may fail the delivery.
            if isinstance(exc, ValueError):
                code = errno.EINVAL
            else:
                code = exc.errno if exc.errno is not None else errno.EIO
            LOGGER.warning(
                "Could not report TLS handshake result to tlsrpt library: %s (errno %d)",
                os.strerror(code),
                code,
            )
            continue
        sent += 1
    return sent
