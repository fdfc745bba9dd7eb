"""The sans-IO SMTP/LMTP client: replies, EHLO extensions, commands, connection.

Nothing here opens sockets, reads clocks or starts threads; drivers in
:mod:`pyfix_smtp.transport` move the bytes.
"""

from __future__ import annotations

from pyfix_smtp.protocol.replies import DEFAULT_LINE_LENGTH_LIMIT, ReplyParser

__all__ = ["DEFAULT_LINE_LENGTH_LIMIT", "ReplyParser"]
