"""Checkpoints: C2SP signed notes in the tlog-checkpoint form, and witness cosignatures.

A checkpoint's note text (c2sp.org/tlog-checkpoint) is the origin line, the
tree size in ASCII decimal, the base64 root hash, then optional non-empty
extension lines, each ending in a newline::

    <origin>
    <tree size>
    <root hash, standard base64>
    [<extension line>...]

A signed note (c2sp.org/signed-note) is that text, a blank line, and one
signature line per signature::

    — <key name> <base64(key id (4 bytes) || signature)>

Key ids are the first 4 bytes of SHA-256(name || 0x0A || signature type ||
public key). BLS12-381 has no signature type byte of its own in signed-note,
so both of ours are 0xFF (signature types without an assigned byte) followed
by an identifier, as that specification recommends:

- the log signs the note text, type ``LOG_SIGNATURE_TYPE``;
- a witness signs ``COSIGNATURE_HEADER`` followed by the note text, type
  ``COSIGNATURE_TYPE``: the header line separates the two domains as
  c2sp.org/tlog-cosignature's ``cosignature/v1`` line does, so a witness's
  signature is never a signature of the log's bytes and the other way round.

Verifiers ignore signature lines whose (name, key id) they do not know, and
fail when a known key's signature does not verify (signed-note, Signatures).
docs/ledger-format.md, section 6, has the exact bytes.
"""

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from crypto.bls import SigningKey, aggregate, verify_aggregate, verify_signature
from crypto.errors import SignatureError

EM_DASH = "\u2014"
MAX_TREE_SIZE = 2**63 - 1
MAX_NOTE_SIZE = 64 * 1024  # bytes: signed-note asks verifiers to bound notes (and accept 16 signatures or more)
MAX_SIGNATURES = 64

# signed-note: 0xFF "for signature types without an identifier byte assigned by this
# specification", "followed by a longer identifier that is unlikely to collide".
LOG_SIGNATURE_TYPE = b"\xff" + b"civicvault-note-bls12381-pop/v1"
COSIGNATURE_TYPE = b"\xff" + b"civicvault-cosignature-bls12381-pop/v1"
COSIGNATURE_HEADER = "civicvault-cosignature/v1\n"
# Checkpoint format 1 named the log's (identical) signature with the unassigned byte 0xB1.
# Read only for checkpoints stored or served before format 2: see ``verify_note``.
LEGACY_LOG_SIGNATURE_TYPE = b"\xb1"

_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")  # ASCII digits only: re's [0-9] never matches other scripts' digits
_ROOT_BASE64 = re.compile(r"[A-Za-z0-9+/]{43}=")  # 32 bytes, standard alphabet, padded


class CheckpointError(SignatureError):
    """A checkpoint or signed note is malformed or does not verify."""


def _check_text(text: str, what: str) -> None:
    # signed-note: valid UTF-8, no ASCII control characters other than newline.
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise CheckpointError(f"a {what} has no control characters other than newline")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CheckpointError(f"a {what} is valid UTF-8") from None


def _check_name(name: str) -> str:
    """signed-note: key names are non-empty, without Unicode spaces or '+'."""
    if not isinstance(name, str) or not name or any(ch.isspace() for ch in name) or "+" in name:
        raise CheckpointError("a key name is non-empty and has no spaces or '+'")
    _check_text(name, "key name")
    return name


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for line in (self.origin, *self.extensions):
            if not isinstance(line, str) or not line or "\n" in line:
                raise CheckpointError("checkpoint lines are non-empty and hold no newline")
            _check_text(line, "checkpoint line")
        if type(self.size) is not int or not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"a tree size is an integer from 0 to {MAX_TREE_SIZE}")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise CheckpointError("the checkpoint root is not 32 bytes")

    def body(self) -> str:
        """The note text: what the log signs."""
        root = base64.b64encode(self.root).decode("ascii")
        return "".join(line + "\n" for line in (self.origin, str(self.size), root, *self.extensions))

    def cosigned_message(self) -> bytes:
        """What a witness signs: the header line, then the note text (tlog-cosignature's layout)."""
        return (COSIGNATURE_HEADER + self.body()).encode("utf-8")


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{EM_DASH} {self.name} {base64.b64encode(self.key_id + self.signature).decode('ascii')}\n"


def _key_id(name: str, signature_type: bytes, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + signature_type + public_key).digest()[:4]


def key_id(name: str, public_key: bytes) -> bytes:
    """The key id of the log's key ``public_key`` under ``name``."""
    return _key_id(name, LOG_SIGNATURE_TYPE, public_key)


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    """The key id of a witness's key ``public_key`` under ``name``."""
    return _key_id(name, COSIGNATURE_TYPE, public_key)


def sign(checkpoint: Checkpoint, *, name: str, key: SigningKey) -> NoteSignature:
    """The log's signature of ``checkpoint``, by the key named ``name`` (the origin, by convention)."""
    return NoteSignature(
        name=_check_name(name),
        key_id=key_id(name, key.public_key),
        signature=key.sign(checkpoint.body().encode("utf-8")),
    )


def cosign(checkpoint: Checkpoint, *, key: SigningKey) -> bytes:
    """A witness's cosignature of ``checkpoint`` (the bare signature; its line names the witness)."""
    return key.sign(checkpoint.cosigned_message())


def note(checkpoint: Checkpoint, signatures: list[NoteSignature]) -> str:
    if not signatures:
        raise CheckpointError("a signed note has at least one signature")
    for signature in signatures:
        _check_name(signature.name)
    return checkpoint.body() + "\n" + "".join(s.line() for s in signatures)


def parse_body(text: str) -> Checkpoint:
    """A checkpoint from its note text, exactly as c2sp.org/tlog-checkpoint writes it."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise CheckpointError("a checkpoint's note text ends in a newline")
    _check_text(text, "checkpoint")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise CheckpointError("a checkpoint is origin, size and root lines, then optional non-empty extension lines")
    origin, size, root = lines[0], lines[1], lines[2]
    if not _SIZE.fullmatch(size) or int(size) > MAX_TREE_SIZE:
        raise CheckpointError(f"the tree size is ASCII decimal without leading zeros, at most {MAX_TREE_SIZE}")
    if not _ROOT_BASE64.fullmatch(root):
        raise CheckpointError("the checkpoint root is not the standard base64 of 32 bytes")
    decoded = base64.b64decode(root, validate=True)
    if base64.b64encode(decoded).decode("ascii") != root:  # non-zero padding bits: not the canonical encoding
        raise CheckpointError("the checkpoint root is not the standard base64 of 32 bytes")
    return Checkpoint(origin=origin, size=int(size), root=decoded, extensions=tuple(lines[3:]))


def _parse_line(line: str) -> NoteSignature:
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] != EM_DASH:
        raise CheckpointError("a signature line is '— <name> <base64>'")
    name, encoded = _check_name(parts[1]), parts[2]
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError("a note signature is not base64") from None
    if base64.b64encode(blob).decode("ascii") != encoded or len(blob) <= 4:
        raise CheckpointError("a note signature is the standard base64 of a 4-byte key id and a signature")
    return NoteSignature(name=name, key_id=blob[:4], signature=blob[4:])


def parse_note(text: str) -> tuple[Checkpoint, list[NoteSignature]]:
    """The checkpoint and every signature line of a signed note; checks the form, not the signatures."""
    if not isinstance(text, str):
        raise CheckpointError("a signed note is text")
    _check_text(text, "signed note")
    if len(text.encode("utf-8")) > MAX_NOTE_SIZE:
        raise CheckpointError(f"a signed note is at most {MAX_NOTE_SIZE} bytes")
    # signed-note: the text is separated from the signatures by the note's last empty line.
    cut = text.rfind("\n\n")
    if cut < 0:
        raise CheckpointError("a signed note has a blank line between its text and its signatures")
    checkpoint = parse_body(text[: cut + 1])
    lines = text[cut + 2 :]
    if not lines.endswith("\n"):
        raise CheckpointError("a signed note is one or more signature lines, each ending in a newline")
    signatures = [_parse_line(line) for line in lines[:-1].split("\n")]
    if len(signatures) > MAX_SIGNATURES:
        raise CheckpointError(f"a signed note has at most {MAX_SIGNATURES} signatures")
    return checkpoint, signatures


def _verify_one(message: bytes, signature: NoteSignature, *, name: str, public_key: bytes) -> None:
    try:
        verify_signature(public_key, message, signature.signature)
    except SignatureError:
        raise CheckpointError(f"{name}'s signature over the checkpoint does not verify") from None


def _log_key_ids(name: str, public_key: bytes, accept_legacy_key_id: bool) -> set[bytes]:
    known = {key_id(name, public_key)}
    if accept_legacy_key_id:
        known.add(_key_id(name, LEGACY_LOG_SIGNATURE_TYPE, public_key))
    return known


def verify(
    checkpoint: Checkpoint,
    signature: NoteSignature,
    *,
    name: str,
    public_key: bytes,
    accept_legacy_key_id: bool = False,
) -> None:
    """``signature`` is the log key ``name``'s valid signature of ``checkpoint``; raises otherwise."""
    if signature.name != name or signature.key_id not in _log_key_ids(name, public_key, accept_legacy_key_id):
        raise CheckpointError(f"the signature is not by {name}'s key")
    _verify_one(checkpoint.body().encode("utf-8"), signature, name=name, public_key=public_key)


def verify_note(
    text: str, *, public_key: bytes, name: str | None = None, accept_legacy_key_id: bool = False
) -> tuple[Checkpoint, list[NoteSignature]]:
    """Parse a signed note and check the log's signature on it; raises unless it verifies.

    ``name`` is the log's key name, by default the checkpoint's origin. As
    signed-note requires, lines from other keys (another name or another key
    id) are ignored, every line of the log's key must verify, and at least one
    must be there. ``accept_legacy_key_id`` also knows the log's key under its
    format-1 key id (the signed bytes are the same), for checkpoints signed
    before format 2.
    """
    checkpoint, signatures = parse_note(text)
    signer = checkpoint.origin if name is None else name
    known = _log_key_ids(signer, public_key, accept_legacy_key_id)
    mine = [s for s in signatures if s.name == signer and s.key_id in known]
    if not mine:
        raise CheckpointError(f"the note carries no signature by {signer}'s key")
    for signature in mine:
        _verify_one(checkpoint.body().encode("utf-8"), signature, name=signer, public_key=public_key)
    return checkpoint, signatures


def verify_cosignature(checkpoint: Checkpoint, signature: bytes, *, public_key: bytes) -> None:
    """``signature`` is the witness key ``public_key``'s cosignature of ``checkpoint``; raises otherwise."""
    try:
        verify_signature(public_key, checkpoint.cosigned_message(), signature)
    except SignatureError:
        raise CheckpointError("the cosignature does not verify under the witness's key") from None


def verify_cosignatures(
    checkpoint: Checkpoint, signatures: list[NoteSignature], roster: dict[str, bytes], *, threshold: int
) -> list[str]:
    """At least ``threshold`` distinct roster witnesses cosigned ``checkpoint``; returns their names.

    ``roster`` maps witness name to public key (each registered with a proof of
    possession). Lines whose (name, key id) is not a roster witness's are
    ignored; the known ones are aggregated into one signature over the
    cosigned message and checked in one pairing computation. Raises
    ``CheckpointError`` otherwise.
    """
    known: dict[str, bytes] = {}
    for line in signatures:
        public = roster.get(line.name)
        if public is None or line.key_id != cosigner_key_id(line.name, public):
            continue
        if known.setdefault(line.name, line.signature) != line.signature:
            raise CheckpointError(f"{line.name} cosigned the checkpoint twice, differently")
    if threshold < 1 or len(known) < threshold:
        raise CheckpointError(f"{len(known)} roster witnesses cosigned; {threshold} are needed")
    names = sorted(known)
    try:
        verify_aggregate(
            [roster[n] for n in names], checkpoint.cosigned_message(), aggregate([known[n] for n in names])
        )
    except SignatureError:
        raise CheckpointError("the witnesses' aggregate signature does not verify") from None
    except ValueError:  # a signature that is not a point cannot be aggregated
        raise CheckpointError("the witnesses' aggregate signature does not verify") from None
    return names
