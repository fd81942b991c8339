"""The witness: another party's program, apart from the server's contexts.

A witness fetches the vault's checkpoints, checks that each extends the one it
saw before, and cosigns it. It runs on the witness's own machine, so it speaks
HTTP and the ledger's public formats only.

May import: ``crypto`` and the standard library. Nothing else in ``vault``.
"""
