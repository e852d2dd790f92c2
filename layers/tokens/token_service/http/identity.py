"""The caller, taken only from the claims API Gateway's Cognito authorizer vouched for."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from token_service.domain.errors import NotAuthenticated
from token_service.domain.identity import Caller, is_valid_identifier

USER_CLAIM = "sub"
ORG_CLAIM = "custom:org_id"
ROLE_CLAIM = "custom:role"
AUDIENCE_CLAIM = "aud"  # an ID token's app client (an access token names it in client_id)
TOKEN_USE_CLAIM = "token_use"  # noqa: S105 (a claim name, not a secret)


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


def check_console_token(claims: Mapping[str, Any] | None, client_ids: Collection[str]) -> None:
    """The claims must be those of an ID token issued to one of the console's app clients.

    API Gateway's Cognito authorizer checks the signature, issuer and expiry, and lets through
    a token of any app client of the user pool: another application's client of a shared (or
    existing) pool must not act on this API with its users' tokens, nor may an access token."""
    if isinstance(client_ids, str):  # one id is not a collection of its characters
        raise TypeError("client_ids must be a collection of app client ids")
    if not claims:
        raise NotAuthenticated("The request carries no identity.")
    if claims.get(TOKEN_USE_CLAIM) != "id":
        raise NotAuthenticated("The identity must come from an ID token.")
    audience = claims.get(AUDIENCE_CLAIM)
    if not isinstance(audience, str) or audience not in client_ids:
        raise NotAuthenticated("The ID token was not issued to this console's app client.")
