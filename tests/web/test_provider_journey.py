"""A clinic's day in real browsers: a resident's share code at the desk, a request, a read, an emergency."""

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.web.conftest import browser_sign_in, check_page, guard_page

pytestmark = pytest.mark.browser


_guarded = guard_page


def _api(live_vault, login: str, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {live_vault.people[login]['token']}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(live_vault.base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_a_share_code_request_read_and_break_glass(guarded_page, live_vault, context):
    # Amina, at the clinic's desk, makes a code on her phone.
    amina = guarded_page
    browser_sign_in(amina, live_vault, "amina")
    amina.get_by_role("link", name="Share code").click()
    amina.get_by_role("button", name="Make a code").click()
    shown = amina.get_by_test_id("share-code")
    expect(shown).to_have_text(re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{2}$"))
    expect(amina.get_by_text("Valid once, for 10 minutes").first).to_be_visible()
    check_page(amina, screenshot="share-code")
    code = shown.inner_text()

    # Riverside, in another browser, types it in and asks for her lab results.
    other = context.browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    try:
        clinic = _guarded(other)
        browser_sign_in(clinic, live_vault, "riverside")
        expect(clinic.get_by_role("heading", level=1)).to_have_text("Riverside Community Clinic")
        check_page(clinic, screenshot="provider-home")
        clinic.get_by_role("link", name="Start a request").first.click()
        clinic.get_by_label("Share code").fill(code)
        clinic.locator("label[for=cat-health-labs]").click()  # USWDS draws the box on the label
        expect(clinic.get_by_label("Laboratory results")).to_be_checked()
        clinic.get_by_label("Purpose").select_option("treatment")
        clinic.get_by_label("Why you ask").fill("Follow-up of her diabetes: HbA1c results")
        check_page(clinic, screenshot="provider-new-request")
        clinic.get_by_role("button", name="Send the request").click()
        expect(clinic.get_by_text("The request is sent; the resident will see it.")).to_be_visible()
        check_page(clinic)

        # Amina approves it (here through the API with her token).
        pending = _api(live_vault, "amina", "GET", "/api/v1/access-requests?status=pending")["items"]
        mine = [r for r in pending if r["requester_id"] == live_vault.people["riverside"]["id"]]
        assert len(mine) == 1 and mine[0]["categories"] == ["health.labs"]
        approved = _api(live_vault, "amina", "POST", f"/api/v1/access-requests/{mine[0]['id']}/approve", {})
        assert approved["status"] == "approved"

        # Riverside reads her allergy record for a stated purpose.
        clinic.get_by_role("link", name="Residents").first.click()
        expect(clinic.get_by_role("table")).to_contain_text("Amina Yusuf")
        check_page(clinic, screenshot="provider-residents")
        clinic.get_by_role("link", name="Amina Yusuf").first.click()
        clinic.get_by_label("Purpose of this access").select_option("treatment")
        clinic.get_by_role("button", name="List the records").click()
        clinic.get_by_role("link", name="Penicillin allergy").click()
        clinic.get_by_label("Purpose of this access").select_option("treatment")
        clinic.get_by_role("button", name="Read the record").click()
        expect(clinic.get_by_role("heading", level=1)).to_have_text("Penicillin allergy")
        expect(clinic.locator("dd").filter(has_text="Penicillin G").first).to_be_visible()
        check_page(clinic, screenshot="provider-read")

        # Tomasz is brought in unconscious: break-glass.
        clinic.get_by_role("link", name="Break-glass").first.click()
        clinic.get_by_label("Resident id").fill(live_vault.people["tomasz"]["id"])
        clinic.get_by_label("Kind of emergency").select_option("unconscious")
        clinic.get_by_label("What is happening").fill("Unconscious on arrival; allergies needed before treatment")
        clinic.locator("label[for=confirm]").click()
        expect(clinic.get_by_label(re.compile("I confirm this is an emergency"))).to_be_checked()
        check_page(clinic, screenshot="provider-break-glass")
        clinic.get_by_role("button", name="Declare the emergency").click()
        expect(clinic.get_by_text("Emergency access is declared.")).to_be_visible()
        clinic.get_by_label("Purpose of this access").select_option("emergency")
        clinic.get_by_role("button", name="List the records").click()
        expect(clinic.get_by_role("link", name="Peanut allergy")).to_be_visible()
        check_page(clinic)
        clinic.get_by_role("link", name="My access history").first.click()
        expect(clinic.get_by_role("table")).to_contain_text("Emergency declared")
        check_page(clinic)
        clinic.guard.assert_clean()
    finally:
        other.close()
