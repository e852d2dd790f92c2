"""What the console's browser tests (tests/system/test_console_*.py) share: the guard that skips a
module without headless Chromium (and fails it in CI), waiting for the page, acting as a user
through the dev server's X-Dev-* headers and the console's identity switcher, the screen's width,
and the folder of screenshots. The browser itself is the `browser` fixture of conftest.py.

Imported as `console_helpers`: tests/system has no __init__.py, so pytest puts this folder on
sys.path for its conftest.py and test modules."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait
from support import CHROMEDRIVER, CHROMIUM

ROOT = Path(__file__).resolve().parents[2]
# axe-core, the npm package (npm ci), injected into pages to check their accessibility.
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# Every screenshot of the console's browser tests goes to one folder, which CI keeps as an artifact.
SCREENSHOT_DIR = Path(os.environ.get("CONSOLE_SCREENSHOTS") or ROOT / "artifacts" / "console-screenshots")


def require_chromium(*, axe: bool = False) -> None:
    """Called at a module's top: skips the module where chromium and chromium-driver (and, with
    `axe`, axe-core) are not installed; in CI, which must have them, fails it instead."""
    if axe:
        if not (CHROMIUM and CHROMEDRIVER and AXE.is_file()):
            if os.environ.get("CI"):
                pytest.fail("CI must have chromium, chromium-driver and axe-core (npm ci) installed", pytrace=False)
            pytest.skip("chromium, chromium-driver or axe-core (npm ci) is not installed", allow_module_level=True)
    elif not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium and chromium-driver installed (see .ci/run)", pytrace=False)
        pytest.skip("chromium and chromium-driver are not installed", allow_module_level=True)


# -- the page ------------------------------------------------------------------------------------------


def wait(driver: webdriver.Chrome, condition, timeout: float = 15):
    # A list refresh replaces the rows: an element found just before it is then stale.
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def visible(driver: webdriver.Chrome, element_id: str):
    return wait(driver, expected_conditions.visibility_of_element_located((By.ID, element_id)))


def row_by_id(driver: webdriver.Chrome, token_id: str):
    return wait(
        driver,
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, f"#token-rows tr[data-token-id='{token_id}']")
        ),
    )


def fits(driver: webdriver.Chrome) -> bool:
    """No sideways scrolling: the page is no wider than the window."""
    return bool(driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"))


def set_width(driver: webdriver.Chrome, width: int) -> None:
    """The window's width in CSS pixels, 900 high; below 800 as a phone."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 800},
    )


def screenshot(driver: webdriver.Chrome, name: str, *, whole_page: bool = False) -> None:
    """A PNG in SCREENSHOT_DIR: of the window, or with `whole_page` of the whole page, not only
    its first screen."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    if whole_page:
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        (SCREENSHOT_DIR / name).write_bytes(base64.b64decode(shot["data"]))
    else:
        assert driver.save_screenshot(str(SCREENSHOT_DIR / name)), name


# -- users ---------------------------------------------------------------------------------------------


def identity(user: str, role: str = "member", org: str = "org-acme") -> dict[str, str]:
    """The dev server's X-Dev-* headers acting as this user."""
    return {"X-Dev-User-Id": user, "X-Dev-Org-Id": org, "X-Dev-Role": role}


def mint(server, who: dict[str, str], name: str, scopes: list[str] | None = None, **fields: Any) -> dict:
    """A token created over the API (reports:read unless `scopes`); its answer, the secret included."""
    response = server.request("POST", "/tokens", {"name": name, "scopes": scopes or ["reports:read"], **fields}, who)
    assert response.status == 201, response.body
    return json.loads(response.body)


def switch_identity(driver: webdriver.Chrome, user: str, role: str, org: str | None = None) -> None:
    """Signs in as another user with the console's identity switcher (the organisation kept
    unless `org`)."""
    user_input = driver.find_element(By.ID, "identity-user")
    user_input.clear()
    user_input.send_keys(user)
    if org is not None:
        org_input = driver.find_element(By.ID, "identity-org")
        org_input.clear()
        org_input.send_keys(org)
    Select(driver.find_element(By.ID, "identity-role")).select_by_value(role)
    driver.find_element(By.CSS_SELECTOR, "#identity button[type=submit]").click()


def open_console(driver: webdriver.Chrome, server, user: str, role: str, org: str, width: int = 1440) -> None:
    """The console at this width, as this user, once their token list (or its empty state) is shown."""
    set_width(driver, width)
    driver.get(server.url + "/")
    switch_identity(driver, user, role, org)
    wait(driver, lambda d: d.find_element(By.ID, "list-count").text or d.find_element(By.ID, "empty").is_displayed())


def submit_generate(driver: webdriver.Chrome) -> None:
    """Submits the generate form as it is filled in."""
    driver.find_element(By.CSS_SELECTOR, "#generate-form button[type=submit]").click()
