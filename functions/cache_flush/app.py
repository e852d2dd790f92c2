"""SQS -> flush API Gateway authorizer caches: the retried and the delayed second flushes of revokes.

A message whose flush fails is reported back to SQS, which delivers it again; after the
queue's maxReceiveCount it moves to the dead-letter queue, whose depth raises an alarm.
"""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from token_service.observability import logger, metrics
from token_service.storage.cache_flush import AuthorizerCacheFlusher, decode_message

flusher = AuthorizerCacheFlusher()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failures = []
    for record in event.get("Records", []):
        try:
            stages = decode_message(str(record.get("body", "")))
        except ValueError:
            logger.error("Not a flush message; dropped", extra={"message_id": record.get("messageId")})
            continue
        if flusher.flush(stages):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


token_service.startup.finished()
