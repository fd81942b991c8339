"""CivicVault's domain and services, by context.

Each subpackage is one context, and its ``__init__`` says what it may import.
From the bottom up: ``core``, ``storage``, ``ledger``, ``keys``, ``identity``,
``consent``, ``records``, ``rights``, ``compliance``, ``anchoring``,
``verification``; ``runtime`` (the ``Vault`` object) assembles them, and ``cli``
is the command line on top. ``witness`` is another party's program and imports
only ``crypto``. docs/architecture.md lists the allowed arrows and
tests/test_layout.py keeps them. This package never imports Flask.
"""
