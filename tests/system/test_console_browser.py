"""The console in a real headless Chromium: generate, copy once, list, bulk-revoke; regenerate
with a grace period, disable and enable, the organisation's policy form; a phone-wide screen;
sign-in through the local managed login, sign-out, an expired and a forged session, a user
without an organisation."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta

from console_helpers import (
    fits,
    identity,
    mint,
    require_chromium,
    row_by_id,
    screenshot,
    submit_generate,
    switch_identity,
    wait,
)
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select
from support import SEED_PASSWORD, sign_in, unverified_claims

from token_service.domain.token_format import token_regex

require_chromium()


def row_of(driver: webdriver.Chrome, name: str):
    return wait(
        driver,
        expected_conditions.presence_of_element_located(
            (By.XPATH, f"//tbody[@id='token-rows']/tr[td[2][normalize-space()='{name}']]")
        ),
    )


def status_of(driver: webdriver.Chrome, token_id: str) -> str:
    return str(row_by_id(driver, token_id).find_element(By.CSS_SELECTOR, ".status").text)


def test_generate_copy_list_and_bulk_revoke(server, browser):
    browser.get(server.url + "/")
    switch_identity(browser, "carol", "member")
    # The scopes offered follow the role: a member is not offered the admin-only import:teams.
    wait(
        browser,
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "#scope-list input[value='reports:read']")
            and not d.find_elements(By.CSS_SELECTOR, "#scope-list input[value='import:teams']")
        ),
    )

    browser.find_element(By.ID, "generate-open").click()
    assert browser.switch_to.active_element == browser.find_element(By.ID, "token-name")  # keyboard flow

    # A bad name is reported next to the field, not as a generic failure.
    submit_generate(browser)
    error = wait(browser, lambda d: d.find_element(By.ID, "error-name").text or None)
    assert "empty" in error or "required" in error

    offered = {box.get_attribute("value") for box in browser.find_elements(By.CSS_SELECTOR, "#scope-list input")}
    assert "import:builds" in offered

    browser.find_element(By.ID, "token-name").send_keys("Browser token")
    browser.find_element(By.CSS_SELECTOR, "#scope-list input[value='reports:read']").click()
    expiry = browser.find_element(By.ID, "token-expiry")
    assert expiry.get_attribute("max") and expiry.get_attribute("min") and expiry.get_attribute("value")
    submit_generate(browser)

    shown = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "new-token-value")))
    token = shown.get_attribute("value")
    assert re.fullmatch(token_regex("lgk"), token)
    assert "cannot see this token again" in browser.find_element(By.ID, "new-token").text
    browser.find_element(By.ID, "copy-token").click()
    wait(browser, lambda d: "Copied" in d.find_element(By.ID, "copy-status").text)
    browser.find_element(By.ID, "new-token-done").click()
    assert browser.find_element(By.ID, "new-token").is_displayed() is False
    assert token not in browser.page_source  # shown once, then gone from the page

    row = row_of(browser, "Browser token")
    assert row.find_element(By.CSS_SELECTOR, ".status").text == "active"
    assert server.request("GET", "/v1/token", headers={"Authorization": f"Bearer {token}"}).status == 200

    row.find_element(By.CSS_SELECTOR, ".row-select").click()
    browser.find_element(By.ID, "revoke-selected").click()
    dialog = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "confirm")))
    assert "Revoke 1 token?" in dialog.text and "You: 1 token" in dialog.text  # the owner named
    browser.find_element(By.ID, "confirm-ok").click()
    wait(browser, lambda d: row_of(d, "Browser token").find_element(By.CSS_SELECTOR, ".status").text == "revoked")
    assert "Revoked 1" in browser.find_element(By.ID, "bulk-status").text
    assert server.request("GET", "/v1/token", headers={"Authorization": f"Bearer {token}"}).status == 401


def test_admin_sees_the_organisations_tokens(server, browser):
    member = {"X-Dev-User-Id": "dave", "X-Dev-Org-Id": "org-acme", "X-Dev-Role": "member"}
    assert (
        server.request("POST", "/tokens", {"name": "Dave CI token", "scopes": ["import:builds"]}, member).status == 201
    )
    browser.get(server.url + "/")
    switch_identity(browser, "alice", "admin")
    owner = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "owner-filter")))
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#owner-filter option[value='dave']"))
    Select(owner).select_by_value("*")  # everyone in the organisation
    row = row_of(browser, "Dave CI token")
    assert "dave" in row.text
    screenshot(browser, "console-admin.png")


# -- token lifecycle (issue #15) ---------------------------------------------------------------


def listed(server, who: dict[str, str]) -> dict[str, dict]:
    response = server.request("GET", "/tokens?limit=100", headers=who)
    assert response.status == 200, response.body
    return {token["token_id"]: token for token in json.loads(response.body)["items"]}


def presented(server, token: str) -> int:
    return server.request("GET", "/v1/token", headers={"Authorization": f"Bearer {token}"}).status


def set_date(driver: webdriver.Chrome, element, value: str) -> None:
    """A date input's value, whatever the browser's locale makes typing into it."""
    driver.execute_script(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change', {bubbles: true}))",
        element,
        value,
    )


def test_regenerate_shows_the_new_secret_once_and_marks_the_old_token_replaced(server, browser):
    erin = identity("erin")
    old = mint(server, erin, "Deploy token")
    browser.get(server.url + "/")
    switch_identity(browser, "erin", "member")

    row_by_id(browser, old["token_id"]).find_element(By.CSS_SELECTOR, "button.regenerate").click()
    dialog = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "regenerate")))
    assert "Deploy token" in dialog.text
    # The grace periods in plain words; the default (1 day) has the focus, and the hint says
    # until when the old token keeps working.
    choices = [label.text for label in dialog.find_elements(By.CSS_SELECTOR, ".choices label")]
    assert choices == ["Not at all: it stops now", "1 hour", "1 day", "7 days", "30 days"]
    assert browser.switch_to.active_element.get_attribute("value") == "P1D"
    assert "keeps working until about" in browser.find_element(By.ID, "grace-hint").text
    dialog.find_element(By.CSS_SELECTOR, "input[value='PT0S']").click()
    wait(browser, lambda d: "stops working as soon as" in d.find_element(By.ID, "grace-hint").text)

    # Cancel (Escape) changes nothing and gives the focus back to the row's button.
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(browser, expected_conditions.invisibility_of_element_located((By.ID, "regenerate")))
    assert browser.switch_to.active_element.get_attribute("aria-label") == "Regenerate Deploy token"
    browser.switch_to.active_element.click()
    wait(browser, expected_conditions.visibility_of_element_located((By.ID, "regenerate")))
    dialog.find_element(By.CSS_SELECTOR, "input[value='P7D']").click()

    # The server's field error is shown next to the field, in the dialog.
    expiry = browser.find_element(By.ID, "regenerate-expiry")
    set_date(browser, expiry, "2020-01-01")
    dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = wait(browser, lambda d: d.find_element(By.ID, "regenerate-error-expires_at").text or None)
    assert "future" in error
    assert expiry.get_attribute("aria-invalid") == "true"
    assert browser.switch_to.active_element == expiry

    new_expiry = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    set_date(browser, expiry, new_expiry)
    dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    shown = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "new-token-value")))
    secret = shown.get_attribute("value")
    assert re.fullmatch(token_regex("lgk"), secret)
    assert browser.switch_to.active_element == shown
    assert not dialog.is_displayed()
    panel = browser.find_element(By.ID, "new-token")
    assert "cannot see this token again" in panel.text
    assert 'It replaces "Deploy token", which keeps working until' in panel.text
    browser.find_element(By.ID, "copy-token").click()
    wait(browser, lambda d: "Copied" in d.find_element(By.ID, "copy-status").text)

    tokens = listed(server, erin)
    new = next(token for token in tokens.values() if token["rotated_from"] == old["token_id"])
    assert tokens[old["token_id"]]["rotated_to"] == new["token_id"]
    assert new["expires_at"].startswith(new_expiry)
    # The old token works for the grace period (7 days), alongside the new one.
    stops = datetime.fromisoformat(tokens[old["token_id"]]["expires_at"])
    assert timedelta(days=6, hours=23) < stops - datetime.now(UTC) <= timedelta(days=7)
    assert presented(server, old["token"]) == 200 and presented(server, secret) == 200

    # The list: the old token is marked replaced, with when it stops, and cannot be regenerated again.
    wait(browser, lambda d: "Replaced by" in row_by_id(d, old["token_id"]).text)
    old_row = row_by_id(browser, old["token_id"])
    assert f"Replaced by {new['display_hint']}; stops working {stops.strftime('%Y-%m-%d %H:%M')} UTC" in old_row.text
    assert old_row.find_element(By.CSS_SELECTOR, ".status").text == "active"
    assert not old_row.find_elements(By.CSS_SELECTOR, "button.regenerate")
    assert old_row.find_elements(By.CSS_SELECTOR, "button.revoke")
    new_row = row_by_id(browser, new["token_id"])
    assert f"Replaces {old['display_hint']}" in new_row.text

    browser.find_element(By.ID, "new-token-done").click()
    assert not panel.is_displayed()
    assert secret not in browser.page_source  # shown once, then gone from the page
    assert browser.switch_to.active_element.get_attribute("aria-label") == "Regenerate Deploy token"
    assert (
        browser.switch_to.active_element.find_element(By.XPATH, "./ancestor::tr").get_attribute("data-token-id")
        == new["token_id"]
    )


def test_regenerating_a_token_already_replaced_says_so(server, browser):
    gina = identity("gina")
    old = mint(server, gina, "Twice rotated")
    browser.get(server.url + "/")
    switch_identity(browser, "gina", "member")
    row_by_id(browser, old["token_id"]).find_element(By.CSS_SELECTOR, "button.regenerate").click()
    wait(browser, expected_conditions.visibility_of_element_located((By.ID, "regenerate")))
    # Meanwhile, elsewhere (another tab, a pipeline):
    assert server.request("POST", f"/tokens/{old['token_id']}/rotate", {"grace": "PT1H"}, gina).status == 201
    browser.find_element(By.CSS_SELECTOR, "#regenerate-form button[type=submit]").click()
    error = wait(browser, lambda d: d.find_element(By.ID, "regenerate-error-form").text or None)
    assert "already rotated" in error
    assert browser.find_element(By.ID, "new-token").is_displayed() is False
    wait(browser, lambda d: not row_by_id(d, old["token_id"]).find_elements(By.CSS_SELECTOR, "button.regenerate"))


def test_disable_then_enable_changes_the_badge_and_the_filter(server, browser):
    frank = identity("frank")
    token = mint(server, frank, "Nightly export")
    token_id = token["token_id"]
    browser.get(server.url + "/")
    switch_identity(browser, "frank", "member")
    assert [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "status-filter")).options] == [
        "",
        "active",
        "disabled",
        "expired",
        "revoked",
    ]

    row_by_id(browser, token_id).find_element(By.CSS_SELECTOR, "button.toggle").click()
    wait(browser, lambda d: status_of(d, token_id) == "disabled")
    row = row_by_id(browser, token_id)
    assert "Disabled" in row.text and "by frank" in row.text
    assert 'Disabled "Nightly export"' in browser.find_element(By.ID, "bulk-status").text
    # The focus moves to the button that undoes it.
    assert browser.switch_to.active_element.get_attribute("aria-label") == "Enable Nightly export"
    assert not row.find_elements(By.CSS_SELECTOR, "button.regenerate")
    assert presented(server, token["token"]) == 401  # at once

    status_filter = Select(browser.find_element(By.ID, "status-filter"))
    status_filter.select_by_value("disabled")
    wait(browser, lambda d: status_of(d, token_id) == "disabled")
    status_filter.select_by_value("active")
    wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, f"#token-rows tr[data-token-id='{token_id}']"))
    status_filter.select_by_value("")

    row_by_id(browser, token_id).find_element(By.CSS_SELECTOR, "button.toggle").click()
    wait(browser, lambda d: status_of(d, token_id) == "active")
    assert browser.switch_to.active_element.get_attribute("aria-label") == "Disable Nightly export"
    assert presented(server, token["token"]) == 200
    status_filter.select_by_value("disabled")
    wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, f"#token-rows tr[data-token-id='{token_id}']"))
    status_filter.select_by_value("active")
    wait(browser, lambda d: status_of(d, token_id) == "active")


def test_settings_field_saves_and_a_bad_value_shows_a_plain_words_error(server, browser):
    org = "org-console-policy"  # its own organisation: the other tests keep the default policy
    admin = identity("hana", "admin", org)
    browser.get(server.url + "/")
    switch_identity(browser, "hana", "admin", org)
    wait(browser, expected_conditions.visibility_of_element_located((By.ID, "nav-settings"))).click()
    field = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "policy-unused")))
    wait(browser, lambda d: d.find_element(By.ID, "policy-max-lifetime").get_attribute("value"))
    assert field.get_attribute("value") == ""  # off
    label = browser.find_element(By.CSS_SELECTOR, "label[for='policy-unused']").text
    assert label == "Revoke tokens unused for this many days"
    save = browser.find_element(By.CSS_SELECTOR, "#settings-form button[type=submit]")

    def saved_days() -> object:
        return json.loads(server.request("GET", "/settings", headers=admin).body)["revoke_unused_after_days"]

    for bad, words in (("10", "must be from 30 to 365 days, not 10"), ("ninety", "Enter a whole number")):
        field.clear()
        field.send_keys(bad)
        save.click()
        error = wait(browser, lambda d: d.find_element(By.ID, "error-revoke_unused_after_days").text or None)
        assert words in error and "leave the field empty" in error
        assert field.get_attribute("aria-invalid") == "true"
        assert browser.switch_to.active_element == field
        assert saved_days() is None

    field.clear()
    field.send_keys("90")
    save.click()
    wait(browser, lambda d: "Saved" in d.find_element(By.ID, "settings-status").text)
    assert "unused for 90 days" in browser.find_element(By.ID, "settings-status").text
    assert browser.find_element(By.ID, "error-revoke_unused_after_days").text == ""
    assert field.get_attribute("aria-invalid") is None
    assert saved_days() == 90
    browser.refresh()
    wait(browser, lambda d: d.find_element(By.ID, "policy-unused").get_attribute("value") == "90")

    # The server's own 400 field errors land next to their field.
    default = browser.find_element(By.ID, "policy-default-lifetime")
    default.clear()
    default.send_keys("3000")
    browser.find_element(By.CSS_SELECTOR, "#settings-form button[type=submit]").click()
    error = wait(browser, lambda d: d.find_element(By.ID, "error-default_lifetime_days").text or None)
    assert "must not exceed max_lifetime_days" in error
    assert browser.switch_to.active_element == default

    # Empty: off again.
    browser.refresh()
    field = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "policy-unused")))
    wait(browser, lambda d: field.get_attribute("value") == "90")
    field.clear()
    browser.find_element(By.CSS_SELECTOR, "#settings-form button[type=submit]").click()
    wait(browser, lambda d: "Unused tokens are kept" in d.find_element(By.ID, "settings-status").text)
    assert saved_days() is None

    # Only admins see the policy form.
    switch_identity(browser, "ivan", "member", org)
    wait(browser, expected_conditions.invisibility_of_element_located((By.ID, "settings")))


def test_no_sideways_scrolling_on_a_phone(server, browser):
    org = "org-console-phone"
    kim = identity("kim", "admin", org)
    replaced = mint(server, kim, "A rather long token name for the nightly warehouse export job")
    assert server.request("POST", f"/tokens/{replaced['token_id']}/rotate", {"grace": "P30D"}, kim).status == 201
    disabled = mint(server, identity("lee", "member", org), "Disabled one", ["import:builds", "import:tests"])
    lee = identity("lee", "member", org)
    assert server.request("PATCH", f"/tokens/{disabled['token_id']}", {"enabled": False}, lee).status == 200
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 375, "height": 800, "deviceScaleFactor": 2, "mobile": True}
    )
    browser.get(server.url + "/")
    switch_identity(browser, "kim", "admin", org)
    owner = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "owner-filter")))
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#owner-filter option[value='lee']"))
    Select(owner).select_by_value("*")
    wait(browser, lambda d: "lee" in row_by_id(d, disabled["token_id"]).text)

    assert browser.execute_script("return window.innerWidth") == 375
    assert fits(browser), "the token list scrolls sideways at 375px"
    screenshot(browser, "console-phone-list.png")
    row_by_id(browser, replaced["token_id"])
    browser.find_element(By.CSS_SELECTOR, "#token-rows button.regenerate").click()
    wait(browser, expected_conditions.visibility_of_element_located((By.ID, "regenerate")))
    assert fits(browser), "the regenerate dialog scrolls sideways at 375px"
    dialog = browser.find_element(By.ID, "regenerate")
    assert browser.execute_script("return arguments[0].getBoundingClientRect().right", dialog) <= 375
    screenshot(browser, "console-phone-regenerate.png")
    dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser, expected_conditions.visibility_of_element_located((By.ID, "new-token-value")))
    assert fits(browser), "the new secret scrolls sideways at 375px"
    browser.find_element(By.ID, "new-token-done").click()
    browser.find_element(By.ID, "generate-open").click()
    assert fits(browser), "the generate form scrolls sideways at 375px"
    browser.find_element(By.ID, "nav-settings").click()
    wait(browser, expected_conditions.visibility_of_element_located((By.ID, "settings")))
    assert fits(browser), "the settings page scrolls sideways at 375px"
    screenshot(browser, "console-phone-settings.png")


# -- sign-in (issue #13): the local managed login, as `make dev` runs it ------------------------------


def sign_in_page(driver: webdriver.Chrome, email: str, password: str = SEED_PASSWORD) -> None:
    """On the local managed login's form (the browser is there or on its way): signs in, and
    waits for the console to show the signed-in user."""
    form = wait(driver, expected_conditions.visibility_of_element_located((By.ID, "sign-in-form")))
    assert "/login?" in driver.current_url
    driver.find_element(By.ID, "username").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, lambda d: email in d.find_element(By.ID, "session-user").text)
    assert "code=" not in driver.current_url  # the code left the address bar


def requests_since(server, mark: int) -> list[str]:
    """The request lines the server logged since `mark` (a count of its output lines)."""
    return [line for line in server.lines[mark:] if '"' in line and " HTTP/1.1" in line]


def generate(driver: webdriver.Chrome, name: str) -> str:
    wait(driver, expected_conditions.element_to_be_clickable((By.ID, "generate-open"))).click()
    driver.find_element(By.ID, "token-name").send_keys(name)
    wait(
        driver,
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "#scope-list input[value='reports:read']")),
    ).click()
    submit_generate(driver)
    shown = wait(driver, expected_conditions.visibility_of_element_located((By.ID, "new-token-value")))
    return str(shown.get_attribute("value"))


def generate_refused(driver: webdriver.Chrome, name: str) -> None:
    """Fills in and submits the create form (the API call that follows is refused)."""
    wait(driver, expected_conditions.element_to_be_clickable((By.ID, "generate-open"))).click()
    driver.find_element(By.ID, "token-name").send_keys(name)
    driver.find_element(By.CSS_SELECTOR, "#scope-list input[value='reports:read']").click()
    submit_generate(driver)


def test_sign_in_create_sign_out_and_sign_in_as_another_user(signin_server, browser):
    server = signin_server
    browser.get(server.url + "/")
    sign_in_page(browser, "alice@acme.example")  # the console sent the browser to sign in at once
    assert "(org-acme, admin)" in browser.find_element(By.ID, "session-user").text
    assert not browser.find_element(By.ID, "identity").is_displayed()  # no identity switcher

    secret = generate(browser, "Signed-in token")
    assert re.fullmatch(token_regex("lgk"), secret)
    browser.find_element(By.ID, "copy-token").click()
    wait(browser, lambda d: "Copied" in d.find_element(By.ID, "copy-status").text)
    alice = sign_in(server, "alice@acme.example")["id_token"]
    listed = server.request("GET", "/tokens", headers={"Authorization": alice}).json()["items"]
    assert [token["name"] for token in listed] == ["Signed-in token"]
    assert listed[0]["owner_id"] == unverified_claims(alice)["sub"]

    # Sign out with the secret on screen: it goes, with every message, and managed login's session.
    browser.find_element(By.ID, "sign-out").click()
    panel = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "auth-panel")))
    wait(browser, lambda d: "signed out" in panel.text)
    assert secret not in browser.page_source
    assert "Signed-in token" not in browser.page_source and "Copied" not in browser.page_source
    assert not browser.find_element(By.ID, "session").is_displayed()
    assert not browser.find_element(By.ID, "generate-open").is_displayed()
    screenshot(browser, "console-signed-out.png")

    # Another user: the password is asked again (the managed login session ended with the sign-out).
    browser.find_element(By.ID, "sign-in").click()
    sign_in_page(browser, "dave@globex.example")
    assert "(org-globex, admin)" in browser.find_element(By.ID, "session-user").text
    wait(browser, lambda d: d.find_element(By.ID, "empty").is_displayed())  # dave's organisation has no tokens
    assert "Signed-in token" not in browser.page_source and secret not in browser.page_source
    assert browser.find_element(By.ID, "owner-filter").is_displayed()  # an admin's view
    screenshot(browser, "console-signed-in.png")


def test_a_forged_session_is_refused_and_leads_back_to_sign_in(signin_server, browser):
    server = signin_server
    browser.get(server.url + "/")
    sign_in_page(browser, "bob@acme.example")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#scope-list input"))
    real = browser.execute_script("return ConsoleAuth.session.idToken")
    assert unverified_claims(real)["custom:role"] == "member"

    # The token in the page's memory, its payload rewritten to an admin of another organisation
    # (the signature kept): what a script on the page, or a user with the console open, could do.
    header, _, signature = real.split(".")
    claims = {**unverified_claims(real), "custom:role": "admin", "custom:org_id": "org-globex"}
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    browser.execute_script("ConsoleAuth.session.idToken = arguments[0]", f"{header}.{forged_payload}.{signature}")
    mark = len(server.lines)
    generate_refused(browser, "Sent with a forged session")  # the next API call

    panel = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "auth-panel")))
    wait(browser, lambda d: "did not accept your session" in panel.text)
    seen = requests_since(server, mark)
    assert any('"POST /tokens HTTP/1.1" 401' in line for line in seen), seen  # refused by the gateway
    assert any('"GET /logout HTTP/1.1" 302' in line for line in seen), seen  # and signed out of managed login
    assert browser.execute_script("return ConsoleAuth.session.idToken") is None
    assert not browser.find_element(By.ID, "token-table").is_displayed()

    # Back to the sign-in form (a password, not the old session), and in as bob again.
    browser.find_element(By.ID, "sign-in").click()
    sign_in_page(browser, "bob@acme.example")
    assert "(org-acme, member)" in browser.find_element(By.ID, "session-user").text
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#scope-list input"))
    assert not browser.find_elements(By.CSS_SELECTOR, "#scope-list input[value='import:teams']")  # no admin scope


def test_an_expired_session_signs_in_again_without_losing_the_form(signin_server, browser):
    server = signin_server
    browser.get(server.url + "/")
    sign_in_page(browser, "erin@globex.example")
    wait(browser, expected_conditions.element_to_be_clickable((By.ID, "generate-open"))).click()
    browser.find_element(By.ID, "token-name").send_keys("Written before expiry")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#scope-list input[value='import:builds']"))
    browser.find_element(By.CSS_SELECTOR, "#scope-list input[value='import:builds']").click()
    browser.find_element(By.CSS_SELECTOR, "#scope-list input[value='reports:read']").click()
    before = browser.execute_script("return ConsoleAuth.session.idToken")

    browser.execute_script("ConsoleAuth.session.expiresAt = Date.now() - 1000")  # the ID token's hour is up
    mark = len(server.lines)
    submit_generate(browser)

    # Signed in again (silently: managed login's session is still on) and the form is back as it was.
    wait(browser, lambda d: d.find_element(By.ID, "token-name").get_attribute("value") == "Written before expiry")
    seen = requests_since(server, mark)
    assert any('"GET /oauth2/authorize HTTP/1.1" 302' in line for line in seen), seen
    assert not any('"POST /tokens HTTP/1.1"' in line for line in seen), seen  # nothing was sent with the old token
    after = browser.execute_script("return ConsoleAuth.session.idToken")
    assert after and after != before
    checked = {
        box.get_attribute("value") for box in browser.find_elements(By.CSS_SELECTOR, "#scope-list input:checked")
    }
    assert checked == {"import:builds", "reports:read"}
    assert browser.switch_to.active_element == browser.find_element(By.ID, "token-name")

    submit_generate(browser)
    secret = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "new-token-value")))
    assert re.fullmatch(token_regex("lgk"), secret.get_attribute("value"))
    wait(browser, lambda d: row_of(d, "Written before expiry"))


def test_a_user_without_an_organisation_is_told_so_and_nothing_is_asked_of_the_api(signin_server, browser):
    server = signin_server
    browser.get(server.url + "/")
    mark = len(server.lines)
    form = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "sign-in-form")))
    browser.find_element(By.ID, "username").send_keys("nora@newcomer.example")
    browser.find_element(By.ID, "password").send_keys(SEED_PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    panel = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "auth-panel")))
    wait(browser, lambda d: "not in an organisation" in panel.text)
    assert "nora@newcomer.example" in panel.text and "administrator" in panel.text
    assert not browser.find_element(By.ID, "generate-open").is_displayed()
    api_calls = [
        line
        for line in requests_since(server, mark)
        if any(f" /{path}" in line for path in ("tokens", "scopes", "settings", "members"))
    ]
    assert api_calls == []
    screenshot(browser, "console-no-organisation.png")
    browser.find_element(By.ID, "auth-sign-out").click()
    wait(browser, lambda d: "signed out" in d.find_element(By.ID, "auth-panel").text)


def test_a_wrong_password_stays_on_the_sign_in_form(signin_server, browser):
    browser.get(signin_server.url + "/")
    form = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "sign-in-form")))
    browser.find_element(By.ID, "username").send_keys("carol@acme.example")
    browser.find_element(By.ID, "password").send_keys("not her password")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "sign-in-error")))
    assert error.text == "Incorrect username or password."
    assert browser.find_element(By.ID, "username").get_attribute("value") == "carol@acme.example"
    assert browser.find_element(By.ID, "password").get_attribute("value") == ""
    browser.find_element(By.ID, "username").clear()
    sign_in_page(browser, "carol@acme.example")  # the same sign-in goes on with the right password


def test_switching_the_dev_identity_clears_the_secret_and_the_messages(server, browser):
    """On the dev server in test mode, the identity switcher stands in for signing in as another user."""
    browser.get(server.url + "/")
    switch_identity(browser, "mallory", "member")
    secret = generate(browser, "Before the switch")
    browser.find_element(By.ID, "copy-token").click()
    wait(browser, lambda d: "Copied" in d.find_element(By.ID, "copy-status").text)
    switch_identity(browser, "nick", "viewer")
    wait(browser, lambda d: not d.find_element(By.ID, "new-token").is_displayed())
    assert secret not in browser.page_source
    assert browser.find_element(By.ID, "new-token-value").get_attribute("value") == ""
    assert browser.find_element(By.ID, "copy-status").text == ""
    wait(browser, lambda d: d.find_element(By.ID, "empty").is_displayed())  # nick has no tokens
    assert "Before the switch" not in browser.page_source
