"""Records: residents' sealed records and their versions.

Create, list, read and update records, each read or write authorised by
``consent`` and recorded in the ledger in the same transaction (``records``);
issuers' signatures on the versions they write, and each version's provenance,
issued or self-asserted (``provenance``); HL7 FHIR R4 renderings of records,
grants and issued versions (``fhir``).

May import: ``core``, ``storage``, ``ledger``, ``keys``, ``identity``, ``consent``.
"""
