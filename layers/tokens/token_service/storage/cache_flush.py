"""Makes revocation take effect at once: flush API Gateway stages' authorizer caches.

API Gateway caches the authorizer's policy per token for ReauthorizeEvery seconds; without
a flush, a revoked token keeps working until its cached policy expires. Flushing drops the
cached policies of every token on that stage, so the next request of each token costs one
authorizer invocation again: cheap next to revocation latency.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from token_service.domain.commands import ApiStage
from token_service.observability import logger, metrics
from token_service.storage.aws import aws_client


class AuthorizerCacheFlusher:
    """The domain's CacheFlusher for REST API stages (FlushStageAuthorizersCache)."""

    def __init__(self, client_factory: Callable[[], Any] | None = None) -> None:
        self._client_factory = client_factory or _apigateway_client
        self._client: Any = None

    def __call__(self, stages: Sequence[ApiStage], revoked_token_ids: Sequence[str]) -> None:
        """Never fails the revoke: the token is revoked in the table either way, and the
        cache entry expires after ReauthorizeEvery seconds at worst."""
        for stage in stages:
            try:
                if self._client is None:
                    self._client = self._client_factory()
                self._client.flush_stage_authorizers_cache(restApiId=stage.api_id, stageName=stage.stage)
            except (ClientError, BotoCoreError) as error:
                logger.warning(
                    "Authorizer cache flush failed; revoked tokens may work until the cache expires",
                    extra={
                        "error_type": type(error).__name__,
                        "revoked_count": len(revoked_token_ids),
                        "api_id": stage.api_id,
                        "stage": stage.stage,
                    },
                )
                metrics.add_metric(name="AuthorizerCacheFlushFailed", unit="Count", value=1)
                continue
            metrics.add_metric(name="AuthorizerCacheFlushed", unit="Count", value=1)


def _apigateway_client() -> Any:
    return aws_client("apigateway")
