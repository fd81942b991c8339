"""Signing in in a real browser: the form, a TOTP code, the layout with JavaScript, axe on each page."""

import re

import pyotp
import pytest
from playwright.sync_api import expect

from tests.web.conftest import browser_sign_in, check_page

pytestmark = pytest.mark.browser


def test_a_resident_signs_in_and_out(guarded_page, live_vault):
    page = guarded_page
    page.goto(live_vault.base + "/")
    expect(page).to_have_url(re.compile(r".*/signin$"))
    check_page(page, screenshot="sign-in")
    page.get_by_label("Login").fill("amina")
    page.get_by_label("Password").fill("not her password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="The login or password is wrong.")).to_be_visible()
    check_page(page)
    browser_sign_in(page, live_vault, "amina")
    expect(page).to_have_url(re.compile(r".*/resident/.*"))
    expect(page.get_by_text("Amina Yusuf").first).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.goto(live_vault.base + "/resident/")
    expect(page).to_have_url(re.compile(r".*/signin\?next=.*"))


def test_a_clinic_signs_in_with_its_totp_code(guarded_page, live_vault):
    page = guarded_page
    who = live_vault.people["riverside"]
    page.goto(live_vault.base + "/signin")
    page.get_by_label("Login").fill("riverside")
    page.get_by_label("Password").fill(who["password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r".*/signin/code.*"))
    check_page(page, screenshot="sign-in-code")
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    page.get_by_label("Code").fill(pyotp.TOTP(who["totp_secret"]).now())
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r".*/provider/.*"))
    check_page(page)


def test_a_form_posted_without_its_csrf_token_is_refused(guarded_page, live_vault):
    page = guarded_page
    browser_sign_in(page, live_vault, "amina")
    page.goto(live_vault.base + "/account")
    page.evaluate("document.querySelector('form[action$=\"signout-everywhere\"] input[name=csrf_token]').remove()")
    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page.get_by_text("reload the page and try again")).to_be_visible()
    page.guard.problems.clear()  # the browser logs the 403 as a console error; that is the point here
    page.goto(live_vault.base + "/resident/")
    expect(page).to_have_url(re.compile(r".*/resident/.*"))  # still signed in: nothing happened


def test_an_ended_session_sends_the_browser_back_to_sign_in(guarded_page, browser, live_vault):
    page = guarded_page
    browser_sign_in(page, live_vault, "tomasz")
    expect(page).to_have_url(re.compile(r".*/resident/.*"))
    # Tomasz signs in on another device and signs out everywhere (a lost laptop).
    other = browser.new_context()
    try:
        phone = other.new_page()
        browser_sign_in(phone, live_vault, "tomasz")
        phone.goto(live_vault.base + "/account")
        phone.get_by_role("button", name="Sign out everywhere").click()
        expect(phone.get_by_text("You have signed out on every device.")).to_be_visible()
    finally:
        other.close()
    page.goto(live_vault.base + "/resident/")
    expect(page).to_have_url(re.compile(r".*/signin\?.*"))
    expect(page.get_by_text("Your session ended; sign in again to go on.")).to_be_visible()
    check_page(page)
