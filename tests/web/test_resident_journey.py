"""A resident in a real browser: sees who read her records, approves part of a request, stops a grant."""

import json
import re
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.web.conftest import browser_sign_in, check_page

pytestmark = pytest.mark.browser


def _api(live_vault, login: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        live_vault.base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {live_vault.people[login]['token']}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_amina_sees_her_history_approves_part_of_a_request_and_revokes_a_grant(guarded_page, live_vault):
    amina = live_vault.people["amina"]
    end = (datetime.now(UTC) + timedelta(days=60)).replace(microsecond=0).isoformat()
    asked = _api(
        live_vault,
        "riverside",
        "POST",
        "/api/v1/access-requests",
        {
            "subject_id": amina["id"],
            "categories": ["health.allergies", "health.medications"],
            "purpose": "treatment",
            "reason": "Referral to the diabetes clinic",
            "expires_at": end,
        },
    )
    live_vault.cli("checkpoint")  # a signed checkpoint covers the demo clinic's read: its proof can be checked
    page = guarded_page
    browser_sign_in(page, live_vault, "amina")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your records at a glance")
    expect(page.get_by_text("Referral").or_(page.get_by_role("link", name=re.compile("Riverside")))).not_to_have_count(
        0
    )
    check_page(page, screenshot="resident-home")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Access history").click()
    lines = page.locator("#history-lines tbody tr")
    clinic_read = lines.filter(has_text="Riverside Community Clinic").filter(has_text="Read: Allergies")
    expect(clinic_read).to_have_count(1)
    # Her browser checked the line's inclusion proof and the checkpoint's BLS signature itself.
    expect(clinic_read.locator(".cv-proof")).to_have_attribute("data-state", "verified", timeout=20_000)
    expect(clinic_read.locator(".cv-proof")).to_contain_text("Proof verified")
    expect(page.locator("svg[role=img] title").first).to_contain_text("Accesses to your data per day")
    check_page(page, screenshot="resident-history")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    check_page(page, screenshot="resident-requests")
    page.get_by_role("link", name=re.compile("Review.*Riverside")).click()
    expect(page.get_by_text("Referral to the diabetes clinic")).to_be_visible()
    preview = page.locator(".cv-preview")
    expect(preview).to_contain_text("Metformin")
    page.locator("label.usa-checkbox__label", has_text="Medications").click()
    expect(page.get_by_label("Medications")).not_to_be_checked()
    page.get_by_role("button", name="Show what they could see").click()
    expect(preview).to_contain_text("Penicillin allergy")
    expect(preview).not_to_contain_text("Metformin")
    check_page(page, screenshot="resident-request-preview")
    page.get_by_label("How many times").fill("2")
    page.get_by_role("button", name="Approve what is ticked").click()
    expect(page.get_by_text("The request is approved.")).to_be_visible()
    decided = _api(live_vault, "amina", "GET", f"/api/v1/access-requests/{asked['id']}")
    made = _api(live_vault, "amina", "GET", f"/api/v1/consents/{decided['grant_id']}")
    assert made["categories"] == ["health.allergies"] and made["max_uses"] == 2

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sharing").click()
    row = page.locator("tbody tr").filter(has_text="All health records").filter(has_text="Riverside")
    row.get_by_role("link", name=re.compile("Stop sharing")).click()
    expect(
        page.get_by_text("Riverside Community Clinic will no longer be able to read your health records")
    ).to_be_visible()
    check_page(page)
    page.get_by_role("button", name="Stop sharing now").click()
    expect(page.get_by_text("The grant is revoked")).to_be_visible()
    check_page(page, screenshot="resident-sharing")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Records").click()
    page.get_by_role("link", name="Penicillin allergy").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Penicillin allergy")
    expect(page.get_by_text("Anaphylaxis")).to_be_visible()
    check_page(page, screenshot="resident-record")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="My rights").click()
    expect(page.get_by_role("heading", name="Accounting of disclosures")).to_be_visible()
    check_page(page, screenshot="resident-rights")
