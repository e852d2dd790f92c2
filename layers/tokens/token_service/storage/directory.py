"""The Cognito user pool as the membership reconciliation's directory (ListUsers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from token_service.domain.errors import StoreUnavailable
from token_service.domain.membership import DirectoryUser

ORG_ATTRIBUTE = "custom:org_id"
ROLE_ATTRIBUTE = "custom:role"


def directory_user(user: dict[str, Any]) -> DirectoryUser | None:
    attributes = {attribute["Name"]: attribute.get("Value") for attribute in user.get("Attributes", [])}
    sub = attributes.get("sub")
    if not sub:
        return None
    return DirectoryUser(
        user_id=sub,
        org_id=attributes.get(ORG_ATTRIBUTE),
        role=attributes.get(ROLE_ATTRIBUTE),
        enabled=bool(user.get("Enabled", False)),
    )


class CognitoDirectory:
    """Every user of one pool. A failed page fails the whole reading: a partial directory would
    make present users look deleted."""

    def __init__(self, user_pool_id: str, client: Any) -> None:
        self.user_pool_id = user_pool_id
        self.client = client

    def users(self) -> Iterator[DirectoryUser]:
        params: dict[str, Any] = {"UserPoolId": self.user_pool_id, "Limit": 60}
        while True:
            try:
                page = self.client.list_users(**params)
            except (ClientError, BotoCoreError) as error:
                raise StoreUnavailable() from error
            for user in page.get("Users", []):
                found = directory_user(user)
                if found is not None:
                    yield found
            if not page.get("PaginationToken"):
                return
            params["PaginationToken"] = page["PaginationToken"]
