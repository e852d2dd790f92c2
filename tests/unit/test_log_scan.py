"""The log scan of tests/conftest.py (`service_log`, autouse) sees every level, DEBUG included:
the service's logger and every library's, whatever POWERTOOLS_LOG_LEVEL says. Before issue 17
it saw INFO and above only, so a `logger.debug` of a secret went unnoticed. Fast: no AWS."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from support import TOKEN_IN_TEXT

from token_service.domain.token_format import generate_token
from token_service.observability import logger


def leak_scan() -> Any:  # tests/conftest.py's LeakScan
    (scan,) = [handler for handler in logging.getLogger().handlers if type(handler).__name__ == "LeakScan"]
    return scan


def test_the_service_logger_and_every_library_log_from_debug_during_a_test() -> None:
    assert logger._logger.getEffectiveLevel() == logging.DEBUG
    for name in ("botocore", "urllib3", "aws_lambda_powertools", "moto", "devserver", "token_service"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.DEBUG, name


def test_a_debug_line_of_the_service_reaches_the_scanned_stream(service_log: io.StringIO) -> None:
    token = generate_token("lgk").token
    logger.debug("minted", extra={"token": token})
    line = service_log.getvalue().splitlines()[-1]
    assert json.loads(line)["level"] == "DEBUG"
    assert TOKEN_IN_TEXT.search(line)  # what the scan looks for after the test
    service_log.seek(0)
    service_log.truncate()  # this test's own token: not a leak


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, logging.ERROR])
def test_a_token_in_any_librarys_record_is_caught(level: int) -> None:
    scan = leak_scan()
    token = generate_token("lgk").token
    logging.getLogger("some.library").log(level, "request %s", {"headers": {"x-token": token}})
    logging.getLogger("other.library").debug("Authorization: Bearer %s", "abc")
    leaks = list(scan.leaks)
    scan.leaks.clear()  # this test's own lines: not leaks
    assert len(leaks) == 2
    assert token in leaks[0]
    assert leaks[0].startswith("some.library ")
    assert "Bearer abc" in leaks[1]


def test_an_exception_logged_with_a_token_in_its_message_is_caught() -> None:
    scan = leak_scan()
    token = generate_token("lgk").token
    try:
        raise ValueError(f"bad token {token}")
    except ValueError:
        logging.getLogger("some.library").debug("failed", exc_info=True)
    leaks = list(scan.leaks)
    scan.leaks.clear()
    assert len(leaks) == 1
    assert token in leaks[0]


def test_lines_without_a_token_pass() -> None:
    scan = leak_scan()
    logging.getLogger("some.library").debug("hash %s, hint %s", "0" * 64, "lgk_…AbCd")
    assert scan.leaks == []


def test_the_tests_own_http_clients_are_not_scanned() -> None:
    # urllib3 logs the URL of every request the tests send (some send a token in the query
    # string on purpose, to see it refused); moto answers the service's AWS calls before urllib3.
    scan = leak_scan()
    token = generate_token("lgk").token
    logging.getLogger("urllib3.connectionpool").debug('"GET /v1/token?access_token=%s HTTP/1.1" 401', token)
    logging.getLogger("selenium.webdriver.remote.remote_connection").debug("data=%s", token)
    assert scan.leaks == []
    logging.getLogger("botocore.endpoint").debug("body=%s", token)  # a library of the service: scanned
    leaks = list(scan.leaks)
    scan.leaks.clear()
    assert len(leaks) == 1
