"""Fixtures of the system tier: the dev server as a real process over HTTP, and a headless browser."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from support import (
    CHROMEDRIVER,
    CHROMIUM,
    SEED_PASSWORD,
    TOKEN_IN_TEXT,
    RunningServer,
    mint_over_http,
    start_server,
)

# The seeded users' password of every dev server this tier starts, and what `python3 -m
# devserver.signin` (the README's quick start) signs in with.
os.environ["DEV_USER_PASSWORD"] = SEED_PASSWORD


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """`python -m devserver` on its embedded moto, or on dynalite (--dynamodb-endpoint) for the
    modules marked `dynamodb_backends`. Its seeded users' password is SEED_PASSWORD.

    By default with --dev-identity-headers: X-Dev-User-Id/-Org-Id/-Role headers act as a
    signed-in user, and a request with none of them as DEV_USER_ID/... or alice (what most
    modules use to act as any user). `@pytest.mark.devserver(identity_headers=False)` starts it
    as `make dev` does: only ID tokens of its local user pool sign in.
    `@pytest.mark.devserver(identity_fallback=False)` keeps the headers but drops the DEV_*
    fallback, so a request without them is a 401 as on AWS; `env={...}` adds environment
    variables (a route map, a cache time)."""
    backend = getattr(request, "param", "moto")
    extra = ["--dynamodb-endpoint", request.getfixturevalue("dynalite_endpoint")] if backend == "dynalite" else []
    marker = request.node.get_closest_marker("devserver")
    options = marker.kwargs if marker is not None else {}
    if options.get("identity_headers", True):
        extra.append("--dev-identity-headers")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEV_USER_PASSWORD", SEED_PASSWORD)
        patch.delenv("DEV_IDENTITY_HEADERS", raising=False)
        if not options.get("identity_fallback", True):
            for variable in ("DEV_USER_ID", "DEV_ORG_ID", "DEV_ROLE"):
                patch.setenv(variable, "")
        for variable, value in options.get("env", {}).items():
            patch.setenv(variable, value)
        running = start_server(extra_args=extra)
    yield running
    code, output = running.stop()
    assert code == 0, output
    assert "Stopped." in output
    assert not TOKEN_IN_TEXT.search(output), "a token reached the server's output"
    assert "Traceback" not in output, output[-5000:]


@pytest.fixture(scope="module")
def signin_server() -> Iterator[RunningServer]:
    """A second dev server in a module that has `server` too, as `make dev` runs it: no X-Dev-*
    headers, only its local user pool's sign-in (password SEED_PASSWORD)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEV_USER_PASSWORD", SEED_PASSWORD)
        patch.delenv("DEV_IDENTITY_HEADERS", raising=False)
        running = start_server()
    yield running
    code, output = running.stop()
    assert code == 0, output
    assert not TOKEN_IN_TEXT.search(output), "a token reached the server's output"
    assert "Traceback" not in output, output[-5000:]


@pytest.fixture(scope="module")
def served_document(server: RunningServer) -> dict[str, Any]:
    response = requests.get(f"{server.url}/openapi.json", timeout=30)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture(scope="module")
def self_token(server: RunningServer) -> str:
    """A token that stays valid for the whole module (GET /v1/token examples)."""
    return str(mint_over_http(server)["token"])


@pytest.fixture
def browser(tmp_path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    # Selenium's wire log (DEBUG) holds what the test reads from the page, a secret shown once
    # among it: the test's own reading, not a log of the service, so it stays off.
    wire_log = logging.getLogger("selenium")
    level = wire_log.level
    wire_log.setLevel(logging.INFO)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()
    wire_log.setLevel(level)
