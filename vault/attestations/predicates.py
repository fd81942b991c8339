"""The predicate catalogue: what an attestation may answer, each a small pure function.

An attestation answers one question from a fixed list, never an arbitrary
expression. Each predicate here:

- names the categories it reads (``categories``) and checks its parameters
  (``check``: exact keys and types, bounds), refusing anything else with
  ``InvalidInput``;
- answers from ``Document`` values (a decoded record version with its
  provenance) and ``today``, with no I/O: ``answer`` returns the boolean and
  the documents it used;
- counts only **issuer-verified** documents (a valid issuer signature by a
  key not revoked when it signed) unless the requester asked for
  self-asserted ones too (``include_self_asserted``), which the attestation
  then states.

The exact semantics of each are in docs/attestations.md ("Predicates"); the
tests in tests/vault/attestations/test_predicates.py pin them.

- ``income_at_least``: the gross annual income of the latest tax year among
  the counted ``tenancy.income`` income statements is at least ``amount``,
  or at least ``multiple`` x ``annual_rent``; same ``currency`` only. No
  counted statement: ``NoEvidence``.
- ``no_eviction_within``: no counted ``tenancy.rental-history`` record of
  ``type`` ``"eviction"`` has a ``date`` within the last ``years`` years
  (today included). True when there is none: an absence, so the
  attestation says which kinds of record were counted.
- ``adult``: the counted ``tenancy.identity`` record's ``date_of_birth`` is
  at least 18 years before today (a person born on 29 February comes of age
  on 1 March in a common year). No counted identity record, or two that
  disagree: ``NoEvidence``.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from vault.core.errors import Conflict, InvalidInput

MAX_AMOUNT = 10**12
MAX_YEARS = 100
MAX_MULTIPLE = 100
CURRENCY_LENGTH = 3


class NoEvidence(Conflict):
    """The question cannot be answered: no counted record holds what it needs."""

    code = "no-evidence"


@dataclass(frozen=True)
class Document:
    """One record version as a predicate sees it: its decoded content and who vouches for it."""

    record_id: str
    version: int
    category: str
    content: Mapping[str, Any]
    issuer_id: str | None  # None: self-asserted
    verified: bool  # an issuer signature the vault verified, by a key not revoked when it signed

    @property
    def counts_as_issued(self) -> bool:
        return self.issuer_id is not None and self.verified


@dataclass(frozen=True)
class Answer:
    result: bool
    used: tuple[Document, ...]


@dataclass(frozen=True)
class Predicate:
    name: str
    categories: tuple[str, ...]
    check: Callable[[Mapping[str, Any]], dict[str, Any]]
    answer: Callable[[Sequence[Document], dict[str, Any], date], Answer]
    describe: Callable[[dict[str, Any]], str]


# --- parameters -------------------------------------------------------------------------------


def _only(parameters: Mapping[str, Any], allowed: set[str], required: set[str]) -> None:
    if not isinstance(parameters, Mapping):
        raise InvalidInput("parameters must be a JSON object.")
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        raise InvalidInput(f"Unknown parameters: {', '.join(unknown)}.")
    missing = sorted(required - set(parameters))
    if missing:
        raise InvalidInput(f"Missing parameters: {', '.join(missing)}.")


def _positive(parameters: Mapping[str, Any], name: str, *, most: int, integer: bool = False) -> Decimal:
    value = parameters[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise InvalidInput(f"{name} must be a {'whole ' if integer else ''}number.")
    number = Decimal(str(value))
    if not number.is_finite() or number <= 0 or number > most:
        raise InvalidInput(f"{name} must be more than 0 and at most {most}.")
    return number


def _currency(parameters: Mapping[str, Any]) -> str:
    value = parameters.get("currency")
    if not isinstance(value, str) or len(value) != CURRENCY_LENGTH or not value.isascii() or not value.isupper():
        raise InvalidInput("currency must be an ISO 4217 code such as EUR.")
    return value


def _check_income(parameters: Mapping[str, Any]) -> dict[str, Any]:
    _only(parameters, {"amount", "multiple", "annual_rent", "currency"}, {"currency"})
    currency = _currency(parameters)
    if "amount" in parameters:
        if "multiple" in parameters or "annual_rent" in parameters:
            raise InvalidInput("Give either amount, or multiple and annual_rent, not both.")
        return {"amount": int(_positive(parameters, "amount", most=MAX_AMOUNT, integer=True)), "currency": currency}
    if "multiple" not in parameters or "annual_rent" not in parameters:
        raise InvalidInput("Give either amount, or multiple and annual_rent.")
    multiple = _positive(parameters, "multiple", most=MAX_MULTIPLE)
    if multiple != multiple.quantize(Decimal("0.01")):
        raise InvalidInput("multiple has at most two decimals.")
    rent = int(_positive(parameters, "annual_rent", most=MAX_AMOUNT, integer=True))
    return {"multiple": float(multiple), "annual_rent": rent, "currency": currency}


def _check_years(parameters: Mapping[str, Any]) -> dict[str, Any]:
    _only(parameters, {"years"}, {"years"})
    return {"years": int(_positive(parameters, "years", most=MAX_YEARS, integer=True))}


def _check_nothing(parameters: Mapping[str, Any]) -> dict[str, Any]:
    _only(parameters, set(), set())
    return {}


# --- reading documents ------------------------------------------------------------------------------


def _money(value: Any) -> tuple[Decimal, str] | None:
    if not isinstance(value, Mapping):
        return None
    amount, currency = value.get("amount"), value.get("currency")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not isinstance(currency, str):
        return None
    number = Decimal(str(amount))
    return (number, currency) if number.is_finite() else None


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _years_before(today: date, years: int) -> date:
    """The same day ``years`` years earlier; 29 February becomes 1 March in a common year."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return date(today.year - years, 3, 1)


# --- the predicates -----------------------------------------------------------------------------------


def _income(documents: Sequence[Document], parameters: dict[str, Any], today: date) -> Answer:
    statements = []
    for document in documents:
        content = document.content
        money = _money(content.get("gross_annual"))
        year = content.get("tax_year")
        if content.get("type") != "income-statement" or money is None or not isinstance(year, int):
            continue
        if money[1] != parameters["currency"]:
            continue
        statements.append((year, money[0], document))
    if not statements:
        raise NoEvidence(f"No counted income statement in {parameters['currency']}.")
    latest = max(year for year, _, _ in statements)
    chosen = [(amount, document) for year, amount, document in statements if year == latest]
    income = min(amount for amount, _ in chosen)  # two statements for one year: the lower counts
    if "amount" in parameters:
        threshold = Decimal(parameters["amount"])
    else:
        threshold = Decimal(str(parameters["multiple"])) * Decimal(parameters["annual_rent"])
    return Answer(result=income >= threshold, used=tuple(document for _, document in chosen))


def _no_eviction(documents: Sequence[Document], parameters: dict[str, Any], today: date) -> Answer:
    since = _years_before(today, parameters["years"])
    evictions = []
    for document in documents:
        if document.content.get("type") != "eviction":
            continue
        when = _date(document.content.get("date"))
        if when is None:
            raise NoEvidence("An eviction record has no readable date.")
        if since <= when <= today:
            evictions.append(document)
    return Answer(result=not evictions, used=tuple(evictions) if evictions else tuple(documents))


def _adult(documents: Sequence[Document], parameters: dict[str, Any], today: date) -> Answer:
    births = []
    for document in documents:
        born = _date(document.content.get("date_of_birth"))
        if born is not None:
            births.append((born, document))
    if not births:
        raise NoEvidence("No counted identity record with a date of birth.")
    if len({born for born, _ in births}) > 1:
        raise NoEvidence("The counted identity records disagree on the date of birth.")
    born = births[0][0]
    return Answer(result=born <= _years_before(today, 18), used=tuple(document for _, document in births))


def _describe_income(parameters: dict[str, Any]) -> str:
    if "amount" in parameters:
        return f"annual income at least {parameters['amount']} {parameters['currency']}"
    multiple = f"{parameters['multiple']:g}"
    return f"annual income at least {multiple}x an annual rent of {parameters['annual_rent']} {parameters['currency']}"


CATALOGUE: dict[str, Predicate] = {
    "income_at_least": Predicate("income_at_least", ("tenancy.income",), _check_income, _income, _describe_income),
    "no_eviction_within": Predicate(
        "no_eviction_within",
        ("tenancy.rental-history",),
        _check_years,
        _no_eviction,
        lambda p: f"no eviction within {p['years']} years",
    ),
    "adult": Predicate("adult", ("tenancy.identity",), _check_nothing, _adult, lambda p: "aged 18 or over"),
}


def predicate(name: str) -> Predicate:
    if not isinstance(name, str) or name not in CATALOGUE:
        raise InvalidInput(f"Unknown predicate; one of: {', '.join(sorted(CATALOGUE))}.")
    return CATALOGUE[name]


def evaluate(
    name: str,
    parameters: Mapping[str, Any],
    documents: Sequence[Document],
    *,
    today: date,
    include_self_asserted: bool = False,
) -> tuple[Answer, dict[str, Any]]:
    """Check the parameters, keep the documents that count, answer; returns (answer, the checked parameters)."""
    chosen = predicate(name)
    checked = chosen.check(parameters)
    counted = [
        document
        for document in documents
        if document.category in chosen.categories and (include_self_asserted or document.counts_as_issued)
    ]
    return chosen.answer(counted, checked, today), checked
