"""Makes revocation take effect at once: flush the protected API stage's authorizer cache.

API Gateway caches the authorizer's policy per token for ReauthorizeEvery seconds; without
a flush, a revoked token keeps working until its cached policy expires. Flushing drops the
cached policies of every token on that stage, so the next request of each token costs one
authorizer invocation again: cheap next to revocation latency.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from token_service.aws import aws_client
from token_service.observability import logger, metrics


class AuthorizerCacheFlusher:
    def __init__(self, rest_api_id: str, stage: str, client_factory: Callable[[], Any] | None = None) -> None:
        self.rest_api_id = rest_api_id
        self.stage = stage
        self._client_factory = client_factory or _apigateway_client
        self._client: Any = None

    def __call__(self, revoked_token_ids: Sequence[str]) -> None:
        """Never fails the revoke: the token is revoked in the table either way, and the
        cache entry expires after ReauthorizeEvery seconds at worst."""
        try:
            if self._client is None:
                self._client = self._client_factory()
            self._client.flush_stage_authorizers_cache(restApiId=self.rest_api_id, stageName=self.stage)
        except (ClientError, BotoCoreError) as error:
            logger.warning(
                "Authorizer cache flush failed; revoked tokens may work until the cache expires",
                extra={"error_type": type(error).__name__, "revoked_count": len(revoked_token_ids)},
            )
            metrics.add_metric(name="AuthorizerCacheFlushFailed", unit="Count", value=1)
            return
        metrics.add_metric(name="AuthorizerCacheFlushed", unit="Count", value=1)


def _apigateway_client() -> Any:
    return aws_client("apigateway")


def configured_stage() -> tuple[str, str] | None:
    """PROTECTED_API_ID and PROTECTED_API_STAGE name the stage whose cache every revoke flushes."""
    api_id = os.environ.get("PROTECTED_API_ID", "").strip()
    stage = os.environ.get("PROTECTED_API_STAGE", "").strip()
    return (api_id, stage) if api_id and stage else None


def flusher_from_env() -> AuthorizerCacheFlusher | None:
    target = configured_stage()
    return AuthorizerCacheFlusher(*target) if target else None
