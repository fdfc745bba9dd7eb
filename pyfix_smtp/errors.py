"""The exceptions pyfix_smtp raises.

Everything the library raises on bad input or a misbehaving peer is a
:class:`PyfixError`. Each subclass carries the facts a caller needs to act on
(the parameter and value, the offending text and position, the wire reply)
as attributes, and a message that names them.

Delivery problems (a server said 550, a DNS lookup failed) are *not*
exceptions: they end up as per-recipient outcomes in a delivery report.
Exceptions are for programming errors, broken configuration and, inside the
sans-IO layers, for telling the driver that the peer broke the protocol.
"""

from __future__ import annotations

__all__ = [
    "AddressError",
    "CommandError",
    "ConfigError",
    "ContentError",
    "DestinationError",
    "DnsError",
    "LocalProtocolError",
    "LookupTableError",
    "ProtocolError",
    "PyfixError",
    "RemoteProtocolError",
    "SaslError",
    "SaslMechanismError",
    "TlsPolicyError",
]


class PyfixError(Exception):
    """Base class of every error raised by pyfix_smtp."""


class ConfigError(PyfixError, ValueError):
    """A configuration parameter has a value Postfix would reject.

    Attributes:
        parameter: the parameter name, e.g. ``"smtp_connect_timeout"``.
        value: the offending value as given (text or Python object), or None
            when the name itself is the problem.
        reason: what is wrong with it.
    """

    def __init__(self, parameter: str, value: object, reason: str) -> None:
        self.parameter = parameter
        self.value = value
        self.reason = reason
        where = parameter if value is None else f"{parameter} = {value!r}"
        super().__init__(f"{where}: {reason}")


class LookupTableError(ConfigError):
    """A lookup table (``texthash:``, ``regexp:``, ...) is unusable.

    ``parameter`` names the parameter that referenced the table (or the table
    itself when used standalone); ``value`` is the table reference; ``line`` is
    the 1-based line number in the table file when the problem is on a line.
    """

    def __init__(
        self, parameter: str, value: object, reason: str, *, line: int | None = None
    ) -> None:
        self.line = line
        where = f" (line {line})" if line is not None else ""
        super().__init__(parameter, value, reason + where)


class AddressError(PyfixError, ValueError):
    """An email address (mailbox, path, xtext) is malformed.

    Attributes:
        text: the offending input.
        position: 0-based index of the first bad character, when known.
        reason: what is wrong.
    """

    def __init__(self, text: str | bytes, reason: str, position: int | None = None) -> None:
        self.text = text
        self.reason = reason
        self.position = position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{reason}{where}: {text!r}")


class DestinationError(PyfixError, ValueError):
    """A nexthop destination (``[host]:port``, ``unix:/path`` ...) is malformed.

    Attributes:
        text: the offending destination text.
        reason: what is wrong.
    """

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"{reason}: {text!r}")


class ProtocolError(PyfixError):
    """The SMTP/LMTP conversation cannot continue.

    Abstract: :class:`LocalProtocolError` means *we* (the caller of the
    sans-IO machine) did something invalid; :class:`RemoteProtocolError` means
    the server did. Modelled on h11.
    """

    def __init__(self, message: str, *, state: str | None = None) -> None:
        self.state = state
        super().__init__(message if state is None else f"{message} (state {state})")


class LocalProtocolError(ProtocolError):
    """The caller used the protocol machine wrongly (e.g. RCPT before MAIL)."""


class RemoteProtocolError(ProtocolError):
    """The server violated the protocol in a way that ends the session."""


class DnsError(PyfixError):
    """A DNS lookup could not be turned into a usable answer.

    Attributes:
        name: the queried name.
        rdtype: the record type, e.g. ``"MX"``.
        status: the enhanced status code Postfix would report (``"4.4.3"``).
        reason: Postfix-style text.
    """

    def __init__(self, name: str, rdtype: str, status: str, reason: str) -> None:
        self.name = name
        self.rdtype = rdtype
        self.status = status
        self.reason = reason
        super().__init__(f"{status} {reason} (name={name} type={rdtype})")

    @property
    def permanent(self) -> bool:
        """True for a 5.x.x status: retrying will not help."""
        return self.status.startswith("5")


class TlsPolicyError(PyfixError):
    """A TLS policy cannot be built or is malformed.

    Attributes:
        policy: the policy text or table entry, when there is one.
        reason: what is wrong.
    """

    def __init__(self, reason: str, *, policy: str | None = None) -> None:
        self.policy = policy
        self.reason = reason
        super().__init__(reason if policy is None else f"{reason}: {policy!r}")


class SaslError(PyfixError):
    """SASL authentication cannot proceed (no mechanism, bad challenge)."""


class SaslMechanismError(SaslError):
    """No SASL mechanism is left to authenticate with.

    The message explains why and names the parameter to change. The
    attributes carry what the delivery layer reports, in Postfix's words.

    Attributes:
        offered: the mechanisms the server offered (EHLO AUTH), as given.
        parameter: the parameter that excluded the last candidates
            (``"smtp_sasl_security_options"``, ``"smtp_sasl_mechanism_filter"``,
            ...), or ``None`` when the server offers nothing we implement.
        status: the enhanced status Postfix reports (``"4.7.0"``).
        reason: Postfix's text, e.g. ``"SASL authentication failed; cannot
            authenticate to server mx.example[192.0.2.1]: no mechanism available"``.
    """

    def __init__(
        self,
        message: str,
        *,
        offered: tuple[str, ...],
        parameter: str | None,
        status: str,
        reason: str,
    ) -> None:
        self.offered = offered
        self.parameter = parameter
        self.status = status
        self.reason = reason
        super().__init__(message)


class ContentError(PyfixError, ValueError):
    """The message content cannot be encoded for the wire.

    Raised by :mod:`pyfix_smtp.protocol.content` where Postfix's smtp(8)
    gives up on a message while sending it (a MIME structure beyond
    ``mime_nesting_limit`` during 8bit->7bit conversion, as in
    ``smtp_mime_fail()``), or where the input is unusable. Postfix then drops
    the connection without ending the DATA phase (a half-sent message must
    not be delivered) and bounces the message with ``status``.

    Attributes:
        reason: what is wrong, in Postfix's words where it has them
            (``"MIME nesting exceeds safety limit"``).
        status: the enhanced status code to report (``"5.6.0"``).
        line: 1-based line number in the message where it was detected,
            when known.
    """

    def __init__(self, reason: str, *, status: str = "5.6.0", line: int | None = None) -> None:
        self.reason = reason
        self.status = status
        self.line = line
        where = f" (message line {line})" if line is not None else ""
        super().__init__(f"{status} {reason}{where}")


class CommandError(PyfixError, ValueError):
    """An SMTP command cannot be built from the given input.

    Raised by :mod:`pyfix_smtp.protocol.commands` and the envelope types
    before anything reaches the wire: a value that would put CR, LF or NUL
    into a command, an XFORWARD command beyond 512 octets, a NOTIFY list
    that mixes NEVER with other values, a negative SIZE.

    Attributes:
        field: the input that is wrong (``"envid"``, ``"helo_name"`` ...).
        value: the offending value.
        reason: what is wrong.
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field} = {value!r}: {reason}")
