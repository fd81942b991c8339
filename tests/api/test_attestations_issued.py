"""Attestations count what an issuer signed: end to end with a real issuer key and a signed income statement."""

from tests.api.conftest import T0, grant
from tests.api.test_attestations import approved_request, ask, vault_key
from tests.api.test_issuer_records import INCOME, Issuer, post_record
from vault.attestations import credential as vc


def test_an_issuer_signed_income_statement_answers_and_a_self_asserted_one_does_not(
    client, cast, clock, vault_, make_actor
):
    agency = make_actor("agency", "Northside Payroll Services")
    northside = Issuer(client, agency)
    grant(
        client,
        cast.tomasz,
        agency,
        clock,
        categories=("tenancy.income",),
        purpose="tenancy-screening",
        actions=("write",),
    )
    # Only a self-asserted statement so far: nothing counts.
    mine = client.post(
        f"/api/v1/subjects/{cast.tomasz.id}/records",
        json={"category": "tenancy.income", "content": {**INCOME, "tax_year": 2026}, "title": "Mine"},
        headers=cast.tomasz.auth,
    )
    assert mine.status_code == 201
    approved_request(client, cast.tomasz, cast.landlord, max_uses=5)
    question = {"parameters": {"multiple": 3, "annual_rent": 9600, "currency": "EUR"}}
    refused = ask(client, cast.landlord, cast.tomasz, **question)
    assert refused.status_code == 409 and refused.get_json()["type"].endswith("no-evidence")

    # The agency files the signed statement (31,200 EUR for 2025): it answers, and names its issuer.
    signed = post_record(
        client, agency, cast.tomasz, signature=northside.sign(cast.tomasz.id, "tenancy.income", INCOME)
    )
    assert signed.status_code == 201, signed.get_json()
    answered = ask(client, cast.landlord, cast.tomasz, **question)
    assert answered.status_code == 201, answered.get_json()
    credential = answered.get_json()["credential"]
    claims = vc.verify(credential, key=vault_key(vault_), at=T0, requester=cast.landlord.id)
    assert claims.result is True  # 31,200 >= 3 x 9,600 = 28,800
    assert [issuer["id"] for issuer in credential["evidence"][0]["issuers"]] == [agency.id]
    assert "31200" not in str(credential) and "Riverside Bakery" not in str(credential)

    # A higher rent: the same issued statement now answers false.
    higher = ask(
        client, cast.landlord, cast.tomasz, parameters={"multiple": 3, "annual_rent": 10_800, "currency": "EUR"}
    )
    assert vc.verify(higher.get_json()["credential"], key=vault_key(vault_), at=T0).result is False
