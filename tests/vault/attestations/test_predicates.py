"""The predicate catalogue's exact semantics (docs/attestations.md, "Predicates")."""

from datetime import date

import pytest

from vault.attestations.predicates import CATALOGUE, Document, NoEvidence, evaluate
from vault.core.errors import InvalidInput

TODAY = date(2026, 11, 30)
AGENCY = "p-agencyaaaaaaaaaaaaaaaaaaaa"


def income(amount, year=2025, currency="EUR", issuer=AGENCY, verified=True, record="r-1"):
    content = {"type": "income-statement", "tax_year": year, "gross_annual": {"amount": amount, "currency": currency}}
    return Document(record, 1, "tenancy.income", content, issuer, verified)


def rental(kind, when, issuer=AGENCY, verified=True, record="r-2"):
    return Document(record, 1, "tenancy.rental-history", {"type": kind, "date": when}, issuer, verified)


def identity(born, issuer=AGENCY, verified=True, record="r-3"):
    return Document(record, 1, "tenancy.identity", {"type": "identity", "date_of_birth": born}, issuer, verified)


def ask(name, parameters, documents, **options):
    answer, _ = evaluate(name, parameters, documents, today=TODAY, **options)
    return answer.result


# --- income_at_least ----------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "expected"), [(43_200, True), (43_199, False), (43_201, True), (43_199.99, False)])
def test_income_at_least_three_times_the_rent_is_inclusive(amount, expected):
    # 3 x 14,400 = 43,200: equal passes, a cent short fails.
    parameters = {"multiple": 3, "annual_rent": 14_400, "currency": "EUR"}
    assert ask("income_at_least", parameters, [income(amount)]) is expected


def test_income_at_least_an_amount():
    assert ask("income_at_least", {"amount": 30_000, "currency": "EUR"}, [income(30_000)]) is True
    assert ask("income_at_least", {"amount": 30_001, "currency": "EUR"}, [income(30_000)]) is False


def test_the_latest_tax_year_counts_and_the_lower_of_two_for_it():
    documents = [income(90_000, year=2023, record="r-a"), income(20_000, year=2025, record="r-b")]
    answer, _ = evaluate("income_at_least", {"amount": 30_000, "currency": "EUR"}, documents, today=TODAY)
    assert answer.result is False and [d.record_id for d in answer.used] == ["r-b"]
    two = [income(50_000, record="r-c"), income(25_000, record="r-d")]
    assert ask("income_at_least", {"amount": 30_000, "currency": "EUR"}, two) is False


def test_self_asserted_income_does_not_count_unless_asked_for():
    mine = income(100_000, issuer=None, verified=False)
    with pytest.raises(NoEvidence):
        ask("income_at_least", {"amount": 1, "currency": "EUR"}, [mine])
    assert ask("income_at_least", {"amount": 1, "currency": "EUR"}, [mine], include_self_asserted=True) is True
    unverified = income(100_000, verified=False)  # an issuer named, its signature not verified: not issued
    with pytest.raises(NoEvidence):
        ask("income_at_least", {"amount": 1, "currency": "EUR"}, [unverified])


def test_another_currency_is_not_converted():
    with pytest.raises(NoEvidence):
        ask("income_at_least", {"amount": 1, "currency": "USD"}, [income(100_000)])


def test_other_categories_are_never_read():
    stray = Document("r-x", 1, "health.notes", income(1_000_000).content, AGENCY, True)
    with pytest.raises(NoEvidence):
        ask("income_at_least", {"amount": 1, "currency": "EUR"}, [stray])


@pytest.mark.parametrize(
    "parameters",
    [
        {},
        {"amount": 1},
        {"amount": 1, "currency": "eur"},
        {"amount": 1, "currency": "EURO"},
        {"amount": 0, "currency": "EUR"},
        {"amount": -5, "currency": "EUR"},
        {"amount": 1.5, "currency": "EUR"},
        {"amount": True, "currency": "EUR"},
        {"amount": "1000", "currency": "EUR"},
        {"amount": 10**13, "currency": "EUR"},
        {"amount": 1, "multiple": 3, "annual_rent": 1, "currency": "EUR"},
        {"multiple": 3, "currency": "EUR"},
        {"multiple": 3.333, "annual_rent": 1000, "currency": "EUR"},
        {"multiple": float("inf"), "annual_rent": 1000, "currency": "EUR"},
        {"amount": 1, "currency": "EUR", "expression": "1==1"},
        ["amount"],
    ],
)
def test_bad_income_parameters_are_refused(parameters):
    with pytest.raises(InvalidInput):
        evaluate("income_at_least", parameters, [income(1)], today=TODAY)


# --- no_eviction_within -------------------------------------------------------------------------


def test_no_eviction_within_counts_the_window_inclusively():
    assert ask("no_eviction_within", {"years": 5}, [rental("eviction", "2021-11-29")]) is True  # just outside
    assert ask("no_eviction_within", {"years": 5}, [rental("eviction", "2021-11-30")]) is False  # first day in
    assert ask("no_eviction_within", {"years": 5}, [rental("eviction", "2026-11-30")]) is False
    assert ask("no_eviction_within", {"years": 5}, [rental("tenancy-ended", "2025-01-01")]) is True
    assert ask("no_eviction_within", {"years": 5}, []) is True


def test_a_self_asserted_eviction_is_not_counted_by_default_and_an_undated_one_cannot_be_read():
    assert ask("no_eviction_within", {"years": 5}, [rental("eviction", "2025-01-01", issuer=None)]) is True
    with pytest.raises(NoEvidence):
        ask("no_eviction_within", {"years": 5}, [rental("eviction", "last spring")])


@pytest.mark.parametrize("parameters", [{}, {"years": 0}, {"years": 101}, {"years": 2.5}, {"years": 5, "x": 1}])
def test_bad_eviction_parameters_are_refused(parameters):
    with pytest.raises(InvalidInput):
        evaluate("no_eviction_within", parameters, [], today=TODAY)


# --- adult --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "expected"),
    [("2008-11-30", True), ("2008-12-01", False), ("1970-01-01", True), ("2026-01-01", False)],
)
def test_adult_turns_true_on_the_eighteenth_birthday(born, expected):
    assert ask("adult", {}, [identity(born)]) is expected


def test_a_leap_day_birthday_comes_of_age_on_the_first_of_march():
    assert evaluate("adult", {}, [identity("2008-02-29")], today=date(2026, 2, 28))[0].result is False
    assert evaluate("adult", {}, [identity("2008-02-29")], today=date(2026, 3, 1))[0].result is True


def test_adult_needs_one_consistent_date_of_birth():
    with pytest.raises(NoEvidence):
        ask("adult", {}, [])
    with pytest.raises(NoEvidence):
        ask("adult", {}, [identity("1990-01-01", record="r-a"), identity("2010-01-01", record="r-b")])
    with pytest.raises(InvalidInput):
        ask("adult", {"age": 21}, [identity("1990-01-01")])


def test_unknown_predicates_are_refused_and_the_catalogue_is_documented():
    with pytest.raises(InvalidInput):
        evaluate("anything", {}, [], today=TODAY)
    assert set(CATALOGUE) == {"income_at_least", "no_eviction_within", "adult"}
