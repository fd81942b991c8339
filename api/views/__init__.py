"""Thin views: parse, call one service inside one transaction, serialise."""
