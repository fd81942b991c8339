"""Record pages say who vouches for a version: an issuer whose signature the vault verified, or nobody."""

from datetime import timedelta

from crypto import issuer
from tests.api.conftest import grant
from vault.core.content import encode_content
from vault.records.provenance import statement

INCOME = {"type": "income-statement", "tax_year": 2025, "gross_annual": {"amount": 31200, "currency": "EUR"}}


def _signed_income(client, agency, resident, clock):
    key = issuer.IssuerKey.generate()
    registered = client.post(
        "/api/v1/issuer-keys",
        json={"public_key": key.public_key.hex(), "proof_of_possession": key.prove_possession(agency.id).hex()},
        headers=agency.auth,
    )
    key_id = registered.get_json()["id"]
    grant(
        client, resident, agency, clock, categories=("tenancy.income",), purpose="tenancy-screening", actions=("write",)
    )
    issued_at = (clock.now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    signed = statement(
        subject_id=resident.id,
        category="tenancy.income",
        body=encode_content(INCOME),
        issued_at=issued_at,
        issuer_id=agency.id,
        key_id=key_id,
    )
    made = client.post(
        f"/api/v1/subjects/{resident.id}/records",
        json={
            "category": "tenancy.income",
            "content": INCOME,
            "purpose": "tenancy-screening",
            "title": "Income 2025",
            "signature": {"key_id": key_id, "issued_at": issued_at, "value": issuer.sign_record(key, signed).hex()},
        },
        headers=agency.auth,
    )
    assert made.status_code == 201, made.get_json()
    return made.get_json()["id"], key_id


def test_an_issued_record_shows_its_issuer_and_a_self_asserted_one_says_so(
    client, person, signed_in, make_actor, clock
):
    tomasz = person("resident", "Tomasz Nowak")
    agency = make_actor("agency", "Northside Payroll Services")
    issued_id, key_id = _signed_income(client, agency, tomasz, clock)
    mine = client.post(
        f"/api/v1/subjects/{tomasz.id}/records",
        json={"category": "tenancy.income", "content": INCOME, "title": "My own note"},
        headers=tomasz.auth,
    ).get_json()["id"]
    browser = signed_in(tomasz)
    issued = browser.get(f"/resident/records/{issued_id}").get_data(as_text=True)
    assert 'data-provenance="issued"' in issued and "Northside Payroll Services" in issued
    assert "signature verified" in issued and "revoked" not in issued
    own = browser.get(f"/resident/records/{mine}").get_data(as_text=True)
    assert 'data-provenance="self-asserted"' in own and "Self-asserted" in own

    # The issuer revokes its key: the record still names who signed it, and says the key is revoked.
    revoked = client.post(f"/api/v1/issuer-keys/{key_id}/revoke", headers=agency.auth)
    assert revoked.status_code == 200, revoked.get_json()
    after = browser.get(f"/resident/records/{issued_id}").get_data(as_text=True)
    assert 'data-provenance="issued"' in after and "key was revoked" in after
