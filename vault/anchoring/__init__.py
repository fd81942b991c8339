"""Anchoring ledger checkpoints on an EVM chain (optional; ``pip install .[ethereum]``).

Signed and cosigned checkpoints protect the log within the consortium; an
anchor puts (origin, tree size, root) of a checkpoint into a write-once
contract on an Ethereum-compatible chain, so that a rewrite of the history is
visible to anyone who can read that chain. The vault works fully without it:
nothing here is imported unless anchoring is configured or asked for, and
``web3`` is only imported by ``vault.anchoring.chain``.

- ``settings``: where the node, the contract and the sending key are;
- ``chain``: the contract and the JSON-RPC node, through web3;
- ``service``: anchor the latest checkpoint, record and list anchors;
- ``check``: what ``civicvault verify`` asks of every anchor;
- ``proofs``: inclusion and consistency proofs against the latest anchored size;
- ``background``: periodic anchoring in a server worker, with back-off.

Its commands live in ``vault.cli.anchor``.

May import: ``core``, ``storage``, ``ledger``.

docs/anchoring.md explains the design, the cost and production set-up.
"""
