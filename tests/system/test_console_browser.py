"""The console in a real headless Chromium: generate, copy once, list, bulk-revoke."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from support import CHROMEDRIVER, CHROMIUM

from token_service.domain.token_format import token_regex

SCREENSHOT_DIR = Path(os.environ["CONSOLE_SCREENSHOTS"]) if os.environ.get("CONSOLE_SCREENSHOTS") else None

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("CI"):
        pytest.fail("CI must have chromium and chromium-driver installed (see .ci/run)", pytrace=False)
    pytest.skip("chromium and chromium-driver are not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def wait(driver: webdriver.Chrome, condition, timeout: float = 15):
    return WebDriverWait(driver, timeout).until(condition)


def row_of(driver: webdriver.Chrome, name: str):
    return wait(
        driver,
        expected_conditions.presence_of_element_located(
            (By.XPATH, f"//tbody[@id='token-rows']/tr[td[2][normalize-space()='{name}']]")
        ),
    )


def switch_identity(driver: webdriver.Chrome, user: str, role: str) -> None:
    user_input = driver.find_element(By.ID, "identity-user")
    user_input.clear()
    user_input.send_keys(user)
    Select(driver.find_element(By.ID, "identity-role")).select_by_value(role)
    driver.find_element(By.CSS_SELECTOR, "#identity button[type=submit]").click()


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
    browser.find_element(By.CSS_SELECTOR, "#generate-form button[type=submit]").click()
    error = wait(browser, lambda d: d.find_element(By.ID, "error-name").text or None)
    assert "empty" in error or "required" in error

    offered = {box.get_attribute("value") for box in browser.find_elements(By.CSS_SELECTOR, "#scope-list input")}
    assert "import:builds" in offered

    browser.find_element(By.ID, "token-name").send_keys("Browser token")
    browser.find_element(By.CSS_SELECTOR, "#scope-list input[value='reports:read']").click()
    expiry = browser.find_element(By.ID, "token-expiry")
    assert expiry.get_attribute("max") and expiry.get_attribute("min") and expiry.get_attribute("value")
    browser.find_element(By.CSS_SELECTOR, "#generate-form button[type=submit]").click()

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
    wait(browser, expected_conditions.alert_is_present()).accept()
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
    toggle = wait(browser, expected_conditions.visibility_of_element_located((By.ID, "all-users")))
    toggle.click()
    row = row_of(browser, "Dave CI token")
    assert "dave" in row.text
    browser.save_screenshot(str(SCREENSHOT_DIR / "console-admin.png")) if SCREENSHOT_DIR else None
