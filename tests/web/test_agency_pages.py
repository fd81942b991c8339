"""The agency's page: its issuer keys, the residents who let it write, what it wrote; nothing of anyone else's."""

from datetime import timedelta

from tests.api.test_issuer_records import INCOME, Issuer, post_record
from tests.web.test_provider_pages import auth


def _grant(client, resident, grantee, clock, actions):
    body = {
        "grantee_id": grantee.id,
        "categories": ["tenancy.income"],
        "purpose": "tenancy-screening",
        "actions": list(actions),
        "expires_at": (clock.now + timedelta(days=30)).isoformat(),
    }
    answer = client.post("/api/v1/consents", json=body, headers=auth(resident))
    assert answer.status_code == 201, answer.get_json()


def test_an_agency_lands_on_its_page_with_keys_grants_and_writes(client, person, signed_in, clock, make_actor):
    northside = person("agency", "Northside Payroll Services")
    tomasz = person("resident", "Tomasz Nowak")
    grace = person("resident", "Grace Okafor")
    stranger = make_actor("resident", "Someone Else")
    _grant(client, tomasz, northside, clock, ("write",))
    _grant(client, grace, northside, clock, ("read",))  # not a write grant: not listed as one
    first, second = Issuer(client, northside), Issuer(client, northside)
    revoked = client.post(f"/api/v1/issuer-keys/{first.key_id}/revoke", headers=northside.auth)
    assert revoked.status_code == 200, revoked.get_json()
    written = post_record(client, northside, tomasz, signature=second.sign(tomasz.id, "tenancy.income", INCOME))
    assert written.status_code == 201, written.get_json()
    assert post_record(client, northside, stranger).status_code == 404  # refused: no grant from them

    browser = signed_in(northside)
    home = browser.get("/")
    assert home.status_code == 302 and home.headers["Location"].endswith("/agency/")
    page = browser.get("/agency/").get_data(as_text=True)
    assert first.key_id in page and second.key_id in page and page.count(">revoked<") == 1
    writable = page.split("Residents who let you add records")[1].split("Your last accesses")[0]
    assert "Tomasz Nowak" in writable and "Grace Okafor" not in writable
    last = page.split("Your last accesses")[1]
    assert "Wrote income and employment" in last and "Tomasz Nowak" in last
    assert "(refused)" in last and stranger.id in last  # named by id only: they never consented
    assert "Someone Else" not in page and "31200" not in page


def test_an_agency_with_nothing_yet_is_told_how_to_start(person, signed_in):
    page = signed_in(person("agency")).get("/agency/").get_data(as_text=True)
    assert "civicvault issuer key" in page and "No resident lets you add records now." in page
