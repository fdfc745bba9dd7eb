"""SASL client mechanisms as small sans-IO state machines.

Each mechanism takes and returns *raw* bytes; base64 on the wire (RFC 4954)
is the protocol layer's job. The life cycle:

1. ``start()`` returns the initial response to send with ``AUTH mech``, or
   ``None`` when the mechanism waits for the server's first challenge.
2. ``step(challenge)`` answers each ``334`` challenge.
3. ``done()`` is called when the server says ``235``: it raises
   :class:`~pyfix_smtp.errors.SaslError` when the exchange is not complete
   from the client's side (SCRAM: the server never proved it knows the
   password).

A server that breaks a mechanism's rules (a malformed SCRAM message, a wrong
server signature, a challenge where none may come) raises
:class:`~pyfix_smtp.errors.SaslError`; calling the methods out of order raises
:class:`~pyfix_smtp.errors.LocalProtocolError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from abc import ABC, abstractmethod
from typing import ClassVar

from pyfix_smtp.errors import LocalProtocolError, SaslError
from pyfix_smtp.sasl.saslprep import saslprep

__all__ = [
    "CramMd5",
    "Login",
    "Mechanism",
    "Plain",
    "ScramSha1",
    "ScramSha256",
    "XOAuth2",
    "create_mechanism",
    "supported_mechanisms",
]


class Mechanism(ABC):
    """One client side of one SASL exchange (RFC 4422 §3)."""

    __slots__ = ("_started",)

    #: The IANA mechanism name, upper case (``"PLAIN"``).
    name: ClassVar[str]

    def __init__(self) -> None:
        self._started = False

    def start(self) -> bytes | None:
        """Begin the exchange: the initial response, or ``None`` to wait for a challenge."""
        if self._started:
            raise LocalProtocolError(f"{self.name}: start() called twice")
        self._started = True
        return self._initial_response()

    def step(self, challenge: bytes) -> bytes:
        """Answer one server challenge (already base64-decoded) with raw bytes."""
        if not self._started:
            raise LocalProtocolError(f"{self.name}: step() before start()")
        return self._respond(challenge)

    @abstractmethod
    def done(self) -> None:
        """Confirm the exchange is complete now that the server accepted it (``235``)."""

    @abstractmethod
    def _initial_response(self) -> bytes | None: ...

    @abstractmethod
    def _respond(self, challenge: bytes) -> bytes: ...

    def _unexpected(self, challenge: bytes) -> SaslError:
        return SaslError(f"{self.name}: unexpected server challenge {challenge[:100]!r}")


def _utf8(value: str, what: str, mechanism: str, forbidden: bytes = b"") -> bytes:
    """Encode *value* as UTF-8, refusing the separator bytes of the mechanism."""
    raw = value.encode("utf-8")
    for byte in forbidden:
        if byte in raw:
            raise SaslError(f"{mechanism}: {what} must not contain byte 0x{byte:02x}")
    return raw


class Plain(Mechanism):
    """PLAIN (RFC 4616): ``[authzid] NUL authcid NUL passwd`` as the initial response."""

    __slots__ = ("_message",)
    name = "PLAIN"

    def __init__(self, username: str, password: str, authzid: str = "") -> None:
        super().__init__()
        # RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd;
        # none of the three may contain NUL.
        self._message = b"\0".join(
            (
                _utf8(authzid, "authzid", self.name, b"\0"),
                _utf8(username, "username", self.name, b"\0"),
                _utf8(password, "password", self.name, b"\0"),
            )
        )

    def _initial_response(self) -> bytes:
        return self._message

    def _respond(self, challenge: bytes) -> bytes:
        # RFC 4616 §2: the mechanism consists of a single message from the client.
        raise self._unexpected(challenge)

    def done(self) -> None:
        """PLAIN is complete once its only message was sent."""
        if not self._started:
            raise LocalProtocolError(f"{self.name}: done() before start()")


class Login(Mechanism):
    """LOGIN (draft-murchison-sasl-login): the username, then the password.

    Like Cyrus SASL's client (plugins/login.c), it waits for the server to go
    first and ignores the challenge texts ("Username:", "Password:").
    """

    __slots__ = ("_answers", "_sent")
    name = "LOGIN"

    def __init__(self, username: str, password: str) -> None:
        super().__init__()
        self._answers = (
            _utf8(username, "username", self.name, b"\r\n"),
            _utf8(password, "password", self.name, b"\r\n"),
        )
        self._sent = 0

    def _initial_response(self) -> None:
        return None  # Cyrus login.c: SASL_FEAT_SERVER_FIRST

    def _respond(self, challenge: bytes) -> bytes:
        if self._sent >= len(self._answers):
            raise self._unexpected(challenge)
        answer = self._answers[self._sent]
        self._sent += 1
        return answer

    def done(self) -> None:
        """The server must have asked for both the username and the password."""
        if self._sent < len(self._answers):
            raise SaslError(f"{self.name}: server accepted before the password was sent")


class CramMd5(Mechanism):
    """CRAM-MD5 (RFC 2195): ``username SP hex(HMAC-MD5(password, challenge))``."""

    __slots__ = ("_answered", "_password", "_username")
    name = "CRAM-MD5"

    def __init__(self, username: str, password: str) -> None:
        super().__init__()
        # No restriction on spaces: the digest is the text after the *last*
        # space, and Cyrus (plugins/cram.c) sends any user name as is.
        self._username = _utf8(username, "username", self.name)
        self._password = _utf8(password, "password", self.name)
        self._answered = False

    def _initial_response(self) -> None:
        return None  # RFC 2195 §2: the server sends the first (timestamp) challenge

    def _respond(self, challenge: bytes) -> bytes:
        if self._answered or not challenge:
            raise self._unexpected(challenge)
        self._answered = True
        # RFC 2195 §2: digest = HMAC-MD5 (RFC 2104) keyed with the shared secret,
        # written as 32 lower-case hex digits after the user name and one space.
        digest = hmac.new(self._password, challenge, hashlib.md5).hexdigest()
        return self._username + b" " + digest.encode("ascii")

    def done(self) -> None:
        """The server must have sent its challenge and received our digest."""
        if not self._answered:
            raise SaslError(f"{self.name}: server accepted before sending a challenge")


def _scram_name(value: str) -> str:
    # RFC 5802 §5.1: "=" and "," in saslname are written as "=3D" and "=2C".
    return value.replace("=", "=3D").replace(",", "=2C")


def _scram_attributes(message: bytes, mechanism: str) -> list[tuple[str, str]]:
    """Split a SCRAM server message into (letter, value) pairs (RFC 5802 §7)."""
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SaslError(f"{mechanism}: server message is not UTF-8: {message[:100]!r}") from exc
    pairs = []
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=" or not (part[0].isascii() and part[0].isalpha()):
            raise SaslError(f"{mechanism}: malformed attribute {part[:40]!r} in {text[:100]!r}")
        pairs.append((part[0], part[2:]))
    return pairs


class _Scram(Mechanism):
    """SCRAM (RFC 5802) without channel binding, client side."""

    __slots__ = (
        "_auth_message",
        "_client_first_bare",
        "_gs2_header",
        "_max_iterations",
        "_nonce",
        "_password",
        "_server_signature",
        "_state",
        "_verified",
    )
    _hash: ClassVar[str]

    #: Cyrus SASL plugins/scram.c MAX_ITERATION_COUNTER: a larger count is refused
    #: rather than computed (a hostile server could make us spin).
    DEFAULT_MAX_ITERATIONS: ClassVar[int] = 0x10000

    def __init__(
        self,
        username: str,
        password: str,
        authzid: str = "",
        *,
        nonce: str | None = None,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
    ) -> None:
        super().__init__()
        if nonce is None:
            nonce = secrets.token_urlsafe(18)  # 144 random bits
        elif not nonce or not all(0x21 <= ord(c) <= 0x7E and c != "," for c in nonce):
            # RFC 5802 §7: c-nonce = printable = %x21-2B / %x2D-7E (no comma).
            raise SaslError(f"{self.name}: nonce must be printable ASCII without ',': {nonce!r}")
        if max_iterations < 1:
            raise ValueError(f"max_iterations must be positive: {max_iterations}")
        # RFC 5802 §5.1: "n" - we support no channel binding; "a=" carries the authzid.
        authz = f"a={_scram_name(saslprep(authzid, what='authzid'))}" if authzid else ""
        self._gs2_header = f"n,{authz},".encode()
        name = _scram_name(saslprep(username, what="username"))
        self._client_first_bare = f"n={name},r={nonce}".encode()
        self._nonce = nonce
        self._password = saslprep(password, what="password").encode("utf-8")
        self._max_iterations = max_iterations
        self._auth_message = b""
        self._server_signature = b""
        self._state = 0  # 0: sent client-first, 1: sent client-final, 2: verified
        self._verified = False

    def _initial_response(self) -> bytes:
        # RFC 5802 §3: client-first-message = gs2-header client-first-message-bare.
        return self._gs2_header + self._client_first_bare

    def _respond(self, challenge: bytes) -> bytes:
        if self._state == 0:
            self._state = 1
            return self._client_final(challenge)
        if self._state == 1:
            self._state = 2
            self._verify(challenge)
            # RFC 4954 §4: the server sends its final SCRAM message as a 334
            # challenge; the client answers with an empty response.
            return b""
        raise self._unexpected(challenge)

    def _client_final(self, server_first: bytes) -> bytes:
        attrs = _scram_attributes(server_first, self.name)
        # RFC 5802 §7: server-first-message = [reserved-mext ","] nonce "," salt ","
        # iteration-count ["," extensions]; §5.1: an unknown "m" is fatal.
        if attrs and attrs[0][0] == "m":
            raise SaslError(f"{self.name}: server requires an unsupported extension (m=)")
        if len(attrs) < 3 or [k for k, _ in attrs[:3]] != ["r", "s", "i"]:
            raise SaslError(f"{self.name}: expected r=,s=,i= from server: {server_first[:100]!r}")
        nonce, salt_b64, count = (value for _, value in attrs[:3])
        # RFC 5802 §5.1: the server nonce starts with the client nonce (Cyrus also
        # requires it to add characters of its own).
        if not nonce.startswith(self._nonce) or len(nonce) <= len(self._nonce):
            raise SaslError(f"{self.name}: server nonce does not extend our nonce: {nonce!r}")
        try:
            salt = base64.b64decode(salt_b64, validate=True)
        except binascii.Error as exc:
            raise SaslError(f"{self.name}: salt is not base64: {salt_b64!r}") from exc
        if not (count.isascii() and count.isdigit()) or count.startswith("0"):
            raise SaslError(f"{self.name}: bad iteration count: {count!r}")
        iterations = int(count)
        if iterations > self._max_iterations:
            raise SaslError(
                f"{self.name}: iteration count {iterations} is above the limit "
                f"{self._max_iterations}; refusing to compute"
            )
        channel_binding = base64.b64encode(self._gs2_header)
        without_proof = b"c=" + channel_binding + b",r=" + nonce.encode("ascii")
        # RFC 5802 §3: AuthMessage = client-first-message-bare + "," +
        # server-first-message + "," + client-final-message-without-proof.
        self._auth_message = b",".join((self._client_first_bare, server_first, without_proof))
        salted = hashlib.pbkdf2_hmac(self._hash, self._password, salt, iterations)  # Hi()
        client_key = hmac.digest(salted, b"Client Key", self._hash)
        stored_key = hashlib.new(self._hash, client_key).digest()
        client_signature = hmac.digest(stored_key, self._auth_message, self._hash)
        proof = bytes(a ^ b for a, b in zip(client_key, client_signature, strict=True))
        server_key = hmac.digest(salted, b"Server Key", self._hash)
        self._server_signature = hmac.digest(server_key, self._auth_message, self._hash)
        return without_proof + b",p=" + base64.b64encode(proof)

    def _verify(self, server_final: bytes) -> None:
        attrs = _scram_attributes(server_final, self.name)
        key, value = attrs[0]
        if key == "e":
            # RFC 5802 §7: server-error = "e=" server-error-value
            raise SaslError(f"{self.name}: server reported error {value!r}")
        if key != "v":
            raise SaslError(f"{self.name}: expected v= from server: {server_final[:100]!r}")
        try:
            signature = base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise SaslError(f"{self.name}: server signature is not base64: {value!r}") from exc
        # RFC 5802 §3: the client verifies ServerSignature to authenticate the server.
        if not hmac.compare_digest(signature, self._server_signature):
            raise SaslError(
                f"{self.name}: wrong server signature; the server does not know the password"
            )
        self._verified = True

    @property
    def verified(self) -> bool:
        """True once the server's signature (``v=``) matched."""
        return self._verified

    def done(self) -> None:
        """Refuse success without a verified server signature (mutual authentication)."""
        if not self._verified:
            raise SaslError(
                f"{self.name}: server accepted without proving it knows the password "
                "(no server signature)"
            )


class ScramSha256(_Scram):
    """SCRAM-SHA-256 (RFC 7677)."""

    __slots__ = ()
    name = "SCRAM-SHA-256"
    _hash = "sha256"


class ScramSha1(_Scram):
    """SCRAM-SHA-1 (RFC 5802)."""

    __slots__ = ()
    name = "SCRAM-SHA-1"
    _hash = "sha1"


class XOAuth2(Mechanism):
    """XOAUTH2 (Google's OAuth 2.0 SASL profile): the bearer token in the password slot.

    Initial response: ``user=USER ^A auth=Bearer TOKEN ^A ^A``. On failure the
    server sends a JSON error as a challenge; the client answers with an empty
    response and the server then fails the command. The JSON is kept in
    :attr:`error`.
    """

    __slots__ = ("_message", "error")
    name = "XOAUTH2"

    def __init__(self, username: str, token: str) -> None:
        super().__init__()
        user = _utf8(username, "username", self.name, b"\x01")
        bearer = _utf8(token, "token", self.name, b"\x01")
        self._message = b"user=" + user + b"\x01auth=Bearer " + bearer + b"\x01\x01"
        #: The server's error challenge (JSON), when it sent one.
        self.error: bytes | None = None

    def _initial_response(self) -> bytes:
        return self._message

    def _respond(self, challenge: bytes) -> bytes:
        if self.error is not None:
            raise self._unexpected(challenge)
        self.error = challenge
        return b""  # acknowledge the error challenge; the server then says 5xx

    def done(self) -> None:
        """XOAUTH2 is complete once the token was sent."""
        if not self._started:
            raise LocalProtocolError(f"{self.name}: done() before start()")


_CLASSES: dict[str, type[Mechanism]] = {
    cls.name: cls for cls in (ScramSha256, ScramSha1, CramMd5, Plain, Login, XOAuth2)
}


def supported_mechanisms() -> tuple[str, ...]:
    """The mechanism names this package implements."""
    return tuple(_CLASSES)


def create_mechanism(
    name: str,
    username: str,
    password: str,
    *,
    send_authzid: bool = False,
    nonce: str | None = None,
) -> Mechanism:
    """Build the client for mechanism *name* (case-insensitive).

    *send_authzid* is Postfix's ``send_cyrus_sasl_authzid``: when true, PLAIN
    and SCRAM also send the username as the authorization identity, as Cyrus
    SASL does with its ``SASL_CB_USER`` callback (Postfix
    xsasl_cyrus_client.c ``xsasl_cyrus_client_create()``). *nonce* fixes the
    SCRAM client nonce (tests); by default it is random.
    """
    key = name.upper()
    authzid = username if send_authzid else ""
    if key == Plain.name:
        return Plain(username, password, authzid)
    if key in (ScramSha256.name, ScramSha1.name):
        scram = ScramSha256 if key == ScramSha256.name else ScramSha1
        return scram(username, password, authzid, nonce=nonce)
    if key == Login.name:
        return Login(username, password)
    if key == CramMd5.name:
        return CramMd5(username, password)
    if key == XOAuth2.name:
        return XOAuth2(username, password)
    raise SaslError(f"unsupported SASL mechanism {name!r}; supported: {' '.join(_CLASSES)}")
