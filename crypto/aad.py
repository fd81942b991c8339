"""Associated data that binds an envelope to what it belongs to.

An envelope opened with associated data other than the data it was sealed
with fails, so a ciphertext copied onto another record, subject, version,
category or field does not open. The encoding is unambiguous: a label naming
the kind of binding, then each field as a 4-byte big-endian length and its
UTF-8 bytes (see docs/envelope-format.md).
"""

import struct

_PREFIX = b"civicvault/"


def _encode(label: str, *fields: str) -> bytes:
    parts = [_frame(_PREFIX + label.encode("ascii"))]
    parts.extend(_frame(field.encode("utf-8")) for field in fields)
    return b"".join(parts)


def _frame(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


RECORD_PARTS = ("content", "title", "signature")


def record_aad(*, record_id: str, subject_id: str, version: int, category: str, part: str) -> bytes:
    """Bind a record version's ``part`` (``content``, ``title``, or an issuer's ``signature`` over it)."""
    if part not in RECORD_PARTS:
        raise ValueError(f"unknown record part {part!r}")
    if type(version) is not int or version < 1:
        raise ValueError("record versions are integers from 1")
    return _encode("record/v1", record_id, subject_id, str(version), category, part)


def subject_key_aad(*, subject_id: str, version: int) -> bytes:
    """Bind a wrapped subject key to its subject and key version."""
    if type(version) is not int or version < 1:
        raise ValueError("subject key versions are integers from 1")
    return _encode("subject-key/v1", subject_id, str(version))


def principal_name_aad(*, principal_id: str) -> bytes:
    """Bind a principal's sealed display name to the principal."""
    return _encode("principal-name/v1", principal_id)


def principal_login_aad(*, principal_id: str) -> bytes:
    """Bind a principal's sealed login (shown to them and to operators) to the principal."""
    return _encode("principal-login/v1", principal_id)


def totp_secret_aad(*, principal_id: str) -> bytes:
    """Bind a principal's sealed TOTP secret to the principal: a secret copied to another row does not open."""
    return _encode("totp-secret/v1", principal_id)


TEXT_KINDS = ("access-request-reason", "break-glass-reason", "break-glass-review-note", "attestation-credential")


def sealed_text_aad(*, kind: str, object_id: str, subject_id: str) -> bytes:
    """Bind a free-text field (a request's or emergency's reason) to its object."""
    if kind not in TEXT_KINDS:
        raise ValueError(f"unknown text kind {kind!r}")
    return _encode("text/v1", kind, object_id, subject_id)
