"""Verification: recomputing the ledger and checking residents' bundles.

``verify`` recomputes every entry, node, checkpoint, erasure and anchor from the
rows and names the first bad one; ``incremental`` checks only what is new since
a saved verify state (its root, a consistency proof, then the new entries);
``bundles`` exports a resident's events with proofs and checks such a bundle
offline with public keys only.

May import: every context below it, ``anchoring`` included.
"""
