"""Core: what every context shares and nothing else.

Errors, ids, the clock, the vocabulary (roles, categories, purposes), content
checks, settings (``config``), the master key file, the ``Caller`` of a request,
and shared bounds (page sizes, validity windows).

May import: ``crypto`` and the standard library. Nothing else in ``vault``.
"""
