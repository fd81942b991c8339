"""Checkpoints: signed notes in the transparency-log checkpoint form.

A checkpoint's body is three lines, each ending in a newline::

    <origin>
    <tree size, decimal>
    <root hash, standard base64>

A signed note is the body, a blank line, and one signature line per signer::

    — <name> <base64(key_id || signature)>

``key_id`` is the first 4 bytes of SHA-256(name || 0x0A || 0xB1 || public key),
0xB1 naming BLS12-381 proof-of-possession signatures with 48-byte public keys;
the signature (96 bytes) is over the body's UTF-8 bytes. docs/ledger-format.md
has the exact bytes.
"""

import base64
import binascii
import hashlib
from dataclasses import dataclass

from crypto.bls import SIGNATURE_SIZE, SigningKey, verify_signature
from crypto.errors import SignatureError

ALGORITHM = 0xB1
EM_DASH = "\u2014"


class CheckpointError(SignatureError):
    """A checkpoint or signed note is malformed or does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode('ascii')}\n"


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{EM_DASH} {self.name} {base64.b64encode(self.key_id + self.signature).decode('ascii')}\n"


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALGORITHM]) + public_key).digest()[:4]


def _check_name(name: str) -> str:
    if not name or any(ch.isspace() for ch in name) or "+" in name:
        raise ValueError("a signer name is non-empty and has no spaces or '+'")
    return name


def sign(checkpoint: Checkpoint, *, name: str, key: SigningKey) -> NoteSignature:
    return NoteSignature(
        name=_check_name(name),
        key_id=key_id(name, key.public_key),
        signature=key.sign(checkpoint.body().encode("utf-8")),
    )


def note(checkpoint: Checkpoint, signatures: list[NoteSignature]) -> str:
    return checkpoint.body() + "\n" + "".join(s.line() for s in signatures)


def parse_body(text: str) -> Checkpoint:
    lines = text.split("\n")
    if (
        len(lines) != 4
        or lines[3] != ""
        or not lines[0]
        or not lines[1].isdigit()
        or (len(lines[1]) > 1 and lines[1][0] == "0")
    ):
        raise CheckpointError("a checkpoint body is three lines: origin, size, base64 root")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError("the checkpoint root is not base64") from None
    if len(root) != 32:
        raise CheckpointError("the checkpoint root is not 32 bytes")
    return Checkpoint(origin=lines[0], size=int(lines[1]), root=root)


def parse_note(text: str) -> tuple[Checkpoint, list[NoteSignature]]:
    body, separator, rest = text.partition("\n\n")
    if not separator:
        raise CheckpointError("a signed note has a blank line between body and signatures")
    checkpoint = parse_body(body + "\n")
    signatures = []
    for line in rest.split("\n"):
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != EM_DASH:
            raise CheckpointError("a signature line is '— <name> <base64>'")
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointError("a note signature is not base64") from None
        if len(blob) != 4 + SIGNATURE_SIZE:
            raise CheckpointError("a note signature is a 4-byte key id and a 96-byte signature")
        signatures.append(NoteSignature(name=parts[1], key_id=blob[:4], signature=blob[4:]))
    return checkpoint, signatures


def verify(checkpoint: Checkpoint, signature: NoteSignature, *, name: str, public_key: bytes) -> None:
    """``signature`` is ``name``'s valid signature of ``checkpoint``; raises otherwise."""
    if signature.name != name or signature.key_id != key_id(name, public_key):
        raise CheckpointError(f"the signature is not by {name}'s key")
    try:
        verify_signature(public_key, checkpoint.body().encode("utf-8"), signature.signature)
    except SignatureError:
        raise CheckpointError(f"{name}'s signature over the checkpoint does not verify") from None


def verify_cosignatures(
    checkpoint: Checkpoint, cosignatures: dict[str, bytes], roster: dict[str, bytes], *, threshold: int
) -> None:
    """At least ``threshold`` distinct roster witnesses cosigned ``checkpoint``.

    ``cosignatures`` maps witness name to signature, ``roster`` name to public
    key (each registered with a proof of possession). The signatures are
    aggregated into one and checked in one pairing computation; raises
    ``CheckpointError`` otherwise.
    """
    from crypto.bls import aggregate, verify_aggregate

    signers = sorted(name for name in cosignatures if name in roster)
    if threshold < 1 or len(signers) < threshold:
        raise CheckpointError(f"{len(signers)} roster witnesses cosigned; {threshold} are needed")
    try:
        verify_aggregate(
            [roster[n] for n in signers],
            checkpoint.body().encode("utf-8"),
            aggregate([cosignatures[n] for n in signers]),
        )
    except SignatureError:
        raise CheckpointError("the witnesses' aggregate signature does not verify") from None
