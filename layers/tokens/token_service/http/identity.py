"""The caller, taken only from the claims API Gateway's Cognito authorizer vouched for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from token_service.domain.errors import NotAuthenticated
from token_service.domain.identity import Caller, is_valid_identifier

USER_CLAIM = "sub"
ORG_CLAIM = "custom:org_id"
ROLE_CLAIM = "custom:role"


def caller_from_claims(claims: Mapping[str, Any] | None) -> Caller:
    if not claims:
        raise NotAuthenticated("The request carries no identity.")
    values = {}
    for claim in (USER_CLAIM, ORG_CLAIM, ROLE_CLAIM):
        value = claims.get(claim)
        if not isinstance(value, str) or not is_valid_identifier(value):
            raise NotAuthenticated(f"The identity lacks a valid '{claim}' claim.")
        values[claim] = value
    return Caller(user_id=values[USER_CLAIM], org_id=values[ORG_CLAIM], role=values[ROLE_CLAIM])
