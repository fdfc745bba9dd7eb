"""A loopback SMTP/LMTP server for your own tests.

:class:`SinkServer` accepts mail on a loopback TCP port (or a UNIX-domain
socket), records every envelope and message, and answers each command as you
script it: a fixed reply, one reply per occurrence, a function of the
command, or a fault (:class:`Hang`, :class:`Disconnect`, :class:`Raw`)::

    from pyfix_smtp.testing import SinkServer

    with SinkServer(starttls=True, script={"RCPT": ["250 2.1.5 Ok", "550 5.1.1 No"]}) as server:
        report = pyfix_smtp.deliver(envelope, content, server.nexthop, config=cfg)
        assert server.messages[0].recipients == ("first@example.org",)

The server runs in background threads, so it serves blocking clients and
asyncio clients alike (``async with SinkServer() as server:`` works too).
With ``starttls=True`` it offers STARTTLS with a certificate from a private CA
made on the spot (:func:`generate_certificates`); trust it through
:attr:`SinkServer.ca_file` (``smtp_tls_CAfile``).

Script keys are command verbs (``EHLO``, ``HELO``, ``LHLO``, ``STARTTLS``,
``AUTH``, ``MAIL``, ``RCPT``, ``DATA``, ``RSET``, ``NOOP``, ``QUIT``, ...) and
three stages: ``CONNECT`` (the greeting), ``BODY`` (while the message content
arrives: only :class:`Hang` or :class:`Disconnect`) and ``.`` (the reply after
the end of data; for LMTP it is asked once per accepted recipient, with the
recipient as the command's argument, RFC 2033 §4.2).

A recipient counts as accepted when its ``RCPT`` reply is 2xx; a message is
recorded when its end-of-data reply is 2xx (LMTP: for the recipients whose
reply is 2xx). Records are made *before* the reply goes out, so a client that
has seen the reply finds the record in place.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import ipaddress
import itertools
import re
import selectors
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "Certificates",
    "Command",
    "Disconnect",
    "Hang",
    "Raw",
    "ReceivedMessage",
    "Response",
    "Script",
    "Session",
    "SinkServer",
    "generate_certificates",
]

DEFAULT_HOSTNAME = "sink.pyfix.test"
STAGES = frozenset(
    {"CONNECT", "BODY", ".", "EHLO", "HELO", "LHLO", "STARTTLS", "AUTH", "MAIL", "RCPT"}
    | {"DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP", "ETRN", "BDAT", "XCLIENT"}
    | {"XFORWARD"}
)
_MAX_LINE = 65536
_READ_SIZE = 262144
_PATH = re.compile(r"(?i)^(FROM|TO):\s*<([^>]*)>\s*(.*)$")


# ---------------------------------------------------------------------------
# Certificates


@dataclass(frozen=True, slots=True)
class Certificates:
    """A private CA and a server certificate it signed (PEM).

    Attributes:
        ca_pem: the CA certificate: the trust anchor clients need.
        chain_pem: the server certificate followed by the CA certificate.
        key_pem: the server's private key (PKCS#8, unencrypted).
        names: the DNS names and IP addresses the server certificate holds.
        ca_key_pem: the CA's private key, to issue more certificates from the
            same CA (:func:`generate_certificates` with ``ca=``).
    """

    ca_pem: bytes
    chain_pem: bytes
    key_pem: bytes
    names: tuple[str, ...]
    ca_key_pem: bytes = field(default=b"", repr=False)

    def write(self, directory: Path) -> tuple[Path, Path, Path]:
        """Write ``ca.pem``, ``server.pem`` and ``server.key``; return their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
        for path, data in zip(paths, (self.ca_pem, self.chain_pem, self.key_pem), strict=True):
            path.write_bytes(data)
        paths[2].chmod(0o600)
        return paths


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _new_ca(
    start: dt.datetime, end: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pyfix_smtp.testing CA")])
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def generate_certificates(
    *names: str,
    valid_days: int = 30,
    now: dt.datetime | None = None,
    ca: Certificates | None = None,
) -> Certificates:
    """Make an ECDSA P-256 server certificate for *names*, and a CA to sign it.

    The first name is the subject's common name; every name (host names and
    IP addresses) goes into subjectAltName. Without names the certificate is
    for ``localhost``, ``127.0.0.1`` and ``::1``. With *ca*, that CA signs
    the new certificate (a server whose name does not match, trusted all the
    same); otherwise a new CA is made.
    """
    if not names:
        names = ("localhost", "127.0.0.1", "::1")
    if valid_days < 1:
        raise ValueError(f"valid_days must be at least 1, not {valid_days}")
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=1)
    end = start + dt.timedelta(days=valid_days + 1)
    if ca is None:
        ca_cert, ca_key = _new_ca(start, end)
    else:
        if not ca.ca_key_pem:
            raise ValueError("generate_certificates: ca= needs Certificates with ca_key_pem")
        ca_cert = x509.load_pem_x509_certificate(ca.ca_pem)
        loaded = serialization.load_pem_private_key(ca.ca_key_pem, password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError("generate_certificates: the CA key is not an EC key")
        ca_key = loaded
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    return Certificates(
        ca_pem=ca_pem,
        chain_pem=cert.public_bytes(serialization.Encoding.PEM) + ca_pem,
        key_pem=_pem_key(key),
        names=tuple(names),
        ca_key_pem=_pem_key(ca_key),
    )


# ---------------------------------------------------------------------------
# Scripts


@dataclass(frozen=True, slots=True)
class Hang:
    """Never answer: the server keeps the connection open and stays silent.

    At ``BODY`` the server also stops reading, so a large message stalls the
    client's writes; anywhere else it keeps reading (and ignoring) input until
    the client closes the connection or the server stops.
    """


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the connection, after sending *reply* when one is given.

    Attributes:
        reply: a reply to send first (``"421 4.3.2 Shutting down"``), or None.
        after_bytes: at ``BODY`` only: read this many octets of message
            content first, then close (a connection lost in mid-DATA).
        reset: close with a TCP reset (``SO_LINGER`` 0) instead of a FIN.
    """

    reply: str | None = None
    after_bytes: int = 0
    reset: bool = False

    def __post_init__(self) -> None:
        if self.after_bytes < 0:
            raise ValueError(f"Disconnect.after_bytes must be >= 0, not {self.after_bytes}")


@dataclass(frozen=True, slots=True)
class Raw:
    """Send *data* exactly as given (no CRLF added): for malformed replies."""

    data: bytes


#: What a script entry produces: a reply text (lines separated by ``\\n``;
#: CRLF is added), a fault, or None for the server's default answer.
Response = str | Hang | Disconnect | Raw | None


@dataclass(frozen=True, slots=True)
class Command:
    """One command as the server received it, passed to script functions.

    Attributes:
        verb: the upper-cased verb, or the stage name (``CONNECT``, ``BODY``,
            ``.``).
        argument: the rest of the line; at ``.`` in LMTP, the recipient.
        line: the whole command line as received, without CRLF.
        session: the session it arrived in.
    """

    verb: str
    argument: str
    line: str
    session: Session


#: A script entry: one response for every occurrence, a sequence of responses
#: (one per occurrence, server-wide; then the default), or a function.
Script = Response | Sequence[Response] | Callable[[Command], Response]


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A message the server accepted.

    Attributes:
        sender: the MAIL FROM address (``""`` for the null sender).
        recipients: the accepted recipients (LMTP: those whose end-of-data
            reply was 2xx), in order.
        content: the message as received: CRLF line ends, dot-stuffing
            removed, without the final ``.`` line.
        mail_parameters: MAIL FROM parameters (``{"SIZE": "123", "BODY": "8BITMIME"}``;
            a keyword without value maps to None).
        rcpt_parameters: per accepted recipient, its RCPT TO parameters.
        helo: the EHLO/HELO/LHLO argument.
        tls: True when the message arrived over TLS.
        auth_user: the authenticated user name, or None.
        peer: the client's address (``"127.0.0.1"``, or ``""`` on a UNIX socket).
    """

    sender: str
    recipients: tuple[str, ...]
    content: bytes
    mail_parameters: Mapping[str, str | None]
    rcpt_parameters: tuple[Mapping[str, str | None], ...]
    helo: str
    tls: bool
    auth_user: str | None
    peer: str


@dataclass(slots=True)
class Session:
    """What one client connection sent, filled in while it runs.

    Attributes:
        peer: the client's address.
        commands: every command line received, in order (message content
            and AUTH responses excluded).
        received: every octet received (after STARTTLS, the decrypted
            octets), message content included.
        helo: the last EHLO/HELO/LHLO argument.
        tls: True once TLS is active.
        tls_version: the negotiated TLS version, once TLS is active.
        auth_user: the authenticated user, if any.
        content_bytes: message content octets received (every transaction).
        closed: True when the session ended.
    """

    peer: str
    commands: list[str] = field(default_factory=list)
    received: bytearray = field(default_factory=bytearray)
    helo: str = ""
    tls: bool = False
    tls_version: str = ""
    auth_user: str | None = None
    content_bytes: int = 0
    closed: bool = False


class _Closed(Exception):
    """The session is over (client gone, Disconnect, or the server stops)."""


class _Script:
    """Resolves script entries to responses; sequences are shared server-wide."""

    def __init__(self, script: Mapping[str, Script]) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Script] = {}
        self._counters: dict[str, itertools.count[int]] = {}
        for key, value in script.items():
            stage = key.upper()
            if stage not in STAGES:
                raise ValueError(f"script key {key!r} is not a command or stage: {sorted(STAGES)}")
            if stage == "BODY" and not (
                value is None or isinstance(value, (Hang, Disconnect)) or callable(value)
            ):
                raise ValueError("script key 'BODY' takes Hang() or Disconnect(...) only")
            self._entries[stage] = value
            self._counters[stage] = itertools.count()

    def respond(self, command: Command) -> Response:
        entry = self._entries.get(command.verb)
        if entry is None or isinstance(entry, (str, Hang, Disconnect, Raw)):
            return entry
        if callable(entry):
            return entry(command)
        with self._lock:
            index = next(self._counters[command.verb])
        return entry[index] if index < len(entry) else None


# ---------------------------------------------------------------------------
# The server


def _parameters(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for word in text.split():
        key, eq, value = word.partition("=")
        params[key.upper()] = value if eq else None
    return params


def _unstuff(content: bytes) -> bytes:
    """Remove dot-stuffing (RFC 5321 §4.5.2) from content that ends in CRLF."""
    if b"\r\n.." not in content and not content.startswith(b".."):
        return content
    return (b"\r\n" + content).replace(b"\r\n..", b"\r\n.")[2:]


class SinkServer:
    """A threaded loopback SMTP (or LMTP) server that records what it receives.

    Args:
        host: the address to listen on (any ``127.0.0.0/8`` address, ``::1``).
        port: the TCP port; 0 picks a free one (see :attr:`port`).
        unix_path: listen on this UNIX-domain socket instead of TCP.
        lmtp: speak LMTP (RFC 2033): LHLO, one reply per recipient after DATA.
        hostname: the name in the greeting and the EHLO reply.
        starttls: offer STARTTLS (certificates from *certificates*, or made
            by :func:`generate_certificates` for *hostname*, ``localhost``,
            ``127.0.0.1`` and ``::1``).
        implicit_tls: TLS from the first byte (``smtp_tls_wrappermode``).
        certificates: the server certificate to present.
        script: replies per command or stage (see the module documentation).
        extensions: the EHLO keywords to offer; default PIPELINING, SIZE,
            8BITMIME, ENHANCEDSTATUSCODES, DSN, SMTPUTF8. STARTTLS and AUTH
            are added when enabled.
        size_limit: the SIZE limit: larger messages get ``552 5.3.4``; 0 = none.
        auth: user name -> password; offers AUTH PLAIN LOGIN when given.
        auth_requires_tls: offer and accept AUTH only over TLS.
        timeout: how long a session may wait for the client, in seconds.
        requiretls: offer REQUIRETLS (RFC 8689), in the EHLO reply over TLS
            only (RFC 8689 §3: never before STARTTLS). The ``REQUIRETLS``
            MAIL FROM parameter is recorded in
            :attr:`ReceivedMessage.mail_parameters` like any other.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        unix_path: str | Path | None = None,
        lmtp: bool = False,
        hostname: str = DEFAULT_HOSTNAME,
        starttls: bool = False,
        implicit_tls: bool = False,
        certificates: Certificates | None = None,
        script: Mapping[str, Script] | None = None,
        extensions: Sequence[str] | None = None,
        size_limit: int = 0,
        auth: Mapping[str, str] | None = None,
        auth_requires_tls: bool = False,
        timeout: float = 60.0,
        requiretls: bool = False,
    ) -> None:
        if size_limit < 0:
            raise ValueError(f"size_limit must be >= 0, not {size_limit}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.host = host
        self.port = port
        self.unix_path = Path(unix_path) if unix_path is not None else None
        self.lmtp = lmtp
        self.hostname = hostname
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.size_limit = size_limit
        self.auth = dict(auth) if auth is not None else None
        self.auth_requires_tls = auth_requires_tls
        self.timeout = timeout
        self.requiretls = requiretls
        if extensions is None:
            extensions = ("PIPELINING", f"SIZE {size_limit}", "8BITMIME")
            extensions += ("ENHANCEDSTATUSCODES", "DSN", "SMTPUTF8")
        self.extensions = tuple(extensions)
        self._script = _Script(script or {})
        self._certificates = certificates
        if (starttls or implicit_tls) and certificates is None:
            self._certificates = generate_certificates(hostname, "localhost", "127.0.0.1", "::1")
        #: Every accepted message, in order.
        self.messages: list[ReceivedMessage] = []
        #: Every session, in order of connection.
        self.sessions: list[Session] = []
        self._queue_ids = itertools.count(1)
        self._tls_context: ssl.SSLContext | None = None
        self._directory: Path | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._stopping = threading.Event()
        self._accept_thread: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> Self:
        """Bind, listen and start serving in background threads."""
        if self._listener is not None:
            raise RuntimeError("SinkServer is already running")
        self._stopping.clear()
        self._directory = Path(tempfile.mkdtemp(prefix="pyfix-sink-"))
        if self._certificates is not None:
            self._certificates.write(self._directory)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self._directory / "server.pem", self._directory / "server.key")
            self._tls_context = context
        if self.unix_path is not None:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with contextlib.suppress(FileNotFoundError):
                self.unix_path.unlink()
            listener.bind(str(self.unix_path))
        else:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            listener = socket.socket(family, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            self.port = int(listener.getsockname()[1])
        listener.listen(64)
        listener.setblocking(False)
        self._listener = listener
        self._wake_r, self._wake_w = socket.socketpair()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="sink-accept", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every session and wait for the threads."""
        if self._listener is None:
            return
        self._stopping.set()
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=10)
            self._accept_thread = None
        with self._lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    # socket.socket.shutdown also wakes a thread blocked in an SSLSocket
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        for closing in (self._listener, self._wake_r, self._wake_w):
            if closing is not None:
                closing.close()
        self._listener = self._wake_r = self._wake_w = None
        if self.unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.unix_path.unlink()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- what tests use -------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` of the TCP listener."""
        return (self.host, self.port)

    @property
    def nexthop(self) -> str:
        """A Postfix nexthop for this server: ``[127.0.0.1]:2525`` or ``unix:/path``."""
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        return f"[{self.host}]:{self.port}"

    @property
    def certificates(self) -> Certificates | None:
        """The certificates the server presents (None without TLS)."""
        return self._certificates

    @property
    def ca_file(self) -> Path:
        """A file with the CA certificate (``smtp_tls_CAfile``); exists while running."""
        if self._directory is None or self._certificates is None:
            raise RuntimeError("ca_file exists only while a TLS-enabled SinkServer runs")
        return self._directory / "ca.pem"

    def client_context(self) -> ssl.SSLContext:
        """An :class:`ssl.SSLContext` for clients that trusts this server's CA."""
        if self._certificates is None:
            raise RuntimeError("this SinkServer has no TLS certificates")
        return ssl.create_default_context(cadata=self._certificates.ca_pem.decode())

    def clear(self) -> None:
        """Forget recorded messages and sessions (sequence scripts keep their place)."""
        self.messages.clear()
        self.sessions.clear()

    # -- serving --------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        assert self._wake_r is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is not self._listener or self._stopping.is_set():
                        continue
                    try:
                        sock, peer = self._listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    sock.setblocking(True)
                    sock.settimeout(self.timeout)
                    if sock.family != socket.AF_UNIX:
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    name = peer[0] if isinstance(peer, tuple) else ""
                    thread = threading.Thread(
                        target=self._serve, args=(sock, name), name="sink-session", daemon=True
                    )
                    self._threads = [t for t in self._threads if t.is_alive()]
                    self._threads.append(thread)
                    thread.start()

    def _serve(self, sock: socket.socket, peer: str) -> None:
        session = Session(peer)
        self.sessions.append(session)
        with self._lock:
            if self._stopping.is_set():
                sock.close()
                return
            self._open.add(sock)
        handler = _Handler(self, sock, session)
        try:
            handler.run()
        except (_Closed, OSError, ssl.SSLError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                handler._flush()  # e.g. the reply to QUIT
            session.closed = True
            with self._lock:
                self._open.discard(handler.sock)
                self._open.discard(sock)
            with contextlib.suppress(OSError):
                handler.sock.close()

    def _track(self, old: socket.socket, new: socket.socket) -> None:
        with self._lock:
            self._open.discard(old)
            self._open.add(new)
            if self._stopping.is_set():
                raise _Closed

    def _next_queue_id(self) -> str:
        return f"{next(self._queue_ids):010X}"


class _Handler:
    """One session: command loop, data reception, STARTTLS and AUTH."""

    def __init__(self, server: SinkServer, sock: socket.socket, session: Session) -> None:
        self.server = server
        self.sock = sock
        self.session = session
        self.buffer = bytearray()
        self.output = bytearray()
        self.greeted = True
        self.helo_done = False
        self.sender: str | None = None
        self.mail_parameters: dict[str, str | None] = {}
        self.recipients: list[str] = []
        self.rcpt_parameters: list[dict[str, str | None]] = []

    # -- I/O -----------------------------------------------------------------

    def _flush(self) -> None:
        # Replies go out when the server would wait for input, so the replies
        # to pipelined commands leave together, as from Postfix smtpd.
        if self.output:
            data, self.output = bytes(self.output), bytearray()
            self.sock.sendall(data)

    def _recv(self) -> bytes:
        self._flush()
        data = self.sock.recv(_READ_SIZE)
        if not data:
            raise _Closed
        self.session.received += data
        return data

    def _readline(self) -> str:
        while True:
            end = self.buffer.find(b"\n")  # a bare LF ends a line too, as in Postfix smtpd
            if end >= 0:
                line = bytes(self.buffer[:end]).removesuffix(b"\r")
                del self.buffer[: end + 1]
                return line.decode("utf-8", "surrogateescape")
            if len(self.buffer) > _MAX_LINE:
                self.buffer.clear()
                self._send("500 5.5.2 Error: line too long")
                continue
            self.buffer += self._recv()

    def _send(self, reply: str) -> None:
        lines = reply.split("\n")
        self.output += "".join(line.rstrip("\r") + "\r\n" for line in lines).encode()

    def _disconnect(self, fault: Disconnect) -> None:
        if fault.reply is not None:
            self._send(fault.reply)
        with contextlib.suppress(OSError):
            self._flush()
        if fault.reset:
            self.sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        raise _Closed

    def _hang(self, *, read: bool) -> None:
        if not read:
            self._flush()
            self.server._stopping.wait()
            raise _Closed
        while True:
            self._recv()

    def _respond(self, verb: str, argument: str, line: str, default: str) -> str | None:
        """Answer one command: the script's response, else *default*.

        Returns the reply sent, or None after a Raw response.
        """
        response = self.server._script.respond(Command(verb, argument, line, self.session))
        if response is None:
            response = default
        if isinstance(response, Hang):
            self._hang(read=True)
        if isinstance(response, Disconnect):
            self._disconnect(response)
        if isinstance(response, Raw):
            self.output += response.data
            return None
        assert isinstance(response, str)
        return response

    def _reply(self, verb: str, argument: str, line: str, default: str) -> str:
        """Respond and send; return the reply's text ("" after Raw)."""
        reply = self._respond(verb, argument, line, default)
        if reply is None:
            return ""
        self._send(reply)
        return reply

    # -- the session -----------------------------------------------------------

    def run(self) -> None:
        server = self.server
        if server.implicit_tls:
            self._start_tls()
        greeting = f"220 {server.hostname} ESMTP pyfix_smtp.testing"
        if server.lmtp:
            greeting = f"220 {server.hostname} LMTP pyfix_smtp.testing"
        reply = self._reply("CONNECT", "", "", greeting)
        self.greeted = reply.startswith("220") or reply == ""
        while True:
            line = self._readline()
            self.session.commands.append(line)
            verb, _, argument = line.partition(" ")
            verb = verb.upper()
            argument = argument.strip()
            if verb == "QUIT":
                self._reply(verb, argument, line, "221 2.0.0 Bye")
                raise _Closed
            if not self.greeted:  # RFC 5321 §3.1: after a 554 greeting only QUIT
                self._reply(verb, argument, line, "503 5.5.1 Error: no service")
                continue
            method = _COMMANDS.get(verb)
            if method is None:
                self._reply(verb, argument, line, "502 5.5.2 Error: command not recognized")
                continue
            method(self, verb, argument, line)

    def _ehlo_reply(self) -> str:
        server = self.server
        keywords = list(server.extensions)
        if server.starttls and not self.session.tls:
            keywords.append("STARTTLS")
        if server.requiretls and self.session.tls:  # RFC 8689 §3
            keywords.append("REQUIRETLS")
        if server.auth is not None and (self.session.tls or not server.auth_requires_tls):
            keywords.append("AUTH PLAIN LOGIN")
        lines = [server.hostname, *keywords]
        return "\n".join(
            f"250{'-' if i < len(lines) - 1 else ' '}{text}" for i, text in enumerate(lines)
        )

    def _reset(self) -> None:
        self.sender = None
        self.mail_parameters = {}
        self.recipients = []
        self.rcpt_parameters = []

    def _hello(self, verb: str, argument: str, line: str) -> None:
        wanted = "LHLO" if self.server.lmtp else ("EHLO", "HELO")
        if verb not in wanted:
            self._reply(verb, argument, line, "500 5.5.1 Error: command not recognized")
            return
        default = f"250 {self.server.hostname}" if verb == "HELO" else self._ehlo_reply()
        if not argument:
            default = f"501 5.5.4 Syntax: {verb} hostname"
        reply = self._reply(verb, argument, line, default)
        if reply.startswith("250"):
            self._reset()
            self.helo_done = True
            self.session.helo = argument

    def _starttls(self, verb: str, argument: str, line: str) -> None:
        if not self.server.starttls or self.session.tls:
            self._reply(verb, argument, line, "502 5.5.1 Error: command not implemented")
            return
        reply = self._reply(verb, argument, line, "220 2.0.0 Ready to start TLS")
        if not reply.startswith("220"):
            return
        if self.buffer:  # RFC 3207 §6: plaintext sent before the handshake is discarded
            self.buffer.clear()
        self._start_tls()
        self._reset()
        self.helo_done = False

    def _start_tls(self) -> None:
        context = self.server._tls_context
        assert context is not None
        self._flush()
        plain = self.sock
        wrapped = context.wrap_socket(plain, server_side=True)
        self.sock = wrapped
        self.server._track(plain, wrapped)
        self.session.tls = True
        self.session.tls_version = wrapped.version() or ""

    def _auth(self, verb: str, argument: str, line: str) -> None:
        server = self.server
        if server.auth is None or (server.auth_requires_tls and not self.session.tls):
            self._reply(verb, argument, line, "503 5.5.1 Error: authentication not enabled")
            return
        if self.session.auth_user is not None:
            self._reply(verb, argument, line, "503 5.5.1 Error: already authenticated")
            return
        mechanism, _, initial = argument.partition(" ")
        mechanism = mechanism.upper()
        try:
            if mechanism == "PLAIN":
                if not initial:
                    self._send("334 ")
                    initial = self._readline()
                _, user, password = base64.b64decode(initial, validate=True).split(b"\0", 2)
            elif mechanism == "LOGIN":
                if not initial:
                    self._send("334 VXNlcm5hbWU6")  # "Username:"
                    initial = self._readline()
                user = base64.b64decode(initial, validate=True)
                self._send("334 UGFzc3dvcmQ6")  # "Password:"
                password = base64.b64decode(self._readline(), validate=True)
            else:
                self._reply(verb, argument, line, "504 5.5.4 Unsupported authentication mechanism")
                return
        except ValueError:
            self._reply(verb, argument, line, "501 5.5.2 Cannot decode response")
            return
        name = user.decode("utf-8", "replace")
        ok = server.auth.get(name) == password.decode("utf-8", "replace")
        default = (
            "235 2.7.0 Authentication successful"
            if ok
            else "535 5.7.8 Error: authentication failed"
        )
        reply = self._reply(verb, mechanism, line, default)
        if reply.startswith("235"):
            self.session.auth_user = name

    def _mail(self, verb: str, argument: str, line: str) -> None:
        match = _PATH.match(argument)
        if not self.helo_done:
            default = "503 5.5.1 Error: send HELO/EHLO first"
        elif self.sender is not None:
            default = "503 5.5.1 Error: nested MAIL command"
        elif match is None or match.group(1).upper() != "FROM":
            default = "501 5.5.4 Syntax: MAIL FROM:<address>"
        else:
            default = "250 2.1.0 Ok"
            params = _parameters(match.group(3))
            size = params.get("SIZE")
            limit = self.server.size_limit
            if limit and size and size.isdigit() and int(size) > limit:
                default = "552 5.3.4 Message size exceeds fixed limit"
        reply = self._reply(verb, argument, line, default)
        if reply.startswith("2") and match is not None:
            self.sender = match.group(2)
            self.mail_parameters = _parameters(match.group(3))

    def _rcpt(self, verb: str, argument: str, line: str) -> None:
        match = _PATH.match(argument)
        if self.sender is None:
            default = "503 5.5.1 Error: need MAIL command"
        elif match is None or match.group(1).upper() != "TO":
            default = "501 5.5.4 Syntax: RCPT TO:<address>"
        else:
            default = "250 2.1.5 Ok"
        reply = self._reply(verb, argument, line, default)
        if reply.startswith("2") and match is not None:
            self.recipients.append(match.group(2))
            self.rcpt_parameters.append(_parameters(match.group(3)))

    def _data(self, verb: str, argument: str, line: str) -> None:
        if self.sender is None:
            default = "503 5.5.1 Error: need RCPT command"
        elif not self.recipients:
            default = "554 5.5.1 Error: no valid recipients"
        else:
            default = "354 End data with <CR><LF>.<CR><LF>"
        reply = self._reply(verb, argument, line, default)
        if not reply.startswith("354"):
            return
        content = self._receive_content()
        if self.server.lmtp:
            self._finish_lmtp(content)
        else:
            self._finish_smtp(content)
        self._reset()

    def _receive_content(self) -> bytes:
        """Read up to the end-of-data line; honour a BODY fault."""
        fault = self.server._script.respond(Command("BODY", "", "", self.session))
        if isinstance(fault, Hang):
            self._hang(read=False)
        limit = fault.after_bytes if isinstance(fault, Disconnect) else -1
        # A CRLF in front lets an empty message (".\r\n" at once) match too.
        data = bytearray(b"\r\n")
        data += self.buffer
        self.buffer.clear()
        searched = 0
        while True:
            end = data.find(b"\r\n.\r\n", searched)
            if end >= 0 and (limit < 0 or end < limit):
                break
            if limit >= 0 and len(data) - 2 >= limit:
                self.session.content_bytes += len(data) - 2
                assert isinstance(fault, Disconnect)
                self._disconnect(fault)
            searched = max(0, len(data) - 4)
            data += self._recv()
        self.buffer += data[end + 5 :]
        self.session.content_bytes += end
        return _unstuff(bytes(data[2 : end + 2]))

    def _size_refusal(self, content: bytes) -> str | None:
        limit = self.server.size_limit
        if limit and len(content) > limit:
            return "552 5.3.4 Message size exceeds fixed limit"
        return None

    def _record(self, content: bytes, recipients: Sequence[int]) -> None:
        self.server.messages.append(
            ReceivedMessage(
                sender=self.sender or "",
                recipients=tuple(self.recipients[i] for i in recipients),
                content=content,
                mail_parameters=dict(self.mail_parameters),
                rcpt_parameters=tuple(self.rcpt_parameters[i] for i in recipients),
                helo=self.session.helo,
                tls=self.session.tls,
                auth_user=self.session.auth_user,
                peer=self.session.peer,
            )
        )

    def _finish_smtp(self, content: bytes) -> None:
        default = self._size_refusal(content) or (
            f"250 2.0.0 Ok: queued as {self.server._next_queue_id()}"
        )
        reply = self._respond(".", "", ".", default)
        if reply is not None and reply.startswith("2"):
            self._record(content, range(len(self.recipients)))
        if reply is not None:
            self._send(reply)

    def _finish_lmtp(self, content: bytes) -> None:
        # RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
        replies: list[str | None] = []
        refusal = self._size_refusal(content)
        for rcpt in self.recipients:
            default = refusal or f"250 2.0.0 <{rcpt}> Ok"
            replies.append(self._respond(".", rcpt, ".", default))
        accepted = [i for i, r in enumerate(replies) if r is not None and r.startswith("2")]
        if accepted:
            self._record(content, accepted)
        for reply in replies:
            if reply is not None:
                self._send(reply)

    def _rset(self, verb: str, argument: str, line: str) -> None:
        self._reply(verb, argument, line, "250 2.0.0 Ok")
        self._reset()

    def _simple(self, verb: str, argument: str, line: str) -> None:
        defaults = {"NOOP": "250 2.0.0 Ok", "VRFY": "252 2.0.0 Send some mail, I'll try"}
        self._reply(verb, argument, line, defaults.get(verb, "502 5.5.2 Error: not implemented"))


_COMMANDS: dict[str, Callable[[_Handler, str, str, str], None]] = {
    "EHLO": _Handler._hello,
    "HELO": _Handler._hello,
    "LHLO": _Handler._hello,
    "STARTTLS": _Handler._starttls,
    "AUTH": _Handler._auth,
    "MAIL": _Handler._mail,
    "RCPT": _Handler._rcpt,
    "DATA": _Handler._data,
    "RSET": _Handler._rset,
    "NOOP": _Handler._simple,
    "VRFY": _Handler._simple,
    "EXPN": _Handler._simple,
    "HELP": _Handler._simple,
    "ETRN": _Handler._simple,
    "BDAT": _Handler._simple,
    "XCLIENT": _Handler._simple,
    "XFORWARD": _Handler._simple,
}
