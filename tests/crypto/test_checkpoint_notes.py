"""Checkpoint notes: C2SP signed-note and tlog-checkpoint parsing, key ids, unknown signatures, cosignatures.

``tests/vectors/checkpoint-note-v2.json`` (made by
``tests/vectors/make_checkpoint_vectors.py``) holds good notes and hostile
ones, each with what a verifier must answer: ``ok``, ``invalid`` (well formed,
but the log's signature is missing or bad) or ``malformed`` (refused before
any signature is checked).
"""

import base64
import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

from crypto import checkpoint as notes
from crypto.bls import SigningKey
from crypto.errors import SignatureError

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"
FILE = json.loads((VECTOR_DIR / "checkpoint-note-v2.json").read_text(encoding="utf-8"))
VECTORS = {v["name"]: v for v in FILE["vectors"]}
LOG_KEY = bytes.fromhex(FILE["log"]["public_key"])
WITNESSES = {FILE["witness"]["name"]: bytes.fromhex(FILE["witness"]["public_key"])}
LOG_NAME = FILE["log"]["name"]


def by_outcome(outcome: str) -> list[str]:
    return [name for name, v in VECTORS.items() if v["log"] == outcome]


def test_vector_file_is_exactly_what_the_generator_writes():
    spec = importlib.util.spec_from_file_location("make_checkpoint_vectors", VECTOR_DIR / "make_checkpoint_vectors.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.render() == (VECTOR_DIR / "checkpoint-note-v2.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", by_outcome("malformed"))
def test_a_malformed_note_is_refused_when_parsed(name):
    with pytest.raises(notes.CheckpointError):
        notes.parse_note(VECTORS[name]["note"])


@pytest.mark.parametrize("name", by_outcome("ok"))
def test_a_good_note_verifies_and_round_trips(name):
    text = VECTORS[name]["note"]
    checkpoint, signatures = notes.verify_note(text, public_key=LOG_KEY)
    assert notes.note(checkpoint, signatures) == text  # extension lines and every signature line kept as they were
    assert notes.parse_body(checkpoint.body()) == checkpoint
    if VECTORS[name].get("cosigned") == "ok":
        assert notes.verify_cosignatures(checkpoint, signatures, WITNESSES, threshold=1) == list(WITNESSES)
    elif VECTORS[name].get("cosigned") == "invalid":
        with pytest.raises(notes.CheckpointError):
            notes.verify_cosignatures(checkpoint, signatures, WITNESSES, threshold=1)


@pytest.mark.parametrize("name", by_outcome("invalid"))
def test_a_note_without_a_good_log_signature_is_refused(name):
    notes.parse_note(VECTORS[name]["note"])  # well formed
    with pytest.raises(notes.CheckpointError):
        notes.verify_note(VECTORS[name]["note"], public_key=LOG_KEY)


def test_extension_lines_are_kept():
    checkpoint, _ = notes.parse_note(VECTORS["ok/extension-lines"]["note"])
    assert checkpoint.extensions == ("ext one", "ext-two")
    assert checkpoint.body().endswith("=\next one\next-two\n")


def test_hostile_sizes_raise_only_checkpoint_error():
    """isdigit() took "١٢" for 12 and let int("²") raise ValueError: only ASCII decimal is a size."""
    good = VECTORS["ok/log-signed"]["note"]
    for size in ["\u0661\u0662", "\u00b2", "\u0967", "\uff10", "1\u0663", "0x10", "1e3", "", "00", "01", str(2**63)]:
        with pytest.raises(notes.CheckpointError):
            notes.parse_note(good.replace("\n20852163\n", f"\n{size}\n"))
    assert notes.parse_note(good.replace("\n20852163\n", f"\n{2**63 - 1}\n"))[0].size == 2**63 - 1


def test_an_oversize_note_is_refused():
    good = VECTORS["ok/log-signed"]["note"]
    body, _, lines = good.partition("\n\n")
    with pytest.raises(notes.CheckpointError, match="at most"):
        notes.parse_note(body + "\n" + "x" * notes.MAX_NOTE_SIZE + "\n\n" + lines)
    sixteen = body + "\n\n" + lines * 16  # signed-note: verifiers accept at least 16 signatures
    assert len(notes.parse_note(sixteen)[1]) == 16


def test_a_note_is_text():
    with pytest.raises(notes.CheckpointError):
        notes.parse_note(VECTORS["ok/log-signed"]["note"].encode())  # type: ignore[arg-type]
    with pytest.raises(notes.CheckpointError):
        notes.parse_note(VECTORS["ok/log-signed"]["note"].replace("vault", "\udc80"))  # not encodable as UTF-8


def test_key_ids_follow_signed_note_with_the_0xff_type():
    def expected(name: str, identifier: bytes, public: bytes) -> bytes:
        return hashlib.sha256(name.encode() + b"\n" + b"\xff" + identifier + public).digest()[:4]

    assert notes.key_id(LOG_NAME, LOG_KEY) == expected(LOG_NAME, b"civicvault-note-bls12381-pop/v1", LOG_KEY)
    assert notes.cosigner_key_id(LOG_NAME, LOG_KEY) == expected(
        LOG_NAME, b"civicvault-cosignature-bls12381-pop/v1", LOG_KEY
    )
    line = VECTORS["ok/log-signed"]["note"].split("\n")[-2]
    assert base64.b64decode(line.split(" ")[2])[:4] == notes.key_id(LOG_NAME, LOG_KEY)


def test_the_format_1_key_id_is_read_only_when_asked():
    text = VECTORS["invalid/legacy-key-id"]["note"]
    with pytest.raises(notes.CheckpointError):
        notes.verify_note(text, public_key=LOG_KEY)
    checkpoint, _ = notes.verify_note(text, public_key=LOG_KEY, accept_legacy_key_id=True)
    assert checkpoint.size == 20852163


def test_a_cosigned_message_is_never_a_checkpoint():
    """The witness's bytes cannot be taken for a note text the log signs, whatever the origin."""
    for origin in ["log.example", "7", notes.COSIGNATURE_HEADER.strip(), "time"]:
        checkpoint = notes.Checkpoint(origin=origin, size=12, root=bytes(32), extensions=("e",))
        with pytest.raises(notes.CheckpointError):
            notes.parse_body(checkpoint.cosigned_message().decode())


@pytest.fixture(scope="module")
def both_roles():
    """One key as the log's and as a witness's: only the domain separation tells the signatures apart."""
    key = SigningKey(bytes(range(64, 96)))
    checkpoint = notes.Checkpoint(origin="log.example", size=3, root=bytes(32))
    return key, checkpoint, notes.sign(checkpoint, name="log.example", key=key), notes.cosign(checkpoint, key=key)


def test_a_cosignature_is_not_the_logs_signature(both_roles):
    key, checkpoint, _, cosignature = both_roles
    forged = notes.NoteSignature("log.example", notes.key_id("log.example", key.public_key), cosignature)
    with pytest.raises(notes.CheckpointError):
        notes.verify_note(notes.note(checkpoint, [forged]), public_key=key.public_key)
    with pytest.raises(notes.CheckpointError):
        notes.verify(checkpoint, forged, name="log.example", public_key=key.public_key, accept_legacy_key_id=True)


def test_the_logs_signature_is_not_a_cosignature(both_roles):
    key, checkpoint, signed, cosignature = both_roles
    roster = {"w": key.public_key}
    replayed = notes.NoteSignature("w", notes.cosigner_key_id("w", key.public_key), signed.signature)
    with pytest.raises(notes.CheckpointError):
        notes.verify_cosignature(checkpoint, signed.signature, public_key=key.public_key)
    with pytest.raises(notes.CheckpointError):
        notes.verify_cosignatures(checkpoint, [signed, replayed], roster, threshold=1)
    # The same key's true cosignature counts; its log signature line is ignored (another key id).
    genuine = notes.NoteSignature("w", notes.cosigner_key_id("w", key.public_key), cosignature)
    assert notes.verify_cosignatures(checkpoint, [signed, genuine], roster, threshold=1) == ["w"]
    notes.verify_cosignature(checkpoint, cosignature, public_key=key.public_key)


def test_cosignatures_need_the_threshold_and_ignore_unknown_witnesses(both_roles):
    key, checkpoint, signed, cosignature = both_roles
    genuine = notes.NoteSignature("w", notes.cosigner_key_id("w", key.public_key), cosignature)
    stranger = notes.NoteSignature("x", b"\x00" * 4, bytes(96))
    assert notes.verify_cosignatures(checkpoint, [stranger, genuine], {"w": key.public_key}, threshold=1) == ["w"]
    with pytest.raises(notes.CheckpointError, match="2 are needed"):
        notes.verify_cosignatures(checkpoint, [stranger, genuine], {"w": key.public_key}, threshold=2)
    bad = notes.NoteSignature("w", genuine.key_id, bytes(96))
    with pytest.raises(SignatureError):
        notes.verify_cosignatures(checkpoint, [bad], {"w": key.public_key}, threshold=1)
