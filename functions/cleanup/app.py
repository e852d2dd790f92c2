"""Scheduled cleanup: expiry notices, expiry marking, purging what TTL has not yet deleted."""

import token_service.startup  # first: pauses garbage collection while modules load

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_service.config import cleanup_config
from token_service.domain.cleanup import CleanupRun
from token_service.domain.lifecycle import DAY
from token_service.observability import logger, metrics
from token_service.storage.audit import AuditLog
from token_service.storage.aws import aws_client, dynamodb_client
from token_service.storage.events import EventPublisher
from token_service.storage.lifecycle_store import LifecycleStore
from token_service.storage.repository import TokenRepository

config = cleanup_config()
client = dynamodb_client(config.dynamodb_endpoint, read_timeout=5.0)
store = LifecycleStore(config.table_name, client)
tokens = TokenRepository(config.table_name, client)
publisher = EventPublisher(config.event_bus_name, lambda: aws_client("events"))
audit = AuditLog(config.table_name, client, config.audit_retention_days)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = CleanupRun(
        store,
        publisher,
        config.schedule,
        lookback_days=config.lookback_days,
        unused=tokens,
        audit=audit,
        retention_seconds=config.retention_days * DAY,
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    report = run.run()
    for name, value in (
        ("Notified", report.notified),
        ("MarkedExpired", report.marked),
        ("Purged", report.purged),
        ("UnusedRevoked", report.unused_revoked),
        ("AuditEntriesDrained", report.audit_drained),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(name="ItemsRead", unit=MetricUnit.Count, value=report.items_read)
    if report.complete:
        logger.info("Cleanup run complete", extra={"report": asdict(report)})
    else:
        metrics.add_metric(name="IncompleteRuns", unit=MetricUnit.Count, value=1)
        logger.warning("Cleanup run stopped early; the next run resumes", extra={"report": asdict(report)})
    return asdict(report)


token_service.startup.finished()
