"""Regenerate ``tests/vectors/envelope-v1.json``, the envelope format v1 vectors.

Run from the repository root::

    python tests/vectors/make_envelope_vectors.py           # rewrite the file
    python tests/vectors/make_envelope_vectors.py --check   # exit 1 if it is stale

The output is fully deterministic: fixed keys, fixed nonces, fixed plaintexts
and fixed associated data, sealed through ``crypto.envelope._seal_with_nonce``
(and, for the foreign-version vectors, the raw ``crypto._aesgcm.encrypt``).
Running the script twice gives byte-identical files.

Each vector is ``{"name", "description", "key", "aad", "envelope",
"expected", "plaintext"}``; bytes are lowercase hex. ``aad`` is the caller's
context only (``crypto.aad.*``); the 5-byte envelope header that
``crypto.envelope`` prepends to it is *not* included. ``plaintext`` is present
only when ``expected`` is ``"ok"``. A conforming implementation opens every
``"ok"`` vector to its plaintext, and reproduces its envelope exactly when
sealing with the nonce found at bytes 5..17, and refuses every ``"invalid"``
vector.

The keys and nonces below are public test values: never use them for data.
"""

import argparse
import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # let ``python tests/vectors/...`` find ``crypto``
    sys.path.insert(0, str(ROOT))

from crypto import _aesgcm
from crypto.aad import principal_name_aad, record_aad, subject_key_aad
from crypto.envelope import HEADER_SIZE, _seal_with_nonce, unseal
from crypto.errors import InvalidEnvelope

OUTPUT = Path(__file__).resolve().with_name("envelope-v1.json")

# Fixed, public, test-only key material.
KEY_A = bytes(range(0x00, 0x20))  # 000102...1f: a subject key
KEY_B = bytes(range(0x20, 0x40))  # 202122...3f: a master key (and "the wrong key")
SUBJECT_KEY = bytes(range(0x40, 0x60))  # the subject key wrapped under KEY_B


def nonce(n: int) -> bytes:
    """The n-th fixed test nonce: ``cafebabefacedbaddecaf8`` then one counter byte."""
    return bytes.fromhex("cafebabefacedbaddecaf8") + bytes([n])


RECORD = {
    "record_id": "r_TestVectorRecord0001",
    "subject_id": "p_TestVectorSubject001",
    "version": 1,
    "category": "health.allergies",
}
CONTENT_AAD = record_aad(**RECORD, part="content")
TITLE_AAD = record_aad(**RECORD, part="title")
SUBJECT_KEY_AAD = subject_key_aad(subject_id=RECORD["subject_id"], version=1)

SHORT_PLAINTEXT = b'{"allergen":"penicillin","reaction":"hives"}'
KIB_PLAINTEXT = bytes(range(256)) * 4  # 1024 bytes, every byte value


def _vector(name: str, description: str, key: bytes, aad: bytes, envelope: bytes, plaintext: bytes | None) -> dict:
    vector = {
        "name": name,
        "description": description,
        "key": key.hex(),
        "aad": aad.hex(),
        "envelope": envelope.hex(),
        "expected": "invalid" if plaintext is None else "ok",
    }
    if plaintext is not None:
        vector["plaintext"] = plaintext.hex()
    return vector


def _flip(data: bytes, byte: int, bit: int) -> bytes:
    out = bytearray(data)
    out[byte] ^= 1 << bit
    return bytes(out)


def _foreign_version(version: int, key: bytes, key_id: int, plaintext: bytes, aad: bytes, n: bytes) -> bytes:
    """An envelope with another version byte and a tag that is valid over that header."""
    header = struct.pack(">BI", version, key_id)
    ciphertext, tag = _aesgcm.encrypt(key, n, plaintext, header + aad)
    return header + n + ciphertext + tag


def build_vectors() -> list[dict]:
    """Every vector, in file order."""
    vectors = []

    def ok(name, description, key, plaintext, *, key_id, aad, n):
        envelope = _seal_with_nonce(key, plaintext, key_id=key_id, aad=aad, nonce=n)
        vectors.append(_vector(name, description, key, aad, envelope, plaintext))
        return envelope

    def invalid(name, description, key, aad, envelope):
        vectors.append(_vector(name, description, key, aad, envelope, None))

    # --- Good envelopes -------------------------------------------------------
    empty = ok(
        "ok/empty-content",
        "Empty plaintext, record content context, key id 1: the 33-byte minimum envelope.",
        KEY_A,
        b"",
        key_id=1,
        aad=CONTENT_AAD,
        n=nonce(1),
    )
    base = ok(
        "ok/short-content",
        "Short JSON record content under record_aad(part='content'), key id 1. Base of the invalid vectors.",
        KEY_A,
        SHORT_PLAINTEXT,
        key_id=1,
        aad=CONTENT_AAD,
        n=nonce(2),
    )
    ok(
        "ok/title",
        "A record title under record_aad(part='title'), key id 1.",
        KEY_A,
        b"Penicillin allergy",
        key_id=1,
        aad=TITLE_AAD,
        n=nonce(3),
    )
    ok(
        "ok/1kib-content",
        "1024 bytes (every byte value four times), record version 3 of a tenancy.lease record, key id 2.",
        KEY_A,
        KIB_PLAINTEXT,
        key_id=2,
        n=nonce(4),
        aad=record_aad(
            record_id="r_TestVectorRecord0002",
            subject_id=RECORD["subject_id"],
            version=3,
            category="tenancy.lease",
            part="content",
        ),
    )
    wrapped = ok(
        "ok/subject-key",
        "A 32-byte subject key wrapped under master key version 1 with subject_key_aad(version=1).",
        KEY_B,
        SUBJECT_KEY,
        key_id=1,
        aad=SUBJECT_KEY_AAD,
        n=nonce(5),
    )
    ok(
        "ok/principal-name",
        "A principal's display name under principal_name_aad; key id 0x01020304 pins the big-endian key id.",
        KEY_B,
        b"Ada Lovelace",
        key_id=0x01020304,
        n=nonce(6),
        aad=principal_name_aad(principal_id=RECORD["subject_id"]),
    )
    ok(
        "ok/no-context",
        "Empty caller context: the associated data is the 5-byte header alone. Key id 0xffffffff (the maximum).",
        KEY_A,
        b"header-only associated data",
        key_id=0xFFFFFFFF,
        aad=b"",
        n=nonce(7),
    )

    # --- Wrong key ------------------------------------------------------------
    invalid("wrong-key", "ok/short-content opened with another 32-byte key.", KEY_B, CONTENT_AAD, base)

    # --- One flipped bit in each field of ok/short-content --------------------
    tag_start = len(base) - _aesgcm.TAG_SIZE
    for field, byte, bit, what in (
        ("version", 0, 7, "version byte 0x01 -> 0x81"),
        ("key-id", 4, 0, "key id 1 -> 0 (the key id is authenticated)"),
        ("nonce", HEADER_SIZE + 6, 3, "a bit in the middle of the nonce"),
        ("ciphertext", HEADER_SIZE + _aesgcm.NONCE_SIZE, 0, "the lowest bit of the first ciphertext byte"),
        ("tag", tag_start + _aesgcm.TAG_SIZE - 1, 7, "the highest bit of the last tag byte"),
    ):
        invalid(
            f"bitflip/{field}",
            f"ok/short-content with one bit flipped: {what}.",
            KEY_A,
            CONTENT_AAD,
            _flip(base, byte, bit),
        )

    # --- Swapped associated data: the envelope is valid, the context is not ---
    swaps = (
        ("other-record", "another record id", {**RECORD, "record_id": "r_TestVectorRecord0009"}, "content"),
        ("other-subject", "another subject id", {**RECORD, "subject_id": "p_TestVectorSubject009"}, "content"),
        ("other-version", "record version 2 instead of 1", {**RECORD, "version": 2}, "content"),
        ("other-category", "category health.medications", {**RECORD, "category": "health.medications"}, "content"),
        ("title-for-content", "part 'title' instead of 'content'", RECORD, "title"),
    )
    for name, what, fields, part in swaps:
        invalid(f"aad/{name}", f"ok/short-content opened with {what}.", KEY_A, record_aad(**fields, part=part), base)
    invalid("aad/empty", "ok/short-content opened with no caller context at all.", KEY_A, b"", base)
    invalid(
        "aad/subject-key-other-subject",
        "ok/subject-key unwrapped for another subject.",
        KEY_B,
        subject_key_aad(subject_id="p_TestVectorSubject009", version=1),
        wrapped,
    )
    invalid(
        "aad/subject-key-other-version",
        "ok/subject-key unwrapped as subject key version 2.",
        KEY_B,
        subject_key_aad(subject_id=RECORD["subject_id"], version=2),
        wrapped,
    )
    invalid(
        "aad/subject-key-as-principal-name",
        "ok/subject-key opened with a principal_name_aad for the same id (another kind of binding).",
        KEY_B,
        principal_name_aad(principal_id=RECORD["subject_id"]),
        wrapped,
    )

    # --- Truncated ------------------------------------------------------------
    invalid("truncated/one-byte", "ok/short-content without its last byte.", KEY_A, CONTENT_AAD, base[:-1])
    invalid(
        "truncated/one-byte-below-minimum",
        "ok/empty-content without its last byte: 32 bytes, one short of the minimum.",
        KEY_A,
        CONTENT_AAD,
        empty[:-1],
    )
    invalid(
        "truncated/header-and-nonce",
        "ok/short-content cut to its header and nonce (17 bytes).",
        KEY_A,
        CONTENT_AAD,
        base[: HEADER_SIZE + _aesgcm.NONCE_SIZE],
    )
    invalid("truncated/empty", "The empty byte string.", KEY_A, CONTENT_AAD, b"")

    # --- Unknown versions, with tags valid over their own header --------------
    for version in (0x02, 0x00):
        invalid(
            f"version/0x{version:02x}-valid-tag",
            f"Version byte 0x{version:02x}, key id 1, tag computed correctly over that header: "
            "unknown versions are refused even when the tag verifies.",
            KEY_A,
            CONTENT_AAD,
            _foreign_version(version, KEY_A, 1, SHORT_PLAINTEXT, CONTENT_AAD, nonce(8 + version)),
        )

    # --- Trailing garbage -----------------------------------------------------
    invalid("trailing-byte", "ok/short-content with one 0x00 byte appended.", KEY_A, CONTENT_AAD, base + b"\x00")

    _self_check(vectors)
    return vectors


def _self_check(vectors: list[dict]) -> None:
    """Refuse to write a file whose vectors do not behave as they claim."""
    names = [v["name"] for v in vectors]
    if len(names) != len(set(names)):
        raise AssertionError("duplicate vector names")
    for v in vectors:
        key, aad, env = (bytes.fromhex(v[f]) for f in ("key", "aad", "envelope"))
        if v["expected"] == "ok":
            if unseal(key, env, aad=aad) != bytes.fromhex(v["plaintext"]):
                raise AssertionError(f"{v['name']} does not open to its plaintext")
        else:
            try:
                unseal(key, env, aad=aad)
            except InvalidEnvelope:
                continue
            raise AssertionError(f"{v['name']} opened")


def render(vectors: list[dict]) -> str:
    document = {
        "title": "CivicVault envelope format v1 test vectors",
        "format": "version (1 byte, 0x01) || key id (4 bytes, big-endian) || nonce (12) || ciphertext || tag (16)",
        "associated_data": "GCM associated data = the 5-byte header || the vector's aad (the caller context)",
        "generator": "tests/vectors/make_envelope_vectors.py",
        "vectors": vectors,
    }
    return json.dumps(document, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args(argv)
    text = render(build_vectors())
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        print(f"{OUTPUT.name} is up to date")
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {len(json.loads(text)['vectors'])} vectors to {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
