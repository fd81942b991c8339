"""Search columns for the compliance trail, derived from an event's kind and data.

Compliance officers search events by outcome, purpose and category. Those
facts sit in each event's ``data`` JSON, which neither SQLite nor PostgreSQL
can index portably, so ``vault.ledger.events.emit`` also stores them in plain
indexed columns (``events.outcome``, ``events.purpose``) and a side table
(``event_categories``, one row per category). Migration 0004 fills them for
events written before it, with these same functions.

This module is pure: the derivation depends on nothing but its arguments, so
the migration and ``emit`` can never disagree.
"""

from collections.abc import Mapping
from typing import Any

from vault.core.vocabulary import CATEGORIES, CATEGORY_FAMILIES, PURPOSES

OUTCOMES = ("permitted", "refused")
# The kinds that have an outcome; every other kind has none (``outcome_of``). Verify reads it as a dict.
OUTCOME_BY_KIND = {"access.permitted": "permitted", "access.refused": "refused"}
_CATEGORY_VALUES = frozenset(CATEGORIES) | {f"{family}.*" for family in CATEGORY_FAMILIES}


def outcome_of(kind: str) -> str | None:
    """``permitted`` or ``refused`` for an access decision; ``None`` for other kinds."""
    return OUTCOME_BY_KIND.get(kind)


def purpose_of(data: Mapping[str, Any]) -> str | None:
    purpose = data.get("purpose")
    return purpose if purpose in PURPOSES else None


def categories_of(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The categories (or families, ``health.*``) an event names, sorted, without repeats.

    ``category`` holds one (``*`` for a listing of everything, which names
    none), ``categories`` a list (a grant, a request, a listing's result).
    """
    found = set()
    single = data.get("category")
    if isinstance(single, str) and single in _CATEGORY_VALUES:
        found.add(single)
    several = data.get("categories")
    if isinstance(several, list):
        found.update(c for c in several if isinstance(c, str) and c in _CATEGORY_VALUES)
    return tuple(sorted(found))


def columns_of(kind: str, data: Mapping[str, Any]) -> dict[str, str | None]:
    """The ``events`` search columns for an event of ``kind`` with ``data``."""
    return {"outcome": outcome_of(kind), "purpose": purpose_of(data)}


def category_matches_filter(stored: str, wanted: str) -> bool:
    """Does an event naming ``stored`` concern the category filter ``wanted``?

    ``wanted`` exact (``health.labs``): the event names it, or the family that
    covers it (a grant of ``health.*``). ``wanted`` a family (``health.*``):
    the event names anything in that family.
    """
    if wanted.endswith(".*"):
        return stored.startswith(wanted[:-1])
    return stored == wanted or (stored.endswith(".*") and wanted.startswith(stored[:-1]))


def category_filter_values(wanted: str) -> tuple[str, ...]:
    """Every stored value that ``category_matches_filter(value, wanted)`` accepts, for an SQL ``IN``."""
    return tuple(sorted(value for value in _CATEGORY_VALUES if category_matches_filter(value, wanted)))
