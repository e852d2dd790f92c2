"""Fixtures of the system tier: the dev server as a real process over HTTP, and a headless browser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from support import CHROMEDRIVER, CHROMIUM, TOKEN_IN_TEXT, RunningServer, mint_over_http, start_server


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """`python -m devserver` on its embedded moto, or on dynalite (--dynamodb-endpoint) for the
    modules marked `dynamodb_backends`. `@pytest.mark.devserver(identity_fallback=False)`
    starts it with no DEV_* fallback identity, so a request without one is a 401 as on AWS;
    `env={...}` adds environment variables (a route map, a cache time)."""
    backend = getattr(request, "param", "moto")
    extra = ["--dynamodb-endpoint", request.getfixturevalue("dynalite_endpoint")] if backend == "dynalite" else []
    marker = request.node.get_closest_marker("devserver")
    with pytest.MonkeyPatch.context() as patch:
        if marker is not None and not marker.kwargs.get("identity_fallback", True):
            for variable in ("DEV_USER_ID", "DEV_ORG_ID", "DEV_ROLE"):
                patch.setenv(variable, "")
        for variable, value in (marker.kwargs.get("env", {}) if marker is not None else {}).items():
            patch.setenv(variable, value)
        running = start_server(extra_args=extra)
    yield running
    code, output = running.stop()
    assert code == 0, output
    assert "Stopped." in output
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
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()
