"""Records: residents' sealed records and their versions.

Create, list, read and update records, each read or write authorised by
``consent`` and recorded in the ledger in the same transaction (``records``);
HL7 FHIR R4 renderings of records and grants (``fhir``).

May import: ``core``, ``storage``, ``ledger``, ``keys``, ``identity``, ``consent``.
"""
