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
    assert "What may they see?" not in page and "How many answers may they get?" in page
    made = client.post(
        f"/api/v1/subjects/{amina.id}/records",
        json={"category": "tenancy.income", "content": {"type": "income-statement"}, "title": "Payslips 2025"},
        headers=amina.auth,
    )
    assert made.status_code == 201
    url = f"/resident/requests/{asked.get_json()['id']}?preview=1&categories=tenancy.income"
    preview = signed_in(amina).get(url).get_data(as_text=True)
    assert 'data-testid="answers-from"' in preview and "Payslips 2025" in preview
    assert "could read" not in preview and "would see none of them" in preview
