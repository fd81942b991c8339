"""Fault tests: a real ``civicvault serve`` on 127.0.0.1 killed, restored and checked (marked slow)."""
