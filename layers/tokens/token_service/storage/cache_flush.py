"""Revocation through every cache: flush API Gateway stages' authorizer caches, now and later.

API Gateway caches the authorizer's answer for ReauthorizeEvery seconds; without a flush, a
revoked token keeps working until its cached answer expires. REST stages are flushed with
FlushStageAuthorizersCache, HTTP API stages with ResetAuthorizersCache. A flush that cannot
be made now, and the second flush the domain asks for after the authorizer's timeout, go
through an SQS queue: the cache-flush function retries them until they succeed, and those
that never do end in the queue's dead-letter queue, which raises an alarm.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from token_service.domain.commands import ApiStage
from token_service.observability import logger, metrics
from token_service.storage.aws import aws_client

ClientFactory = Callable[[str], Any]


def encode_message(stages: Sequence[ApiStage]) -> str:
    return json.dumps({"stages": [str(stage) for stage in stages]})


def decode_message(body: str) -> list[ApiStage]:
    """The stages of a queued flush; ValueError if the message is not one."""
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("stages"), list):
        raise ValueError("a flush message is {'stages': [...]}")
    return [ApiStage.parse(str(text)) for text in document["stages"]]


class AuthorizerCacheFlusher:
    """The domain's CacheFlusher. Clients are made on first use: most requests never revoke."""

    def __init__(
        self, queue_url: str | None = None, client_factory: ClientFactory | None = None, direct: bool = True
    ) -> None:
        self.queue_url = queue_url
        self._client_factory = client_factory or aws_client
        # False: this function may not call API Gateway (the stack's token API cannot be named in
        # the IAM policy of a function it routes to), so every flush goes through the queue.
        self.direct = direct
        self._clients: dict[str, Any] = {}

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._client_factory(service)
        return self._clients[service]

    def flush(self, stages: Sequence[ApiStage]) -> list[ApiStage]:
        if not self.direct:
            return list(stages)
        failed = []
        for stage in stages:
            try:
                if stage.kind == "apis":
                    self._client("apigatewayv2").reset_authorizers_cache(ApiId=stage.api_id, StageName=stage.stage)
                else:
                    self._client("apigateway").flush_stage_authorizers_cache(
                        restApiId=stage.api_id, stageName=stage.stage
                    )
            except (ClientError, BotoCoreError) as error:
                logger.warning(
                    "Authorizer cache flush failed; queued for retry",
                    extra={"stage": str(stage), "error_type": type(error).__name__},
                )
                failed.append(stage)
                continue
            metrics.add_metric(name="AuthorizerCacheFlushed", unit="Count", value=1)
        return failed

    def flush_later(self, stages: Sequence[ApiStage], delay_seconds: int) -> None:
        try:
            if self.queue_url is None:
                raise LookupError("FLUSH_QUEUE_URL is not set")
            self._client("sqs").send_message(
                QueueUrl=self.queue_url, MessageBody=encode_message(stages), DelaySeconds=delay_seconds
            )
        except (ClientError, BotoCoreError, LookupError) as error:
            # The revoke stands; the cached answers may live until they expire (ReauthorizeEvery).
            logger.error(
                "Authorizer cache flush could not be queued",
                extra={"stages": [str(stage) for stage in stages], "error_type": type(error).__name__},
            )
            metrics.add_metric(name="AuthorizerCacheFlushFailed", unit="Count", value=1)
