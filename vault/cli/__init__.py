"""The command line: ``civicvault`` and its commands.

The entry point and general commands (``main``), key commands (``keys``),
anchoring commands (``anchor``), the demo data set (``demo``), the socket
``serve`` binds before anything else (``listen``) and the gunicorn launcher
(``server``). Heavy libraries (SQLAlchemy, py-ecc, web3, gunicorn, Flask) are
imported inside the commands that need them, so ``civicvault --help`` starts
fast; tests/vault/cli/test_startup.py keeps it so.

May import: all of ``vault``. The API is named by string only (``api:create_app()``).
"""
