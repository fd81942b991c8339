"""Residents' rights: seeing, taking and erasing what is held about them.

The access log and the accounting of disclosures (``trail``), the export
(``export``) and crypto-shredding erasure (``erasure``); and the other side
of the trail, a clinic's or landlord's own accesses (``own_accesses``).

May import: ``core``, ``storage``, ``ledger``, ``keys``, ``identity``,
``consent``, ``records``.
"""
