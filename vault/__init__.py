"""CivicVault's domain and services.

Principals, records, the keyring, storage and configuration. This package never
imports Flask: the API in ``api/`` and the command line in ``vault.cli`` are two
shells around the same services, each of which takes a SQLAlchemy ``Session``.
"""
