"""What a user of GitHub's or GitLab's token page expects of the console, in headless Chromium on
the local stack: expiry presets within the organisation's maximum, checks in plain words, search,
filters, sort and "showing N of M" over every page of the listing, the right empty state, a
token's details, revoke dialogs that name the owner and keep the focus in place, bulk revoke of
any number of tokens, an admin's typed confirmations (a user's tokens, the organisation's), a
100-character name on a phone, and /docs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from console_helpers import (
    fits,
    identity,
    mint,
    open_console,
    require_chromium,
    row_by_id,
    submit_generate,
    switch_identity,
    visible,
    wait,
)
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select

require_chromium()


def statuses(server, who: dict[str, str], **query: str) -> dict[str, str]:
    """token id -> status of every token the caller lists (every page)."""
    found: dict[str, str] = {}
    cursor = ""
    while True:
        params = "&".join(f"{key}={value}" for key, value in {"limit": "100", **query}.items())
        answer = server.request("GET", f"/tokens?{params}{f'&next={cursor}' if cursor else ''}", headers=who)
        assert answer.status == 200, answer.body
        page = json.loads(answer.body)
        found.update({token["token_id"]: token["status"] for token in page["items"]})
        if not page.get("next"):
            return found
        cursor = page["next"]


def shown_names(driver: webdriver.Chrome) -> list[str]:
    return [str(button.text) for button in driver.find_elements(By.CSS_SELECTOR, "#token-rows .details-link")]


def count_text(driver: webdriver.Chrome) -> str:
    return str(driver.find_element(By.ID, "list-count").text)


def focused(driver: webdriver.Chrome):
    return driver.switch_to.active_element


def day(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


# -- generate: presets and plain words ------------------------------------------------------------------


def test_expiry_presets_stay_within_the_organisations_maximum_and_checks_are_plain_words(server, browser):
    org = "org-features-presets"
    admin = identity("pia", "admin", org)
    policy = {"max_lifetime_days": 60, "default_lifetime_days": 30, "max_active_tokens_per_user": 50}
    assert server.request("PUT", "/settings", policy, admin).status == 200
    open_console(browser, server, "raj", "member", org)
    browser.find_element(By.ID, "generate-open").click()

    presets = {
        radio.get_attribute("value"): radio
        for radio in browser.find_elements(By.CSS_SELECTOR, "#expiry-presets input[name='expiry_preset']")
    }
    assert list(presets) == ["7", "30", "60", "90", "custom"]
    assert [value for value, radio in presets.items() if not radio.is_enabled()] == ["90"]  # over the maximum
    assert "over your organisation's maximum of 60" in browser.find_element(By.ID, "expiry-presets").text
    assert presets["30"].is_selected()  # the organisation's default
    hint = browser.find_element(By.ID, "expiry-hint")
    assert day(30) in hint.text and "at most 60 days" in hint.text
    assert not browser.find_element(By.ID, "token-expiry").is_displayed()  # no date field for a preset

    presets["7"].click()
    wait(browser, lambda d: day(7) in hint.text)
    presets["custom"].click()
    date = visible(browser, "token-expiry")
    assert date.get_attribute("max") == day(60)

    # Nothing filled in: each problem next to its field, in plain words, and nothing sent.
    mark = len(server.lines)
    browser.execute_script(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change', {bubbles: true}))",
        date,
        day(61),
    )
    submit_generate(browser)
    name_error = wait(browser, lambda d: d.find_element(By.ID, "error-name").text)
    assert name_error == "The name must not be empty: give the token a name you will recognise."
    assert browser.find_element(By.ID, "error-scopes").text == (
        "Choose at least one scope: a token without scopes can do nothing."
    )
    assert browser.find_element(By.ID, "error-expires_at").text == (
        f"The expiration date is too far ahead: your organisation allows at most 60 days, so choose {day(60)} or "
        "earlier."
    )
    assert focused(browser) == browser.find_element(By.ID, "token-name")
    assert not [line for line in server.lines[mark:] if '"POST /tokens ' in line]

    presets["60"].click()
    browser.find_element(By.CSS_SELECTOR, "#scope-list input[value='reports:read']").click()
    name = browser.find_element(By.ID, "token-name")
    name.clear()
    name.send_keys("Sixty days")
    submit_generate(browser)
    secret = visible(browser, "new-token-value").get_attribute("value")
    stored = browser.execute_script("return JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert secret and secret not in stored  # shown, never stored
    [created] = json.loads(server.request("GET", "/tokens", headers=identity("raj", "member", org)).body)["items"]
    assert created["expires_at"].startswith(day(60))


# -- the list: every page, search, filters, sort, count, empty states -------------------------------------


def test_search_filters_sort_count_details_and_the_right_empty_state(server, browser):
    org = "org-features-list"
    quinn = identity("quinn", "member", org)
    alpha = mint(server, quinn, "alpha build", scopes=["import:builds"])
    beta = mint(server, quinn, "Beta deploy")
    assert server.request("GET", "/v1/token", headers={"Authorization": f"Bearer {beta['token']}"}).status == 200
    gamma = mint(server, quinn, "gamma build", scopes=["import:builds", "reports:read"])
    assert server.request("DELETE", f"/tokens/{gamma['token_id']}", headers=identity("ola", "admin", org)).status == 200
    delta = mint(server, quinn, "delta", expires_at=day(3))
    old = mint(server, quinn, "rotated away")
    rotated = server.request("POST", f"/tokens/{old['token_id']}/rotate", {"grace": "PT0S"}, quinn)
    assert rotated.status == 201
    new = json.loads(rotated.body)
    assert server.request("PATCH", f"/tokens/{new['token_id']}", {"enabled": False}, quinn).status == 200

    open_console(browser, server, "quinn", "member", org)
    wait(browser, lambda d: count_text(d) == "Showing 6 of 6 tokens")
    assert shown_names(browser)[0] == "rotated away"  # newest first

    # The columns: created, expires (with the mark), last used ("Never" until used).
    delta_row = row_by_id(browser, delta["token_id"])
    cells = {cell.get_attribute("data-label"): cell.text for cell in delta_row.find_elements(By.TAG_NAME, "td")}
    assert cells["Created"] == day(0) and cells["Last used"] == "Never"
    assert "Expires soon: in 2 days" in cells["Expires"] or "Expires soon: in 3 days" in cells["Expires"]
    assert "Expires soon" not in row_by_id(browser, alpha["token_id"]).text
    assert row_by_id(browser, beta["token_id"]).find_element(By.CSS_SELECTOR, "td[data-label='Last used']").text == (
        day(0)
    )

    search = browser.find_element(By.ID, "search")
    search.send_keys("BUILD")  # case does not matter
    wait(browser, lambda d: sorted(shown_names(d)) == ["alpha build", "gamma build"])
    assert count_text(browser) == "Showing 2 of 6 tokens"
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("active")
    wait(browser, lambda d: shown_names(d) == ["alpha build"])
    Select(browser.find_element(By.ID, "scope-filter")).select_by_value("reports:read")
    no_match = visible(browser, "no-match")
    assert "No tokens match these filters" in no_match.text
    assert not browser.find_element(By.ID, "empty").is_displayed()
    assert count_text(browser) == "Showing 0 of 6 tokens"
    browser.find_element(By.ID, "no-match-clear").click()
    wait(browser, lambda d: count_text(d) == "Showing 6 of 6 tokens")
    assert focused(browser) == search and search.get_attribute("value") == ""

    Select(browser.find_element(By.ID, "scope-filter")).select_by_value("import:builds")
    wait(browser, lambda d: sorted(shown_names(d)) == ["alpha build", "gamma build"])
    Select(browser.find_element(By.ID, "scope-filter")).select_by_value("")
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("disabled")
    wait(browser, lambda d: shown_names(d) == ["rotated away"])
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("")

    sort = Select(browser.find_element(By.ID, "sort"))
    sort.select_by_value("name-asc")
    wait(browser, lambda d: shown_names(d)[:4] == ["alpha build", "Beta deploy", "delta", "gamma build"])
    sort.select_by_value("name-desc")
    wait(browser, lambda d: shown_names(d)[:2] == ["rotated away", "rotated away"])
    sort.select_by_value("expires-asc")
    wait(browser, lambda d: shown_names(d)[0] in {"delta", "rotated away"})  # the replaced one stopped at once
    sort.select_by_value("used-desc")
    wait(browser, lambda d: shown_names(d)[0] == "Beta deploy")  # the only one used; "never" last
    sort.select_by_value("created-asc")
    wait(browser, lambda d: shown_names(d)[0] == "alpha build")

    # Details: scopes, created by, revoked at and by, rotated from and to, the last-used address.
    row_by_id(browser, gamma["token_id"]).find_element(By.CSS_SELECTOR, "button.details-link").click()
    details = visible(browser, "details")
    text = details.text
    assert "import:builds, reports:read" in text and "by you" in text  # created by quinn herself
    assert "Revoked" in text and "by ola" in text
    assert not browser.find_element(By.ID, "details-revoke").is_displayed()  # nothing left to revoke
    browser.find_element(By.ID, "details-close").send_keys(Keys.ESCAPE)
    wait(browser, expected_conditions.invisibility_of_element_located((By.ID, "details")))
    assert focused(browser).text == "gamma build"  # back where it was
    row_by_id(browser, beta["token_id"]).find_element(By.CSS_SELECTOR, "button.details-link").click()
    wait(browser, lambda d: "Last used from\n127.0.0.1" in d.find_element(By.ID, "details").text)
    browser.find_element(By.ID, "details-close").click()
    row_by_id(browser, new["token_id"]).find_element(By.CSS_SELECTOR, "button.details-link").click()
    wait(browser, lambda d: f"Replaces\n{old['display_hint']}" in d.find_element(By.ID, "details").text)
    assert "Disabled" in browser.find_element(By.ID, "details").text
    assert "Last used from\n—" in browser.find_element(By.ID, "details").text
    browser.find_element(By.ID, "details-close").click()
    row_by_id(browser, old["token_id"]).find_element(By.CSS_SELECTOR, "button.details-link").click()
    wait(browser, lambda d: f"Replaced by\n{new['display_hint']}" in d.find_element(By.ID, "details").text)
    browser.find_element(By.ID, "details-close").click()

    # Another user, without tokens: the filters are cleared, and the empty state says what to do.
    browser.find_element(By.ID, "search").send_keys("delta")
    switch_identity(browser, "rui", "member", org)
    empty = visible(browser, "empty")
    assert "You have no tokens yet: generate one" in empty.text
    assert not browser.find_element(By.ID, "no-match").is_displayed()
    assert browser.find_element(By.ID, "search").get_attribute("value") == ""
    assert "delta" not in browser.page_source


# -- revoke --------------------------------------------------------------------------------------------


def test_a_revoke_names_the_owner_and_keeps_the_focus_in_place(server, browser):
    org = "org-features-focus"
    uli = identity("uli", "member", org)
    first, middle, last = (mint(server, uli, name) for name in ("First", "Middle", "Last"))
    open_console(browser, server, "uli", "member", org)
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("active")
    wait(browser, lambda d: shown_names(d) == ["Last", "Middle", "First"])

    revoke = row_by_id(browser, middle["token_id"]).find_element(By.CSS_SELECTOR, "button.revoke")
    revoke.click()
    dialog = visible(browser, "confirm")
    assert 'Revoke "Middle"?' in dialog.text and "yours" in dialog.text and middle["display_hint"] in dialog.text
    assert focused(browser) == browser.find_element(By.ID, "confirm-cancel")  # the safe choice first
    browser.find_element(By.ID, "confirm-cancel").click()
    wait(browser, expected_conditions.invisibility_of_element_located((By.ID, "confirm")))
    assert focused(browser) == revoke  # cancelled: where it was
    assert statuses(server, uli)[middle["token_id"]] == "active"

    revoke.click()
    visible(browser, "confirm-ok").click()
    wait(browser, lambda d: shown_names(d) == ["Last", "First"])  # revoked: gone from the active ones
    assert browser.find_element(By.ID, "bulk-status").text == 'Revoked "Middle".'
    # The focus went to the row now in its place, not to the page's body.
    wait(browser, lambda d: focused(d).get_attribute("aria-label") == "Revoke First")
    assert statuses(server, uli)[middle["token_id"]] == "revoked"

    Select(browser.find_element(By.ID, "status-filter")).select_by_value("")
    row_by_id(browser, last["token_id"]).find_element(By.CSS_SELECTOR, "button.revoke").click()
    visible(browser, "confirm-ok").click()
    wait(browser, lambda d: row_by_id(d, last["token_id"]).find_element(By.CSS_SELECTOR, ".status").text == "revoked")
    # Still listed (revoked): the focus stays on its row.
    wait(browser, lambda d: focused(d).text == "Last")
    assert statuses(server, uli)[first["token_id"]] == "active"


def test_more_than_100_selected_tokens_are_revoked_in_chunks_with_one_total(server, browser):
    org = "org-features-bulk"
    admin = identity("bea", "admin", org)
    policy = {"max_lifetime_days": 366, "default_lifetime_days": 90, "max_active_tokens_per_user": 1000}
    assert server.request("PUT", "/settings", policy, admin).status == 200
    cal = identity("cal", "member", org)
    for number in range(105):
        mint(server, cal, f"bulk-{number:03}")

    open_console(browser, server, "cal", "member", org)
    wait(browser, lambda d: count_text(d) == "Showing 105 of 105 tokens", timeout=30)  # both pages of 100
    browser.find_element(By.ID, "search").send_keys("bulk-01")  # bulk-010 to bulk-019
    wait(browser, lambda d: count_text(d) == "Showing 10 of 105 tokens")
    browser.find_element(By.ID, "search").clear()
    wait(browser, lambda d: count_text(d) == "Showing 105 of 105 tokens")

    browser.find_element(By.ID, "select-all").click()
    button = browser.find_element(By.ID, "revoke-selected")
    assert button.text == "Revoke selected (105)"
    button.click()
    dialog = visible(browser, "confirm")
    assert "Revoke 105 tokens?" in dialog.text and "You: 105 tokens" in dialog.text
    mark = len(server.lines)
    browser.find_element(By.ID, "confirm-ok").click()
    wait(browser, lambda d: d.find_element(By.ID, "bulk-status").text == "Revoked 105 tokens.", timeout=60)
    assert not browser.find_element(By.ID, "page-error").is_displayed()
    revokes = [line for line in server.lines[mark:] if '"POST /tokens/revoke HTTP/1.1" 200' in line]
    assert len(revokes) == 2  # 100 + 5: the API takes at most 100 ids at a time
    assert set(statuses(server, cal).values()) == {"revoked"}
    wait(browser, lambda d: button.text == "Revoke selected" and not button.is_enabled())


def test_an_admin_revokes_a_users_tokens_and_the_organisations_after_typing_who(server, browser):
    org = "org-features-admin"
    vic, wil, xan = identity("vic", "admin", org), identity("wil", "member", org), identity("xan", "member", org)
    mine = mint(server, vic, "Admin's own")
    wils = [mint(server, wil, name)["token_id"] for name in ("wil one", "wil two")]
    xans = mint(server, xan, "xan's")
    open_console(browser, server, "vic", "admin", org)
    owner = Select(browser.find_element(By.ID, "owner-filter"))
    wait(browser, lambda d: {"wil", "xan"} <= {o.get_attribute("value") for o in owner.options})
    assert shown_names(browser) == ["Admin's own"]  # an admin sees their own tokens first
    assert count_text(browser) == "Showing 1 of 1 token of yours"

    # A single revoke of another user's token names its owner.
    owner.select_by_value("*")
    row_by_id(browser, xans["token_id"]).find_element(By.CSS_SELECTOR, "button.revoke").click()
    assert "owned by xan" in visible(browser, "confirm").text
    browser.find_element(By.ID, "confirm-cancel").click()

    # All of one user's tokens: the user id must be typed.
    owner.select_by_value("wil")
    wait(browser, lambda d: sorted(shown_names(d)) == ["wil one", "wil two"])
    visible(browser, "revoke-owner").click()
    dialog = visible(browser, "confirm")
    assert "Revoke all tokens of wil?" in dialog.text and "2 tokens" in dialog.text
    typed = browser.find_element(By.ID, "confirm-input")
    assert focused(browser) == typed
    typed.send_keys("wi")
    browser.find_element(By.ID, "confirm-ok").click()
    mistyped = "That is not it: type wil exactly, or cancel."
    wait(browser, lambda d: d.find_element(By.ID, "error-confirmation").text == mistyped)
    assert typed.get_attribute("aria-invalid") == "true"
    assert set(statuses(server, wil).values()) == {"active"}  # nothing revoked
    typed.send_keys("l")
    browser.find_element(By.ID, "confirm-ok").click()
    wait(browser, lambda d: d.find_element(By.ID, "bulk-status").text == "Revoked 2 tokens of wil.")
    assert {statuses(server, wil)[token_id] for token_id in wils} == {"revoked"}
    assert statuses(server, xan)[xans["token_id"]] == "active"
    assert focused(browser).tag_name != "body"

    # The whole organisation, from the settings page: the organisation id must be typed.
    browser.find_element(By.ID, "nav-settings").click()
    visible(browser, "revoke-organisation").click()
    visible(browser, "confirm-input")
    assert org in browser.find_element(By.ID, "confirm").text
    browser.find_element(By.ID, "confirm-ok").click()
    wait(browser, lambda d: d.find_element(By.ID, "error-confirmation").text == f"Type {org} to confirm, or cancel.")
    browser.find_element(By.ID, "confirm-input").send_keys(org)
    browser.find_element(By.ID, "confirm-ok").click()
    wait(browser, lambda d: d.find_element(By.ID, "danger-status").text == f"Revoked 2 tokens in {org}.")
    everything = statuses(server, vic, all_users="true")
    assert everything[mine["token_id"]] == everything[xans["token_id"]] == "revoked"

    # Another user: none of the previous user's messages stays.
    switch_identity(browser, "xan", "member", org)
    wait(browser, lambda d: d.find_element(By.ID, "list-count").text == "Showing 1 of 1 token")
    for element in ("bulk-status", "danger-status", "settings-status", "page-error"):
        assert browser.find_element(By.ID, element).text == "", element
    assert not browser.find_element(By.ID, "nav-settings").is_displayed()  # not an admin's view


# -- a phone -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [375, 1440])
def test_a_100_character_name_fits_and_every_action_is_reachable(server, browser, width):
    org = f"org-features-long-{width}"
    zoe = identity("zoe", "member", org)
    long_name = "x" * 40 + "-continuous-name-without-any-space-" + "y" * 25
    assert len(long_name) == 100
    token = mint(server, zoe, long_name)
    open_console(browser, server, "zoe", "member", org, width)
    row = row_by_id(browser, token["token_id"])
    assert fits(browser), f"the list scrolls sideways at {width}px"
    table_right = browser.execute_script("return document.getElementById('token-table').getBoundingClientRect().right")
    assert table_right <= width
    buttons = row.find_elements(By.CSS_SELECTOR, "button")
    assert [button.text for button in buttons] == [long_name, "Regenerate", "Disable", "Revoke"]
    for button in buttons:  # each is on screen, within the width, and takes a click
        box = browser.execute_script("return arguments[0].getBoundingClientRect().toJSON()", button)
        assert box["left"] >= 0 and box["right"] <= width and box["width"] > 0, button.text
        assert button.is_displayed() and button.is_enabled()
    buttons[0].click()
    visible(browser, "details")
    assert fits(browser)
    assert browser.execute_script("return document.getElementById('details').getBoundingClientRect().right") <= width
    browser.find_element(By.ID, "details-close").click()

    browser.find_element(By.ID, "generate-open").click()
    browser.find_element(By.ID, "token-name").send_keys(long_name)
    assert fits(browser), f"the generate form scrolls sideways at {width}px"
    row.find_element(By.CSS_SELECTOR, "button.toggle").click()
    wait(browser, lambda d: row_by_id(d, token["token_id"]).find_element(By.CSS_SELECTOR, ".status").text == "disabled")
    assert fits(browser)


def test_docs_link_back_to_the_console_and_fit_a_phone(server, browser):
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 375, "height": 800, "deviceScaleFactor": 2, "mobile": True}
    )
    browser.get(server.url + "/docs")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#operations details")) > 5)
    browser.execute_script("document.querySelectorAll('#operations details').forEach((d) => { d.open = true; })")
    assert fits(browser), "/docs scrolls sideways at 375px"
    back = browser.find_element(By.ID, "back-to-console")
    assert back.get_attribute("href") == server.url + "/"
    back.click()
    wait(browser, lambda d: d.current_url == server.url + "/")
    visible(browser, "generate-open")
    assert browser.find_element(By.ID, "page-title").text == "API Tokens"
