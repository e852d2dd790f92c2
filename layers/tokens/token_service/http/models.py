"""Request and response models of the management API (pydantic v2).

These models are what crosses HTTP; each request model turns into the domain's command
(token_service.domain.commands), and each view is built from a domain record.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, time
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from token_service.domain.clock import to_iso
from token_service.domain.commands import (
    BulkSelection,
    Expiry,
    NewToken,
    PolicyChange,
    RevokeResult,
    RotatedToken,
    Rotation,
)
from token_service.domain.records import OrgPolicy, TokenRecord

NAME_MAX_LENGTH = 100
MAX_SCOPES_PER_TOKEN = 50
MAX_IDS_PER_BULK_REVOKE = 100
MAX_LIFETIME_DAYS_LIMIT = 3650
MAX_PAGE_SIZE = 100
MAX_ACTIVE_TOKENS_LIMIT = 1000
MAX_SCOPE_ENTRIES = 100  # raw list length, duplicates included
# Control, surrogate, line/paragraph separator and format characters (bidi overrides,
# zero-width spaces): a name must read as what it is, in the console and in logs.
_FORBIDDEN_CHARACTER_CATEGORIES = {"Cc", "Cs", "Zl", "Zp", "Cf"}

# Letters and symbols that render as nothing (Hangul fillers, the blank Braille pattern).
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800")

TokenStatus = Literal["active", "disabled", "expired", "revoked"]
# The overlap a rotation leaves the old token, as ISO-8601 durations (Stripe and Unkey offer
# a choice of a few; GitLab none): PT0S stops it at once.
GRACE_PERIODS = {"PT0S": 0, "PT1H": 3600, "P1D": 86_400, "P7D": 7 * 86_400, "P30D": 30 * 86_400}
UNUSED_DAYS_RANGE = (30, 365)


def clean_name(value: str) -> str:
    name = value.strip()
    if not name:
        raise ValueError("must not be empty")
    if len(name) > NAME_MAX_LENGTH:
        raise ValueError(f"must be at most {NAME_MAX_LENGTH} characters")
    if any(unicodedata.category(character) in _FORBIDDEN_CHARACTER_CATEGORIES for character in name):
        raise ValueError("must not contain control, format or invisible characters, nor line breaks")
    if all(character.isspace() or character in _BLANK_LOOKING for character in name):
        raise ValueError("must contain a visible character")
    return name


def parse_expiry(value: str) -> Expiry:
    text = value.strip()
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError("must be an ISO-8601 date (YYYY-MM-DD) or date-time") from None
        end_of_day = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
        return Expiry(at=end_of_day, is_date=True)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an ISO-8601 date (YYYY-MM-DD) or date-time") from None
    if instant.tzinfo is None:
        raise ValueError("a date-time must include its UTC offset, e.g. 2027-01-31T12:00:00Z")
    try:
        return Expiry(at=instant.astimezone(UTC), is_date=False)
    except OverflowError:
        raise ValueError("is out of range") from None


class ApiModel(BaseModel):
    # Built on first use, not at import: each function uses a few of these models, and
    # building all of them cost a cold start ~15 ms (docs/performance.md, figure 3).
    model_config = ConfigDict(defer_build=True)


class StrictModel(ApiModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- requests -----------------------------------------------------------------------------


class TokenListQuery(ApiModel):
    """GET /tokens' query string; parameters it does not know are ignored."""

    limit: int = Field(20, ge=1, description=f"Page size; values above {MAX_PAGE_SIZE} are capped.")
    next: str | None = Field(None, max_length=1024, description="Cursor from the previous page.")
    status: TokenStatus | None = None
    owner_id: str | None = Field(None, max_length=128, description="Another user's tokens (admins).")
    all_users: bool = Field(False, description="The whole organisation's tokens (admins).")

    @model_validator(mode="after")
    def _one_listing(self) -> TokenListQuery:
        if self.all_users and self.owner_id is not None:
            raise ValueError("owner_id: cannot be combined with all_users")
        return self


class TokenIdPath(ApiModel):
    token_id: str = Field(max_length=64)


class CreateTokenRequest(StrictModel):
    name: Annotated[str, Field(max_length=1000), AfterValidator(clean_name)] = Field(
        description="A label for the token, 1-100 characters.", examples=["CI upload token"]
    )
    expires_at: ExpiresAt | None = Field(
        default=None,
        description=(
            "ISO-8601 date (valid through that day, UTC) or date-time with offset. "
            "Defaults to the organisation's default lifetime."
        ),
        examples=["2027-06-30"],
    )
    scopes: Annotated[list[Annotated[str, Field(max_length=64)]], Field(min_length=1, max_length=MAX_SCOPE_ENTRIES)] = (
        Field(description="Scopes from GET /scopes.", examples=[["import:builds", "import:tests"]])
    )

    def command(self) -> NewToken:
        expiry: Expiry | None = self.expires_at  # type: ignore[assignment]  # AfterValidator made it an Expiry
        return NewToken(name=self.name, scopes=tuple(sorted(set(self.scopes))), expiry=expiry)

    @field_validator("scopes")
    @classmethod
    def _scope_count(cls, scopes: list[str]) -> list[str]:
        if len(set(scopes)) > MAX_SCOPES_PER_TOKEN:
            raise ValueError(f"at most {MAX_SCOPES_PER_TOKEN} scopes per token")
        return scopes


ExpiresAt = Annotated[str, Field(max_length=64), AfterValidator(parse_expiry)]


class RotateTokenRequest(StrictModel):
    grace: Literal["PT0S", "PT1H", "P1D", "P7D", "P30D"] = Field(
        description="How long the old token keeps working (never past its own expiry): none, 1 hour, 1, 7 or 30 days.",
        examples=["P1D"],
    )
    expires_at: ExpiresAt | None = Field(
        default=None,
        description="The new token's expiry, as in POST /tokens. Defaults to the organisation's default lifetime.",
    )

    def rotation(self) -> Rotation:
        expiry: Expiry | None = self.expires_at  # type: ignore[assignment]  # AfterValidator made it an Expiry
        return Rotation(grace_seconds=GRACE_PERIODS[self.grace], expiry=expiry)


class TokenUpdate(StrictModel):
    enabled: StrictBool = Field(description="false: the token is refused until enabled again; true: enable it.")


class UserIdPath(ApiModel):
    user_id: str = Field(max_length=128)


class MembershipUpdate(StrictModel):
    role: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        description="The user's role now (their tokens keep only the scopes it may grant); null: they left."
    )


class BulkRevokeRequest(StrictModel):
    """Exactly one selector: a list of ids, one user's tokens, or the whole organisation's."""

    # Ids are 16 characters: a longer string (a pasted secret, say) is refused, never echoed.
    token_ids: Annotated[list[Annotated[str, Field(max_length=16)]], Field(min_length=1, max_length=1000)] | None = (
        Field(default=None, description=f"Up to {MAX_IDS_PER_BULK_REVOKE} token ids.")
    )
    owner_id: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None, description="Revoke every active token of this user (yourself unless you are an admin)."
    )
    organisation: StrictBool | None = Field(
        default=None, description="true: revoke every active token of the organisation (admins)."
    )

    @model_validator(mode="after")
    def _one_selector(self) -> BulkRevokeRequest:
        chosen = [
            name for name, value in (("token_ids", self.token_ids), ("owner_id", self.owner_id)) if value is not None
        ]
        if self.organisation:
            chosen.append("organisation")
        if len(chosen) != 1:
            raise ValueError("body: give exactly one of token_ids, owner_id or organisation: true")
        return self

    @field_validator("token_ids")
    @classmethod
    def _id_count(cls, token_ids: list[str] | None) -> list[str] | None:
        if token_ids is not None and len(set(token_ids)) > MAX_IDS_PER_BULK_REVOKE:
            raise ValueError(f"at most {MAX_IDS_PER_BULK_REVOKE} ids per call")
        return token_ids

    def selection(self) -> BulkSelection:
        token_ids = tuple(self.token_ids) if self.token_ids is not None else None
        return BulkSelection(token_ids=token_ids, owner_id=self.owner_id, organisation=bool(self.organisation))


class PolicyUpdate(StrictModel):
    max_lifetime_days: StrictInt = Field(ge=1, le=MAX_LIFETIME_DAYS_LIMIT)
    default_lifetime_days: StrictInt = Field(ge=1, le=MAX_LIFETIME_DAYS_LIMIT)
    max_active_tokens_per_user: StrictInt = Field(ge=1, le=MAX_ACTIVE_TOKENS_LIMIT)
    revoke_unused_after_days: StrictInt | None = Field(
        default=None,
        ge=UNUSED_DAYS_RANGE[0],
        le=UNUSED_DAYS_RANGE[1],
        description="Refuse, then revoke, tokens unused (or never used) for this many days, 30-365; null: never.",
    )

    @model_validator(mode="after")
    def _default_within_max(self) -> PolicyUpdate:
        if self.default_lifetime_days > self.max_lifetime_days:
            raise ValueError("default_lifetime_days: must not exceed max_lifetime_days")
        return self

    def change(self) -> PolicyChange:
        return PolicyChange(
            max_lifetime_days=self.max_lifetime_days,
            default_lifetime_days=self.default_lifetime_days,
            max_active_tokens_per_user=self.max_active_tokens_per_user,
            revoke_unused_after_days=self.revoke_unused_after_days,
        )


# -- responses ----------------------------------------------------------------------------


class TokenView(ApiModel):
    token_id: str
    name: str
    owner_id: str
    scopes: list[str]
    status: TokenStatus
    created_at: str
    created_by: str
    expires_at: str
    revoked_at: str | None = None
    revoked_by: str | None = None
    last_used_at: str | None = None
    last_used_ip: str | None = None
    disabled_at: str | None = None
    disabled_by: str | None = None
    rotated_from: str | None = Field(default=None, description="The token this one replaced.")
    rotated_to: str | None = Field(default=None, description="The token that replaced this one.")
    display_hint: str = Field(description="Prefix and last four characters, to recognise the token.")

    @classmethod
    def from_record(cls, record: TokenRecord, now: float) -> TokenView:
        return cls(
            token_id=record.token_id,
            name=record.name,
            owner_id=record.owner_id,
            scopes=list(record.scopes),
            status=record.status(now),
            created_at=to_iso(record.created_at),
            created_by=record.created_by,
            expires_at=to_iso(record.expires_at),
            revoked_at=to_iso(record.revoked_at) if record.revoked_at is not None else None,
            revoked_by=record.revoked_by,
            last_used_at=to_iso(record.last_used_at) if record.last_used_at is not None else None,
            last_used_ip=record.last_used_ip,
            disabled_at=to_iso(record.disabled_at) if record.disabled_at is not None else None,
            disabled_by=record.disabled_by,
            rotated_from=record.rotated_from,
            rotated_to=record.rotated_to,
            display_hint=record.display_hint,
        )


class PresentedTokenView(TokenView):
    """GET /v1/token: the calling token's own metadata."""

    org_id: str


class CreatedTokenView(TokenView):
    token: str = Field(description="The secret. Shown in this response only; store it safely now.")
    warning: str = "Copy this token now. For security reasons it cannot be shown again."


class RotatedTokenView(CreatedTokenView):
    """The new token (its secret shown this once) and what became of the one it replaces."""

    replaced: TokenView

    @classmethod
    def from_rotation(cls, rotated: RotatedToken, now: float) -> RotatedTokenView:
        view = TokenView.from_record(rotated.created.record, now)
        return cls(
            **view.model_dump(),
            token=rotated.created.secret,
            replaced=TokenView.from_record(rotated.replaced, now),
        )


class TokenPageView(ApiModel):
    items: list[TokenView]
    next: str | None = Field(default=None, description="Pass as ?next= to get the following page.")


class RevokeResultView(ApiModel):
    token_id: str
    result: RevokeResult


class BulkRevokeView(ApiModel):
    results: list[RevokeResultView]
    revoked: int
    already_revoked: int
    not_found: int


class MembershipView(ApiModel):
    user_id: str
    role: str | None
    revoked: int = Field(description="Tokens revoked: none of their scopes is left, or the user left.")
    trimmed: int = Field(description="Tokens that kept only the scopes the role may grant.")


class ScopeView(ApiModel):
    name: str
    description: str


class ScopesView(ApiModel):
    role: str
    scopes: list[ScopeView]


class PolicyView(ApiModel):
    max_lifetime_days: int
    default_lifetime_days: int
    max_active_tokens_per_user: int
    revoke_unused_after_days: int | None = None
    updated_at: str | None = None
    updated_by: str | None = None

    @classmethod
    def from_policy(cls, policy: OrgPolicy) -> PolicyView:
        return cls(
            max_lifetime_days=policy.max_lifetime_days,
            default_lifetime_days=policy.default_lifetime_days,
            max_active_tokens_per_user=policy.max_active_tokens_per_user,
            revoke_unused_after_days=policy.revoke_unused_after_days,
            updated_at=to_iso(policy.updated_at) if policy.updated_at is not None else None,
            updated_by=policy.updated_by,
        )
