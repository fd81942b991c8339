"""Attestations: a yes/no answer about a resident's records, signed by the vault, without the records.

- ``predicates``: the catalogue, each a small pure function over decoded
  records and their provenance (docs/attestations.md, "Predicates").

May import: ``core``, ``storage``, ``ledger``, ``keys``, ``identity``,
``consent``, ``records`` (docs/architecture.md, "Layout").
"""
