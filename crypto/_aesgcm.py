"""Raw AES-256-GCM, the only module that imports PyCryptodome.

Hazmat layer: no framing, no key ids; ``crypto.envelope`` builds the format on
top. 96-bit nonces and 128-bit tags only (NIST SP 800-38D, section 5.2.1.1).
"""

from Cryptodome.Cipher import AES

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16


def encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """Return ``(ciphertext, tag)``."""
    if len(key) != KEY_SIZE or len(nonce) != NONCE_SIZE:
        raise ValueError("AES-256-GCM needs a 32-byte key and a 12-byte nonce")
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_SIZE)
    cipher.update(aad)
    return cipher.encrypt_and_digest(plaintext)


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes:
    """Return the plaintext or raise ``ValueError`` (mapped by the caller)."""
    if len(key) != KEY_SIZE or len(nonce) != NONCE_SIZE or len(tag) != TAG_SIZE:
        raise ValueError("bad key, nonce or tag length")
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_SIZE)
    cipher.update(aad)
    # decrypt_and_verify compares the tag in constant time and releases no
    # plaintext when it does not match.
    return cipher.decrypt_and_verify(ciphertext, tag)
