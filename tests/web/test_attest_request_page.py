"""A request to attest says, before the resident approves, that only a signed answer leaves the vault."""


def test_an_attest_request_says_only_the_answer_is_disclosed(client, person, signed_in, make_actor):
    amina = person("resident", "Amina Yusuf")
    harbour = make_actor("landlord", "Harbour Housing Association")
    asked = client.post(
        "/api/v1/access-requests",
        json={
            "subject_id": amina.id,
            "categories": ["tenancy.income"],
            "purpose": "tenancy-screening",
            "actions": ["attest"],
            "reason": "Screening for the flat at 4 Quay Street",
        },
        headers=harbour.auth,
    )
    assert asked.status_code == 201, asked.get_json()
    page = signed_in(amina).get(f"/resident/requests/{asked.get_json()['id']}").get_data(as_text=True)
    assert 'data-action="attest"' in page and "never the records or the figures" in page
    assert "Read these records" not in page
