"""Issuer signatures: Ed25519 keys of the principals that issue documents, and the bytes they sign.

Two messages, both documented byte for byte in docs/attestations.md
("Issuer signatures"), so that a signer written in any language produces
exactly what the vault checks:

* the **proof of possession** of a key, which binds it to one principal::

      "civicvault/issuer-key/v1" 0x00 || principal_id (ASCII) || public_key (32 bytes)

* the **record signature**, a detached signature over seven lines, each
  ended by one ``\\n`` (0x0a)::

      civicvault/record-signature/v1
      <subject_id>
      <category>
      <content_sha256, 64 lowercase hex>
      <issued_at, YYYY-MM-DDTHH:MM:SSZ>
      <issuer_id>
      <key_id>

Every field is checked to be of its shape before it is framed (ids of
``a-z 0-9 _ -``, a category ``family.name``, hex, the one time form), so no
field can hold a new line and two different statements never share bytes.

``IssuerKey`` is a private key (PKCS#8 PEM in and out, ``repr`` never shows
it); ``verify_possession`` and ``verify_record_signature`` raise
``SignatureError`` and never return ``False``.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from crypto import _ed25519
from crypto.errors import KeyringError, SignatureError

PUBLIC_KEY_SIZE = _ed25519.PUBLIC_KEY_SIZE
SIGNATURE_SIZE = _ed25519.SIGNATURE_SIZE
POSSESSION_DOMAIN = b"civicvault/issuer-key/v1\x00"
RECORD_SIGNATURE_HEADER = "civicvault/record-signature/v1"
ISSUED_AT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_CATEGORY = re.compile(r"[a-z][a-z0-9-]*\.[a-z][a-z0-9-]*")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_ISSUED_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


class IssuerKey:
    """An issuer's Ed25519 private key. ``repr`` never shows it."""

    __slots__ = ("_key", "public_key")

    def __init__(self, key: _ed25519.PrivateKey) -> None:
        self._key = key
        self.public_key: bytes = _ed25519.public_bytes(key)

    @classmethod
    def generate(cls) -> "IssuerKey":
        return cls(_ed25519.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> "IssuerKey":
        """The key of a 32-byte RFC 8032 secret: for test vectors; keys are made with ``generate``."""
        return cls(_ed25519.from_seed(seed))

    @classmethod
    def from_pem(cls, pem: bytes) -> "IssuerKey":
        """Read a PKCS#8 PEM private key; ``KeyringError`` for anything else."""
        return cls(_ed25519.from_pem(pem))

    def to_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM: write it to a file only the owner reads."""
        return _ed25519.to_pem(self._key)

    def sign(self, message: bytes) -> bytes:
        return _ed25519.sign(self._key, message)

    def prove_possession(self, principal_id: str) -> bytes:
        return self.sign(possession_message(principal_id, self.public_key))

    def __repr__(self) -> str:
        return f"IssuerKey(public_key={self.public_key.hex()[:16]}...)"


def check_public_key(public_key: bytes) -> None:
    """``KeyringError`` unless ``public_key`` is a 32-byte Ed25519 point of large order."""
    _ed25519.check_public_key(public_key)


def _field(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"{what} is not of its form")
    return value


def possession_message(principal_id: str, public_key: bytes) -> bytes:
    """The bytes a proof of possession signs: the domain, the principal id, the public key."""
    _field(principal_id, _ID, "the principal id")
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_SIZE:
        raise ValueError(f"a public key has {PUBLIC_KEY_SIZE} bytes")
    return POSSESSION_DOMAIN + principal_id.encode("ascii") + public_key


def verify_possession(principal_id: str, public_key: bytes, proof: bytes) -> None:
    """The holder of ``public_key``'s secret signed that the key is ``principal_id``'s."""
    try:
        message = possession_message(principal_id, public_key)
    except ValueError as exc:
        raise SignatureError(str(exc)) from None
    _ed25519.verify(public_key, message, proof)


def format_issued_at(moment: datetime) -> str:
    """A time in the one form a signature carries: UTC, to the second, with ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime")
    return moment.astimezone(UTC).strftime(ISSUED_AT_FORMAT)


def parse_issued_at(text: str) -> datetime:
    """The time of an ``issued_at`` in its one form; ``ValueError`` for any other form."""
    _field(text, _ISSUED_AT, "issued_at")
    return datetime.strptime(text, ISSUED_AT_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class SignedStatement:
    """What an issuer signs about a record version: about whom, what, which content, when, by whom, with which key."""

    subject_id: str
    category: str
    content_sha256: str  # lowercase hex of SHA-256 over the canonical content bytes
    issued_at: str  # YYYY-MM-DDTHH:MM:SSZ
    issuer_id: str
    key_id: str

    def message(self) -> bytes:
        """The exact bytes signed (module docstring; docs/attestations.md)."""
        lines = (
            RECORD_SIGNATURE_HEADER,
            _field(self.subject_id, _ID, "the subject id"),
            _field(self.category, _CATEGORY, "the category"),
            _field(self.content_sha256, _DIGEST, "the content digest"),
            _field(self.issued_at, _ISSUED_AT, "issued_at"),
            _field(self.issuer_id, _ID, "the issuer id"),
            _field(self.key_id, _ID, "the key id"),
        )
        return "".join(line + "\n" for line in lines).encode("ascii")


def sign_record(key: IssuerKey, statement: SignedStatement) -> bytes:
    return key.sign(statement.message())


def verify_record_signature(public_key: bytes, statement: SignedStatement, signature: bytes) -> None:
    """``signature`` is the holder of ``public_key`` signing exactly ``statement``; ``SignatureError`` otherwise."""
    try:
        message = statement.message()
    except ValueError as exc:
        raise SignatureError(str(exc)) from None
    _ed25519.verify(public_key, message, signature)


__all__ = [
    "ISSUED_AT_FORMAT",
    "POSSESSION_DOMAIN",
    "PUBLIC_KEY_SIZE",
    "RECORD_SIGNATURE_HEADER",
    "SIGNATURE_SIZE",
    "IssuerKey",
    "KeyringError",
    "SignatureError",
    "SignedStatement",
    "check_public_key",
    "format_issued_at",
    "parse_issued_at",
    "possession_message",
    "sign_record",
    "verify_possession",
    "verify_record_signature",
]
