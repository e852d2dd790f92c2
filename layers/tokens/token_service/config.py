"""Service configuration, read from the environment once per process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from token_service.lifecycle import Schedule
from token_service.token_format import validate_prefix


class ConfigurationError(RuntimeError):
    """The function's environment is missing or malformed; fail at init, not per request."""


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    table_name: str
    token_prefix: str
    retention_days: int
    scope_catalog_path: str | None
    lifecycle: Schedule

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServiceConfig:
        table_name = env.get("TABLE_NAME", "").strip()
        if not table_name:
            raise ConfigurationError("TABLE_NAME is not set")
        try:
            prefix = validate_prefix(env.get("TOKEN_PREFIX", "lgk"))
        except ValueError as error:
            raise ConfigurationError(f"TOKEN_PREFIX: {error}") from error
        retention = env.get("RETENTION_DAYS", "30")
        if not retention.isdigit() or not 1 <= int(retention) <= 3650:
            raise ConfigurationError("RETENTION_DAYS must be a whole number of days from 1 to 3650")
        try:
            lifecycle = Schedule.parse(env.get("NOTIFY_BEFORE_DAYS", "7,1"))
        except ValueError as error:
            raise ConfigurationError(f"NOTIFY_BEFORE_DAYS: {error}") from error
        return cls(
            lifecycle=lifecycle,
            table_name=table_name,
            token_prefix=prefix,
            retention_days=int(retention),
            scope_catalog_path=env.get("SCOPE_CATALOG_PATH") or None,
        )


@cache
def get_config() -> ServiceConfig:
    return ServiceConfig.from_env(os.environ)
