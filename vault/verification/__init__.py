"""Verification: recomputing the ledger and checking residents' bundles.

``verify`` recomputes every entry, node, checkpoint, erasure and anchor from the
rows and names the first bad one; ``bundles`` exports a resident's events with
proofs and checks such a bundle offline with public keys only.

May import: every context below it, ``anchoring`` included.
"""
