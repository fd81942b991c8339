"""Identity: principals and their API tokens.

Creating principals, issuing, checking and revoking tokens (``principals``);
the Ed25519 keys with which issuers sign records (``issuer_keys``).
The ``Caller`` of a request lives in ``core`` so that lower contexts can name
it.

May import: ``core``, ``storage``, ``ledger``, ``keys``.
"""
