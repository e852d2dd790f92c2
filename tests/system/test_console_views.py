"""Every view of the console, at a phone's width (375 px) and a desktop's (1,440 px), in headless
Chromium: no sideways scrolling, no serious or critical accessibility violation (axe-core, the npm
package, injected into the page), and a screenshot of each, all in one folder that CI keeps.

The views: the sign-in page (the local managed login), the token list, its empty state and its
state under a filter that matches nothing, the generate form (its plain-words errors, and the
server's reason for a bad entry of its address allowlist), the new secret shown once, a token's
details (with its allowlist), the revoke dialogs (one token, the selected ones, all of a user's,
the organisation's), the regenerate dialog, the organisation's settings, the audit log (its
records, a verified chain, a filter that matches nothing) and /docs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from console_helpers import (
    AXE,
    fits,
    identity,
    mint,
    require_chromium,
    row_by_id,
    screenshot,
    set_width,
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
from support import SEED_PASSWORD

WIDTHS = {"phone": 375, "desktop": 1440}

require_chromium(axe=True)


# Each page records what its Content-Security-Policy refused (the dev server sends the deployed
# one on console pages): a script added this way runs before the page's own, and CSP does not
# apply to it.
WATCH_CSP = (
    "window.cspViolations = [];"
    "document.addEventListener('securitypolicyviolation', (event) => window.cspViolations.push("
    "`${event.effectiveDirective} refused ${event.blockedURI || 'inline'} (${event.sourceFile}:${event.lineNumber})`));"
)


def watch_csp(driver: webdriver.Chrome) -> None:
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_CSP})


def axe_violations(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (an open modal dialog
    included: axe checks what is not inert)."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(AXE.read_text())  # through the driver: the page's CSP does not apply
    driver.set_script_timeout(60)
    violations = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then((result) => done(result.violations), (error) => done([{id: 'axe-error', impact: 'critical',"
        " help: String(error), nodes: []}]));"
    )
    return [
        {
            "rule": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "where": [node["target"] for node in violation["nodes"]][:5],
        }
        for violation in violations
        if violation["impact"] in {"serious", "critical"}
    ]


class Views:
    """Checks each view at one width: it fits, axe finds nothing serious, and a screenshot is kept."""

    def __init__(self, driver: webdriver.Chrome, width: str) -> None:
        self.driver = driver
        self.width = width
        self.checked: list[str] = []

    def check(self, view: str) -> None:
        driver = self.driver
        assert driver.execute_script("return window.innerWidth") == WIDTHS[self.width]
        assert fits(driver), f"{view} scrolls sideways at {WIDTHS[self.width]} px"
        assert axe_violations(driver) == [], view
        assert driver.execute_script("return window.cspViolations") == [], view  # nothing the CSP refused
        screenshot(driver, f"{view}-{self.width}.png", whole_page=True)
        self.checked.append(view)


@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_view_fits_passes_axe_and_is_photographed(server, browser, width):
    org = f"org-views-{width}"
    admin, member = identity("vera", "admin", org), identity("wes", "member", org)
    soon = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    long_name = "nightly-warehouse-export-" + "x" * 75  # 100 characters, no space
    used = mint(server, member, "Deploy from CI", scopes=["reports:read", "import:builds"])
    assert server.request("GET", "/v1/token", headers={"Authorization": f"Bearer {used['token']}"}).status == 200
    expiring = mint(server, member, "Expires this week", expires_at=soon)
    mint(server, member, long_name)
    revoked = mint(server, admin, "Old admin token")
    assert server.request("DELETE", f"/tokens/{revoked['token_id']}", headers=admin).status == 200
    mint(server, admin, "Admin reporting")

    views = Views(browser, width)
    set_width(browser, WIDTHS[width])
    watch_csp(browser)
    page = server.request("GET", "/")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    browser.get(server.url + "/")
    switch_identity(browser, "vera", "admin", org)
    owner = visible(browser, "owner-filter")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#owner-filter option[value='wes']"))
    Select(owner).select_by_value("*")
    row = row_by_id(browser, expiring["token_id"])
    assert "Expires soon" in row.text
    views.check("token-list")

    browser.find_element(By.ID, "search").send_keys("no such token")
    visible(browser, "no-match")
    views.check("token-list-no-match")
    browser.find_element(By.ID, "no-match-clear").click()
    row_by_id(browser, used["token_id"])

    # The generate form, then its errors in plain words, then the secret shown once.
    browser.find_element(By.ID, "generate-open").click()
    visible(browser, "generate")
    views.check("generate-form")
    submit_generate(browser)
    wait(browser, lambda d: d.find_element(By.ID, "error-name").text)
    views.check("generate-form-errors")
    browser.find_element(By.ID, "token-name").send_keys("Shown once")
    browser.find_element(By.CSS_SELECTOR, "#scope-list input[value='reports:read']").click()
    cidrs = browser.find_element(By.ID, "token-cidrs")
    cidrs.send_keys("203.0.113.0/24\n2001:db8::/48, 198.51.100.7/33")
    submit_generate(browser)
    error = wait(browser, lambda d: d.find_element(By.ID, "error-allowed_cidrs").text)
    assert error.startswith('Entry 3, "198.51.100.7/33", must end in a prefix length')  # the server's reason
    views.check("generate-form-allowlist-error")
    cidrs.clear()
    cidrs.send_keys("203.0.113.0/24\n2001:db8::/48, 198.51.100.7")
    submit_generate(browser)
    visible(browser, "new-token-value")
    views.check("new-token-shown-once")
    browser.find_element(By.ID, "new-token-done").click()
    browser.find_element(By.XPATH, "//tbody[@id='token-rows']//button[normalize-space()='Shown once']").click()
    wait(browser, lambda d: "198.51.100.7/32, 203.0.113.0/24, 2001:db8::/48" in d.find_element(By.ID, "details").text)
    views.check("token-details-allowlist")
    browser.find_element(By.ID, "details-close").click()

    # A token's details; the revoke dialogs: one token, the selected ones, all of a user's.
    row_by_id(browser, used["token_id"]).find_element(By.CSS_SELECTOR, "button.details-link").click()
    visible(browser, "details")
    assert "127.0.0.1" in browser.find_element(By.ID, "details").text  # the last-used address
    views.check("token-details")
    browser.find_element(By.ID, "details-close").click()

    row_by_id(browser, used["token_id"]).find_element(By.CSS_SELECTOR, "button.revoke").click()
    visible(browser, "confirm")
    assert "wes" in browser.find_element(By.ID, "confirm").text  # the owner named
    views.check("revoke-dialog")
    browser.find_element(By.ID, "confirm-cancel").click()

    browser.find_element(By.ID, "select-all").click()
    browser.find_element(By.ID, "revoke-selected").click()
    visible(browser, "confirm")
    views.check("revoke-selected-dialog")
    browser.find_element(By.ID, "confirm-cancel").click()
    browser.find_element(By.ID, "select-all").click()

    Select(browser.find_element(By.ID, "owner-filter")).select_by_value("wes")
    visible(browser, "revoke-owner").click()
    visible(browser, "confirm-input").send_keys("not wes")
    browser.find_element(By.ID, "confirm-ok").click()
    wait(browser, lambda d: d.find_element(By.ID, "error-confirmation").text)
    views.check("revoke-user-dialog")
    browser.find_element(By.ID, "confirm-input").send_keys(Keys.ESCAPE)
    wait(browser, expected_conditions.invisibility_of_element_located((By.ID, "confirm")))

    row_by_id(browser, used["token_id"]).find_element(By.CSS_SELECTOR, "button.regenerate").click()
    visible(browser, "regenerate")
    views.check("regenerate-dialog")
    browser.find_element(By.ID, "regenerate-cancel").click()

    # The organisation's settings, and its revoke-everything dialog.
    browser.find_element(By.ID, "nav-settings").click()
    wait(browser, lambda d: d.find_element(By.ID, "policy-max-lifetime").get_attribute("value"))
    views.check("settings")
    browser.find_element(By.ID, "revoke-organisation").click()
    visible(browser, "confirm-input")
    views.check("revoke-organisation-dialog")
    browser.find_element(By.ID, "confirm-cancel").click()

    # The audit log: the records of the changes above, a verified chain, a filter matching nothing.
    browser.find_element(By.ID, "nav-audit").click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#audit-rows tr")) >= 7)
    browser.find_element(By.ID, "audit-verify").click()
    wait(browser, lambda d: d.find_element(By.ID, "audit-verify-status").text.endswith("is intact."))
    views.check("audit-log")
    Select(browser.find_element(By.ID, "audit-action")).select_by_value("policy.changed")
    visible(browser, "audit-empty")
    views.check("audit-log-no-match")

    # A member without tokens: the empty state says what to do.
    browser.find_element(By.ID, "nav-tokens").click()
    switch_identity(browser, "yan", "member", org)
    visible(browser, "empty")
    views.check("token-list-empty")

    browser.get(server.url + "/docs")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#operations details"))
    browser.find_element(By.CSS_SELECTOR, "#operations details:nth-of-type(2) > summary").click()
    views.check("docs")

    assert len(views.checked) == 18


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_sign_in_page_fits_passes_axe_and_is_photographed(signin_server, browser, width):
    views = Views(browser, width)
    set_width(browser, WIDTHS[width])
    watch_csp(browser)
    browser.get(signin_server.url + "/")
    visible(browser, "sign-in-form")
    views.check("sign-in")
    browser.find_element(By.ID, "username").send_keys("bob@acme.example")
    browser.find_element(By.ID, "password").send_keys(SEED_PASSWORD + "-wrong")
    browser.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()
    visible(browser, "sign-in-error")
    views.check("sign-in-error")
    browser.find_element(By.ID, "password").send_keys(SEED_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()
    wait(browser, lambda d: "bob@acme.example" in d.find_element(By.ID, "session-user").text)
    browser.find_element(By.ID, "sign-out").click()
    # Through the managed login's logout and back: slower on a busy machine.
    wait(browser, lambda d: "signed out" in d.find_element(By.ID, "auth-panel").text, timeout=40)
    views.check("signed-out")
