"""Each function's configuration, parsed once from the environment at start-up.

The only module that reads `os.environ`. A missing or malformed variable raises
ConfigurationError naming it, so a bad deploy fails at init, never per request. Standard
library only: the authorizer imports this too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from token_service.domain.commands import ApiStage
from token_service.domain.lifecycle import Schedule
from token_service.domain.token_format import validate_prefix


class ConfigurationError(RuntimeError):
    """The function's environment is missing or malformed."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(name, "is not set")
    return value


def _whole_number(env: Mapping[str, str], name: str, default: str, low: int, high: int) -> int:
    value = env.get(name, default).strip()
    if not value.isdigit() or not low <= int(value) <= high:
        raise ConfigurationError(name, f"must be a whole number from {low} to {high}")
    return int(value)


def _prefix(env: Mapping[str, str]) -> str:
    try:
        return validate_prefix(env.get("TOKEN_PREFIX", "lgk"))
    except ValueError as error:
        raise ConfigurationError("TOKEN_PREFIX", str(error)) from error


def _schedule(env: Mapping[str, str]) -> Schedule:
    try:
        return Schedule.parse(env.get("NOTIFY_BEFORE_DAYS", "7,1"))
    except ValueError as error:
        raise ConfigurationError("NOTIFY_BEFORE_DAYS", str(error)) from error


def _flag(env: Mapping[str, str], name: str, default: str) -> bool:
    value = env.get(name, default).strip().lower()
    if value not in {"true", "false", "1", "0"}:
        raise ConfigurationError(name, "must be true or false")
    return value in {"true", "1"}


def _optional(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def _client_ids(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated Cognito app client ids (each 1-128 word characters or '+', as Cognito's)."""
    ids = [text.strip() for text in env.get(name, "").split(",") if text.strip()]
    wrong = [text for text in ids if not re.fullmatch(r"[\w+]{1,128}", text, re.ASCII)]
    if wrong:
        raise ConfigurationError(name, f"{wrong[0][:40]!r} is not an app client id")
    return tuple(dict.fromkeys(ids))


def _origin(env: Mapping[str, str], name: str) -> str | None:
    """One web origin (scheme://host[:port], as a browser sends it in Origin), or None when unset.
    Never `*`, a list, a path or a trailing slash: it is the exact value of Access-Control-Allow-Origin."""
    value = _optional(env, name)
    if value is not None and not _ORIGIN.fullmatch(value):
        raise ConfigurationError(name, "must be one origin: https://host or http://host:port, without a path")
    return value


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def _stages(env: Mapping[str, str], name: str) -> tuple[ApiStage, ...]:
    try:
        stages = [ApiStage.parse(text) for text in env.get(name, "").split(",") if text.strip()]
    except ValueError as error:
        raise ConfigurationError(name, str(error)) from error
    return tuple(dict.fromkeys(stages))


def _table(env: Mapping[str, str]) -> dict[str, str | None]:
    """The table every function reads, and where DynamoDB is (DYNAMODB_ENDPOINT_URL: a local one)."""
    return {"table_name": _required(env, "TABLE_NAME"), "dynamodb_endpoint": _optional(env, "DYNAMODB_ENDPOINT_URL")}


@dataclass(frozen=True, slots=True)
class AuthorizerConfig:
    table_name: str
    token_prefix: str
    route_map_path: str | None  # ROUTE_SCOPES_PATH; None: the route map shipped in the layer
    dynamodb_endpoint: str | None
    service_name: str
    metrics_namespace: str
    # AUTHORIZER_CACHE_SECONDS: the longest time any API using this authorizer caches its
    # answers (ReauthorizeEvery); unset, API Gateway's default of 300 s.
    cache_seconds: int

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> AuthorizerConfig:
        return cls(
            **_table(env),  # type: ignore[arg-type]
            token_prefix=_prefix(env),
            route_map_path=_optional(env, "ROUTE_SCOPES_PATH"),
            service_name=env.get("POWERTOOLS_SERVICE_NAME", "api-tokens"),
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "ApiTokens"),
            cache_seconds=_whole_number(env, "AUTHORIZER_CACHE_SECONDS", "300", 0, 3600),
        )


@dataclass(frozen=True, slots=True)
class ManagementConfig:
    """The console API's and the self-service routes' functions (create, list, revoke, ...)."""

    table_name: str
    token_prefix: str
    retention_days: int
    audit_retention_days: int  # AUDIT_RETENTION_DAYS: how long audit records are kept
    schedule: Schedule
    scope_catalog_path: str | None  # SCOPE_CATALOG_PATH; None: the catalog shipped in the layer
    dynamodb_endpoint: str | None
    flush_stages: tuple[ApiStage, ...]  # PROTECTED_APIS: every stage whose authorizer cache a revoke flushes
    flush_queue_url: str | None  # FLUSH_QUEUE_URL: delayed and retried flushes
    flush_directly: bool  # FLUSH_DIRECTLY: false where IAM cannot name the stages (all flushes go through the queue)
    second_flush_delay: int  # SECOND_FLUSH_DELAY_SECONDS: the authorizer's timeout
    sdk_tracing: bool  # not POWERTOOLS_TRACE_DISABLED: X-Ray subsegments per AWS call
    event_bus_name: str | None  # EVENT_BUS_NAME: lifecycle events; None: none are published
    user_pool_id: str | None  # USER_POOL_ID: the directory whose membership changes reach tokens
    # CONSOLE_CLIENT_IDS: the app clients whose ID tokens the console API's functions accept
    # (their `aud`); see console_clients().
    console_client_ids: tuple[str, ...]
    # CONSOLE_ORIGIN: the console's origin, the only one the console API's answers allow (CORS);
    # None: no CORS headers (the console served from the API's own origin)
    console_origin: str | None

    def console_clients(self) -> tuple[str, ...]:
        """The console functions' accepted app clients; none is a ConfigurationError, so a console
        function without them fails at start-up instead of refusing every caller."""
        if not self.console_client_ids:
            raise ConfigurationError("CONSOLE_CLIENT_IDS", "is required by the console API's functions")
        return self.console_client_ids

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> ManagementConfig:
        return cls(
            **_table(env),  # type: ignore[arg-type]
            token_prefix=_prefix(env),
            retention_days=_whole_number(env, "RETENTION_DAYS", "30", 1, 3650),
            audit_retention_days=_whole_number(env, "AUDIT_RETENTION_DAYS", "400", 1, 3650),
            schedule=_schedule(env),
            scope_catalog_path=_optional(env, "SCOPE_CATALOG_PATH"),
            flush_stages=_stages(env, "PROTECTED_APIS"),
            flush_queue_url=_optional(env, "FLUSH_QUEUE_URL"),
            flush_directly=_flag(env, "FLUSH_DIRECTLY", "true"),
            second_flush_delay=_whole_number(env, "SECOND_FLUSH_DELAY_SECONDS", "5", 1, 900),
            sdk_tracing=not _flag(env, "POWERTOOLS_TRACE_DISABLED", "false"),
            event_bus_name=_optional(env, "EVENT_BUS_NAME"),
            user_pool_id=_optional(env, "USER_POOL_ID"),
            console_client_ids=_client_ids(env, "CONSOLE_CLIENT_IDS"),
            console_origin=_origin(env, "CONSOLE_ORIGIN"),
        )


@dataclass(frozen=True, slots=True)
class CleanupConfig:
    table_name: str
    schedule: Schedule
    event_bus_name: str
    lookback_days: int
    retention_days: int
    audit_retention_days: int
    dynamodb_endpoint: str | None

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> CleanupConfig:
        return cls(
            **_table(env),  # type: ignore[arg-type]
            schedule=_schedule(env),
            event_bus_name=_required(env, "EVENT_BUS_NAME"),
            lookback_days=_whole_number(env, "LIFECYCLE_LOOKBACK_DAYS", "400", 1, 3650),
            retention_days=_whole_number(env, "RETENTION_DAYS", "30", 1, 3650),
            audit_retention_days=_whole_number(env, "AUDIT_RETENTION_DAYS", "400", 1, 3650),
        )


DEFAULT_KEY_LIST_URL = "https://api.github.com/meta/public_keys/secret_scanning"
_LOOPBACK_URL = re.compile(r"http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?/\S*")


def _keys_url(env: Mapping[str, str], name: str) -> str:
    """Whoever serves this list may revoke any token it names: https only (plain http on the
    loopback interface alone, for local runs and tests)."""
    value = _optional(env, name) or DEFAULT_KEY_LIST_URL
    if not (re.fullmatch(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/\S*", value) or _LOOPBACK_URL.fullmatch(value)):
        raise ConfigurationError(name, "must be an https:// URL (http:// only on 127.0.0.1 or localhost)")
    return value


@dataclass(frozen=True, slots=True)
class SecretScanningConfig:
    """The leaked-token report function's own settings (it also reads ManagementConfig)."""

    keys_url: str  # SECRET_SCANNING_KEYS_URL: the signing keys' list; GitHub's by default
    # SECRET_SCANNING_REFETCH_SECONDS: the least time between two fetches of the list (an
    # unknown key id fetches it again, but never more often than this)
    refetch_seconds: int
    fetch_timeout: int  # SECRET_SCANNING_FETCH_TIMEOUT_SECONDS: one fetch of the list

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> SecretScanningConfig:
        return cls(
            keys_url=_keys_url(env, "SECRET_SCANNING_KEYS_URL"),
            refetch_seconds=_whole_number(env, "SECRET_SCANNING_REFETCH_SECONDS", "60", 1, 3600),
            fetch_timeout=_whole_number(env, "SECRET_SCANNING_FETCH_TIMEOUT_SECONDS", "5", 1, 20),
        )


@cache
def authorizer_config() -> AuthorizerConfig:
    return AuthorizerConfig.from_environ(os.environ)


@cache
def management_config() -> ManagementConfig:
    return ManagementConfig.from_environ(os.environ)


@cache
def cleanup_config() -> CleanupConfig:
    return CleanupConfig.from_environ(os.environ)


@cache
def secret_scanning_config() -> SecretScanningConfig:
    return SecretScanningConfig.from_environ(os.environ)
