"""Compliance: the officers' view of the whole trail.

Searching events (``audit_search``) and exporting them as CSV (``audit_csv``),
flags over the trail (``audit_flags``) and the break-glass review queue
(``break_glass_review``).

May import: ``core``, ``storage``, ``ledger``, ``keys``, ``identity``,
``consent``, ``records``, ``rights``.
"""
