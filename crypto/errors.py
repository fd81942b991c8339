"""The crypto package's small error family.

``InvalidEnvelope`` is raised for *every* failure to open an envelope, whatever
went wrong (tag, nonce, key id, associated data, length, version), so that no
caller and no attacker can tell the causes apart (no decryption oracle).
"""


class CryptoError(Exception):
    """Base class of every error raised by ``crypto``."""


class InvalidEnvelope(CryptoError):
    """An envelope could not be opened. Deliberately says nothing more."""

    def __init__(self) -> None:
        super().__init__("invalid envelope")


class KeyringError(CryptoError):
    """A keyring or key is malformed (wrong length, bad version number)."""


class ProofError(CryptoError):
    """A Merkle proof does not verify, or its inputs are malformed.

    Raised by every verification in ``crypto.merkle``; verification never
    returns ``False``.
    """


class SignatureError(CryptoError):
    """A signature, aggregate signature or proof of possession does not verify."""
