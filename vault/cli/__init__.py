"""The command line: ``civicvault`` and its commands.

The entry point and general commands (``main``), key commands (``keys``),
anchoring commands (``anchor``), the demo data set (``demo``) and the gunicorn
launcher (``server``). Heavy libraries (py-ecc, web3, Flask) are imported inside
the commands that need them, so ``civicvault --help`` starts fast.

May import: all of ``vault``. The API is named by string only (``api:create_app()``).
"""
