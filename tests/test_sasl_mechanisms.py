"""SASL mechanisms against the RFC test vectors, plus misbehaving servers."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyfix_smtp.errors import LocalProtocolError, SaslError
from pyfix_smtp.sasl import (
    CramMd5,
    Login,
    Plain,
    ScramSha1,
    ScramSha256,
    XOAuth2,
    create_mechanism,
    saslprep,
    supported_mechanisms,
)

# --- PLAIN (RFC 4616 §4 examples) -------------------------------------------


@pytest.mark.parametrize(
    ("authzid", "authcid", "password", "wire"),
    [
        ("", "tim", "tanstaaftanstaaf", b"\0tim\0tanstaaftanstaaf"),
        ("Ursel", "Kurt", "xipj3plmq", b"Ursel\0Kurt\0xipj3plmq"),
    ],
)
def test_plain_rfc4616_examples(authzid: str, authcid: str, password: str, wire: bytes) -> None:
    mech = Plain(authcid, password, authzid)
    assert mech.start() == wire
    mech.done()


def test_plain_refuses_nul_and_challenges() -> None:
    with pytest.raises(SaslError, match="password must not contain byte 0x00"):
        Plain("tim", "a\0b")
    mech = Plain("tim", "pw")
    mech.start()
    with pytest.raises(SaslError, match="unexpected server challenge"):
        mech.step(b"more?")


def test_plain_utf8() -> None:
    assert Plain("jürgen", "päss").start() == "\0jürgen\0päss".encode()


# --- LOGIN -------------------------------------------------------------------


def test_login_exchange() -> None:
    mech = Login("tim", "secret")
    assert mech.start() is None
    assert mech.step(b"Username:") == b"tim"
    assert mech.step(b"Password:") == b"secret"
    mech.done()
    with pytest.raises(SaslError, match="unexpected"):
        mech.step(b"again?")


def test_login_done_too_early() -> None:
    mech = Login("tim", "secret")
    mech.start()
    mech.step(b"Username:")
    with pytest.raises(SaslError, match="before the password"):
        mech.done()


# --- CRAM-MD5 (RFC 2195 §2 example) ---------------------------------------------


def test_cram_md5_rfc2195_example() -> None:
    mech = CramMd5("tim", "tanstaaftanstaaf")
    assert mech.start() is None
    challenge = b"<1896.697170952@postoffice.reston.mci.net>"
    # The RFC shows the base64 forms; check we decode its challenge right too.
    assert base64.b64decode("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+") == challenge
    response = mech.step(challenge)
    assert response == b"tim b913a602c7eda7a495b4e6e7334d3890"
    assert base64.b64encode(response) == b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
    mech.done()


def test_cram_md5_refuses_empty_or_second_challenge() -> None:
    mech = CramMd5("tim", "pw")
    mech.start()
    with pytest.raises(SaslError):
        mech.step(b"")
    mech = CramMd5("tim", "pw")
    mech.start()
    mech.step(b"<1.2@x>")
    with pytest.raises(SaslError):
        mech.step(b"<1.2@x>")


def test_cram_md5_done_without_challenge() -> None:
    mech = CramMd5("tim", "pw")
    mech.start()
    with pytest.raises(SaslError, match="before sending a challenge"):
        mech.done()


# --- SCRAM (RFC 5802 §5, RFC 7677 §3) -------------------------------------------

SCRAM_VECTORS = [
    pytest.param(
        ScramSha1,
        "fyko+d2lbbFgONRv9qkxdawL",
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        id="RFC5802-SHA-1",
    ),
    pytest.param(
        ScramSha256,
        "rOprNGfwEbeRWgbNEkqO",
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        id="RFC7677-SHA-256",
    ),
]


@pytest.mark.parametrize(
    ("cls", "nonce", "server_first", "client_final", "server_final"), SCRAM_VECTORS
)
def test_scram_rfc_examples(
    cls: type[ScramSha256],
    nonce: str,
    server_first: bytes,
    client_final: bytes,
    server_final: bytes,
) -> None:
    mech = cls("user", "pencil", nonce=nonce)
    assert mech.start() == b"n,,n=user,r=" + nonce.encode()
    assert mech.step(server_first) == client_final
    assert not mech.verified
    assert mech.step(server_final) == b""
    assert mech.verified
    mech.done()


def test_scram_wrong_server_signature_is_an_error() -> None:
    _, nonce, server_first, _, _ = SCRAM_VECTORS[1].values
    mech = ScramSha256("user", "pencil", nonce=nonce)
    mech.start()
    mech.step(server_first)
    forged = base64.b64encode(b"\0" * 32)
    with pytest.raises(SaslError, match="wrong server signature"):
        mech.step(b"v=" + forged)
    with pytest.raises(SaslError, match="without proving"):
        mech.done()


def test_scram_wrong_password_gives_different_proof_and_fails_verification() -> None:
    _, nonce, server_first, client_final, server_final = SCRAM_VECTORS[1].values
    mech = ScramSha256("user", "pencil2", nonce=nonce)
    mech.start()
    assert mech.step(server_first) != client_final
    with pytest.raises(SaslError, match="wrong server signature"):
        mech.step(server_final)


def test_scram_success_without_server_signature_is_refused() -> None:
    _, nonce, server_first, _, _ = SCRAM_VECTORS[1].values
    mech = ScramSha256("user", "pencil", nonce=nonce)
    mech.start()
    mech.step(server_first)
    with pytest.raises(SaslError, match="no server signature"):
        mech.done()


@pytest.mark.parametrize(
    ("server_first", "message"),
    [
        (b"m=ext,r=abcdefXYZ,s=QSXCR+Q6sek8bf92,i=4096", "unsupported extension"),
        (b"r=abcdefXYZ,i=4096,s=QSXCR+Q6sek8bf92", "expected r=,s=,i="),
        (b"r=zzzzzz123,s=QSXCR+Q6sek8bf92,i=4096", "does not extend our nonce"),
        (b"r=abcdef,s=QSXCR+Q6sek8bf92,i=4096", "does not extend our nonce"),
        (b"r=abcdefXYZ,s=***,i=4096", "salt is not base64"),
        (b"r=abcdefXYZ,s=QSXCR+Q6sek8bf92,i=0", "bad iteration count"),
        (b"r=abcdefXYZ,s=QSXCR+Q6sek8bf92,i=-1", "bad iteration count"),
        (b"r=abcdefXYZ,s=QSXCR+Q6sek8bf92,i=\xd9\xa3", "bad iteration count"),
        (b"r=abcdefXYZ,s=QSXCR+Q6sek8bf92,i=65537", "above the limit"),
        (b"r=abcdefXYZ,garbage", "malformed attribute"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_scram_rejects_bad_server_first(server_first: bytes, message: str) -> None:
    mech = ScramSha256("user", "pencil", nonce="abcdef")
    mech.start()
    with pytest.raises(SaslError, match=message):
        mech.step(server_first)


def test_scram_server_error_attribute() -> None:
    _, nonce, server_first, _, _ = SCRAM_VECTORS[1].values
    mech = ScramSha256("user", "pencil", nonce=nonce)
    mech.start()
    mech.step(server_first)
    with pytest.raises(SaslError, match="invalid-proof"):
        mech.step(b"e=invalid-proof")


def test_scram_iteration_limit_is_adjustable() -> None:
    mech = ScramSha256("user", "pencil", nonce="abcdef", max_iterations=100)
    mech.start()
    with pytest.raises(SaslError, match="above the limit 100"):
        mech.step(b"r=abcdefXYZ,s=QSXCR+Q6sek8bf92,i=4096")


def test_scram_escapes_names_and_sends_authzid() -> None:
    mech = ScramSha256("a=b,c", "pw", "ad,min", nonce="xyz")
    assert mech.start() == b"n,a=ad=2Cmin,n=a=3Db=2Cc,r=xyz"


def test_scram_random_nonce_is_fresh_and_printable() -> None:
    first = ScramSha256("u", "p").start()
    second = ScramSha256("u", "p").start()
    assert first is not None
    assert second is not None
    assert first != second
    nonce = first.split(b",r=")[1]
    assert len(nonce) >= 24
    assert b"," not in nonce
    assert all(0x21 <= b <= 0x7E for b in nonce)


@pytest.mark.parametrize("nonce", ["", "a,b", "caf\u00e9", "a b"])
def test_scram_refuses_bad_nonce(nonce: str) -> None:
    with pytest.raises(SaslError, match="nonce"):
        ScramSha256("u", "p", nonce=nonce)


def _scram_server(
    hash_name: str, password: str, salt: bytes, iterations: int, client_first_bare: bytes
) -> tuple[bytes, bytes]:
    """An independent SCRAM server computation (RFC 5802 §3) for the property test."""
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, iterations)
    nonce = client_first_bare.split(b",r=")[1] + b"SRV"
    server_first = b"r=" + nonce + b",s=" + base64.b64encode(salt) + b",i=%d" % iterations
    return server_first, salted


@settings(max_examples=25, deadline=None)
@given(
    password=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20),
    salt=st.binary(min_size=1, max_size=24),
    iterations=st.integers(min_value=1, max_value=64),
)
def test_scram_property_matches_independent_server(
    password: str, salt: bytes, iterations: int
) -> None:
    mech = ScramSha256("user", password)
    client_first = mech.start()
    assert client_first is not None
    bare = client_first[3:]
    server_first, salted = _scram_server("sha256", password, salt, iterations, bare)
    client_final = mech.step(server_first)
    without_proof, _, proof_b64 = client_final.rpartition(b",p=")
    auth_message = bare + b"," + server_first + b"," + without_proof
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    signature = hmac.digest(stored_key, auth_message, "sha256")
    client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof_b64), signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key  # the server's check
    server_signature = hmac.digest(
        hmac.digest(salted, b"Server Key", "sha256"), auth_message, "sha256"
    )
    assert mech.step(b"v=" + base64.b64encode(server_signature)) == b""
    mech.done()


# --- XOAUTH2 (Google's documented format) ------------------------------------


def test_xoauth2_google_example() -> None:
    mech = XOAuth2("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
    response = mech.start()
    assert response == (
        b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
        b"\x01\x01"
    )
    assert base64.b64encode(response) == (
        b"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNr"
        b"QmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )
    mech.done()


def test_xoauth2_error_challenge_is_acknowledged_once() -> None:
    mech = XOAuth2("u@example.com", "tok")
    mech.start()
    error = b'{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}'
    assert mech.step(error) == b""
    assert mech.error == error
    with pytest.raises(SaslError):
        mech.step(error)


def test_xoauth2_refuses_separator_in_token() -> None:
    with pytest.raises(SaslError, match="token must not contain byte 0x01"):
        XOAuth2("u", "a\x01b")


# --- life cycle and factory ----------------------------------------------------


@pytest.mark.parametrize("name", supported_mechanisms())
def test_lifecycle_misuse(name: str) -> None:
    mech = create_mechanism(name, "user", "pencil", nonce="abc")
    with pytest.raises(LocalProtocolError, match="before start"):
        mech.step(b"x")
    mech.start()
    with pytest.raises(LocalProtocolError, match="twice"):
        mech.start()


@pytest.mark.parametrize(
    ("name", "send_authzid", "initial"),
    [
        ("plain", False, b"\0tim\0pw"),
        ("PLAIN", True, b"tim\0tim\0pw"),  # Cyrus SASL_CB_USER returns the username
        ("scram-sha-256", False, b"n,,n=tim,r=abc"),
        ("SCRAM-SHA-256", True, b"n,a=tim,n=tim,r=abc"),
        ("SCRAM-SHA-1", False, b"n,,n=tim,r=abc"),
        ("LOGIN", True, None),
        ("CRAM-MD5", True, None),
        ("XOAUTH2", True, b"user=tim\x01auth=Bearer pw\x01\x01"),
    ],
)
def test_create_mechanism(name: str, send_authzid: bool, initial: bytes | None) -> None:
    mech = create_mechanism(name, "tim", "pw", send_authzid=send_authzid, nonce="abc")
    assert mech.name == name.upper()
    assert mech.start() == initial


def test_create_unknown_mechanism() -> None:
    with pytest.raises(SaslError, match="unsupported SASL mechanism 'GSSAPI'"):
        create_mechanism("GSSAPI", "u", "p")


# --- SASLprep (RFC 4013 §3 examples) ----------------------------------------


@pytest.mark.parametrize(
    ("raw", "prepared"),
    [
        ("I\u00adX", "IX"),  # SOFT HYPHEN mapped to nothing
        ("user", "user"),  # no transformation
        ("USER", "USER"),  # case preserved
        ("\u00aa", "a"),  # NFKC
        ("\u2168", "IX"),  # NFKC
        ("a\u00a0b", "a b"),  # non-ASCII space mapped to SPACE
    ],
)
def test_saslprep_rfc4013_examples(raw: str, prepared: str) -> None:
    assert saslprep(raw) == prepared


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("\u0007", "control character U\\+0007 at position 0"),  # RFC 4013 §3 example 6
        ("\u0627\u0031", "right-to-left"),  # RFC 4013 §3 example 7
        ("a\u0627", "mixes|right-to-left"),
        ("\ue000", "private use"),
        ("\u0221", "unassigned"),  # unassigned in Unicode 3.2
    ],
)
def test_saslprep_rejects(raw: str, message: str) -> None:
    with pytest.raises(SaslError, match=message):
        saslprep(raw)


def test_scram_applies_saslprep_to_password() -> None:
    # "I\u00adX" and "IX" prepare to the same string, so both give the same proof.
    _, nonce, server_first, _, _ = SCRAM_VECTORS[1].values
    proofs = set()
    for password in ("I\u00adX", "IX"):
        mech = ScramSha256("user", password, nonce=nonce)
        mech.start()
        proofs.add(mech.step(server_first))
    assert len(proofs) == 1
    with pytest.raises(SaslError, match="password contains a control character"):
        ScramSha256("user", "bad\u0007")


def test_cram_md5_user_name_with_space() -> None:
    mech = CramMd5("tim smith", "pw")
    mech.start()
    response = mech.step(b"<1.2@x>")
    user, _, digest = response.rpartition(b" ")
    assert user == b"tim smith"
    assert len(digest) == 32
