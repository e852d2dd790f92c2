"""Membership changes reach tokens: a user who leaves the organisation, is disabled or deleted
loses every token; one whose role changes keeps only the scopes the new role may grant.

Token owners are remembered in a registry (organisation, user, role as last applied). A
reconciliation compares it with the directory (the user pool) and applies each difference
through TokenService.apply_membership, then records the new state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Member:
    """A token owner as the registry last saw them."""

    org_id: str
    user_id: str
    role: str


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A user as the identity provider knows them now."""

    user_id: str
    org_id: str | None
    role: str | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class MembershipOutcome:
    org_id: str
    user_id: str
    reason: str  # deleted, disabled, left, role
    revoked: int
    trimmed: int


class MemberRegistry(Protocol):
    """Who owns tokens (token_service.storage.repository.TokenRepository)."""

    def members(self) -> Iterator[Member]: ...
    def remember_member(self, member: Member, *, replace: bool) -> None: ...
    def forget_member(self, org_id: str, user_id: str) -> None: ...


class Directory(Protocol):
    """The identity provider's users (token_service.storage.directory)."""

    def users(self) -> Iterator[DirectoryUser]: ...


class MembershipApplier(Protocol):
    """token_service.domain.service.TokenService."""

    def apply_membership(self, org_id: str, user_id: str, role: str | None, reason: str) -> tuple[int, int]: ...


def change_of(member: Member, user: DirectoryUser | None) -> tuple[str, str | None] | None:
    """What happened to a token owner, and the role their tokens must now fit (None: no role
    in that organisation any more); None when nothing changed."""
    if user is None:
        return "deleted", None
    if not user.enabled:
        return "disabled", None
    if user.org_id != member.org_id:
        return "left", None
    if user.role != member.role:
        return "role", user.role
    return None


def reconcile(applier: MembershipApplier, registry: MemberRegistry, directory: Directory) -> list[MembershipOutcome]:
    """Applies every difference between the registry and the directory; safe to repeat."""
    current = {user.user_id: user for user in directory.users()}
    outcomes = []
    for member in list(registry.members()):
        change = change_of(member, current.get(member.user_id))
        if change is None:
            continue
        reason, role = change
        revoked, trimmed = applier.apply_membership(member.org_id, member.user_id, role, reason)
        if role is None:
            registry.forget_member(member.org_id, member.user_id)
        else:
            registry.remember_member(Member(member.org_id, member.user_id, role), replace=True)
        outcomes.append(MembershipOutcome(member.org_id, member.user_id, reason, revoked, trimmed))
    return outcomes
