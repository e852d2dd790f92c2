"""How the domain's records are laid out in the one DynamoDB table (see template.yaml).

| item          | pk                        | sk              | index keys                                   |
|---------------|---------------------------|-----------------|----------------------------------------------|
| token         | TOKEN#<token_id>          | TOKEN           | ByOwner: ORG#<org>#USER#<owner> / <created>  |
|               |                           |                 | ByOrg:   ORG#<org> / <created>               |
|               |                           |                 | ByExpiry: DUE#<day> / <due>#<token_id>       |
| active set    | ORG#<org>#USER#<owner>    | ACTIVE_TOKENS   | (none)                                       |
| org policy    | ORG#<org>                 | POLICY          | (none)                                       |
| watermark     | LIFECYCLE                 | WATERMARK       | (none)                                       |
| unused policy | UNUSED_POLICY             | ORG#<org>       | (none)                                       |
| token owner   | MEMBERS                   | <org>#<user>    | (none)                                       |

The token's base key is its id alone because the authorizer knows nothing else before it
has read the item; every other key, and every index key but the expiry day, starts with
the organisation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from token_service.domain.records import ActiveSet, OrgPolicy, Slot, TokenGrant, TokenRecord

TOKEN_SORT_KEY = "TOKEN"  # noqa: S105 (a key name, not a secret)
ACTIVE_SET_SORT_KEY = "ACTIVE_TOKENS"
POLICY_SORT_KEY = "POLICY"
WATERMARK_KEY = {"pk": "LIFECYCLE", "sk": "WATERMARK"}
# One item per organisation whose policy revokes unused tokens: the cleanup's list of them.
UNUSED_POLICY_PARTITION = "UNUSED_POLICY"
# One item per token owner and organisation, with the role last applied to their tokens.
MEMBERS_PARTITION = "MEMBERS"
BUCKET_PREFIX = "DUE#"


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    partition_attribute: str
    sort_attribute: str


OWNER_INDEX = Index("ByOwner", "gsi1pk", "gsi1sk")
ORG_INDEX = Index("ByOrg", "gsi2pk", "gsi2sk")
EXPIRY_INDEX = Index("ByExpiry", "gsi3pk", "gsi3sk")

# Filters of a token listing by status (TokenRecord.status); `:now` is the time of the listing.
STATUS_FILTERS = {
    "active": "attribute_not_exists(revoked_at) AND expires_at > :now AND attribute_not_exists(disabled_at)",
    "disabled": "attribute_not_exists(revoked_at) AND expires_at > :now AND attribute_exists(disabled_at)",
    "expired": "attribute_not_exists(revoked_at) AND expires_at <= :now",
    "revoked": "attribute_exists(revoked_at)",
}
# Neither revoked nor expired: what a bulk revoke or a policy change acts on (disabled included).
LIVE_FILTER = "attribute_not_exists(revoked_at) AND expires_at > :now"


def token_key(token_id: str) -> dict[str, str]:
    return {"pk": f"TOKEN#{token_id}", "sk": TOKEN_SORT_KEY}


def owner_partition(org_id: str, owner_id: str) -> str:
    return f"ORG#{org_id}#USER#{owner_id}"


def org_partition(org_id: str) -> str:
    return f"ORG#{org_id}"


def active_set_key(org_id: str, owner_id: str) -> dict[str, str]:
    return {"pk": owner_partition(org_id, owner_id), "sk": ACTIVE_SET_SORT_KEY}


def policy_key(org_id: str) -> dict[str, str]:
    return {"pk": org_partition(org_id), "sk": POLICY_SORT_KEY}


def unused_policy_key(org_id: str) -> dict[str, str]:
    return {"pk": UNUSED_POLICY_PARTITION, "sk": org_partition(org_id)}


def member_key(org_id: str, user_id: str) -> dict[str, str]:
    return {"pk": MEMBERS_PARTITION, "sk": f"{org_id}#{user_id}"}


def bucket_of(epoch: int) -> str:
    return BUCKET_PREFIX + datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def lifecycle_keys(stage: str, due: int, token_id: str) -> dict[str, str | int]:
    """The attributes that place a token under its next lifecycle stage in the expiry index."""
    return {"lifecycle_stage": stage, "gsi3pk": bucket_of(due), "gsi3sk": f"{due:011d}#{token_id}"}


def creation_sort_key(record: TokenRecord) -> str:
    """Orders a user's and an organisation's tokens by creation, newest first when read backwards."""
    return f"{record.created_at_us:017d}#{record.token_id}"


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | Decimal) else int(str(value))


def _optional_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def token_item(record: TokenRecord) -> dict[str, Any]:
    item = {key: value for key, value in asdict(record).items() if value is not None}
    item["scopes"] = list(record.scopes)
    if record.allowed_cidrs:
        item["allowed_cidrs"] = list(record.allowed_cidrs)
    else:
        del item["allowed_cidrs"]  # no allowlist: no attribute (any address)
    if record.lifecycle_stage is not None and record.lifecycle_due is not None:
        item.update(lifecycle_keys(record.lifecycle_stage, record.lifecycle_due, record.token_id))
    sort_key = creation_sort_key(record)
    return {
        **token_key(record.token_id),
        OWNER_INDEX.partition_attribute: owner_partition(record.org_id, record.owner_id),
        OWNER_INDEX.sort_attribute: sort_key,
        ORG_INDEX.partition_attribute: org_partition(record.org_id),
        ORG_INDEX.sort_attribute: sort_key,
        **item,
    }


def token_record(item: dict[str, Any]) -> TokenRecord:
    return TokenRecord(
        token_id=str(item["token_id"]),
        org_id=str(item["org_id"]),
        owner_id=str(item["owner_id"]),
        name=str(item["name"]),
        scopes=tuple(str(scope) for scope in item.get("scopes", [])),
        created_at=_int(item["created_at"]),
        created_at_us=_int(item["created_at_us"]),
        created_by=str(item["created_by"]),
        expires_at=_int(item["expires_at"]),
        secret_hash=str(item["secret_hash"]),
        hash_version=_int(item["hash_version"]),
        display_hint=str(item["display_hint"]),
        ttl=_int(item["ttl"]),
        revoked_at=_optional_int(item.get("revoked_at")),
        revoked_by=item.get("revoked_by"),
        last_used_at=_optional_int(item.get("last_used_at")),
        last_used_ip=item.get("last_used_ip"),
        expired_marked_at=_optional_int(item.get("expired_marked_at")),
        lifecycle_stage=item.get("lifecycle_stage"),
        lifecycle_due=_optional_int(item.get("lifecycle_due")),
        disabled_at=_optional_int(item.get("disabled_at")),
        disabled_by=item.get("disabled_by"),
        rotated_from=item.get("rotated_from"),
        rotated_to=item.get("rotated_to"),
        unused_after_days=_optional_int(item.get("unused_after_days")),
        allowed_cidrs=tuple(str(cidr) for cidr in item.get("allowed_cidrs") or ()),
    )


GRANT_ATTRIBUTES = (
    "token_id",
    "org_id",
    "owner_id",
    "scopes",
    "expires_at",
    "secret_hash",
    "hash_version",
    "created_at",
    "revoked_at",
    "disabled_at",
    "last_used_at",
    "unused_after_days",
    "allowed_cidrs",
)
GRANT_PROJECTION = ", ".join(GRANT_ATTRIBUTES)  # none is a DynamoDB reserved word


def token_grant(item: dict[str, Any]) -> TokenGrant:
    """The authorizer's view of a token item read with GRANT_PROJECTION (raw attribute values:
    decoded here directly, as this runs on every request)."""
    return TokenGrant(
        token_id=item["token_id"]["S"],
        org_id=item["org_id"]["S"],
        owner_id=item["owner_id"]["S"],
        scopes=tuple(scope["S"] for scope in item.get("scopes", {}).get("L", ())),
        expires_at=int(item["expires_at"]["N"]),
        secret_hash=item["secret_hash"]["S"],
        hash_version=int(item["hash_version"]["N"]),
        created_at=int(item["created_at"]["N"]),
        revoked_at=_optional_number(item.get("revoked_at")),
        disabled_at=_optional_number(item.get("disabled_at")),
        last_used_at=_optional_number(item.get("last_used_at")),
        unused_after_days=_optional_number(item.get("unused_after_days")),
        allowed_cidrs=tuple(cidr["S"] for cidr in item.get("allowed_cidrs", {}).get("L", ())),
    )


def _optional_number(value: dict[str, str] | None) -> int | None:
    return int(value["N"]) if value and "N" in value else None


def active_set_attribute(active: ActiveSet) -> dict[str, dict[str, int]]:
    return {
        token_id: {"expires_at": slot.expires_at, "reserved_at": slot.reserved_at}
        for token_id, slot in active.tokens.items()
    }


def active_set(item: dict[str, Any] | None) -> ActiveSet:
    if not item:
        return ActiveSet()
    tokens = {
        str(token_id): Slot(expires_at=_int(slot["expires_at"]), reserved_at=_int(slot["reserved_at"]))
        for token_id, slot in item.get("tokens", {}).items()
    }
    return ActiveSet(tokens=tokens, version=_int(item.get("version", 0)))


def policy_item(org_id: str, policy: OrgPolicy) -> dict[str, Any]:
    fields = {key: value for key, value in asdict(policy).items() if value is not None}
    return {**policy_key(org_id), **fields}


def org_policy(item: dict[str, Any] | None) -> OrgPolicy:
    if not item:
        return OrgPolicy()
    return OrgPolicy(
        max_lifetime_days=_int(item["max_lifetime_days"]),
        default_lifetime_days=_int(item["default_lifetime_days"]),
        max_active_tokens_per_user=_int(item["max_active_tokens_per_user"]),
        revoke_unused_after_days=_optional_int(item.get("revoke_unused_after_days")),
        updated_at=_optional_int(item.get("updated_at")),
        updated_by=item.get("updated_by"),
    )
