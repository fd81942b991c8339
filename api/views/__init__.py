"""Thin views, one module per context: parse, call one service, serialise.

flask-smorest parses the query or body with the operation's schema; the view
calls the service inside ``with writing() as call`` (or ``reading()``, for a
read-only transaction: api/context.py) and returns what the service returned,
which the response schema serialises after the transaction has ended. Each
operation lists its error statuses with ``blp.problems(...)`` and carries the
examples of api/schemas/.
"""
