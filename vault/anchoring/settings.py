"""Anchoring settings: the node, the contract, the sending key, and when to anchor.

All from the environment (``CIVICVAULT_ANCHOR_*``) and the data home:

- ``CIVICVAULT_ANCHOR_RPC_URL``: the node's JSON-RPC URL; unset, nothing is anchored;
- ``CIVICVAULT_ANCHOR_PRIVATE_KEY``: hex of the sending account's key, or else
  the key file ``anchor.key`` in the home (mode 0600, ``civicvault anchor key``);
- ``CIVICVAULT_ANCHOR_CONTRACT``: the contract's address, or else the one
  ``civicvault anchor deploy`` recorded in ``anchor-contract.json`` in the home;
- ``CIVICVAULT_ANCHOR_CHAIN_ID``: refuse to send to a node on another chain;
- ``CIVICVAULT_ANCHOR_CONFIRMATIONS``: blocks to wait after the anchor's block;
- ``CIVICVAULT_ANCHOR_EVERY`` / ``CIVICVAULT_ANCHOR_MINUTES``: anchor in the
  background once this many checkpoints are new, or once the last anchor is
  this old and a newer checkpoint exists (0 and 0: never in the background);
- ``CIVICVAULT_ANCHOR_TIMEOUT``: seconds to wait for the node and for mining.

The private key is held in a ``Signer`` whose representation shows only the
address; it is never logged, printed or put into an error message.
"""

import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vault.core.errors import ConfigError

KEY_FILE = "anchor.key"
CONTRACT_FILE = "anchor-contract.json"
KEY_FORMAT = "civicvault-anchor-key/1"
CONTRACT_FORMAT = "civicvault-anchor-contract/1"
_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _whole(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < minimum:
        raise ConfigError(f"{name} must be a whole number, at least {minimum}.")
    return int(value)


def _parse_key(text: str, where: str) -> bytes:
    text = text.strip()
    if not _HEX_KEY.match(text):
        raise ConfigError(f"{where} must be 32 bytes of hex (64 hex digits, optionally after 0x).")
    key = bytes.fromhex(text[2:] if text.startswith("0x") else text)
    if not any(key):
        raise ConfigError(f"{where} is all zero.")
    return key


class Signer:
    """The sending account's key; its representation shows the address only."""

    __slots__ = ("_account",)

    def __init__(self, private_key: bytes) -> None:
        from eth_account import Account

        try:
            self._account = Account.from_key(private_key)
        except Exception:  # the message could quote the key: say nothing of it
            raise ConfigError("The anchoring key is not a valid secp256k1 private key.") from None

    @property
    def address(self) -> str:
        return self._account.address

    def sign_transaction(self, transaction: dict) -> bytes:
        return bytes(self._account.sign_transaction(transaction).raw_transaction)

    def __repr__(self) -> str:
        return f"Signer({self.address})"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("an anchoring key is not to be pickled")


@dataclass(frozen=True)
class ContractRecord:
    """The deployed contract as ``anchor deploy`` recorded it in the home."""

    address: str
    chain_id: int | None = None
    block_number: int = 0
    tx_hash: str | None = None


@dataclass(frozen=True)
class AnchorSettings:
    home: Path
    rpc_url: str | None = None
    contract: str | None = None  # checksummed or not; the chain module checksums it
    contract_block: int = 0  # where the contract was deployed, to search its events from
    chain_id: int | None = None  # expected chain id, when set
    confirmations: int = 0
    every: int = 0  # checkpoints
    minutes: int = 0
    timeout: int = 60
    _key_hex: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_env(cls, home: Path, environ: Mapping[str, str] | None = None) -> "AnchorSettings":
        env = os.environ if environ is None else environ
        contract = (env.get("CIVICVAULT_ANCHOR_CONTRACT") or "").strip() or None
        contract_block = 0
        if contract is not None:
            if not _ADDRESS.match(contract):
                raise ConfigError("CIVICVAULT_ANCHOR_CONTRACT must be a 0x-prefixed 20-byte hex address.")
        else:
            record = read_contract_record(home)
            if record is not None:
                contract, contract_block = record.address, record.block_number
        chain_id = _whole(env, "CIVICVAULT_ANCHOR_CHAIN_ID", 0)
        rpc_url = (env.get("CIVICVAULT_ANCHOR_RPC_URL") or "").strip() or None
        if rpc_url is not None and not re.match(r"^https?://[^\s/]+", rpc_url):
            raise ConfigError("CIVICVAULT_ANCHOR_RPC_URL must be an http:// or https:// URL.")
        return cls(
            home=home,
            rpc_url=rpc_url,
            contract=contract,
            contract_block=contract_block,
            chain_id=chain_id or None,
            confirmations=_whole(env, "CIVICVAULT_ANCHOR_CONFIRMATIONS", 0),
            every=_whole(env, "CIVICVAULT_ANCHOR_EVERY", 0),
            minutes=_whole(env, "CIVICVAULT_ANCHOR_MINUTES", 0),
            timeout=_whole(env, "CIVICVAULT_ANCHOR_TIMEOUT", 60, minimum=1),
            _key_hex=(env.get("CIVICVAULT_ANCHOR_PRIVATE_KEY") or None),
        )

    @property
    def key_file(self) -> Path:
        return self.home / KEY_FILE

    @property
    def background(self) -> bool:
        """Anchor periodically in the server's workers."""
        return self.rpc_url is not None and (self.every > 0 or self.minutes > 0)

    def require_rpc(self) -> str:
        if self.rpc_url is None:
            raise ConfigError("Anchoring is not configured: set CIVICVAULT_ANCHOR_RPC_URL to the node's JSON-RPC URL.")
        return self.rpc_url

    def require_contract(self) -> str:
        if self.contract is None:
            raise ConfigError("No anchor contract: run 'civicvault anchor deploy' or set CIVICVAULT_ANCHOR_CONTRACT.")
        return self.contract

    def signer(self) -> Signer:
        """The sending account: the environment's key, else the key file (which must be 0600)."""
        if self._key_hex is not None:
            return Signer(_parse_key(self._key_hex, "CIVICVAULT_ANCHOR_PRIVATE_KEY"))
        path = self.key_file
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise ConfigError(
                f"No anchoring key: set CIVICVAULT_ANCHOR_PRIVATE_KEY or run 'civicvault anchor key' to create {path}."
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"The anchoring key file {path} is readable by others: make it mode 0600.")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != KEY_FORMAT or not isinstance(data.get("private_key"), str):
                raise ValueError
        except (ValueError, AttributeError, OSError):
            raise ConfigError(f"The anchoring key file {path} is not a CivicVault anchoring key.") from None
        return Signer(_parse_key(data["private_key"], f"The key in {path}"))


def create_key_file(home: Path) -> tuple[Path, str, bool]:
    """Create ``anchor.key`` (0600) with a fresh key if missing; (path, address, created)."""
    path = home / KEY_FILE
    if path.exists():
        return path, AnchorSettings(home=home).signer().address, False
    key = os.urandom(32)
    payload = json.dumps({"format": KEY_FORMAT, "private_key": key.hex()}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    return path, Signer(key).address, True


def read_contract_record(home: Path) -> ContractRecord | None:
    path = home / CONTRACT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise ConfigError(f"The anchor contract file {path} is not readable JSON.") from None
    if (
        not isinstance(data, dict)
        or data.get("format") != CONTRACT_FORMAT
        or not _ADDRESS.match(str(data.get("address", "")))
    ):
        raise ConfigError(f"The anchor contract file {path} is not a CivicVault anchor contract record.")
    return ContractRecord(
        address=data["address"],
        chain_id=data.get("chain_id"),
        block_number=int(data.get("block_number") or 0),
        tx_hash=data.get("tx_hash"),
    )


def write_contract_record(home: Path, record: ContractRecord) -> Path:
    """Record the deployed contract in the home (replacing any earlier record atomically)."""
    path = home / CONTRACT_FILE
    temporary = path.with_name(path.name + ".tmp")
    payload = (
        json.dumps(
            {
                "format": CONTRACT_FORMAT,
                "address": record.address,
                "chain_id": record.chain_id,
                "block_number": record.block_number,
                "tx_hash": record.tx_hash,
            },
            indent=2,
        )
        + "\n"
    )
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(payload)
    os.replace(temporary, path)
    return path
