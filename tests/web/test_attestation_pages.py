"""Attestations on the landlord's pages: ask for signed answers only, get one, download it; never the figure."""

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.api.test_attestations import INCOME, add_income, issued_by_agency  # noqa: F401
from tests.web.test_provider_pages import auth
from vault.attestations import credential as vc
from vault.keys import attestation_key
from vault.storage.models import AccessRequest, Attestation

ASK = {"predicate": "income_at_least", "multiple": "3", "annual_rent": "14,400", "currency": "eur"}


@pytest.fixture
def amina(person):
    return person("resident", "Amina Yusuf")


@pytest.fixture
def landlord(person):
    return person("landlord", "Harbour Housing")


def attest_grant(client, amina, landlord, clock, *, actions=("attest",), categories=("tenancy.income",)):
    body = {
        "grantee_id": landlord.id,
        "categories": list(categories),
        "purpose": "tenancy-screening",
        "actions": list(actions),
        "expires_at": (clock.now + timedelta(days=30)).isoformat(),
    }
    answer = client.post("/api/v1/consents", json=body, headers=auth(amina))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def post_ask(harbour, amina, **changes):
    form = {**ASK, "purpose": "tenancy-screening", "csrf_token": harbour.csrf, **changes}
    return harbour.post(f"/provider/residents/{amina.id}/attestations", data={k: v for k, v in form.items() if v})


def attestations(vault_) -> int:
    with vault_.read_transaction() as session:
        return session.scalar(select(func.count()).select_from(Attestation))


def test_a_landlord_asks_for_signed_answers_only_from_the_request_form(signed_in, landlord, amina, vault_):
    harbour = signed_in(landlord)
    form = harbour.get("/provider/requests/new").get_data(as_text=True)
    assert 'value="attest"' in form and "never the records or the figures" in form
    sent = harbour.post(
        "/provider/requests/new",
        data={
            "subject_id": amina.id,
            "categories": "tenancy.income",
            "purpose": "tenancy-screening",
            "reason": "Flat 5, Harbour Row",
            "action": "attest",
            "csrf_token": harbour.csrf,
        },
    )
    assert sent.status_code == 303
    with vault_.read_transaction() as session:
        assert session.scalars(select(AccessRequest.actions)).all() == ["attest"]
    forged = harbour.post(
        "/provider/requests/new",
        data={"subject_id": amina.id, "categories": "tenancy.income", "purpose": "tenancy-screening",
              "reason": "x", "action": "write", "csrf_token": harbour.csrf},
    )  # fmt: skip
    assert forged.status_code == 400 and "signed answers" in forged.get_data(as_text=True)


@pytest.mark.usefixtures("issued_by_agency")
def test_the_landlord_gets_a_signed_yes_downloads_it_and_cannot_read_the_figure(
    client, signed_in, landlord, amina, clock, vault_
):
    record_id = add_income(client, amina)
    attest_grant(client, amina, landlord, clock)
    harbour = signed_in(landlord)
    page = harbour.get(f"/provider/residents/{amina.id}").get_data(as_text=True)
    assert 'data-predicate="income_at_least"' in page and "Signed answers only" in page
    assert 'data-predicate="adult"' not in page  # no grant covers the identity records

    answered = post_ask(harbour, amina)
    assert answered.status_code == 303, answered.get_data(as_text=True)[:800]
    location = answered.headers["Location"]
    assert "notice=attested" in location
    shown = harbour.get(location).get_data(as_text=True)
    assert 'data-testid="answer">yes<' in shown, re.sub(r"\s+", " ", shown)[-3000:]
    assert "annual income at least 3x an annual rent of 14400 EUR" in shown.replace("Annual", "annual")
    assert "52000" not in shown and "52,000" not in shown

    credential_id = re.search(r"/provider/attestations/([0-9a-f-]{36})", location).group(1)
    download = harbour.get(f"/provider/attestations/{credential_id}/download")
    assert download.status_code == 200 and download.mimetype == "application/json"
    assert download.headers["Content-Disposition"] == f'attachment; filename="attestation-{credential_id}.json"'
    credential = json.loads(download.get_data(as_text=True))
    key = attestation_key.read(vault_.settings.attestation_key_file).did
    assert vc.verify(credential, key=key, at=clock.now, requester=landlord.id).result is True
    assert "52000" not in download.get_data(as_text=True)

    listed = harbour.get("/provider/attestations").get_data(as_text=True)
    assert credential_id in listed and "Yes" in listed

    refused = harbour.get(f"/provider/records/{record_id}?purpose=tenancy-screening")
    read = harbour.post(
        f"/provider/records/{record_id}", data={"purpose": "tenancy-screening", "csrf_token": harbour.csrf}
    )
    assert "52000" not in refused.get_data(as_text=True) + read.get_data(as_text=True)
    assert read.status_code == 403


@pytest.mark.usefixtures("issued_by_agency")
def test_the_resident_sees_the_answer_in_her_history(client, signed_in, landlord, amina, clock):
    add_income(client, amina)
    attest_grant(client, amina, landlord, clock)
    assert post_ask(signed_in(landlord), amina).status_code == 303
    history = signed_in(amina).get("/resident/history").get_data(as_text=True)
    assert "attestation income_at_least" in history and "for Harbour Housing: true" in history


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"multiple": "three"}, "Enter the multiple as a number above 0"),
        ({"annual_rent": "-5"}, "Enter the yearly rent as a whole number above 0"),
        ({"amount": "40000"}, "not both"),
        ({"annual_rent": ""}, "Give a multiple and a yearly rent"),
        ({"currency": "euro"}, "three-letter code"),
        ({"purpose": "marketing"}, "Choose the purpose"),
        ({"multiple": "1e999"}, "as a number above 0"),
        ({"multiple": "3.001"}, "at most two decimals"),
    ],
)
@pytest.mark.usefixtures("issued_by_agency")
def test_bad_numbers_are_the_form_again_and_nothing_is_asked(
    client, signed_in, landlord, amina, clock, vault_, changes, message
):
    add_income(client, amina)
    attest_grant(client, amina, landlord, clock)
    answer = post_ask(signed_in(landlord), amina, **changes)
    assert answer.status_code == 400
    assert message in answer.get_data(as_text=True)
    assert attestations(vault_) == 0


def test_an_unknown_question_is_400(client, signed_in, landlord, amina, clock, vault_):
    attest_grant(client, amina, landlord, clock)
    assert post_ask(signed_in(landlord), amina, predicate="income_is_secretly").status_code == 400


def test_no_counted_record_is_said_on_the_page(client, signed_in, landlord, amina, clock, vault_):
    add_income(client, amina)  # self-asserted: it does not count unless asked
    attest_grant(client, amina, landlord, clock)
    harbour = signed_in(landlord)
    answer = post_ask(harbour, amina)
    assert answer.status_code == 409 and 'data-testid="ask-error"' in answer.get_data(as_text=True)
    assert attestations(vault_) == 0
    counted_too = post_ask(harbour, amina, include_self_asserted="yes")
    assert counted_too.status_code == 303
    shown = harbour.get(counted_too.headers["Location"]).get_data(as_text=True)
    assert "Records an issuer signed and records the resident typed in" in shown


@pytest.mark.usefixtures("issued_by_agency")
def test_a_missing_read_only_or_revoked_grant_gets_no_answer(client, signed_in, landlord, amina, clock, vault_):
    add_income(client, amina)
    harbour = signed_in(landlord)
    nothing = post_ask(harbour, amina)  # no consent at all: the answer an unknown resident gets
    assert nothing.status_code == 404 and nothing.mimetype == "text/html"
    read_only = attest_grant(client, amina, landlord, clock, actions=("read",))
    assert 'data-predicate="income_at_least"' not in harbour.get(f"/provider/residents/{amina.id}").get_data(
        as_text=True
    )
    wrong_action = post_ask(harbour, amina)
    assert wrong_action.status_code == 403 and 'data-testid="refusal"' in wrong_action.get_data(as_text=True)
    grant = attest_grant(client, amina, landlord, clock)
    for made in (read_only, grant):
        assert client.post(f"/api/v1/consents/{made['id']}/revoke", headers=auth(amina)).status_code == 200
    assert post_ask(harbour, amina).status_code == 403
    assert attestations(vault_) == 0


@pytest.mark.usefixtures("issued_by_agency")
def test_another_landlord_never_sees_the_attestation(client, signed_in, person, landlord, amina, clock):
    add_income(client, amina)
    attest_grant(client, amina, landlord, clock)
    location = post_ask(signed_in(landlord), amina).headers["Location"]
    credential_id = re.search(r"/provider/attestations/([0-9a-f-]{36})", location).group(1)
    other = signed_in(person("landlord", "Quay Lettings"))
    for url in (f"/provider/attestations/{credential_id}", f"/provider/attestations/{credential_id}/download"):
        answer = other.get(url)
        assert answer.status_code == 404 and answer.mimetype == "text/html"
    assert credential_id not in other.get("/provider/attestations").get_data(as_text=True)
