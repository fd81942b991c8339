"""Keys: the key hierarchy below the master key.

Subject keys and the sealing of names and texts under them (``keys``), the
per-resident secrets that erasure destroys (``subject_secrets``), master key
rotation (``key_rotation``), the ledger's checkpoint signing key
(``ledger_key``), the vault's attestation signing key (``attestation_key``)
and what they all look like now (``key_status``).

May import: ``core``, ``storage``, ``ledger``, ``crypto``.
"""
