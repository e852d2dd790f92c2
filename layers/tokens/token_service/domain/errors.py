"""Domain errors. The HTTP part maps each class to one status code (token_service.http.responses)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    reason: str


class DomainError(Exception):
    """Base class: its message is safe to show to the caller."""


class InvalidRequest(DomainError):
    def __init__(self, problems: Iterable[FieldProblem], message: str = "The request is not valid.") -> None:
        super().__init__(message)
        self.problems = list(problems)

    @classmethod
    def field(cls, field: str, reason: str) -> InvalidRequest:
        return cls([FieldProblem(field, reason)])


class UnknownScopes(InvalidRequest):
    def __init__(self, scopes: Iterable[str]) -> None:
        self.scopes = sorted(scopes)
        super().__init__([FieldProblem("scopes", f"unknown scope(s): {', '.join(self.scopes)}")])


class InvalidPageKey(DomainError):
    """A listing was asked to resume from a position that does not belong to it."""

    def __init__(self) -> None:
        super().__init__("The page position does not belong to this listing.")


class NotAuthenticated(DomainError):
    """The request carries no usable identity (missing or malformed claims)."""


class PermissionDenied(DomainError):
    """The caller is known but their role does not allow the operation."""


class ScopeNotGrantable(PermissionDenied):
    def __init__(self, scopes: Iterable[str]) -> None:
        self.scopes = sorted(scopes)
        super().__init__(f"Your role may not grant the scope(s): {', '.join(self.scopes)}.")


class TokenNotFound(DomainError):
    """Also raised for tokens the caller may not see, so they are indistinguishable."""

    def __init__(self) -> None:
        super().__init__("No such token.")


class ActiveTokenLimitReached(DomainError):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"You already have {limit} active tokens, the organisation's maximum. "
            "Revoke a token you no longer need, or ask an administrator to raise the limit."
        )


class ConcurrentModification(DomainError):
    """Optimistic concurrency kept losing; the caller may retry."""

    def __init__(self) -> None:
        super().__init__("The resource was changed concurrently; please retry.")


class StoreUnavailable(DomainError):
    """Throttling, timeouts or a transient DynamoDB error: retryable."""

    def __init__(self) -> None:
        super().__init__("The service is temporarily unavailable; please retry.")


class StoreFailure(DomainError):
    """A non-retryable storage error (missing table, access denied): an operator must act."""

    def __init__(self) -> None:
        super().__init__("The service failed to process the request.")


class ActiveSetChanged(Exception):
    """Another request changed the user's active set first: re-read and try again."""


class TokenIdTaken(Exception):
    """The random token id already exists (astronomically unlikely): generate another."""


class TokenNotLive(DomainError):
    """The token's state does not allow the change (revoked, expired, disabled)."""

    def __init__(self, token_id: str, status: str, action: str) -> None:
        self.token_id, self.status = token_id, status
        hint = "; enable it first" if status == "disabled" else ""
        super().__init__(f"Token {token_id} is {status}: it cannot be {action}{hint}.")


class TokenAlreadyRotated(DomainError):
    """A token is rotated once; its successor is the token to rotate next."""

    def __init__(self, token_id: str, successor: str) -> None:
        self.token_id, self.successor = token_id, successor
        super().__init__(f"Token {token_id} was already rotated; its successor is {successor}. Rotate that one.")
