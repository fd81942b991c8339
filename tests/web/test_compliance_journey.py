"""A compliance officer and an admin in a real browser: charts, a trail search, a break-glass review, an invitation."""

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.web.conftest import browser_sign_in, check_page

pytestmark = pytest.mark.browser

REASON = "Brought in unconscious after a fall; allergy status needed"
NOTE = "Checked with the ward sister: the patient arrived unconscious. Justified."


def api(live_vault, method: str, path: str, token: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        live_vault.base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read() or b"{}")


def test_an_officer_reviews_a_break_glass_and_an_admin_invites_someone(guarded_page, live_vault):
    clinic, amina = live_vault.people["riverside"], live_vault.people["amina"]
    declared = api(
        live_vault, "POST", f"/api/v1/subjects/{amina['id']}/break-glass", clinic["token"], {"reason": REASON}
    )
    listing = api(live_vault, "GET", f"/api/v1/subjects/{amina['id']}/records?purpose=emergency", clinic["token"])
    record = next(item for item in listing["items"] if item["category"].startswith("health."))
    api(live_vault, "GET", f"/api/v1/records/{record['id']}?purpose=emergency", clinic["token"])

    page = guarded_page
    browser_sign_in(page, live_vault, "compliance")
    expect(page).to_have_url(re.compile(r".*/compliance/.*"))
    expect(page.get_by_role("heading", name="Compliance overview")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("Accesses per day"))).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("Break-glass declarations per day"))).to_be_visible()
    page.get_by_text("Show the numbers as a table").first.click()
    expect(page.get_by_role("table", name=re.compile("Accesses per day")).first).to_be_visible()
    check_page(page, screenshot="compliance-home")

    # The trail: the clinic's break-glass reads of Amina's records.
    page.get_by_role("link", name="Trail", exact=True).click()
    page.get_by_label("Resident id").fill(amina["id"])
    page.get_by_label("Kind").select_option("break-glass.declared")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text(re.compile(r"1\s+matching event\b"))).to_be_visible()
    expect(page.get_by_role("img", name="Matching events over time, by outcome")).to_be_visible()
    expect(page.get_by_role("link", name="Export as CSV")).to_be_visible()
    check_page(page, screenshot="compliance-trail")

    # The review queue: the declaration, its reason and the read made under it; acknowledge it with a note.
    page.get_by_role("link", name="Break-glass review").click()
    review = page.locator(f"#review-{declared['id']}")
    expect(review.get_by_text(REASON)).to_be_visible()
    expect(review.get_by_role("table", name=re.compile("What was read under"))).to_contain_text(record["category"])
    check_page(page, screenshot="compliance-break-glass")
    review.get_by_label("Review note").fill(NOTE)
    review.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text("The break-glass access is acknowledged.")).to_be_visible()
    expect(page.get_by_role("table", name=re.compile("Acknowledged emergency accesses"))).to_contain_text(NOTE)
    check_page(page)

    page.get_by_role("link", name="Flags").click()
    expect(page.get_by_role("heading", name=re.compile(r"\d+ flags? from"))).to_be_visible()
    check_page(page)

    # Look Amina up by her login, then open her disclosure report.
    page.get_by_role("link", name="Look up a resident").click()
    page.get_by_label("Login", exact=True).check()
    page.get_by_label("Login or full name, exactly").fill("amina")
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("table", name="Residents found")).to_contain_text(amina["id"])
    check_page(page)
    page.get_by_role("link", name="Disclosure report").click()
    expect(page.get_by_role("table", name=re.compile("Disclosures"))).to_contain_text(record["id"])
    check_page(page)

    page.get_by_role("link", name="Ledger").click()
    expect(page.get_by_role("heading", name="Ledger status")).to_be_visible()
    expect(page.get_by_text("Not recorded")).to_be_visible()
    check_page(page, screenshot="compliance-ledger")
    page.get_by_role("button", name="Sign out").click()

    # The admin creates a clinic account and gets its invitation link once.
    browser_sign_in(page, live_vault, "operator")
    expect(page).to_have_url(re.compile(r".*/admin/.*"))
    page.get_by_label("Role", exact=True).select_option("clinic")
    page.get_by_label("Name", exact=True).fill("Northside Family Practice")
    page.get_by_label("Login", exact=True).fill("northside@example.org")
    page.get_by_role("button", name="Create and invite").click()
    link = page.locator("#invitation-link")
    expect(link).to_contain_text("/invite/cvi_")
    expect(page.get_by_role("row", name=re.compile("Northside Family Practice"))).to_contain_text(
        "northside@example.org"
    )
    check_page(page, screenshot="admin-principals")
    url = link.inner_text()
    page.get_by_role("link", name="Keys").click()
    expect(page.get_by_role("table", name="Master key versions and what each protects")).to_be_visible()
    check_page(page)
    page.get_by_role("button", name="Sign out").click()

    # The invitation works: the new person sets a password.
    page.goto(url)
    page.get_by_label("New password").fill("a long new passphrase for northside")
    page.get_by_label("The same password again").fill("a long new passphrase for northside")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_text("Your password is set.")).to_be_visible()
