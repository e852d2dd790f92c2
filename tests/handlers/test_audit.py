"""The audit log: one record per change (create, rotate, each kind of revoke, disable, enable,
policy change, membership change, leak report), chained per organisation; GET /audit and
GET /audit/verify through the real handlers; and what happens when a function dies between
the change and its record."""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from support import (
    ORG,
    T0,
    TABLE_NAME,
    Cleanup,
    Console,
    FakeClock,
    call_self_service,
    iso,
    load_event,
    self_service_event,
)

from devserver.gateway import Identity, LambdaContext, load_handler_module
from devserver.template import ROOT
from token_service import wiring
from token_service.domain.errors import StoreUnavailable
from token_service.storage.attribute_values import deserialize, serialize
from token_service.storage.audit import AuditLog, audit_partition, audit_record_key

pytestmark = [pytest.mark.dynamodb_backends]
POLICY = {"max_lifetime_days": 366, "default_lifetime_days": 90, "max_active_tokens_per_user": 50}


def audit(console: Console, **query: str) -> list[dict[str, Any]]:
    """Every record the listing gives, page after page (newest first)."""
    records: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = console.request("GET", "/audit", query={**query, **({"next": cursor} if cursor else {})})
        assert page.status == 200, page.body
        records.extend(page.json()["items"])
        cursor = page.json()["next"]
        if cursor is None:
            return records


def verify(console: Console) -> dict[str, Any]:
    response = console.request("GET", "/audit/verify")
    assert response.status == 200, response.body
    return dict(response.json())


def stored_items(org: str = ORG) -> list[dict[str, Any]]:
    client = wiring.get_service().repository.client
    response = client.query(
        TableName=TABLE_NAME,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues=serialize({":pk": audit_partition(org)}),
        ConsistentRead=True,
    )
    return [deserialize(item) for item in response["Items"]]


def test_every_change_leaves_one_record_in_a_chain_and_none_holds_a_secret(
    admin: Console, member: Console, clock: FakeClock
) -> None:
    created = member.create_ok("deploy", ["reports:read"])
    token_id = created["token_id"]
    clock.set(T0 + 10)
    assert member.request("PATCH", f"/tokens/{token_id}", body={"enabled": False}).status == 200
    clock.set(T0 + 20)
    assert member.request("PATCH", f"/tokens/{token_id}", body={"enabled": True}).status == 200
    clock.set(T0 + 30)
    rotated = member.request("POST", f"/tokens/{token_id}/rotate", body={"grace": "PT0S"}).json()
    successor = rotated["token_id"]
    clock.set(T0 + 40)
    assert admin.request("DELETE", f"/tokens/{successor}").status == 200
    clock.set(T0 + 50)
    assert admin.request("PUT", "/settings", body={**POLICY, "revoke_unused_after_days": 60}).status == 200
    clock.set(T0 + 60)
    bulk = [member.create_ok(f"bulk {n}")["token_id"] for n in range(3)]
    clock.set(T0 + 70)
    assert member.request("POST", "/tokens/revoke", body={"token_ids": bulk}).status == 200
    # Repeating a revoke changes nothing, and records nothing.
    assert member.request("POST", "/tokens/revoke", body={"token_ids": bulk}).status == 200

    records = audit(admin)
    assert [record["seq"] for record in records] == list(range(len(records), 0, -1))  # newest first
    kinds = [(record["action"], record["details"].get("kind")) for record in reversed(records)]
    assert kinds == [
        ("token.created", None),
        ("token.disabled", None),
        ("token.enabled", None),
        ("token.rotated", None),
        ("token.revoked", "single"),
        ("policy.changed", None),
        *[("token.created", None)] * 3,
        *[("token.revoked", "bulk")] * 3,
    ]
    first, rotation, single, policy = records[-1], records[-4], records[-5], records[-6]
    assert first["actor"] == "user-member" and first["token_ids"] == [token_id]
    assert first["source_ip"] == "127.0.0.1" and first["at"] == iso(int(T0))
    assert first["details"]["name"] == "deploy" and first["details"]["scopes"] == ["reports:read"]
    assert rotation["token_ids"] == [token_id, successor]
    assert single["actor"] == "user-admin" and single["token_ids"] == [successor]
    assert policy["token_ids"] == [] and policy["details"]["revoke_unused_after_days"] == 60
    assert sorted(record["token_ids"][0] for record in records[:3]) == sorted(bulk)
    # The chain: each record carries its predecessor's hash.
    assert records[-1]["prev_hash"] == "0" * 64
    for newer, older in itertools.pairwise(records):
        assert newer["prev_hash"] == older["hash"]
    assert verify(admin) == {
        "intact": True,
        "records": len(records),
        "first_seq": 1,
        "last_seq": len(records),
        "broken_at": None,
        "reason": None,
    }
    # Never a secret, nor a hash of one, anywhere in the stored records or the answers.
    stored = json.dumps(stored_items(), default=str)
    for secret in (created["token"], rotated["token"]):
        assert secret not in stored and secret not in json.dumps(records)
    assert "secret_hash" not in stored


def test_self_service_cleanup_membership_and_leak_reports_are_recorded(
    admin: Console, member: Console, clock: FakeClock
) -> None:
    service = wiring.get_service()
    own = member.create_ok("self", ["reports:read"])
    context = {"token_id": own["token_id"], "org_id": ORG, "owner_id": "user-member", "scopes": "reports:read"}
    event = self_service_event("DELETE", context)
    event["requestContext"]["identity"] = {"sourceIp": "198.51.100.7"}
    status, _ = call_self_service(event)
    assert status == 200
    leaked = member.create_ok("leaked")
    assert service.revoke_leaked_token(leaked["token"], "https://example.com/paste", "content")
    assert not service.revoke_leaked_token(leaked["token"][:-1] + "x", None, None)  # not ours: no record
    trimmed = admin.create_ok("teams", ["import:teams", "reports:read"])
    assert admin.request("PUT", "/members/user-admin", body={"role": "viewer"}).status == 200
    unused = member.create_ok("idle")
    assert admin.request("PUT", "/settings", body={**POLICY, "revoke_unused_after_days": 30}).status == 200
    clock.set(T0 + 31 * 86_400)
    report = Cleanup(service).run(int(T0 + 31 * 86_400))
    assert report.unused_revoked >= 1

    by_action = {}
    for record in audit(admin):
        by_action.setdefault((record["action"], record["details"].get("kind")), []).append(record)
    (self_revoke,) = by_action[("token.revoked", "self")]
    assert self_revoke["actor"] == f"token:{own['token_id']}" and self_revoke["source_ip"] == "198.51.100.7"
    (leak,) = by_action[("token.revoked", "leak")]
    assert leak["actor"] == "leak:content" and leak["details"]["url"] == "https://example.com/paste"
    assert leak["token_ids"] == [leaked["token_id"]] and leak["source_ip"] is None
    (trim,) = by_action[("token.scopes_trimmed", None)]
    assert trim["actor"] == "membership:role" and trim["token_ids"] == [trimmed["token_id"]]
    assert trim["details"] == {"role": "viewer", "scopes": ["reports:read"]}
    policy_revokes = by_action[("token.revoked", "policy")]
    assert unused["token_id"] in {record["token_ids"][0] for record in policy_revokes}
    assert all(record["actor"] == "policy:unused" for record in policy_revokes)
    assert verify(admin)["intact"]


def test_the_listing_filters_pages_and_is_for_admins_only(admin: Console, member: Console, clock: FakeClock) -> None:
    tokens = []
    for minute in range(6):
        clock.set(T0 + minute * 60)
        tokens.append(member.create_ok(f"t{minute}")["token_id"])
    clock.set(T0 + 600)
    assert admin.request("DELETE", f"/tokens/{tokens[2]}").status == 200

    assert [r["action"] for r in audit(admin, token_id=tokens[2])] == ["token.revoked", "token.created"]
    assert {r["actor"] for r in audit(admin, actor="user-admin")} == {"user-admin"}
    assert len(audit(admin, action="token.created")) == 6
    window = audit(admin, since=iso(int(T0) + 60), until=iso(int(T0) + 180).replace("Z", "+00:00"))
    assert [r["token_ids"][0] for r in window] == [tokens[3], tokens[2], tokens[1]]
    assert len(audit(admin, limit="2")) == 7  # page by page, all of them
    first = admin.request("GET", "/audit", query={"limit": "2"}).json()
    assert len(first["items"]) == 2 and first["next"]

    # Bad input names the field; members may not read the log; nothing leaks across organisations.
    for query, field in (
        ({"action": "token.deleted"}, "action"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2030-03-17T12:00:00"}, "since"),  # no offset
        ({"limit": "0"}, "limit"),
        ({"next": "bm90IGEgY3Vyc29y"}, "next"),
        ({"since": "2030-03-18T00:00:00Z", "until": "2030-03-17T00:00:00Z"}, "until"),
    ):
        response = admin.request("GET", "/audit", query=query)
        assert response.status == 400, (query, response.body)
        assert field in json.dumps(response.json()["error"]), (query, response.body)
    assert member.request("GET", "/audit").status == 403
    assert member.request("GET", "/audit/verify").status == 403
    outsider = Console(Identity(user_id="boss", org_id="org-globex", role="admin"))
    assert audit(outsider) == [] and verify(outsider)["records"] == 0
    forged = admin.request("GET", "/audit", query={"next": first["next"]})
    assert outsider.request("GET", "/audit", query={"next": first["next"]}).status == 400
    assert forged.status == 200


def test_verify_names_the_first_edited_or_missing_record(admin: Console, member: Console) -> None:
    for n in range(4):
        member.create_ok(f"t{n}")
    assert verify(admin)["intact"]
    client = wiring.get_service().repository.client
    key = serialize(audit_record_key(ORG, 2))
    entry = json.loads(deserialize(client.get_item(TableName=TABLE_NAME, Key=key)["Item"])["entry"])
    entry["actor"] = "someone-else"  # rewrite history: another actor ...
    client.update_item(
        TableName=TABLE_NAME,
        Key=key,
        UpdateExpression="SET #entry = :entry",
        ExpressionAttributeNames={"#entry": "entry"},
        ExpressionAttributeValues=serialize({":entry": json.dumps(entry)}),
    )
    check = verify(admin)
    assert check["intact"] is False and check["broken_at"] == 2
    assert check["reason"] == "its content does not match its hash (edited)"
    # ... or only the searchable copy, so a filter would mislead.
    client.update_item(
        TableName=TABLE_NAME,
        Key=serialize(audit_record_key(ORG, 3)),
        UpdateExpression="SET actor = :actor",
        ExpressionAttributeValues=serialize({":actor": "someone-else"}),
    )
    client.delete_item(TableName=TABLE_NAME, Key=key)  # and remove record 2 altogether
    check = verify(admin)
    assert check["broken_at"] == 3 and check["reason"] == "record 2 is missing"


class Crash(BaseException):
    """The function dies here (a timeout, an out-of-memory kill): no handler catches it."""


@pytest.mark.parametrize("dies", ["before the append", "after the head moved", "after the record, before the outbox"])
def test_a_change_is_never_without_its_record_even_if_the_function_dies(
    admin: Console, member: Console, monkeypatch: pytest.MonkeyPatch, dies: str
) -> None:
    member.create_ok("before")
    where = {
        "before the append": "append",
        "after the head moved": "_write_out",
        "after the record, before the outbox": "_remove_from_outbox",
    }[dies]
    real = getattr(AuditLog, where)

    def crash_once(self: AuditLog, *args: Any, **kwargs: Any) -> Any:
        if where == "_write_out" and not args[1].get("pending"):
            return real(self, *args, **kwargs)  # the previous append's records, already written
        monkeypatch.setattr(AuditLog, where, real)
        raise Crash()

    monkeypatch.setattr(AuditLog, where, crash_once)
    with pytest.raises(Crash):
        member.create("crashed")
    items = wiring.get_service().repository.client.scan(TableName=TABLE_NAME)["Items"]
    assert any(deserialize(item).get("name") == "crashed" for item in items)  # the change is stored
    member.create_ok("after")
    records = audit(admin)
    names = [record["details"].get("name") for record in reversed(records)]
    assert sorted(names) == ["after", "before", "crashed"]  # each change exactly once
    check = verify(admin)
    assert check["intact"] and check["records"] == 3
    assert not [item for item in stored_items() if item["sk"] == "HEAD" and item.get("pending")]


def test_a_store_failure_leaves_the_entry_for_the_cleanup(
    admin: Console, member: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(self: AuditLog, entries: Any) -> None:
        raise StoreUnavailable()

    monkeypatch.setattr(AuditLog, "append", unavailable)
    created = member.create_ok("waits")  # the change succeeds; its entry waits in the outbox
    assert "audit_outbox" in Cleanup(wiring.get_service()).item(created["token_id"])
    monkeypatch.undo()
    cleanup = Cleanup(wiring.get_service())
    report = cleanup.run(int(T0), audit=AuditLog(TABLE_NAME, cleanup.client, 400))
    assert report.audit_drained == 1
    assert "audit_outbox" not in cleanup.item(created["token_id"])
    (record,) = audit(admin)
    assert record["token_ids"] == [created["token_id"]]


def test_a_bulk_change_is_chained_in_batches_and_what_dynamodb_leaves_unprocessed_is_sent_again(
    admin: Console, member: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk revoke of 30 tokens reads their outboxes in one batch and writes their 30 records in
    batches of 25: about two requests per token beyond the revoke, not five. A batch write whose
    items DynamoDB leaves unprocessed (throttling) is sent again until every record is stored."""
    tokens = [member.create_ok(f"bulk {n}")["token_id"] for n in range(30)]
    client = wiring.get_service().repository.client
    operations: list[str] = []
    client.meta.events.register("before-call.dynamodb", lambda model, **_: operations.append(model.name))
    real_batch_write = client.batch_write_item
    left_over: list[int] = []

    def throttled_once(**params: Any) -> dict[str, Any]:
        ((table, writes),) = params["RequestItems"].items()
        if left_over or len(writes) < 25:
            return dict(real_batch_write(**params))
        left_over.append(5)
        real_batch_write(RequestItems={table: writes[:-5]})
        return {"UnprocessedItems": {table: writes[-5:]}}

    monkeypatch.setattr(client, "batch_write_item", throttled_once)
    assert member.request("POST", "/tokens/revoke", body={"token_ids": tokens}).status == 200
    monkeypatch.undo()

    assert left_over == [5]
    # The revokes (30 updates), then the chain: the head, one read of the 30 outboxes, the records
    # (25 + 5, and the 5 again), the head's commit and its clearing, each entry out of its outbox.
    assert operations.count("BatchGetItem") == 1 and operations.count("GetItem") == 1
    assert operations.count("BatchWriteItem") == 2 + 1 and "PutItem" not in operations
    assert operations.count("UpdateItem") == 30 + 2 + 30
    revoked = [record for record in audit(admin) if record["action"] == "token.revoked"]
    assert sorted(record["token_ids"][0] for record in revoked) == sorted(tokens)
    assert verify(admin)["intact"]
    assert not [item for item in stored_items() if item["sk"] == "HEAD" and item.get("pending")]
    outboxes = [item for item in client.scan(TableName=TABLE_NAME)["Items"] if "audit_outbox" in item]
    assert outboxes == []


def test_concurrent_changes_make_one_unbroken_chain(
    admin: Console, clock: FakeClock, atomic_dynamodb_requests: None
) -> None:
    """Appends race for the chain's head (a conditional update decides): none is lost or forked.
    (moto needs one lock per request to be as atomic as DynamoDB: tests/handlers/conftest.py.)"""
    users = [Console(Identity(user_id=f"user-{n}", org_id=ORG, role="member")) for n in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        created = list(pool.map(lambda console: [console.create_ok(f"c{n}") for n in range(3)], users))
    records = audit(admin)
    assert len(records) == 18 and sorted(r["seq"] for r in records) == list(range(1, 19))
    assert {r["token_ids"][0] for r in records} == {token["token_id"] for batch in created for token in batch}
    assert verify(admin)["intact"]


def test_the_sample_events_list_and_verify_the_samples_organisation(admin: Console) -> None:
    """`sam local invoke AuditFunction -e events/list_audit.json` (and verify_audit.json)."""
    created = admin.create_ok("sample")
    assert admin.request("DELETE", f"/tokens/{created['token_id']}").status == 200
    module = load_handler_module(ROOT / "functions" / "audit", "app.lambda_handler")
    listed = module.lambda_handler(load_event("list_audit.json"), LambdaContext(function_name="AuditFunction"))
    assert listed["statusCode"] == 200, listed["body"]
    (record,) = json.loads(listed["body"])["items"]  # the sample asks for revokes only
    assert record["action"] == "token.revoked" and record["token_ids"] == [created["token_id"]]
    verified = module.lambda_handler(load_event("verify_audit.json"), LambdaContext(function_name="AuditFunction"))
    assert verified["statusCode"] == 200 and json.loads(verified["body"])["records"] == 2


def test_a_rotation_that_loses_a_race_records_the_successors_revocation(
    admin: Console, member: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old token is revoked while its rotation runs: the successor just minted is revoked
    at once ("rotation:superseded"), and that revocation is in the log as well."""
    old = member.create_ok("racing")
    repository = wiring.get_service().repository
    link = repository.mark_rotated

    def revoked_meanwhile(*args: Any, **kwargs: Any) -> None:
        assert admin.request("DELETE", f"/tokens/{old['token_id']}").status == 200
        link(*args, **kwargs)

    monkeypatch.setattr(repository, "mark_rotated", revoked_meanwhile)
    response = member.request("POST", f"/tokens/{old['token_id']}/rotate", body={"grace": "PT1H"})
    assert response.status == 409, response.body
    records = audit(admin)
    actions = [(r["action"], r["details"].get("kind"), r["actor"]) for r in reversed(records)]
    assert actions == [
        ("token.created", None, "user-member"),
        ("token.rotated", None, "user-member"),  # the successor is written (and recorded) first
        ("token.revoked", "single", "user-admin"),
        ("token.revoked", "superseded", "rotation:superseded"),
    ]
    successor = records[0]["token_ids"][0]
    assert records[2]["token_ids"] == [old["token_id"], successor]
    assert verify(admin)["intact"]
