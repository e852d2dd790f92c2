"""The DynamoDB repositories, on moto and on dynalite (DynamoDB's own validation)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from token_service.domain.commands import Listing
from token_service.domain.errors import ActiveSetChanged, InvalidPageKey, TokenIdTaken, TokenNotFound
from token_service.domain.lifecycle import PURGE, Schedule
from token_service.domain.records import ActiveSet, OrgPolicy, Slot, TokenRecord
from token_service.domain.token_format import generate_token
from token_service.storage.lifecycle_store import LifecycleStore
from token_service.storage.repository import TokenRepository

pytestmark = pytest.mark.dynamodb_backends

NOW = 1_900_000_000
DAY = 86_400


def record(owner: str = "u1", org: str = "org-a", created: int = NOW, expires: int = NOW + 30 * DAY) -> TokenRecord:
    return TokenRecord.issue(
        generate_token("lgk"),
        org_id=org,
        owner_id=owner,
        name="repository test",
        scopes=("reports:read",),
        now=created,
        expires_at=expires,
        retention_seconds=30 * DAY,
        schedule=Schedule(),
    )


def test_a_token_round_trips_through_its_item(repository: TokenRepository) -> None:
    token = record()
    repository.put_new_token(token)
    assert repository.get_token(token.token_id) == token
    assert repository.get_token("0" * 16) is None


def test_the_authorizers_read_fetches_only_what_its_decision_uses(repository: TokenRepository) -> None:
    token = record()
    repository.put_new_token(token)
    repository.revoke(token.token_id, "org-a", None, NOW, "u1", NOW + DAY)
    repository.record_use(token.token_id, NOW, "203.0.113.9", not_since=NOW - 600)
    grant = repository.get_grant(token.token_id)
    assert grant is not None
    assert (grant.token_id, grant.org_id, grant.owner_id, grant.scopes) == (token.token_id, "org-a", "u1", token.scopes)
    assert (grant.expires_at, grant.secret_hash, grant.hash_version) == (
        token.expires_at,
        token.secret_hash,
        token.hash_version,
    )
    assert (grant.revoked_at, grant.last_used_at) == (NOW, NOW)
    assert repository.get_grant("0" * 16) is None


def test_a_taken_id_is_refused(repository: TokenRepository) -> None:
    token = record()
    repository.put_new_token(token)
    with pytest.raises(TokenIdTaken):
        repository.put_new_token(token)


def test_the_active_set_is_written_only_from_the_version_read(repository: TokenRepository) -> None:
    slots = ActiveSet(tokens={"a" * 16: Slot(expires_at=NOW + DAY, reserved_at=NOW)})
    repository.reserve_slot("org-a", "u1", slots, read_version=0)
    current = repository.get_active_set("org-a", "u1")
    assert current.version == 1 and current.tokens == slots.tokens
    with pytest.raises(ActiveSetChanged):
        repository.reserve_slot("org-a", "u1", slots, read_version=0)  # a stale read loses
    repository.reserve_slot("org-a", "u1", ActiveSet(), read_version=1)
    assert repository.get_active_set("org-a", "u1").version == 2


def test_revoked_and_missing_tokens_are_told_apart(repository: TokenRepository) -> None:
    live, revoked = record(), record()
    repository.put_new_token(live)
    repository.put_new_token(revoked)
    repository.revoke(revoked.token_id, "org-a", None, NOW, "u1", NOW + DAY)
    assert repository.revoked_or_missing([live.token_id, revoked.token_id, "m" * 16]) == (
        {revoked.token_id},
        {"m" * 16},
    )


def test_revoke_pins_organisation_and_owner_and_is_idempotent(repository: TokenRepository) -> None:
    token = record(owner="u1", org="org-a")
    repository.put_new_token(token)
    for org, owner in (("org-b", None), ("org-a", "someone-else")):
        with pytest.raises(TokenNotFound):
            repository.revoke(token.token_id, org, owner, NOW, "x", NOW + DAY)
    assert repository.get_token(token.token_id).revoked_at is None  # type: ignore[union-attr]
    first = repository.revoke(token.token_id, "org-a", "u1", NOW, "u1", NOW + DAY)
    again = repository.revoke(token.token_id, "org-a", "u1", NOW + 5, "u1", NOW + DAY)
    assert first.newly_revoked and not again.newly_revoked
    assert again.record.revoked_at == NOW
    assert (again.record.lifecycle_stage, again.record.lifecycle_due) == (PURGE, NOW + DAY)


def test_revoke_never_creates_an_item(repository: TokenRepository) -> None:
    with pytest.raises(TokenNotFound):
        repository.revoke("n" * 16, "org-a", None, NOW, "x", NOW + DAY)
    assert repository.get_token("n" * 16) is None


def test_last_use_is_written_at_most_once_per_interval(repository: TokenRepository) -> None:
    token = record()
    repository.put_new_token(token)
    repository.record_use(token.token_id, NOW, "203.0.113.9", not_since=NOW - 600)
    repository.record_use(token.token_id, NOW + 60, "198.51.100.1", not_since=NOW + 60 - 600)  # too soon: no-op
    stored = repository.get_token(token.token_id)
    assert stored is not None and (stored.last_used_at, stored.last_used_ip) == (NOW, "203.0.113.9")
    repository.record_use("z" * 16, NOW, None, not_since=NOW)  # no such token: nothing is created
    assert repository.get_token("z" * 16) is None


def test_listing_pages_newest_first_and_filters(repository: TokenRepository) -> None:
    tokens = [record(created=NOW + index) for index in range(7)]
    for token in tokens:
        repository.put_new_token(token)
    repository.revoke(tokens[6].token_id, "org-a", None, NOW, "u1", NOW + DAY)
    seen, start = [], None
    while True:
        page = repository.list_tokens(Listing("org-a", "u1"), 3, start, None, NOW)
        assert len(page.records) <= 3
        seen += [item.token_id for item in page.records]
        start = page.next_key
        if start is None:
            break
    assert seen == [token.token_id for token in reversed(tokens)]
    revoked = repository.list_tokens(Listing("org-a", None), 10, None, "revoked", NOW)
    assert [item.token_id for item in revoked.records] == [tokens[6].token_id]
    assert list(repository.live_token_ids(Listing("org-a", "u1"), NOW)) == [
        token.token_id for token in reversed(tokens[:6])
    ]


def test_a_listing_refuses_a_position_from_another_listing(repository: TokenRepository) -> None:
    for owner in ("u1", "u2"):
        repository.put_new_token(record(owner=owner))
        repository.put_new_token(record(owner=owner, created=NOW + 1))
    other = repository.list_tokens(Listing("org-a", "u2"), 1, None, None, NOW).next_key
    assert other is not None
    with pytest.raises(InvalidPageKey):
        repository.list_tokens(Listing("org-a", "u1"), 1, other, None, NOW)
    with pytest.raises(InvalidPageKey):
        repository.list_tokens(Listing("org-a", None), 1, other, None, NOW)  # a user's position, on the org's index


def test_policy_round_trips(repository: TokenRepository) -> None:
    assert repository.get_policy("org-a") == OrgPolicy()
    policy = OrgPolicy(
        max_lifetime_days=30, default_lifetime_days=7, max_active_tokens_per_user=5, updated_at=NOW, updated_by="a"
    )
    repository.put_policy("org-a", policy)
    assert repository.get_policy("org-a") == policy
    assert repository.get_policy("org-b") == OrgPolicy()


def test_lifecycle_store_reads_only_due_items_and_never_purges_a_live_token(repository: TokenRepository) -> None:
    store = LifecycleStore(repository.table_name, repository.client)
    due = record(created=NOW - DAY, expires=NOW + 7 * DAY - 60)  # its 7-day notice fell due a minute ago
    later = record(expires=NOW + 90 * DAY)
    for token in (due, later):
        repository.put_new_token(token)
    today = date.fromtimestamp(NOW)
    items, _, read = store.due_items(today, NOW, None)
    assert [item.token_id for item in items] == [due.token_id] and read == 1
    item = items[0]
    assert store.move(item, ("notify_1d", due.expires_at - DAY), NOW)
    assert not store.move(item, ("notify_1d", due.expires_at - DAY), NOW)  # a second run loses
    # A purge of the live token, even naming its current stage and due time, deletes nothing.
    forged = replace(item, stage="notify_1d", due=due.expires_at - DAY)
    assert not store.purge(forged, NOW)
    assert repository.get_token(due.token_id) is not None
    store.advance_watermark(today)
    store.advance_watermark(date.fromordinal(today.toordinal() - 1))  # never backwards
    assert store.get_watermark() == today
