"""Who is calling: a user of an organisation with a role, and what a valid identifier is."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Identifiers become parts of DynamoDB keys ("ORG#<org>#USER#<user>"), so '#' and
# anything unprintable are refused outright.
IDENTIFIER_PATTERN = r"^[A-Za-z0-9._:@+\-]{1,128}$"  # also the OpenAPI document's pattern
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    org_id: str
    role: str
    source_ip: str | None = None  # API Gateway's requestContext.identity.sourceIp (the audit log's)


def is_valid_identifier(value: str) -> bool:
    return bool(_IDENTIFIER.fullmatch(value))
