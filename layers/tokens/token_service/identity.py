"""Who is calling, taken only from the API Gateway authorizer's claims."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from token_service.errors import NotAuthenticated

USER_CLAIM = "sub"
ORG_CLAIM = "custom:org_id"
ROLE_CLAIM = "custom:role"

# Identifiers become parts of DynamoDB keys ("ORG#<org>#USER#<user>"), so '#' and
# anything unprintable are refused outright.
_IDENTIFIER = re.compile(r"[A-Za-z0-9._:@+\-]{1,128}")


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    org_id: str
    role: str


def caller_from_claims(claims: Mapping[str, Any] | None) -> Caller:
    if not claims:
        raise NotAuthenticated("The request carries no identity.")
    values = {}
    for claim in (USER_CLAIM, ORG_CLAIM, ROLE_CLAIM):
        value = claims.get(claim)
        if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
            raise NotAuthenticated(f"The identity lacks a valid '{claim}' claim.")
        values[claim] = value
    return Caller(user_id=values[USER_CLAIM], org_id=values[ORG_CLAIM], role=values[ROLE_CLAIM])


def is_valid_identifier(value: str) -> bool:
    return bool(_IDENTIFIER.fullmatch(value))
