"""Compliance: the officers' view of the whole trail.

Searching events (``audit_search``) and exporting them as CSV (``audit_csv``),
flags over the trail (``audit_flags``), the break-glass review queue
(``break_glass_review``), looking a resident up by exact login or name
(``lookup``, logged) and the counts the compliance pages show (``overview``).

May import: ``core``, ``storage``, ``ledger``, ``keys``, ``identity``,
``consent``, ``records``, ``rights``.
"""
