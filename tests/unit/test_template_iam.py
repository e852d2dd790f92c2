"""Each function's IAM policy in template.yaml allows exactly the DynamoDB calls its code makes.

The storage classes run against a client that records every call, and each call is checked
against the template's statements the way IAM evaluates them: the action, the table or index,
`dynamodb:LeadingKeys` (the partition key), `dynamodb:Attributes` (every attribute a request
names) and `dynamodb:ReturnValues`. Then the policies themselves: no listing Query on the table
or on ByExpiry, settings confined to policy items, the authorizer's write to its last-use
attributes.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from devserver.template import load_template
from token_service.domain.audit import AuditAction, AuditEntry, AuditQuery
from token_service.domain.cleanup import DueItem
from token_service.domain.commands import Listing
from token_service.domain.lifecycle import EXPIRED, PURGE
from token_service.domain.membership import Member
from token_service.domain.records import ActiveSet, OrgPolicy
from token_service.storage.attribute_values import serialize
from token_service.storage.audit import AuditLog
from token_service.storage.items import active_set_key, policy_key, token_key, token_record
from token_service.storage.lifecycle_store import LifecycleStore
from token_service.storage.repository import TokenRepository

TABLE = "TokensTable"
TOKEN_ID = "3hZ8qLr0Vx2mN5pK"


def token_item_fixture() -> dict[str, Any]:
    return {
        "token_id": TOKEN_ID,
        "org_id": "org-acme",
        "owner_id": "alice",
        "name": "ci",
        "scopes": ["import:builds"],
        "created_at": 1_790_000_000,
        "created_at_us": 1_790_000_000_000_000,
        "created_by": "alice",
        "expires_at": 1_810_000_000,
        "secret_hash": "0" * 64,
        "hash_version": 1,
        "display_hint": "tok_...abcd",
        "ttl": 1_812_592_000,
    }


class RecordingClient:
    """A DynamoDB client that answers every call with an empty success and records it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, operation: str) -> Any:
        def call(**params: Any) -> dict[str, Any]:
            self.calls.append((operation, params))
            return {"Items": [], "Count": 0, "ScannedCount": 0, "Attributes": serialize(token_item_fixture())}

        return call


def statements(logical_id: str) -> list[dict[str, Any]]:
    """The function's inline statements and those of the managed policies it refers to."""
    resources = load_template()["Resources"]
    documents = [
        resources[policy["Ref"]]["Properties"]["PolicyDocument"] if "Ref" in policy else policy
        for policy in resources[logical_id]["Properties"].get("Policies", [])
    ]
    return [statement for document in documents for statement in document["Statement"]]


def resource_name(resource: Any) -> str:
    """'table' for the table's ARN, 'index/<name>' for an index of it, else the raw value."""
    if resource == {"GetAtt": f"{TABLE}.Arn"}:
        return "table"
    if isinstance(resource, dict) and str(resource.get("Sub", "")).startswith(f"${{{TABLE}.Arn}}/"):
        return str(resource["Sub"]).removeprefix(f"${{{TABLE}.Arn}}/")
    return str(resource)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_like(pattern: str, value: str) -> bool:
    """IAM's StringLike: '*' any run of characters, '?' one character."""
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, value) is not None


def expression_attributes(params: dict[str, Any]) -> set[str]:
    """Every top-level attribute a request names: its key, update, condition and projection
    expressions."""
    names = set(params.get("Key", {}))
    aliases = params.get("ExpressionAttributeNames", {})
    expressions = ("UpdateExpression", "ConditionExpression", "ProjectionExpression")
    for expression in (params.get(name, "") for name in expressions):
        for token in re.findall(r"[#A-Za-z_][A-Za-z0-9_]*", re.sub(r":[A-Za-z0-9_]+", " ", expression)):
            if token.startswith("#"):
                names.add(aliases[token])
            elif token not in {
                "SET",
                "REMOVE",
                "AND",
                "OR",
                "NOT",
                "attribute_exists",
                "attribute_not_exists",
                "list_append",
                "if_not_exists",
            }:
                names.add(token)
    return names


def condition_holds(condition: dict[str, Any], request: dict[str, Any]) -> bool:
    """The subset of IAM's condition operators the template uses, on one request's context."""
    for operator, keys in condition.items():
        for key, allowed in keys.items():
            values = request.get(key)
            allowed = [str(value) for value in as_list(allowed)]
            if operator == "ForAllValues:StringLike":
                ok = all(any(iam_like(pattern, value) for pattern in allowed) for value in values or [])
            elif operator == "ForAllValues:StringNotLike":
                ok = all(not any(iam_like(pattern, value) for pattern in allowed) for value in values or [])
            elif operator == "ForAllValues:StringEquals":
                ok = all(value in allowed for value in values or [])
            elif operator == "StringEquals":
                ok = values is not None and values in allowed
            else:
                raise AssertionError(f"condition operator {operator} is not modelled by this test")
            if not ok:
                return False
    return True


def batch_keys(operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The keys (or whole items) a batch request reaches, in its one table."""
    (request,) = params["RequestItems"].values()
    if operation == "batch_get_item":
        return list(request["Keys"])
    return [next(iter(write.values())).get("Item") or next(iter(write.values()))["Key"] for write in request]


def allowed(logical_id: str, operation: str, params: dict[str, Any]) -> bool:
    action = "dynamodb:" + operation[0].upper() + re.sub(r"_([a-z])", lambda m: m.group(1).upper(), operation[1:])
    resource = f"index/{params['IndexName']}" if "IndexName" in params else "table"
    if operation in ("batch_get_item", "batch_write_item"):
        # IAM sees a batch as one request: every key's partition in LeadingKeys, the read's
        # projection (the same for all its keys) in Attributes.
        keys = batch_keys(operation, params)
        if operation == "batch_get_item":
            params = {**params, **next(iter(params["RequestItems"].values())), "Key": keys[0]}
        leading_keys = sorted({key["pk"]["S"] for key in keys})
    else:
        key = params.get("Key") or params.get("Item") or {}
        leading_keys = [key["pk"]["S"]] if "pk" in key else None
    if operation == "query" and "IndexName" not in params and "ExpressionAttributeValues" in params:
        leading_keys = [params["ExpressionAttributeValues"][":partition"]["S"]]  # the queried partition
    reads_items = operation in ("get_item", "batch_get_item")
    projected = reads_items and "ProjectionExpression" in params
    context = {
        "dynamodb:LeadingKeys": leading_keys,
        "dynamodb:Attributes": (
            sorted(expression_attributes(params)) if operation == "update_item" or projected else None
        ),
        "dynamodb:ReturnValues": params.get("ReturnValues", "NONE") if operation == "update_item" else None,
        # A read names the attributes it returns (SPECIFIC_ATTRIBUTES) or returns them all.
        "dynamodb:Select": ("SPECIFIC_ATTRIBUTES" if projected else "ALL_ATTRIBUTES") if reads_items else None,
    }
    return any(
        statement["Effect"] == "Allow"
        and action in as_list(statement["Action"])
        and resource in {resource_name(item) for item in as_list(statement["Resource"])}
        and condition_holds(statement.get("Condition", {}), context)
        for statement in statements(logical_id)
    )


def assert_all_allowed(logical_id: str, client: RecordingClient) -> None:
    assert client.calls
    denied = [(operation, params) for operation, params in client.calls if not allowed(logical_id, operation, params)]
    assert denied == [], f"{logical_id} may not make these calls"


# -- the code's calls pass the policies ------------------------------------------------------


def test_the_authorizer_may_read_a_token_and_record_its_last_use() -> None:
    client = RecordingClient()
    repository = TokenRepository("tokens", client)  # type: ignore[arg-type]
    repository.get_grant(TOKEN_ID)
    repository.record_use(TOKEN_ID, used_at=1_800_000_000, source_ip="203.0.113.9", not_since=1_799_999_400)
    repository.record_use(TOKEN_ID, used_at=1_800_000_000, source_ip=None, not_since=1_799_999_400)
    assert_all_allowed("AuthorizerFunction", client)


def test_the_authorizer_may_not_write_anything_but_the_last_use() -> None:
    update = {
        "Key": serialize(token_key(TOKEN_ID)),
        "UpdateExpression": "SET revoked_at = :at",
        "ConditionExpression": "attribute_exists(pk)",
    }
    assert not allowed("AuthorizerFunction", "update_item", update)
    last_use = {**update, "UpdateExpression": "SET last_used_at = :at"}
    assert allowed("AuthorizerFunction", "update_item", last_use)
    assert not allowed("AuthorizerFunction", "update_item", {**last_use, "ReturnValues": "ALL_NEW"})
    assert not allowed("AuthorizerFunction", "update_item", {**last_use, "Key": serialize(policy_key("org-acme"))})
    assert not allowed("AuthorizerFunction", "put_item", {"Item": serialize(token_key(TOKEN_ID))})
    assert not allowed("AuthorizerFunction", "query", {"IndexName": "ByOrg"})


@pytest.mark.parametrize("logical_id", ["ListTokensFunction", "RevokeTokensFunction"])
def test_listings_and_bulk_revokes_query_only_the_owner_and_organisation_indexes(logical_id: str) -> None:
    client = RecordingClient()
    repository = TokenRepository("tokens", client)  # type: ignore[arg-type]
    for listing in (Listing("org-acme", "alice"), Listing("org-acme", None)):
        repository.list_tokens(listing, 20, None, None, 1_800_000_000)
        repository.list_tokens(listing, 20, None, "active", 1_800_000_000)
        list(repository.live_token_ids(listing, 1_800_000_000))
    assert {params["IndexName"] for _, params in client.calls} == {"ByOwner", "ByOrg"}
    assert_all_allowed(logical_id, client)
    for forbidden in ({"IndexName": "ByExpiry"}, {}):  # {}: a Query on the table itself
        assert not allowed(logical_id, "query", forbidden)


def test_revoke_and_the_self_service_routes_read_and_write_token_items_only() -> None:
    client = RecordingClient()
    repository = TokenRepository("tokens", client)  # type: ignore[arg-type]
    repository.get_token(TOKEN_ID)
    repository.revoke_quietly(TOKEN_ID, "org-acme", None, 1_800_000_000, "alice", 1_802_592_000)
    for logical_id in ("RevokeTokensFunction", "TokenSelfFunction", "SecretScanningFunction"):
        assert_all_allowed(logical_id, client)
        assert not allowed(logical_id, "update_item", {"Key": serialize(active_set_key("org-acme", "alice"))})
    disable = RecordingClient()
    toggles = TokenRepository("tokens", disable)  # type: ignore[arg-type]
    toggles.set_disabled(TOKEN_ID, "org-acme", "alice", 1_800_000_000, "alice")
    toggles.set_enabled(TOKEN_ID, "org-acme", None, 1_800_000_000)
    assert_all_allowed("RevokeTokensFunction", disable)
    assert not allowed("RevokeTokensFunction", "put_item", {"Item": serialize(token_key(TOKEN_ID))})


def rotation_calls() -> RecordingClient:
    """What a rotation asks of DynamoDB: the policy, the owner's active set (and which of its
    tokens are live), the new token, the old token's link and shortened life."""
    client = RecordingClient()
    repository = TokenRepository("tokens", client)  # type: ignore[arg-type]
    old = token_record({**token_item_fixture(), "token_id": TOKEN_ID})
    repository.get_token(TOKEN_ID)
    repository.get_policy("org-acme")
    repository.get_active_set("org-acme", "alice")
    repository.revoked_or_missing([TOKEN_ID])
    repository.reserve_slot("org-acme", "alice", ActiveSet(), 0)
    repository.put_new_token(replace(old, token_id="4hZ8qLr0Vx2mN5pK", rotated_from=TOKEN_ID))
    repository.mark_rotated(old, "4hZ8qLr0Vx2mN5pK", 1_800_003_600, (EXPIRED, 1_800_003_600), 1_802_595_600)
    repository.revoke_quietly("4hZ8qLr0Vx2mN5pK", "org-acme", None, 1_800_000_000, "rotation:superseded", 1)
    return client


@pytest.mark.parametrize("logical_id", ["CreateTokenFunction", "TokenSelfFunction"])
def test_rotation_mints_a_token_and_links_the_old_one(logical_id: str) -> None:
    assert_all_allowed(logical_id, rotation_calls())
    assert allowed("ListTokensFunction", "get_item", {"Key": serialize(token_key(TOKEN_ID))})
    assert not allowed("ListTokensFunction", "get_item", {"Key": serialize(policy_key("org-acme"))})


def test_settings_reach_organisation_policy_items_only() -> None:
    client = RecordingClient()
    repository = TokenRepository("tokens", client)  # type: ignore[arg-type]
    repository.get_policy("org-acme")
    repository.put_policy("org-acme", OrgPolicy(90, 30, 10, updated_at=1_800_000_000, updated_by="alice"))
    assert_all_allowed("SettingsFunction", client)
    # What the leading-key conditions keep out: tokens, users' active sets, the watermark.
    for key in (token_key(TOKEN_ID), active_set_key("org-acme", "alice"), {"pk": "LIFECYCLE", "sk": "WATERMARK"}):
        assert not allowed("SettingsFunction", "put_item", {"Item": serialize(key)})
        assert not allowed("SettingsFunction", "get_item", {"Key": serialize(key)})
    # What they cannot keep out (IAM sees no sort key, nor the caller's organisation).
    assert allowed("SettingsFunction", "update_item", {"Key": serialize({"pk": "ORG#org-other", "sk": "POLICY"})})
    assert allowed("SettingsFunction", "update_item", {"Key": serialize({"pk": "ORG#org-acme", "sk": "OTHER"})})


def membership_calls(*, read_registry: bool) -> RecordingClient:
    """What applying a membership change asks of DynamoDB: the registry (read whole by the
    membership function only), the user's tokens, their revocation or narrower scopes."""
    client = RecordingClient()
    repository = TokenRepository("tokens", client)  # type: ignore[arg-type]
    if read_registry:
        list(repository.members())
    repository.remember_member(Member("org-acme", "alice", "viewer"), replace=True)
    repository.forget_member("org-acme", "alice")
    repository.list_tokens(Listing("org-acme", "alice"), 100, None, None, 1_800_000_000)
    repository.revoke_quietly(TOKEN_ID, "org-acme", None, 1_800_000_000, "membership:left", 1_802_592_000)
    repository.set_scopes(TOKEN_ID, "org-acme", ("reports:read",))
    return client


def test_membership_changes_reach_tokens_through_the_registry_and_the_owner_index() -> None:
    assert_all_allowed("MembershipFunction", membership_calls(read_registry=True))
    assert_all_allowed("RevokeTokensFunction", membership_calls(read_registry=False))  # PUT /members/{user_id}
    assert not allowed("MembershipFunction", "query", {"IndexName": "ByOrg"})
    assert not allowed("MembershipFunction", "put_item", {"Item": serialize(token_key(TOKEN_ID))})
    assert not allowed("MembershipFunction", "query", {"Key": serialize({"pk": "UNUSED_POLICY"})})


def test_settings_copy_the_unused_token_policy_onto_tokens_and_nothing_else() -> None:
    client = RecordingClient()
    repository = TokenRepository("tokens", client)  # type: ignore[arg-type]
    repository.register_unused_policy("org-acme", 90)
    repository.register_unused_policy("org-acme", None)
    list(repository.live_token_ids(Listing("org-acme", None), 1_800_000_000))
    repository.stamp_unused_policy(TOKEN_ID, 90)
    repository.stamp_unused_policy(TOKEN_ID, None)
    assert_all_allowed("SettingsFunction", client)
    revoke = {
        "Key": serialize(token_key(TOKEN_ID)),
        "UpdateExpression": "SET revoked_at = :at",
        "ConditionExpression": "attribute_exists(pk)",
    }
    assert not allowed("SettingsFunction", "update_item", revoke)
    assert not allowed("SettingsFunction", "delete_item", {"Key": serialize(token_key(TOKEN_ID))})
    assert not allowed("SettingsFunction", "query", {"IndexName": "ByOwner"})


def test_the_cleanup_moves_tokens_and_keeps_its_watermark() -> None:
    client = RecordingClient()
    store = LifecycleStore("tokens", client)  # type: ignore[arg-type]
    store.get_watermark()
    item = DueItem(TOKEN_ID, "org-acme", "alice", "ci", 1_800_000_000, 1_802_592_000, EXPIRED, 1_800_000_000, False)
    store.move(item, (PURGE, 1_802_592_000), 1_800_000_001, mark_expired=True)
    store.restore(item, (PURGE, 1_802_592_000), unmark_expired=True)
    store.purge(item, 1_802_592_001)
    store.advance_watermark(date(2027, 1, 1))
    store.due_items(date(2027, 1, 1), 1_800_000_000, None)
    tokens = TokenRepository("tokens", client)  # type: ignore[arg-type]
    tokens.unused_policies()
    tokens.get_policy("org-acme")
    tokens.register_unused_policy("org-acme", None)
    tokens.live_tokens_page("org-acme", 1_800_000_000, None)
    tokens.stamp_unused_policy(TOKEN_ID, 90)
    tokens.revoke_unused(TOKEN_ID, "org-acme", 1_790_000_000, 1_800_000_000, 1_802_592_000)
    assert_all_allowed("CleanupFunction", client)
    assert not allowed("CleanupFunction", "put_item", {"Item": serialize(token_key(TOKEN_ID))})
    assert not allowed("CleanupFunction", "query", {"IndexName": "ByOwner"})
    assert not allowed("CleanupFunction", "query", {"Key": serialize({"pk": "ORG#org-acme"})})


# -- the policies ------------------------------------------------------------------------------


def dynamodb_grants(logical_id: str) -> set[tuple[str, str]]:
    return {
        (action, resource_name(resource))
        for statement in statements(logical_id)
        for action in as_list(statement["Action"])
        if action.startswith("dynamodb:")
        for resource in as_list(statement["Resource"])
    }


def test_no_function_may_query_the_table_itself_or_every_index() -> None:
    functions = [
        logical_id
        for logical_id, resource in load_template()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    for logical_id in functions:
        queried = {resource for action, resource in dynamodb_grants(logical_id) if action == "dynamodb:Query"}
        assert "index/*" not in queried, logical_id
        # On the table itself: only one partition that holds no token: the cleanup's list of
        # unused-token policies, the membership function's registry of token owners.
        table_queries = [
            statement
            for statement in statements(logical_id)
            if "dynamodb:Query" in as_list(statement["Action"])
            and "table" in {resource_name(item) for item in as_list(statement["Resource"])}
        ]
        # And the audit function's: the organisations' audit chains.
        partitions = {
            "CleanupFunction": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["UNUSED_POLICY"]}},
            "MembershipFunction": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["MEMBERS"]}},
            "AuditFunction": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["AUDIT#*"]}},
        }
        for statement in table_queries:
            assert logical_id in partitions
            assert statement["Condition"] == partitions[logical_id]
    assert {r for a, r in dynamodb_grants("ListTokensFunction") if a == "dynamodb:Query"} == {
        "index/ByOwner",
        "index/ByOrg",
    }
    assert {r for a, r in dynamodb_grants("RevokeTokensFunction") if a == "dynamodb:Query"} == {
        "index/ByOwner",
        "index/ByOrg",
        "index/ByAuditOutbox",  # audit entries left unchained (AuditChainPolicy)
    }


def test_the_authorizer_update_is_limited_to_the_last_use_attributes_and_key() -> None:
    (update,) = [s for s in statements("AuthorizerFunction") if "dynamodb:UpdateItem" in as_list(s["Action"])]
    assert as_list(update["Action"]) == ["dynamodb:UpdateItem"]
    condition = update["Condition"]
    key_attributes = {key["AttributeName"] for key in load_template()["Resources"][TABLE]["Properties"]["KeySchema"]}
    assert set(condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]) == {
        *key_attributes,
        "last_used_at",
        "last_used_ip",
    }
    assert as_list(condition["StringEquals"]["dynamodb:ReturnValues"]) == ["NONE"]


class OutboxClient(RecordingClient):
    """As RecordingClient, with one audit entry waiting in the outbox of every token and policy
    item, so an append goes all the way: head, record, the entry's removal."""

    def __init__(self, entry: AuditEntry) -> None:
        super().__init__()
        self.entry = entry

    def __getattr__(self, operation: str) -> Any:
        recorded = super().__getattr__(operation)
        if operation not in ("get_item", "batch_get_item"):
            return recorded

        def outbox(key: dict[str, Any]) -> dict[str, Any]:
            return {**key, "audit_outbox": {"L": [{"S": self.entry.to_json()}]}}

        def get_item(**params: Any) -> dict[str, Any]:
            recorded(**params)
            if params["Key"]["pk"]["S"].startswith("AUDIT#"):
                return {}
            return {"Item": outbox(params["Key"])}

        def batch_get_item(**params: Any) -> dict[str, Any]:
            recorded(**params)
            (table, request), *_ = params["RequestItems"].items()
            return {"Responses": {table: [outbox(key) for key in request["Keys"]]}}

        return get_item if operation == "get_item" else batch_get_item


def audit_calls(subject: str, *, read: bool) -> RecordingClient:
    """What appending a change's audit entry asks of DynamoDB, alone and in a bulk change (and,
    `read`, GET /audit's reads)."""
    entry = AuditEntry("org-acme", AuditAction.REVOKED, "alice", subject, (TOKEN_ID,), 1_800_000_000)
    client = OutboxClient(entry)
    audit = AuditLog("tokens", client, retention_days=400)  # type: ignore[arg-type]
    audit.append([entry])
    audit.drain("org-acme")
    if subject != "policy":  # a bulk revoke: an entry on each of 30 tokens
        bulk = [
            replace(entry, subject=f"{TOKEN_ID[:-2]}{index:02d}", token_ids=(f"{TOKEN_ID[:-2]}{index:02d}",))
            for index in range(30)
        ]
        audit.append(bulk)
    if read:
        audit.records(AuditQuery("org-acme", token_id=TOKEN_ID, since=1))
        list(audit.stored_records("org-acme"))
    return client


@pytest.mark.parametrize(
    "logical_id",
    [
        "CreateTokenFunction",
        "RevokeTokensFunction",
        "SettingsFunction",
        "TokenSelfFunction",
        "MembershipFunction",
        "CleanupFunction",
        "AuditFunction",
        "SecretScanningFunction",
    ],
)
def test_every_function_that_changes_tokens_may_chain_its_audit_entries(logical_id: str) -> None:
    calls = audit_calls(TOKEN_ID, read=logical_id == "AuditFunction")
    assert {operation for operation, _ in calls.calls} >= {
        "get_item",
        "update_item",
        "put_item",
        "query",
        "batch_get_item",
        "batch_write_item",
    }
    assert_all_allowed(logical_id, calls)
    assert_all_allowed(logical_id, audit_calls("policy", read=False))
    # The outbox grant reads and writes nothing else of a token: not its hash, not its state.
    if logical_id in ("SettingsFunction", "CleanupFunction", "AuditFunction"):
        assert not allowed(logical_id, "get_item", {"Key": serialize(token_key(TOKEN_ID))})
    if logical_id in ("SettingsFunction", "AuditFunction"):
        revoke = {"Key": serialize(token_key(TOKEN_ID)), "UpdateExpression": "SET revoked_at = :at"}
        assert not allowed(logical_id, "update_item", revoke)
    users_set = {"Key": serialize(active_set_key("org-acme", "alice")), "ProjectionExpression": "audit_outbox"}
    assert not allowed("AuditFunction", "get_item", users_set)
    # Nor does a batch: an active set among the outboxes read, or a token among the records written.
    if logical_id in ("SettingsFunction", "CleanupFunction", "AuditFunction"):
        outboxes = [serialize(token_key(TOKEN_ID)), users_set["Key"]]
        projection = "pk, sk, audit_outbox"
        batch_read = {"tokens": {"Keys": outboxes, "ConsistentRead": True, "ProjectionExpression": projection}}
        assert not allowed(logical_id, "batch_get_item", {"RequestItems": batch_read})
    token_write = [{"PutRequest": {"Item": serialize({**token_key(TOKEN_ID), "revoked_at": 1})}}]
    assert not allowed(logical_id, "batch_write_item", {"RequestItems": {"tokens": token_write}})


def test_the_cleanup_drains_every_organisations_outbox() -> None:
    client = RecordingClient()
    AuditLog("tokens", client, retention_days=400).drain_all()  # type: ignore[arg-type]
    assert [operation for operation, _ in client.calls] == ["scan"]
    assert_all_allowed("CleanupFunction", client)
    assert not allowed("AuditFunction", "scan", {"IndexName": "ByAuditOutbox"})
