"""The console's Audit tab and address allowlists (issue 16), in headless Chromium on the local
stack: only admins see the tab (members get a 403 from GET /audit anyway); the changes made in
the console appear as records with the right action, actor, token and address; filters narrow
the list on the server; "Load more" fetches the next page; the empty states; "Verify chain" in
plain words, intact or broken; switching user clears the view. The generate form's "Allowed IP
addresses": a token created with an allowlist shows it (normalised) in its details and a marker
in the list, and a bad entry gets the server's reason next to the field, with nothing created."""

from __future__ import annotations

import json
import time

from console_helpers import (
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
from selenium.webdriver.support.ui import Select

require_chromium()


def audit_rows(driver: webdriver.Chrome) -> list[dict[str, str]]:
    """The audit table as shown: each row's cells by their column, plus its seq and action."""
    rows = []
    for row in driver.find_elements(By.CSS_SELECTOR, "#audit-rows tr"):
        cells = {cell.get_attribute("data-label"): cell.text for cell in row.find_elements(By.CSS_SELECTOR, "td")}
        rows.append({**cells, "seq": row.get_attribute("data-seq"), "action": row.get_attribute("data-action")})
    return rows


def settled_mark(server) -> int:
    """Where the access log stands once the requests already answered are in it: the server's
    output is read by another thread, so a line can land a moment after its answer."""
    count, deadline = len(server.lines), time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.3)
        if len(server.lines) == count:
            break
        count = len(server.lines)
    return count


def api_audit(server, who: dict[str, str], **query: str) -> list[dict]:
    params = "&".join(f"{key}={value}" for key, value in {"limit": "100", **query}.items())
    answer = server.request("GET", f"/audit?{params}", headers=who)
    assert answer.status == 200, answer.body
    return json.loads(answer.body)["items"]


def test_admins_see_the_audit_tab_with_changes_filters_and_an_intact_chain(server, browser):
    org = "org-audit-tab"
    ada, bo = identity("ada", "admin", org), identity("bo", "member", org)
    bos = mint(server, bo, "Bo's deploy")
    assert server.request("PATCH", f"/tokens/{bos['token_id']}", {"enabled": False}, bo).status == 200

    open_console(browser, server, "ada", "admin", org)
    assert visible(browser, "nav-audit").text == "Audit log"
    # A change made in the console: a token created, then revoked.
    browser.find_element(By.ID, "generate-open").click()
    browser.find_element(By.ID, "token-name").send_keys("Audited token")
    browser.find_element(By.CSS_SELECTOR, "#scope-list input[value='reports:read']").click()
    submit_generate(browser)
    visible(browser, "new-token-value")
    browser.find_element(By.ID, "new-token-done").click()
    [mine] = json.loads(server.request("GET", "/tokens", headers=ada).body)["items"]
    row_by_id(browser, mine["token_id"]).find_element(By.CSS_SELECTOR, "button.revoke").click()
    visible(browser, "confirm-ok").click()
    wait(browser, lambda d: d.find_element(By.ID, "bulk-status").text == 'Revoked "Audited token".')

    browser.find_element(By.ID, "nav-audit").click()
    wait(browser, lambda d: d.find_element(By.ID, "page-title").text == "Audit log")
    assert browser.title == "Audit log · Settings"
    wait(browser, lambda d: len(audit_rows(d)) == 4)
    revoked, created, disabled, bo_created = audit_rows(browser)  # newest first
    assert revoked["action"] == "token.revoked" and revoked["Action"] == "Token revoked"
    assert revoked["Actor"] == "ada (you)" and mine["token_id"] in revoked["Tokens"]
    assert revoked["Address"] == "127.0.0.1" and revoked["Details"] == "Revoked on its own."
    assert created["action"] == "token.created" and created["Actor"] == "ada (you)"
    assert 'Created "Audited token" with scopes reports:read, expiring' in created["Details"]
    assert disabled["action"] == "token.disabled" and disabled["Actor"] == "bo"
    assert bos["token_id"] in disabled["Tokens"] and "Disabled" in disabled["Details"]
    assert bo_created["action"] == "token.created" and bo_created["Actor"] == "bo"
    assert [row["seq"] for row in audit_rows(browser)] == [str(r["seq"]) for r in api_audit(server, ada)]
    assert browser.find_element(By.ID, "audit-count").text == "Showing 4 records."
    assert not browser.find_element(By.ID, "audit-more").is_displayed()

    # Filters go to the server: by action, by token (a token's id in a row), by actor, by a date range.
    mark = settled_mark(server)
    Select(browser.find_element(By.ID, "audit-action")).select_by_value("token.created")
    wait(browser, lambda d: [row["action"] for row in audit_rows(d)] == ["token.created", "token.created"])
    wait(browser, lambda _: any('"GET /audit HTTP/1.1" 200' in line for line in server.lines[mark:]))  # asked
    assert "matching the filters" in browser.find_element(By.ID, "audit-count").text
    Select(browser.find_element(By.ID, "audit-action")).select_by_value("token.revoked")
    wait(browser, lambda d: [row["seq"] for row in audit_rows(d)] == [revoked["seq"]])
    browser.find_element(By.ID, "audit-clear").click()
    wait(browser, lambda d: len(audit_rows(d)) == 4)
    browser.find_element(
        By.CSS_SELECTOR, f"#audit-rows tr[data-seq='{disabled['seq']}'] .token-ids button"
    ).click()  # a token's records
    wait(browser, lambda d: [row["seq"] for row in audit_rows(d)] == [disabled["seq"], bo_created["seq"]])
    assert browser.find_element(By.ID, "audit-token").get_attribute("value") == bos["token_id"]
    browser.find_element(By.ID, "audit-clear").click()
    actor = browser.find_element(By.ID, "audit-actor")
    actor.send_keys("ada")
    browser.find_element(By.CSS_SELECTOR, "#audit-filters button[type=submit]").click()
    wait(browser, lambda d: [row["seq"] for row in audit_rows(d)] == [revoked["seq"], created["seq"]])
    actor.clear()
    for field, value in (("audit-since", "2020-01-01"), ("audit-until", "2020-12-31")):  # long before
        browser.execute_script("arguments[0].value = arguments[1]", browser.find_element(By.ID, field), value)
    browser.find_element(By.CSS_SELECTOR, "#audit-filters button[type=submit]").click()
    empty = visible(browser, "audit-empty")
    assert empty.text == "No audit records match these filters."
    assert not browser.find_element(By.ID, "audit-table").is_displayed()
    # An end before the start: said next to the field, nothing asked of the server.
    browser.execute_script("arguments[0].value = '2019-12-31'", browser.find_element(By.ID, "audit-until"))
    mark = settled_mark(server)
    browser.find_element(By.CSS_SELECTOR, "#audit-filters button[type=submit]").click()
    error = wait(browser, lambda d: d.find_element(By.ID, "error-audit-until").text)
    assert error == "The end date must not be before the start date, 2020-01-01."
    assert browser.find_element(By.ID, "audit-until").get_attribute("aria-invalid") == "true"
    assert not [line for line in server.lines[mark:] if "GET /audit" in line]
    browser.find_element(By.ID, "audit-clear").click()
    wait(browser, lambda d: len(audit_rows(d)) == 4)

    # Verify: the chain, in plain words.
    browser.find_element(By.ID, "audit-verify").click()
    status = wait(browser, lambda d: "…" not in (text := d.find_element(By.ID, "audit-verify-status").text) and text)
    verify = json.loads(server.request("GET", "/audit/verify", headers=ada).body)
    assert verify["intact"] and verify["records"] == 4
    assert status == "The chain of 4 records is intact."

    # A member: no tab, #audit shows the token list, and the API refuses them too.
    mark = settled_mark(server)
    switch_identity(browser, "bo", "member", org)
    wait(browser, lambda d: d.find_element(By.ID, "page-title").text == "API Tokens")
    assert not browser.find_element(By.ID, "nav-audit").is_displayed()
    assert not browser.find_element(By.ID, "view-audit").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, "#audit-rows tr") == []  # the admin's records are gone
    assert browser.find_element(By.ID, "audit-verify-status").text == ""
    browser.get(server.url + "/#audit")
    switch_identity(browser, "bo", "member", org)
    wait(browser, lambda d: d.find_element(By.ID, "list-count").text)
    assert browser.find_element(By.ID, "page-title").text == "API Tokens"
    assert not browser.find_element(By.ID, "view-audit").is_displayed()
    assert not [line for line in server.lines[mark:] if "GET /audit" in line]  # the console never asked
    assert server.request("GET", "/audit", headers=bo).status == 403
    assert server.request("GET", "/audit/verify", headers=bo).status == 403


def test_load_more_empty_state_a_broken_chain_and_a_tokens_audit_from_its_details(server, browser):
    org = "org-audit-pages"
    cy = identity("cy", "admin", org)
    open_console(browser, server, "cy", "admin", org)
    browser.find_element(By.ID, "nav-audit").click()
    empty = visible(browser, "audit-empty")
    assert empty.text == "No changes recorded yet."
    browser.find_element(By.ID, "audit-verify").click()
    wait(
        browser,
        lambda d: (
            d.find_element(By.ID, "audit-verify-status").text == "No changes recorded yet: there is nothing to check."
        ),
    )

    # 60 records: the first page holds 50, "Load more" the other 10.
    tokens = [mint(server, cy, f"paged {number:02}") for number in range(30)]
    for token in tokens:
        assert server.request("DELETE", f"/tokens/{token['token_id']}", headers=cy).status == 200
    browser.find_element(By.ID, "nav-tokens").click()
    browser.find_element(By.ID, "nav-audit").click()  # each visit shows the changes made meanwhile
    wait(browser, lambda d: len(audit_rows(d)) == 50)
    assert browser.find_element(By.ID, "audit-count").text == "Showing 50 records; older ones follow."
    more = visible(browser, "audit-more")
    assert more.text == "Load more"
    more.click()
    wait(browser, lambda d: len(audit_rows(d)) == 60)
    seqs = [int(row["seq"]) for row in audit_rows(browser)]
    assert seqs == list(range(60, 0, -1))  # newest first, nothing twice
    assert not browser.find_element(By.ID, "audit-more").is_displayed()
    assert browser.switch_to.active_element.tag_name == "button"  # the first new row's token
    assert browser.find_element(By.ID, "audit-count").text == "Showing 60 records."

    # A broken link, as the API names it (here its answer stands in for an edited record).
    browser.execute_script(
        """
        const real = window.fetch;
        window.fetch = (url, options) => String(url).includes('/audit/verify')
          ? Promise.resolve(new Response(JSON.stringify({intact: false, records: 7, first_seq: 1, last_seq: 7,
              broken_at: 7, reason: 'its content does not match its hash (edited)'}), {status: 200}))
          : real(url, options);
        """
    )
    browser.find_element(By.ID, "audit-verify").click()
    wait(
        browser,
        lambda d: (
            d.find_element(By.ID, "audit-verify-status").text
            == "Record 7 is broken: its content does not match its hash (edited)."
        ),
    )
    assert browser.find_elements(By.CSS_SELECTOR, "#audit-rows tr.broken-record[data-seq='7']")

    # From a token's details, its own records (the page loaded again: the list has the new tokens).
    open_console(browser, server, "cy", "admin", org)
    target = tokens[3]
    row_by_id(browser, target["token_id"]).find_element(By.CSS_SELECTOR, "button.details-link").click()
    visible(browser, "details-audit").click()
    wait(browser, lambda d: d.find_element(By.ID, "page-title").text == "Audit log")
    wait(browser, lambda d: [row["action"] for row in audit_rows(d)] == ["token.revoked", "token.created"])
    assert browser.find_element(By.ID, "audit-token").get_attribute("value") == target["token_id"]
    assert all(target["token_id"] in row["Tokens"] for row in audit_rows(browser))

    # Signing in as someone else (an admin of another organisation) starts from a clean view.
    switch_identity(browser, "dee", "admin", "org-audit-other")
    wait(browser, lambda d: d.find_element(By.ID, "audit-empty").is_displayed())
    assert browser.find_element(By.ID, "audit-token").get_attribute("value") == ""
    assert browser.find_element(By.ID, "audit-empty").text == "No changes recorded yet."
    assert browser.find_element(By.ID, "audit-verify-status").text == ""


def test_a_token_with_an_allowlist_shows_it_and_a_bad_entry_is_refused_next_to_the_field(server, browser):
    org = "org-audit-cidrs"
    eve = identity("eve", "member", org)
    plain = mint(server, eve, "Any address token")
    open_console(browser, server, "eve", "member", org)
    assert not browser.find_element(By.ID, "nav-audit").is_displayed()

    browser.find_element(By.ID, "generate-open").click()
    browser.find_element(By.ID, "token-name").send_keys("Office only")
    browser.find_element(By.CSS_SELECTOR, "#scope-list input[value='reports:read']").click()
    cidrs = browser.find_element(By.ID, "token-cidrs")
    assert browser.find_element(By.CSS_SELECTOR, "label[for='token-cidrs']").text == "Allowed IP addresses (optional)"

    # A bad entry: the server's reason, naming the entry, next to the field; nothing created.
    cidrs.send_keys("203.0.113.0/24\n10.0.0.300, 2001:db8::/48")
    mark = settled_mark(server)
    submit_generate(browser)
    error = wait(browser, lambda d: d.find_element(By.ID, "error-allowed_cidrs").text)
    assert error == (
        'Entry 2, "10.0.0.300", is not an IPv4 or IPv6 address or network, such as 203.0.113.0/24, 203.0.113.7 '
        "or 2001:db8::/48."
    )
    assert cidrs.get_attribute("aria-invalid") == "true"
    assert browser.switch_to.active_element == cidrs
    assert "error-allowed_cidrs" in cidrs.get_attribute("aria-describedby")
    wait(browser, lambda _: [line for line in server.lines[mark:] if '"POST /tokens HTTP/1.1" 400' in line])
    assert not browser.find_element(By.ID, "new-token").is_displayed()
    listed = json.loads(server.request("GET", "/tokens", headers=eve).body)["items"]
    assert [token["token_id"] for token in listed] == [plain["token_id"]]

    # More than 20: said by the console, before anything is sent.
    cidrs.clear()
    cidrs.send_keys(", ".join(f"198.51.100.{number}" for number in range(21)))
    mark = settled_mark(server)
    submit_generate(browser)
    wait(
        browser,
        lambda d: "at most 20 addresses or networks, not 21" in d.find_element(By.ID, "error-allowed_cidrs").text,
    )
    assert not [line for line in server.lines[mark:] if '"POST /tokens ' in line]

    # Fixed: created with the allowlist, in normal form (an address is a /32, IPv4 first).
    cidrs.clear()
    cidrs.send_keys("2001:db8::/48\n203.0.113.0/24, 10.0.0.1")
    submit_generate(browser)
    visible(browser, "new-token-value")
    assert browser.find_element(By.ID, "error-allowed_cidrs").text == ""
    browser.find_element(By.ID, "new-token-done").click()
    listed = json.loads(server.request("GET", "/tokens", headers=eve).body)["items"]
    [office] = [token for token in listed if token["name"] == "Office only"]
    assert office["allowed_cidrs"] == ["10.0.0.1/32", "203.0.113.0/24", "2001:db8::/48"]
    row = row_by_id(browser, office["token_id"])
    assert "Listed addresses only" in row.find_element(By.CSS_SELECTOR, "td[data-label='Token']").text
    assert "Listed addresses only" not in row_by_id(browser, plain["token_id"]).text
    row.find_element(By.CSS_SELECTOR, "button.details-link").click()
    details = visible(browser, "details")
    assert "Allowed addresses\n10.0.0.1/32, 203.0.113.0/24, 2001:db8::/48" in details.text
    assert not browser.find_element(By.ID, "details-audit").is_displayed()  # a member has no audit log
    browser.find_element(By.ID, "details-close").click()
    row_by_id(browser, plain["token_id"]).find_element(By.CSS_SELECTOR, "button.details-link").click()
    wait(browser, lambda d: "Allowed addresses\nAny address" in d.find_element(By.ID, "details").text)
    browser.find_element(By.ID, "details-close").click()

    # The form starts empty again; a token without the field has no allowlist.
    browser.find_element(By.ID, "generate-open").click()
    assert browser.find_element(By.ID, "token-cidrs").get_attribute("value") == ""
