"""The catalogue questions a clinic or landlord may ask about a resident, as forms on the resident page.

``ask_forms(grants)``: for each predicate of the catalogue
(vault/attestations/predicates.py), whether the caller's active ``attest``
grants cover every category it reads, and for which purposes. The forms
themselves post to ``provider_attest.ask``.
"""

from dataclasses import dataclass
from typing import Any

from vault.attestations.predicates import CATALOGUE
from vault.consent.consent import GrantView
from vault.core.vocabulary import category_matches

QUESTIONS = {
    "income_at_least": "Is the yearly income at least a multiple of the rent, or at least an amount?",
    "no_eviction_within": "Was there no eviction in the last years?",
    "adult": "Is the resident 18 or older?",
}


@dataclass(frozen=True)
class AskForm:
    """One catalogue question the caller may ask about this resident, for the purposes its grants name."""

    predicate: str
    question: str
    purposes: tuple[str, ...]


def ask_forms(grants: list[GrantView]) -> list[AskForm]:
    """The questions the caller's active ``attest`` grants cover (each of the predicate's categories)."""
    forms = []
    for name, chosen in CATALOGUE.items():
        purposes = sorted(
            {
                g.purpose
                for g in grants
                if g.status == "active"
                and "attest" in g.actions
                and all(any(category_matches(p, c) for p in g.categories) for c in chosen.categories)
            }
        )
        if purposes:
            forms.append(AskForm(name, QUESTIONS[name], tuple(purposes)))
    return forms


def describe(name: str, parameters: dict[str, Any]) -> str:
    return CATALOGUE[name].describe(parameters) if name in CATALOGUE else name
