"""The ledger: the verifiable Merkle log every action is recorded in.

Domain events and how they are committed (``events``, ``ledger``), the
sequencer that gives pending events their indices (``sequencer``), signed
checkpoints (``checkpoints``) and witness cosignatures (``witnesses``). Its
byte formats and sequencing rules are in docs/ledger-format.md.

May import: ``core``, ``storage``, ``crypto``.
"""
