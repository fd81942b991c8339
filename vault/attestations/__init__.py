"""Attestations: a yes/no answer about a resident's records, signed by the vault, without the records.

- ``predicates``: the catalogue, each a small pure function over decoded
  records and their provenance (docs/attestations.md, "Predicates");
- ``documents``: the resident's current record versions as predicates see
  them, with their provenance;
- ``credential``: the W3C Verifiable Credential an attestation is, its
  signature and its verification;
- ``attest``: the service that issues one, in the caller's transaction;
- ``obtained``: what a requester obtained, to list and fetch again.

May import: ``core``, ``storage``, ``ledger``, ``keys``, ``identity``,
``consent``, ``records`` (docs/architecture.md, "Layout").
"""
