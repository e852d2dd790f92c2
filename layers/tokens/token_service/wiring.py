"""Puts the parts together for the handlers: configuration, storage and the domain services."""

from __future__ import annotations

from functools import cache

from token_service.config import ConfigurationError, ManagementConfig, management_config
from token_service.domain.scopes import default_catalog
from token_service.domain.service import TokenService, TokenSettings
from token_service.storage.audit import AuditLog
from token_service.storage.aws import aws_client, dynamodb_client
from token_service.storage.cache_flush import AuthorizerCacheFlusher
from token_service.storage.directory import CognitoDirectory
from token_service.storage.events import EventPublisher
from token_service.storage.repository import TokenRepository


def token_service(config: ManagementConfig) -> TokenService:
    client = dynamodb_client(config.dynamodb_endpoint, read_timeout=5.0)
    repository = TokenRepository(config.table_name, client)
    settings = TokenSettings(
        config.token_prefix, config.retention_days, config.schedule, config.flush_stages, config.second_flush_delay
    )
    return TokenService(
        repository,
        default_catalog(config.scope_catalog_path),
        settings,
        flush_caches=AuthorizerCacheFlusher(config.flush_queue_url, direct=config.flush_directly),
        events=EventPublisher(config.event_bus_name, lambda: aws_client("events")) if config.event_bus_name else None,
        audit=AuditLog(config.table_name, client, config.audit_retention_days),
    )


@cache
def get_service() -> TokenService:
    """The management functions' service, built once per process from their configuration."""
    return token_service(management_config())


@cache
def get_directory() -> CognitoDirectory:
    """The user pool whose membership changes reach tokens (the membership function's)."""
    pool_id = management_config().user_pool_id
    if pool_id is None:
        raise ConfigurationError("USER_POOL_ID", "is required by the membership function")
    return CognitoDirectory(pool_id, aws_client("cognito-idp", read_timeout=10.0))


def reset() -> None:
    """Forgets the configuration and the service, so the next call reads the environment again (tests)."""
    get_service.cache_clear()
    get_directory.cache_clear()
    management_config.cache_clear()
