"""Consent: who may do what with a resident's records.

The pure decision function (``policy``), the facts it is given and the access
decision recorded in the ledger (``access``), the shared authorisation helpers
(``authz``), grants (``consent``), delegations, access requests, break-glass,
and the record of sealed texts shown to someone (``openings``). Grants render
as FHIR R4 ``Consent`` in ``vault.records.fhir``.

May import: ``core``, ``storage``, ``ledger``, ``keys``, ``identity``.
"""
