"""The anchor contract on an EVM chain, through web3's JSON-RPC client.

The only module that imports ``web3``. Every call has a timeout; a node that
cannot be reached raises ``ChainUnavailable`` (the background anchorer backs
off and retries), a refusal by the contract raises ``AnchorRefused`` naming
the contract's error. Transactions are signed locally (``Signer``) and sent
raw, so the node never holds the key; EIP-1559 fees when the node supports
them, a legacy gas price otherwise (many permissioned networks run at 0).
"""

import json
import time
from dataclasses import dataclass
from importlib.resources import files

from vault.anchoring.settings import Signer
from vault.core.errors import VaultError


class AnchorError(VaultError):
    """Anchoring failed for a reason the operator must look at."""

    code = "anchor-error"


class ChainUnavailable(AnchorError):
    """The node did not answer (down, unreachable or too slow): try again later."""

    code = "chain-unavailable"


class AnchorRefused(AnchorError):
    """The contract or the node refused the transaction."""

    code = "anchor-refused"


def artifact() -> dict:
    """The compiled contract (ABI and bytecode), shipped as package data."""
    return json.loads((files("vault.anchoring") / "CheckpointAnchor.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Sent:
    """A mined transaction."""

    tx_hash: bytes
    block_number: int
    block_hash: bytes
    gas_used: int
    contract: str | None = None  # for a deployment


@dataclass(frozen=True)
class OnChain:
    """What the contract holds for one (origin, size)."""

    root: bytes
    block_number: int
    timestamp: int

    @property
    def present(self) -> bool:
        return any(self.root)


@dataclass(frozen=True)
class Logged:
    """One ``Anchored`` event."""

    tree_size: int
    root: bytes
    tx_hash: bytes
    block_number: int


class Chain:
    """A JSON-RPC node and, once an address is given, the anchor contract on it."""

    def __init__(self, rpc_url: str, *, contract: str | None = None, timeout: int = 60, confirmations: int = 0) -> None:
        from web3 import HTTPProvider, Web3

        self._artifact = artifact()
        self.w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": min(timeout, 30)}))
        self.timeout = timeout
        self.confirmations = confirmations
        self.address = Web3.to_checksum_address(contract) if contract else None
        self._contract = self.w3.eth.contract(address=self.address, abi=self._artifact["abi"]) if contract else None
        self._url_for_messages = _redact(rpc_url)

    # -- plumbing -------------------------------------------------------------

    def _call(self, what: str, fn, *args, **kwargs):
        """Run one RPC call; turn transport failures into ChainUnavailable and refusals into AnchorRefused."""
        import requests
        from web3 import exceptions as w3e

        try:
            return fn(*args, **kwargs)
        except (requests.RequestException, OSError, w3e.ProviderConnectionError, w3e.TimeExhausted) as exc:
            raise ChainUnavailable(
                f"The Ethereum node at {self._url_for_messages} did not answer ({what}: {type(exc).__name__})."
            ) from None
        except w3e.ContractLogicError as exc:  # ContractCustomError is one
            raise AnchorRefused(f"The anchor contract refused {what}: {self._decode_error(exc.data)}.") from None
        except w3e.Web3RPCError as exc:
            message = exc.rpc_response.get("error", {}).get("message") if isinstance(exc.rpc_response, dict) else None
            raise AnchorRefused(f"The Ethereum node refused {what}: {message or type(exc).__name__}.") from None

    def _decode_error(self, data) -> str:
        """The contract's custom error by name, from the revert data (nodes put it in different places)."""
        if isinstance(data, dict):  # ganache: {"result": "0x...", ...}
            data = data.get("result") or data.get("data") or ""
        data = data if isinstance(data, str) else ""
        from eth_abi import decode
        from eth_utils import function_abi_to_4byte_selector

        for item in self._artifact["abi"]:
            if item.get("type") != "error":
                continue
            selector = "0x" + function_abi_to_4byte_selector(item).hex()
            if data.startswith(selector):
                try:
                    values = decode([i["type"] for i in item["inputs"]], bytes.fromhex(data[10:]))
                except Exception:
                    return item["name"]
                shown = ", ".join(v.hex() if isinstance(v, bytes) else str(v) for v in values)
                return f"{item['name']}({shown})"
        return "it reverted"

    def chain_id(self) -> int:
        return int(self._call("eth_chainId", lambda: self.w3.eth.chain_id))

    def block_number(self) -> int:
        return int(self._call("eth_blockNumber", lambda: self.w3.eth.block_number))

    def has_code(self) -> bool:
        return bool(self._call("eth_getCode", self.w3.eth.get_code, self._need_contract().address))

    def _need_contract(self):
        if self._contract is None:
            raise AnchorError("No anchor contract address is configured.")
        return self._contract

    def _send(self, signer: Signer, build, what: str) -> Sent:
        """Build with the node's nonce and fees, sign locally, send raw, wait for mining and confirmations."""
        nonce = self._call("eth_getTransactionCount", self.w3.eth.get_transaction_count, signer.address, "pending")
        transaction = self._call(what, build, {"from": signer.address, "nonce": nonce, "chainId": self.chain_id()})
        raw = signer.sign_transaction(transaction)
        tx_hash = self._call(what, self.w3.eth.send_raw_transaction, raw)
        receipt = self._call(
            what, self.w3.eth.wait_for_transaction_receipt, tx_hash, timeout=self.timeout, poll_latency=0.2
        )
        if receipt["status"] != 1:
            raise AnchorRefused(f"The transaction {bytes(tx_hash).hex()} for {what} was mined but failed.")
        deadline = time.monotonic() + self.timeout
        while self.confirmations and self.block_number() < receipt["blockNumber"] + self.confirmations:
            if time.monotonic() > deadline:
                raise ChainUnavailable(
                    f"{what}: {self.confirmations} confirmations did not come within {self.timeout} s."
                )
            time.sleep(1.0)
        return Sent(
            tx_hash=bytes(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]),
            block_hash=bytes(receipt["blockHash"]),
            gas_used=int(receipt["gasUsed"]),
            contract=receipt.get("contractAddress"),
        )

    # -- the contract -----------------------------------------------------------

    def deploy(self, signer: Signer) -> Sent:
        factory = self.w3.eth.contract(abi=self._artifact["abi"], bytecode=self._artifact["bytecode"])
        sent = self._send(signer, factory.constructor().build_transaction, "the deployment")
        if not sent.contract:
            raise AnchorError("The deployment was mined but created no contract.")
        from web3 import Web3

        self.address = Web3.to_checksum_address(sent.contract)
        self._contract = self.w3.eth.contract(address=self.address, abi=self._artifact["abi"])
        return sent

    def anchor(self, signer: Signer, *, origin: str, tree_size: int, root: bytes) -> Sent:
        function = self._need_contract().functions.anchor(origin, tree_size, root)
        return self._send(signer, function.build_transaction, f"the anchor of size {tree_size}")

    def owner(self) -> str:
        return self._call("owner()", self._need_contract().functions.owner().call)

    def anchor_of(self, origin: str, tree_size: int) -> OnChain:
        root, block_number, timestamp = self._call(
            f"anchorOf({tree_size})", self._need_contract().functions.anchorOf(origin, tree_size).call
        )
        return OnChain(root=bytes(root), block_number=int(block_number), timestamp=int(timestamp))

    def latest(self, origin: str) -> tuple[int, bytes]:
        size, root = self._call("latest()", self._need_contract().functions.latest(origin).call)
        return int(size), bytes(root)

    def logged(self, origin: str, *, from_block: int = 0) -> list[Logged]:
        """Every ``Anchored`` event of ``origin``, oldest first."""
        from web3 import Web3

        event = self._need_contract().events.Anchored
        logs = self._call(
            "eth_getLogs",
            event.get_logs,
            from_block=from_block,
            to_block="latest",
            argument_filters={"originHash": Web3.keccak(text=origin)},
        )
        return [
            Logged(
                tree_size=int(log["args"]["treeSize"]),
                root=bytes(log["args"]["root"]),
                tx_hash=bytes(log["transactionHash"]),
                block_number=int(log["blockNumber"]),
            )
            for log in logs
        ]

    def receipt(self, tx_hash: bytes):
        """The receipt of a transaction, or None when the node does not know it."""
        from web3 import exceptions as w3e

        try:
            return self._call("eth_getTransactionReceipt", self.w3.eth.get_transaction_receipt, tx_hash)
        except AnchorRefused:
            return None
        except w3e.TransactionNotFound:
            return None


def _redact(url: str) -> str:
    """Scheme, host and port only: API keys often sit in the path, the query or the user part."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"
