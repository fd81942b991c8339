"""The ledger: the verifiable Merkle log every action is recorded in.

Domain events and how they are committed (``events``, ``ledger``), signed
checkpoints
(``checkpoints``) and witness cosignatures (``witnesses``). Its byte formats are
in docs/ledger-format.md.

May import: ``core``, ``storage``, ``crypto``.
"""
