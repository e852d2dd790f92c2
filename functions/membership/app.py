"""Cognito's admin calls, delivered by CloudTrail through EventBridge -> membership changes
reach tokens: the pool is compared with the registry of token owners, and each user who was
deleted, disabled, moved to another organisation or given another role has their tokens
revoked or trimmed (token_service.domain.membership).

CloudTrail hides the username in these events, so the whole registry is reconciled: it
holds token owners only, and it is safe to run twice or concurrently.
"""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_service.domain.membership import reconcile
from token_service.observability import logger, metrics
from token_service.wiring import get_directory, get_service

MEMBERSHIP_CALLS = frozenset(
    {"AdminDeleteUser", "AdminDisableUser", "AdminUpdateUserAttributes", "AdminDeleteUserAttributes", "DeleteUser"}
)


@token_service.startup.through_first_event  # which creates the AWS clients: start-up work too
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    detail = event.get("detail") or {}
    pool = (detail.get("requestParameters") or {}).get("userPoolId")
    directory = get_directory()
    if detail.get("eventName") not in MEMBERSHIP_CALLS or pool != directory.user_pool_id or detail.get("errorCode"):
        logger.info("Not a membership change of this pool; ignored", extra={"event_name": detail.get("eventName")})
        return {"changed": 0, "revoked": 0, "trimmed": 0}
    service = get_service()
    outcomes = reconcile(service, service.repository, directory)
    revoked, trimmed = sum(o.revoked for o in outcomes), sum(o.trimmed for o in outcomes)
    metrics.add_metric(name="MembershipTokensRevoked", unit=MetricUnit.Count, value=revoked)
    metrics.add_metric(name="MembershipTokensTrimmed", unit=MetricUnit.Count, value=trimmed)
    for outcome in outcomes:
        logger.info(
            "Membership change applied",
            extra={"org_id": outcome.org_id, "member": outcome.user_id, "reason": outcome.reason},
        )
    return {"changed": len(outcomes), "revoked": revoked, "trimmed": trimmed}


token_service.startup.finished()
