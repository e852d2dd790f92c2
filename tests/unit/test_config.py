"""Each function's configuration: parsed once, and a bad variable fails at start-up by name."""

from __future__ import annotations

import pytest

from token_service.config import AuthorizerConfig, CleanupConfig, ConfigurationError, ManagementConfig
from token_service.domain.commands import ApiStage
from token_service.domain.lifecycle import Schedule

BASE = {"TABLE_NAME": "tokens", "EVENT_BUS_NAME": "bus"}


def test_defaults_are_those_of_the_template() -> None:
    management = ManagementConfig.from_environ(BASE)
    assert (management.token_prefix, management.retention_days, management.schedule) == ("lgk", 30, Schedule((7, 1)))
    assert management.flush_stages == () and management.sdk_tracing and management.dynamodb_endpoint is None
    authorizer = AuthorizerConfig.from_environ(BASE)
    assert (authorizer.service_name, authorizer.metrics_namespace, authorizer.route_map_path) == (
        "api-tokens",
        "ApiTokens",
        None,
    )
    assert CleanupConfig.from_environ(BASE).lookback_days == 400


def test_the_protected_stage_and_tracing_flag_are_read() -> None:
    env = {
        **BASE,
        "PROTECTED_APIS": "restapis/a1b2/stages/prod, apis/h7/stages/$default,restapis/a1b2/stages/prod",
        "FLUSH_QUEUE_URL": "https://sqs.example/q",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    config = ManagementConfig.from_environ(env)
    assert config.flush_stages == (ApiStage("restapis", "a1b2", "prod"), ApiStage("apis", "h7", "$default"))
    assert config.flush_queue_url == "https://sqs.example/q" and config.second_flush_delay == 5
    assert not config.sdk_tracing


@pytest.mark.parametrize(
    ("parse", "env", "variable"),
    [
        (ManagementConfig.from_environ, {}, "TABLE_NAME"),
        (AuthorizerConfig.from_environ, {"TABLE_NAME": "  "}, "TABLE_NAME"),
        (CleanupConfig.from_environ, {"TABLE_NAME": "t"}, "EVENT_BUS_NAME"),
        (ManagementConfig.from_environ, {**BASE, "TOKEN_PREFIX": "Bad_Prefix"}, "TOKEN_PREFIX"),
        (AuthorizerConfig.from_environ, {**BASE, "TOKEN_PREFIX": "x"}, "TOKEN_PREFIX"),
        (ManagementConfig.from_environ, {**BASE, "RETENTION_DAYS": "0"}, "RETENTION_DAYS"),
        (ManagementConfig.from_environ, {**BASE, "RETENTION_DAYS": "ten"}, "RETENTION_DAYS"),
        (ManagementConfig.from_environ, {**BASE, "NOTIFY_BEFORE_DAYS": "7,400"}, "NOTIFY_BEFORE_DAYS"),
        (CleanupConfig.from_environ, {**BASE, "NOTIFY_BEFORE_DAYS": "x"}, "NOTIFY_BEFORE_DAYS"),
        (CleanupConfig.from_environ, {**BASE, "LIFECYCLE_LOOKBACK_DAYS": "-1"}, "LIFECYCLE_LOOKBACK_DAYS"),
        (ManagementConfig.from_environ, {**BASE, "PROTECTED_APIS": "a1b2/prod"}, "PROTECTED_APIS"),
        (ManagementConfig.from_environ, {**BASE, "PROTECTED_APIS": "restapis/a1b2/stage/prod"}, "PROTECTED_APIS"),
        (ManagementConfig.from_environ, {**BASE, "SECOND_FLUSH_DELAY_SECONDS": "0"}, "SECOND_FLUSH_DELAY_SECONDS"),
        (AuthorizerConfig.from_environ, {**BASE, "AUTHORIZER_CACHE_SECONDS": "-5"}, "AUTHORIZER_CACHE_SECONDS"),
        (ManagementConfig.from_environ, {**BASE, "POWERTOOLS_TRACE_DISABLED": "maybe"}, "POWERTOOLS_TRACE_DISABLED"),
    ],
)
def test_a_bad_variable_is_named(parse, env: dict[str, str], variable: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError) as raised:
        parse(env)
    assert raised.value.variable == variable and str(raised.value).startswith(f"{variable}: ")
