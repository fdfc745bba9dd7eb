"""Delivery status values shared by every layer.

* :class:`Reply` is one complete SMTP/LMTP server reply.
* :class:`Failure` is a reason why a recipient could not be delivered *yet*
  or *at all*: an enhanced status code (RFC 3463) and Postfix-style text. DNS,
  TLS policy and protocol layers produce them; the delivery agent turns them
  into per-recipient outcomes using Postfix's soft/hard rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Failure", "Reply", "is_enhanced_status"]

# RFC 3463 §2: class "." subject "." detail; class is 2, 4 or 5, subject
# 1-3 digits, detail 1-3 digits.
_ENHANCED_RE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


def is_enhanced_status(text: str) -> bool:
    """Return True when *text* is a well-formed RFC 3463 status (``4.4.3``)."""
    return _ENHANCED_RE.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete server reply.

    Attributes:
        code: the three-digit reply code of the last line (Postfix: the last
            line wins when lines disagree).
        status: the enhanced status code after Postfix's normalisation (see
            :mod:`pyfix_smtp.protocol.replies`), e.g. ``"2.0.0"``.
        lines: every line's text after the code and separator, without CRLF,
            as kept (bounded in size).
        wire_lines: every kept line as received (code and separator
            included, non-printable characters shown as ``?``); empty when the
            reply was not parsed from the wire. Not part of equality.
        malformed: the reply contained a line without a valid three-digit
            code (Postfix skips such lines and marks the session as having
            had a protocol error). Not part of equality.
    """

    code: int
    status: str
    lines: tuple[str, ...]
    wire_lines: tuple[str, ...] = field(default=(), compare=False)
    malformed: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.code <= 999:
            raise ValueError(f"reply code out of range: {self.code}")
        if not is_enhanced_status(self.status):
            raise ValueError(f"malformed enhanced status: {self.status!r}")

    @property
    def text(self) -> str:
        """The reply text, lines joined by a space (as Postfix logs it)."""
        return " ".join(self.lines)

    @property
    def positive(self) -> bool:
        """A 2xx or 3xx reply."""
        return 200 <= self.code < 400

    @property
    def transient(self) -> bool:
        """A 4xx reply."""
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        """A 5xx reply (or any code outside 2xx-4xx, which Postfix bounces)."""
        return not (200 <= self.code < 500)

    def __str__(self) -> str:
        # Postfix logs the reply as received, lines joined by a space:
        # "550-5.1.1 first 550 5.1.1 second" (smtp_proto.c translit()).
        if self.wire_lines:
            return " ".join(self.wire_lines)
        return f"{self.code} {self.text}" if self.lines else str(self.code)


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a recipient, host or destination failed.

    Attributes:
        status: RFC 3463 enhanced status, e.g. ``"4.4.3"``. The class digit
            decides soft (4) versus hard (5).
        reason: human-readable text in Postfix's wording, e.g. ``"Host or
            domain name not found. Name service error for name=example.com
            type=MX: Host not found, try again"``.
    """

    status: str
    reason: str

    def __post_init__(self) -> None:
        if not is_enhanced_status(self.status) or self.status[0] == "2":
            raise ValueError(f"a Failure needs a 4.x.x or 5.x.x status: {self.status!r}")

    @property
    def soft(self) -> bool:
        """A temporary failure (4.x.x): try again later or at another server."""
        return self.status[0] == "4"

    @property
    def hard(self) -> bool:
        """A permanent failure (5.x.x)."""
        return self.status[0] == "5"

    def softened(self) -> Failure:
        """The same failure as 4.x.x (Postfix ``soft_bounce`` and friends)."""
        return self if self.soft else Failure("4" + self.status[1:], self.reason)

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"
