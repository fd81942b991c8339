"""Generate checkpoint-note-v2.json: signed checkpoint notes and what a verifier must make of each.

Deterministic: BLS keys from fixed seeds (py-ecc's KeyGen), BLS signatures are
deterministic, and every malformed note is an edit of a good one. Run from the
repository root:

    .venv/bin/python tests/vectors/make_checkpoint_vectors.py          # rewrite the file
    .venv/bin/python tests/vectors/make_checkpoint_vectors.py --check  # exit 1 if it is stale
"""

import base64
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from crypto import checkpoint as notes
from crypto.bls import SigningKey

OUT = Path(__file__).with_name("checkpoint-note-v2.json")
LOG_NAME = "log.example/vault"
WITNESS_NAME = "witness.example/w1"
ROOT = bytes(range(32))


def _line(name: str, key_id: bytes, signature: bytes) -> str:
    return notes.NoteSignature(name, key_id, signature).line()


def build() -> dict:
    log = SigningKey(bytes(range(32)))
    witness = SigningKey(bytes(range(32, 64)))
    base = notes.Checkpoint(origin=LOG_NAME, size=20852163, root=ROOT)
    extended = notes.Checkpoint(origin=LOG_NAME, size=20852163, root=ROOT, extensions=("ext one", "ext-two"))
    log_line = notes.sign(base, name=LOG_NAME, key=log).line()
    cosig_line = _line(
        WITNESS_NAME, notes.cosigner_key_id(WITNESS_NAME, witness.public_key), notes.cosign(base, key=witness)
    )
    good = base.body() + "\n" + log_line
    stranger = base64.b64encode(b"\x01\x02\x03\x04" + bytes(64)).decode()
    flipped = bytearray(notes.sign(base, name=LOG_NAME, key=log).signature)
    flipped[-1] ^= 1
    body = base.body()

    vectors: list[dict] = []

    def add(name: str, description: str, note: str, log_result: str, cosigned: str | None = None) -> None:
        entry = {"name": name, "description": description, "note": note, "log": log_result}
        if cosigned is not None:
            entry["cosigned"] = cosigned
        vectors.append(entry)

    add("ok/log-signed", "A checkpoint signed by the log.", good, "ok")
    add(
        "ok/extension-lines",
        "Two extension lines after the root, signed with the rest of the note text; kept by the parser.",
        extended.body() + "\n" + notes.sign(extended, name=LOG_NAME, key=log).line(),
        "ok",
    )
    add(
        "ok/cosigned",
        "Signed by the log and cosigned by the witness (over the cosigned message).",
        good + cosig_line,
        "ok",
        "ok",
    )
    add(
        "ok/unknown-signatures-ignored",
        "The log's line among lines of unknown keys: another name, the log's name with another key id, "
        "another name with the log's key id, and a line of another length. All are ignored.",
        body
        + "\n"
        + f"{notes.EM_DASH} stranger.example {stranger}\n"
        + _line(LOG_NAME, b"\x00\x00\x00\x00", bytes(96))
        + log_line
        + _line("other.example", notes.key_id(LOG_NAME, log.public_key), bytes(96)),
        "ok",
    )
    for size in (0, notes.MAX_TREE_SIZE):
        edge = notes.Checkpoint(origin=LOG_NAME, size=size, root=ROOT)
        add(
            f"ok/size-{size}",
            f"Tree size {size}: the smallest and the largest (2^63 - 1) a checkpoint can carry.",
            edge.body() + "\n" + notes.sign(edge, name=LOG_NAME, key=log).line(),
            "ok",
        )
    add(
        "invalid/no-known-signature",
        "Only the witness's cosignature: no line of the log's key.",
        body + "\n" + cosig_line,
        "invalid",
    )
    add(
        "invalid/bad-log-signature",
        "The log's line with one bit of the signature flipped, next to a good one: a known key's bad "
        "signature fails the note.",
        good + _line(LOG_NAME, notes.key_id(LOG_NAME, log.public_key), bytes(flipped)),
        "invalid",
    )
    add(
        "invalid/legacy-key-id",
        "The log's signature under its format-1 key id (type byte 0xB1): unknown to a format-2 verifier.",
        body
        + "\n"
        + _line(
            LOG_NAME,
            notes._key_id(LOG_NAME, notes.LEGACY_LOG_SIGNATURE_TYPE, log.public_key),
            notes.sign(base, name=LOG_NAME, key=log).signature,
        ),
        "invalid",
    )
    add(
        "replay/cosignature-as-log-signature",
        "The log key's own cosignature of the checkpoint, presented as the log's signature.",
        body + "\n" + _line(LOG_NAME, notes.key_id(LOG_NAME, log.public_key), notes.cosign(base, key=log)),
        "invalid",
    )
    add(
        "replay/log-signature-as-cosignature",
        "The witness key's signature of the note text (the format-1 cosignature), presented as a cosignature.",
        good
        + _line(
            WITNESS_NAME,
            notes.cosigner_key_id(WITNESS_NAME, witness.public_key),
            witness.sign(body.encode("utf-8")),
        ),
        "ok",
        "invalid",
    )

    hostile = {
        "size-arabic-indic-digits": ("\n20852163\n", "\n\u0661\u0662\n"),
        "size-superscript-two": ("\n20852163\n", "\n\u00b2\n"),
        "size-fullwidth-digits": ("\n20852163\n", "\n\uff11\uff12\n"),
        "size-leading-zero": ("\n20852163\n", "\n020852163\n"),
        "size-double-zero": ("\n20852163\n", "\n00\n"),
        "size-plus-sign": ("\n20852163\n", "\n+20852163\n"),
        "size-negative": ("\n20852163\n", "\n-1\n"),
        "size-underscore": ("\n20852163\n", "\n20_852_163\n"),
        "size-space": ("\n20852163\n", "\n 20852163\n"),
        "size-2^63": ("\n20852163\n", f"\n{2**63}\n"),
        "size-oversize": ("\n20852163\n", "\n" + "9" * 40 + "\n"),
        "root-not-base64": ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "!" * 43 + "="),
        "root-url-safe-alphabet": ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "-_" * 21 + "A="),
        "root-unpadded": (
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        ),
        "root-31-bytes": ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", base64.b64encode(ROOT[:31]).decode()),
        "root-33-bytes": ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", base64.b64encode(ROOT + b"\x00").decode()),
        "root-non-canonical": (
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=",
        ),
        "missing-blank-line": ("\n\n\u2014", "\n\u2014"),
        "crlf-line-endings": ("\n", "\r\n"),
        "carriage-return-in-origin": (LOG_NAME, LOG_NAME + "\r"),
        "tab-in-origin": (LOG_NAME, LOG_NAME + "\t"),
        "empty-origin": (LOG_NAME + "\n2", "\n2"),
        "hyphen-for-em-dash": ("\u2014", "-"),
        "en-dash-for-em-dash": ("\u2014", "\u2013"),
        "plus-in-key-name": ("\u2014 " + LOG_NAME, "\u2014 " + LOG_NAME + "+x"),
        "two-spaces": ("\u2014 ", "\u2014  "),
    }
    for case, (old, new) in hostile.items():
        assert old in good, case
        add(
            f"malformed/{case}",
            f"{case.replace('-', ' ')}: replace {old!r} by {new!r}.",
            good.replace(old, new),
            "malformed",
        )
    add("malformed/trailing-data", "Text after the last signature line's newline.", good + "junk", "malformed")
    add("malformed/no-final-newline", "The last signature line does not end in a newline.", good[:-1], "malformed")
    add(
        "malformed/trailing-blank-line",
        "A blank line after the signatures: no signature follows it.",
        good + "\n",
        "malformed",
    )
    add("malformed/no-signatures", "The note text and the blank line only.", body + "\n", "malformed")
    add("malformed/body-only", "The note text only.", body, "malformed")
    add("malformed/two-lines", "Origin and size only.", f"{LOG_NAME}\n1\n\n" + log_line, "malformed")
    add(
        "malformed/empty-extension-line",
        "An empty line between the root and an extension line.",
        body + "\next\n\n" + log_line,
        "malformed",
    )
    add(
        "malformed/unicode-space-in-key-name",
        "A no-break space in the key name.",
        good.replace(f" {LOG_NAME} ", f" {LOG_NAME}\u00a0x "),
        "malformed",
    )
    add(
        "malformed/signature-key-id-only",
        "A signature of 4 bytes: a key id and nothing signed.",
        body + "\n" + f"\u2014 {LOG_NAME} AQIDBA==\n",
        "malformed",
    )
    add(
        "malformed/signature-not-base64",
        "The signature is not base64.",
        body + "\n" + f"\u2014 {LOG_NAME} ***\n",
        "malformed",
    )
    add(
        "malformed/too-many-signatures",
        f"{notes.MAX_SIGNATURES + 1} signature lines.",
        body + "\n" + f"\u2014 stranger.example {stranger}\n" * (notes.MAX_SIGNATURES + 1),
        "malformed",
    )
    return {
        "format": "civicvault checkpoint notes, format 2 (docs/ledger-format.md, section 6)",
        "log": {"name": LOG_NAME, "public_key": log.public_key.hex(), "seed": bytes(range(32)).hex()},
        "witness": {"name": WITNESS_NAME, "public_key": witness.public_key.hex(), "seed": bytes(range(32, 64)).hex()},
        "vectors": vectors,
    }


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text(encoding="utf-8") == text else 1)
    OUT.write_text(text, encoding="utf-8")
