"""``civicvault witness``: an independent witness that checks and cosigns checkpoints.

Each round the witness fetches the vault's latest checkpoint, checks the
node's signature against the log key it pinned, and checks that the new
checkpoint extends the last one it cosigned: a smaller size is a rollback, the
same size with another root or a failing RFC 9162 consistency proof is a
split view. It refuses those loudly and keeps its state; otherwise it signs
the checkpoint's cosigned message (a header line, then the note text: never
the bytes the log signs) with its own BLS key and posts the cosignature.

State lives in its own directory (never the vault's): ``witness.key`` (BLS
seed, mode 0600) and ``state.json`` (the last cosigned size and root). The
first checkpoint a witness sees is trusted on first use.

The bearer token is the witness principal's credential: ``civicvault
witness`` takes it from ``CIVICVAULT_WITNESS_TOKEN`` or a file, never from
the command line, where every user of the machine could read it. It is
checked here to be one header-safe word, and never appears in a message.
"""

import base64
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from crypto import checkpoint as notes
from crypto import merkle
from crypto.bls import SigningKey
from crypto.errors import ProofError, SignatureError


class WitnessError(Exception):
    """The witness could not do its round (network, configuration)."""


class Refused(Exception):
    """The vault showed a checkpoint the witness must not cosign."""


@dataclass(frozen=True)
class Round:
    tree_size: int
    root_hash: str
    cosigners: int
    new: bool


class WitnessClient:
    def __init__(self, *, url: str, token: str, log_key: bytes, state_dir: Path, timeout: float = 30) -> None:
        # RFC 6750 b64token characters, and a bound: a stray newline would split the Authorization header.
        if not token or len(token) > 512 or not all(c.isascii() and (c.isalnum() or c in "-._~+/=") for c in token):
            raise WitnessError("The witness token is not a bearer token: check CIVICVAULT_WITNESS_TOKEN or the file.")
        self.url = url.rstrip("/")
        self.token = token
        self.log_key = log_key
        self.state_dir = state_dir
        self.timeout = timeout
        self.key = self._load_key()
        self._registered = False

    # --- local state -----------------------------------------------------
    def _load_key(self) -> SigningKey:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.state_dir / "witness.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(base64.b64encode(os.urandom(32)).decode() + "\n")
        try:
            return SigningKey(base64.b64decode(path.read_text().strip(), validate=True))
        except ValueError:
            raise WitnessError(f"{path} is not a witness key.") from None

    def _state(self) -> dict | None:
        path = self.state_dir / "state.json"
        if not path.exists():
            return None
        try:
            state = json.loads(path.read_text())
            return {"tree_size": int(state["tree_size"]), "root_hash": str(state["root_hash"])}
        except (ValueError, KeyError, TypeError):
            raise WitnessError(f"{path} is not a witness state file.") from None

    def _save(self, tree_size: int, root_hash: str) -> None:
        path = self.state_dir / "state.json"
        tmp = path.with_name("state.json.tmp")
        tmp.write_text(json.dumps({"tree_size": tree_size, "root_hash": root_hash}) + "\n")
        os.replace(tmp, path)

    # --- HTTP ----------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
                return json.loads(payload) if payload else {}
        except urllib.error.HTTPError as exc:
            try:
                problem = json.loads(exc.read())
                detail = problem.get("detail", exc.reason)
            except ValueError:
                detail = exc.reason
            if exc.code == 409:
                raise Refused(f"the vault refused the cosignature: {detail}") from None
            raise WitnessError(f"{method} {path} answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise WitnessError(f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}") from None

    def register(self) -> None:
        if not self._registered:
            self._call(
                "POST",
                "/api/v1/ledger/witnesses",
                {"public_key": self.key.public_key.hex(), "proof_of_possession": self.key.prove_possession().hex()},
            )
            self._registered = True

    # --- one round -------------------------------------------------------------
    def round(self) -> Round:
        served = self._call("GET", "/api/v1/ledger/checkpoint")
        try:
            # Lines of other keys (other witnesses) are ignored; a checkpoint signed before
            # checkpoint format 2 names the log's key by its format-1 key id, over the same bytes.
            body, _ = notes.verify_note(served["note"], public_key=self.log_key, accept_legacy_key_id=True)
        except (KeyError, TypeError, SignatureError):
            raise Refused("the checkpoint is not signed by the pinned log key") from None
        state = self._state()
        root_hex = body.root.hex()
        if state is not None:
            if body.size < state["tree_size"]:
                raise Refused(
                    f"rollback: the vault shows size {body.size}, this witness cosigned size {state['tree_size']}"
                )
            if body.size == state["tree_size"] and root_hex != state["root_hash"]:
                raise Refused(f"split view: two different roots for size {body.size}")
            if body.size > state["tree_size"]:
                proof = self._call(
                    "GET", f"/api/v1/ledger/proofs/consistency?first={state['tree_size']}&second={body.size}"
                )
                try:
                    merkle.verify_consistency(
                        state["tree_size"],
                        body.size,
                        bytes.fromhex(state["root_hash"]),
                        body.root,
                        [bytes.fromhex(h) for h in proof["consistency_path"]],
                    )
                except (ProofError, KeyError, ValueError):
                    raise Refused(
                        f"split view: size {body.size} does not extend the size {state['tree_size']} this witness "
                        "cosigned"
                    ) from None
        self.register()
        signature = notes.cosign(body, key=self.key)
        answer = self._call(
            "POST",
            "/api/v1/ledger/cosignatures",
            {"tree_size": body.size, "root_hash": root_hex, "signature": base64.b64encode(signature).decode()},
        )
        new = state is None or state["tree_size"] != body.size
        self._save(body.size, root_hex)
        return Round(tree_size=body.size, root_hash=root_hex, cosigners=answer.get("cosigners", 0), new=new)
