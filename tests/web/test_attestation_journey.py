"""Tenant screening in real browsers: a landlord asks for signed answers only, the tenant approves, the landlord
downloads a signed "yes" that verifies offline, and never sees the figure; the tenant sees what left; the agency
that issued the income statement sees its key."""

import re

import pytest
from playwright.sync_api import expect

from tests.web.conftest import browser_sign_in, check_page, guard_page

pytestmark = pytest.mark.browser


def test_a_landlord_screens_a_tenant_without_the_documents(guarded_page, live_vault, context, tmp_path):
    tomasz_id = live_vault.people["tomasz"]["id"]

    # Harbour Housing already holds the demo's attestation about Tomasz; it asks again for a new flat.
    harbour = guarded_page
    browser_sign_in(harbour, live_vault, "harbour")
    harbour.get_by_role("link", name="Attestations").first.click()
    expect(harbour.get_by_role("table")).to_contain_text("annual rent of 10200 EUR")
    harbour.get_by_role("link", name="Start a request").first.click()
    harbour.get_by_label("Resident id").fill(tomasz_id)
    harbour.locator("label[for=action-attest]").click()
    expect(harbour.get_by_label(re.compile("Only signed yes/no answers"))).to_be_checked()
    harbour.locator("label[for=cat-tenancy-income]").click()
    harbour.get_by_label("Purpose").select_option("tenancy-screening")
    harbour.get_by_label("Why you ask").fill("Flat 2, 11 Harbour Row: is the income at least 3 times the rent?")
    check_page(harbour)
    harbour.get_by_role("button", name="Send the request").click()
    expect(harbour.get_by_text("The request is sent; the resident will see it.")).to_be_visible()

    # Tomasz, in his own browser, sees that only a signed answer would leave, and approves.
    other = context.browser.new_context(
        viewport={"width": 1280, "height": 900}, service_workers="block", accept_downloads=True
    )
    try:
        tomasz = guard_page(other)
        browser_sign_in(tomasz, live_vault, "tomasz")
        tomasz.goto(f"{live_vault.base}/resident/requests")
        tomasz.get_by_role("link", name=re.compile("Review.*Harbour")).first.click()
        expect(tomasz.locator('[data-action="attest"]')).to_contain_text("never the records or the figures")
        check_page(tomasz, screenshot="resident-attest-request")
        tomasz.get_by_role("button", name="Approve what is ticked").click()
        expect(tomasz.get_by_text("The request is approved.")).to_be_visible()

        # Harbour asks: is the income at least 3 x 9,600 EUR a year?
        harbour.get_by_role("link", name="Residents").first.click()
        harbour.get_by_role("link", name="Tomasz Nowak").first.click()
        income = harbour.locator('[data-predicate="income_at_least"]')
        income.get_by_label("Multiple of the rent").fill("3")
        income.get_by_label("Yearly rent").fill("9600")
        income.get_by_label("Purpose").select_option("tenancy-screening")
        check_page(harbour, screenshot="provider-ask")
        income.get_by_role("button", name="Ask").click()
        expect(harbour.get_by_test_id("answer")).to_have_text("yes")
        expect(harbour.get_by_text("Northside Payroll Services").first).to_be_visible()
        expect(harbour.locator("main")).not_to_contain_text("31200")
        check_page(harbour, screenshot="provider-attestation")

        # The download is the signed credential; the vault's command line verifies it offline.
        with harbour.expect_download() as started:
            harbour.get_by_test_id("download").click()
        saved = tmp_path / started.value.suggested_filename
        started.value.save_as(saved)
        assert re.fullmatch(r"attestation-[0-9a-f-]{36}\.json", saved.name)
        did = harbour.get_by_test_id("did").inner_text().strip()
        checked = live_vault.cli("attest", "verify", str(saved), "--key", did)
        assert "true" in checked and "income_at_least" in checked
        tampered = saved.read_text().replace('"result": true', '"result": false')
        assert tampered != saved.read_text()
        (tmp_path / "tampered.json").write_text(tampered)
        refused = live_vault.run("attest", "verify", str(tmp_path / "tampered.json"), "--key", did)
        assert refused.returncode != 0

        # Listing (or reading) the income record is refused: signed answers only.
        harbour.get_by_role("link", name=re.compile("Back to Tomasz")).click()
        expect(harbour.get_by_test_id("answers-only")).to_be_visible()
        harbour.goto(f"{live_vault.base}/provider/residents/{tomasz_id}?purpose=tenancy-screening")
        expect(harbour.get_by_test_id("refusal")).to_be_visible()
        expect(harbour.locator("main")).not_to_contain_text("31200")

        # Tomasz's history says exactly what left the vault.
        tomasz.get_by_role("link", name="Access history").first.click()
        disclosed = tomasz.get_by_test_id("disclosed").filter(has_text="annual rent 9600 EUR")
        expect(disclosed).to_contain_text("for Harbour Housing Association: true")
        check_page(tomasz)
        tomasz.guard.assert_clean()
    finally:
        other.close()

    # Northside, which issued the statement, sees its key and the resident who lets it write.
    third = context.browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    try:
        northside = guard_page(third)
        browser_sign_in(northside, live_vault, "northside")
        expect(northside.get_by_role("heading", level=1)).to_have_text("Northside Payroll Services")
        expect(northside.get_by_role("table").first).to_contain_text("active")
        expect(northside.locator("main")).to_contain_text("Tomasz Nowak")
        check_page(northside, screenshot="agency-home")
        northside.guard.assert_clean()
    finally:
        third.close()
