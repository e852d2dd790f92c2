"""The per-user cap on active tokens (policy max_active_tokens_per_user)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support import ORG, OTHER_ORG, Console, FakeClock, set_cap

from devserver.gateway import HttpResponse, Identity
from token_service import wiring
from token_service.domain.errors import ActiveSetChanged, StoreUnavailable
from token_service.domain.service import SLOT_GRACE_SECONDS

NOW = datetime(2030, 3, 15, 10, 30, tzinfo=UTC)
pytestmark = [pytest.mark.clock_at(NOW)]


def fill(console: Console, count: int, **fields: object) -> list[str]:
    return [console.create_ok(f"token {index}", **fields)["token_id"] for index in range(count)]


def assert_cap_reached(response: HttpResponse, cap: int) -> None:
    assert response.status == 409, response.body
    error = response.json()["error"]
    assert error["code"] == "active_token_limit_reached"
    assert f"{cap} active tokens" in error["message"]
    assert "Revoke" in error["message"]


def active_ids(console: Console) -> list[str]:
    response = console.request("GET", "/tokens", query={"status": "active", "limit": "100"})
    assert response.status == 200, response.body
    return [item["token_id"] for item in response.json()["items"]]


# -- the cap ------------------------------------------------------------------------------


def test_creating_beyond_the_cap_is_409_with_a_clear_message(member: Console, small_cap: int) -> None:
    created = fill(member, small_cap)

    response = member.create("one too many")

    assert_cap_reached(response, small_cap)
    assert response.json()["error"]["message"] == (
        "You already have 3 active tokens, the organisation's maximum. "
        "Revoke a token you no longer need, or ask an administrator to raise the limit."
    )
    assert sorted(active_ids(member)) == sorted(created)
    assert_cap_reached(member.create("still too many"), small_cap)


def test_default_cap_is_fifty(member: Console, clock: FakeClock) -> None:
    fill(member, 50)
    assert_cap_reached(member.create(), 50)
    assert len(active_ids(member)) == 50


def test_revoking_a_token_frees_exactly_one_slot(member: Console, small_cap: int) -> None:
    first, *_ = fill(member, small_cap)

    assert member.request("DELETE", f"/tokens/{first}").status == 200
    assert member.request("DELETE", f"/tokens/{first}").status == 200  # idempotent: no second slot

    replacement = member.create_ok("replacement")
    assert_cap_reached(member.create(), small_cap)
    assert first not in active_ids(member)
    assert replacement["token_id"] in active_ids(member)


def test_bulk_revoke_frees_slots(member: Console, small_cap: int) -> None:
    fill(member, small_cap)
    response = member.request("POST", "/tokens/revoke", body={"owner_id": "user-member"})
    assert response.status == 200, response.body
    assert response.json()["revoked"] == small_cap

    fill(member, small_cap)
    assert_cap_reached(member.create(), small_cap)


def test_an_admin_revoking_a_members_token_frees_the_members_slot(
    admin: Console, member: Console, small_cap: int
) -> None:
    first, *_ = fill(member, small_cap)
    assert admin.request("DELETE", f"/tokens/{first}").status == 200
    member.create_ok("replacement")


def test_an_expired_token_frees_a_slot_at_its_expiry(member: Console, small_cap: int, clock: FakeClock) -> None:
    expiry = NOW + timedelta(hours=1)
    short_lived = member.create_ok("short", expires_at=expiry.isoformat())["token_id"]
    fill(member, small_cap - 1)
    assert_cap_reached(member.create(), small_cap)

    clock.set(expiry - timedelta(seconds=1))
    assert_cap_reached(member.create(), small_cap)

    clock.set(expiry)
    member.create_ok("after expiry")
    assert short_lived not in active_ids(member)
    expired = member.request("GET", f"/tokens/{short_lived}").json()
    assert expired["status"] == "expired"
    assert_cap_reached(member.create(), small_cap)


def test_tokens_expiring_together_free_all_their_slots(member: Console, small_cap: int, clock: FakeClock) -> None:
    fill(member, small_cap, expires_at="2030-03-20")
    assert_cap_reached(member.create(), small_cap)

    clock.set(datetime(2030, 3, 21, tzinfo=UTC))
    fill(member, small_cap)
    assert_cap_reached(member.create(), small_cap)


def test_caps_are_per_user(member: Console, other_member: Console, admin: Console, small_cap: int) -> None:
    fill(member, small_cap)
    assert_cap_reached(member.create(), small_cap)

    fill(other_member, small_cap)
    fill(admin, small_cap)
    assert_cap_reached(other_member.create(), small_cap)
    assert len(active_ids(member)) == small_cap


def test_the_same_user_id_in_another_org_has_its_own_cap(
    member: Console, outsider_admin: Console, small_cap: int
) -> None:
    fill(member, small_cap)
    twin = Console(Identity(user_id=member.identity.user_id, org_id=OTHER_ORG, role="member"))
    # org-globex keeps the default cap of 50, and none of org-acme's tokens count there.
    fill(twin, small_cap + 1)
    assert_cap_reached(member.create(), small_cap)
    assert member.identity.org_id == ORG


def test_a_rejected_create_does_not_take_a_slot(member: Console, small_cap: int) -> None:
    first, *_ = fill(member, small_cap)
    for _ in range(3):
        assert_cap_reached(member.create(), small_cap)
    assert member.request("DELETE", f"/tokens/{first}").status == 200
    member.create_ok("fits again")


# -- concurrency --------------------------------------------------------------------------

PARALLEL = 20
PARALLEL_CAP = 10


def test_parallel_creates_never_exceed_the_cap(
    admin: Console, member: Console, clock: FakeClock, atomic_dynamodb_requests: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_cap(admin, PARALLEL_CAP)
    repository = wiring.get_service().repository

    # Every request's first read of the active set waits until all of them have read it,
    # so all 20 start from the same version and the race on the last slots is certain.
    everyone_has_read = threading.Barrier(PARALLEL, timeout=30)
    per_thread = threading.local()
    read_active_set = repository.get_active_set

    def read_then_wait(org_id: str, owner_id: str) -> Any:
        active = read_active_set(org_id, owner_id)
        if not getattr(per_thread, "waited", False):
            per_thread.waited = True
            everyone_has_read.wait()
        return active

    conflicts: list[str] = []
    write = repository.reserve_slot

    def counting_write(*args: Any, **kwargs: Any) -> None:
        try:
            write(*args, **kwargs)
        except ActiveSetChanged:
            conflicts.append(threading.current_thread().name)
            raise

    monkeypatch.setattr(repository, "get_active_set", read_then_wait)
    monkeypatch.setattr(repository, "reserve_slot", counting_write)

    results: list[HttpResponse | BaseException] = []

    def create(index: int) -> Callable[[], None]:
        def run() -> None:
            try:
                results.append(member.create(f"parallel {index}"))
            except BaseException as error:  # reported below, not lost in the thread
                results.append(error)

        return run

    threads = [threading.Thread(target=create(index), name=f"create-{index}") for index in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    monkeypatch.setattr(repository, "get_active_set", read_active_set)  # no more barrier

    errors = [result for result in results if isinstance(result, BaseException)]
    assert not errors, errors
    responses = [result for result in results if isinstance(result, HttpResponse)]
    outcomes = Counter((response.status, response.json().get("error", {}).get("code")) for response in responses)
    assert outcomes == {(201, None): PARALLEL_CAP, (409, "active_token_limit_reached"): PARALLEL - PARALLEL_CAP}
    # All 20 read the same version, so at least 19 writes lost the race and were retried.
    assert len(conflicts) >= PARALLEL - 1
    # Every token whose secret was handed out exists, and nothing else does.
    issued = {response.json()["token_id"] for response in responses if response.status == 201}
    assert set(active_ids(member)) == issued
    # The cap still holds afterwards, and revoking frees a slot as usual.
    assert_cap_reached(member.create(), PARALLEL_CAP)
    assert member.request("DELETE", f"/tokens/{sorted(issued)[0]}").status == 200
    member.create_ok("after the race")


def test_a_slot_whose_token_write_failed_is_freed_after_its_grace_period(
    admin: Console, member: Console, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_cap(admin, 2)
    member.create_ok("first")
    repository = wiring.get_service().repository
    write_token = repository.put_new_token

    def fail_once(record: Any, audit: Any = None) -> None:
        monkeypatch.setattr(repository, "put_new_token", write_token)
        raise StoreUnavailable()

    monkeypatch.setattr(repository, "put_new_token", fail_once)
    failed = member.create("lost on the way")
    assert failed.status == 503 and failed.headers["Retry-After"] == "1"
    assert len(active_ids(member)) == 1  # no token was half-created

    # The slot it took may still be a create in flight: it counts until its grace period ends.
    assert_cap_reached(member.create("too soon"), 2)
    clock.now += SLOT_GRACE_SECONDS + 1
    member.create_ok("second")
    assert len(active_ids(member)) == 2
