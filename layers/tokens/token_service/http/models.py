"""Request and response models of the management API (pydantic v2).

These models are what crosses HTTP; each request model turns into the domain's command
(token_service.domain.commands), and each view is built from a domain record.
"""

from __future__ import annotations

import ipaddress
import re
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
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
from token_service.domain.identity import IDENTIFIER_PATTERN, is_valid_identifier
from token_service.domain.records import OrgPolicy, TokenRecord
from token_service.http.pagination import INVALID_CURSOR, MAX_CURSOR_LENGTH
from token_service.http.rest import CATALOG_KEYWORD

if TYPE_CHECKING:  # pydantic.json_schema is the OpenAPI document's import, not a function's (cold starts)
    from pydantic import GetJsonSchemaHandler
    from pydantic.json_schema import JsonSchemaValue

NAME_MAX_LENGTH = 100
MAX_SCOPES_PER_TOKEN = 50
MAX_IDS_PER_BULK_REVOKE = 100
MAX_LIFETIME_DAYS_LIMIT = 3650
MAX_PAGE_SIZE = 100
MAX_ACTIVE_TOKENS_LIMIT = 1000
MAX_ALLOWED_CIDRS = 20
CIDR_MAX_LENGTH = 64
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


# RFC 3339's full-date and date-time (JSON Schema's "date" and "date-time" formats), ASCII digits only.
_DATE = r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_OFFSET = r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
DATE_PATTERN = f"^{_DATE}$"
DATE_TIME_PATTERN = f"^{_DATE}[Tt]{_TIME}{_OFFSET}$"
_INVALID_EXPIRY = "must be an ISO-8601 (RFC 3339) date, YYYY-MM-DD, or date-time with its UTC offset"

# An IPv4 or IPv6 address, alone or with a prefix length: RFC 3986's grammar (IPv4 without
# leading zeros, as Python's ipaddress requires; no IPv6 zone), ASCII only, no look-around (the
# Rust regex engine of schema validators has none). Every string it matches is a network.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(\.{_OCTET}){{3}}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"({_H16}:{_H16}|{_IPV4})"
_IPV6 = (
    "("
    + "|".join(
        [
            rf"({_H16}:){{6}}{_LS32}",
            rf"::({_H16}:){{5}}{_LS32}",
            rf"({_H16})?::({_H16}:){{4}}{_LS32}",
            rf"(({_H16}:){{0,1}}{_H16})?::({_H16}:){{3}}{_LS32}",
            rf"(({_H16}:){{0,2}}{_H16})?::({_H16}:){{2}}{_LS32}",
            rf"(({_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
            rf"(({_H16}:){{0,4}}{_H16})?::{_LS32}",
            rf"(({_H16}:){{0,5}}{_H16})?::{_H16}",
            rf"(({_H16}:){{0,6}}{_H16})?::",
        ]
    )
    + ")"
)
_IPV4_PREFIX = r"(3[0-2]|[12]?[0-9])"
_IPV6_PREFIX = r"(12[0-8]|1[01][0-9]|[1-9]?[0-9])"
CIDR_PATTERN = f"^({_IPV4}(/{_IPV4_PREFIX})?|{_IPV6}(/{_IPV6_PREFIX})?)$"
_INVALID_CIDR = "is not an IPv4 or IPv6 address or network, such as 203.0.113.0/24, 203.0.113.7 or 2001:db8::/48"


@dataclass(frozen=True, slots=True)
class Documented:
    """JSON Schema keywords for a rule that a validator enforces and no pydantic constraint
    expresses. `keywords` runs when a schema is built (the OpenAPI document), never on a request."""

    keywords: Callable[[], dict[str, Any]]

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update(self.keywords())
        return schema


@dataclass(frozen=True, slots=True)
class CatalogName:
    """A string that must be one of the loaded scope catalog's `scopes` or `roles`. The catalog
    is data loaded at run time, so the schema carries a marker that the OpenAPI document
    replaces with the catalog's names as an enum (RestResolver.openapi_paths)."""

    kind: Literal["scopes", "roles"]

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(core_schema), CATALOG_KEYWORD: self.kind}


def _ranges(codepoints: list[int] | set[int]) -> str:
    """A regex character class body for these code points: BMP ones escaped as \\uXXXX (which
    ECMA-262, Python and Rust read alike), the others as themselves."""
    spans: list[list[int]] = []
    for codepoint in sorted(set(codepoints)):
        if spans and spans[-1][1] == codepoint - 1:
            spans[-1][1] = codepoint
        else:
            spans.append([codepoint, codepoint])

    def spell(codepoint: int) -> str:
        return f"\\u{codepoint:04X}" if codepoint <= 0xFFFF else chr(codepoint)

    return "".join(spell(low) if low == high else f"{spell(low)}-{spell(high)}" for low, high in spans)


@cache
def name_pattern() -> str:
    """clean_name's character rules as one JSON Schema pattern: no forbidden character anywhere,
    and at least one that is neither white space nor blank-looking. Computed from the same
    category set, once, when a schema is built (it reads the whole Unicode table). Lone
    surrogates are left out: they are not characters, JSON parsers other than Python's refuse
    them, and so do regex engines such as Rust's (the one validators like jsonschema-rs use)."""
    every = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    forbidden = [c for c in every if unicodedata.category(chr(c)) in _FORBIDDEN_CHARACTER_CATEGORIES]
    invisible = {c for c in every if chr(c).isspace()} | {ord(character) for character in _BLANK_LOOKING}
    allowed_invisible = invisible - set(forbidden)
    return f"^[{_ranges(allowed_invisible)}]*[^{_ranges([*forbidden, *invisible])}][^{_ranges(forbidden)}]*$"


def clean_name(value: str) -> str:
    """The name as stored: trimmed. Its length (1-100) is the field's own constraint."""
    if any(unicodedata.category(character) in _FORBIDDEN_CHARACTER_CATEGORIES for character in value):
        raise ValueError("must not contain control, format or invisible characters, nor line breaks")
    if all(character.isspace() or character in _BLANK_LOOKING for character in value):
        raise ValueError("must contain a visible character")
    return value.strip()


def parse_expiry(value: str) -> Expiry:
    if re.fullmatch(DATE_PATTERN, value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(_INVALID_EXPIRY) from None
        end_of_day = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
        return Expiry(at=end_of_day, is_date=True)
    if not re.fullmatch(DATE_TIME_PATTERN, value):
        naive = re.fullmatch(f"{_DATE}[Tt ]{_TIME}", value) is not None
        raise ValueError(
            "a date-time must include its UTC offset, e.g. 2027-01-31T12:00:00Z" if naive else _INVALID_EXPIRY
        )
    try:
        instant = datetime.fromisoformat(value.upper())
    except ValueError:
        raise ValueError(_INVALID_EXPIRY) from None
    try:
        return Expiry(at=instant.astimezone(UTC), is_date=False)
    except OverflowError:
        raise ValueError("is out of range") from None


def parse_cidr(value: str) -> str:
    """An allowlist entry as stored: the network it names, in ipaddress' normal form. Host bits
    after the prefix are cleared (10.0.0.1/24 is 10.0.0.0/24, as the answer shows); an address
    alone is that one address (/32, /128). The reason never repeats the value."""
    if re.fullmatch(CIDR_PATTERN, value) is not None:
        return str(ipaddress.ip_network(value, strict=False))
    address, slash, _ = value.partition("/")
    version = None
    if slash and re.fullmatch(f"{_IPV4}|{_IPV6}", address):
        version = ipaddress.ip_address(address).version
    if version is None:
        raise ValueError(_INVALID_CIDR)
    raise ValueError(f"must end in a prefix length from /0 to /{32 if version == 4 else 128}, without leading zeros")


def allowlist(cidrs: list[str] | None) -> tuple[str, ...]:
    """Normalised entries, unique, in address order (IPv4 first)."""
    networks = {ipaddress.ip_network(cidr) for cidr in cidrs or ()}
    return tuple(str(network) for network in sorted(networks, key=lambda network: (network.version, network)))


def _integral(value: Any) -> Any:
    """An integral JSON number written with a fraction (366.0) is an integer, as JSON Schema says."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _user_id(value: str) -> str:
    if not is_valid_identifier(value):
        raise ValueError("is not a valid user id")
    return value


class ApiModel(BaseModel):
    # Built on first use, not at import: each function uses a few of these models, and
    # building all of them cost a cold start ~15 ms (docs/performance.md, figure 3).
    model_config = ConfigDict(defer_build=True)


class StrictModel(ApiModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- requests -----------------------------------------------------------------------------
# Each rule is stated once: the constraint that validates a request is what the OpenAPI
# document shows (lengths, item counts, patterns, formats, enums, one-of selectors). What no
# schema can say (a cursor issued by this listing, an expiry relative to the clock and the
# organisation's policy, a default no longer than the maximum) is in the field's description.

UserId = Annotated[
    str,
    Field(min_length=1, max_length=128),
    AfterValidator(_user_id),
    Documented(lambda: {"pattern": IDENTIFIER_PATTERN}),
]
ExpiresAt = Annotated[
    str,
    Field(max_length=64),
    AfterValidator(parse_expiry),
    Documented(
        lambda: {
            "anyOf": [
                {"format": "date", "pattern": DATE_PATTERN},
                {"format": "date-time", "pattern": DATE_TIME_PATTERN},
            ]
        }
    ),
]
INTEGRAL = BeforeValidator(_integral)  # after a field's constraints, which then show in its schema
AllowedCidrs = Annotated[
    list[
        Annotated[
            str,
            Field(max_length=CIDR_MAX_LENGTH),
            AfterValidator(parse_cidr),
            Documented(lambda: {"pattern": CIDR_PATTERN}),
        ]
    ],
    Field(max_length=MAX_ALLOWED_CIDRS),
]
ALLOWED_CIDRS_DESCRIPTION = (
    f"Up to {MAX_ALLOWED_CIDRS} IPv4 or IPv6 networks (203.0.113.0/24, 2001:db8::/48) or addresses (one address "
    "alone: that address only) the token may be used from; the authorizer refuses it (403) from any other source "
    "address, and always in TOKEN authorizer events, which carry none. Stored in normal form: bits after the prefix "
    "are cleared (10.0.0.1/24 is 10.0.0.0/24), IPv6 is compressed and lower case, duplicates are merged. "
    "Omitted, null or empty: any address."
)


class TokenListQuery(ApiModel):
    """GET /tokens' query string; parameters it does not know are ignored."""

    limit: int = Field(20, ge=1, description=f"Page size; values above {MAX_PAGE_SIZE} are capped.")
    next: str | None = Field(
        None,
        max_length=MAX_CURSOR_LENGTH,
        description=(
            "The `next` of the previous page of this same listing (same status, owner_id and all_users); "
            f"any other value is a 400 ({INVALID_CURSOR})."
        ),
    )
    status: TokenStatus | None = None
    owner_id: UserId | None = Field(
        None, description="Another user's tokens (admins). Not together with all_users=true: that is a 400."
    )
    all_users: bool = Field(
        False, description="true: the whole organisation's tokens (admins). Not together with owner_id: that is a 400."
    )

    @model_validator(mode="after")
    def _one_listing(self) -> TokenListQuery:
        if self.all_users and self.owner_id is not None:
            raise ValueError("owner_id: cannot be combined with all_users")
        return self


class TokenIdPath(ApiModel):
    token_id: str = Field(min_length=1, max_length=64)


class CreateTokenRequest(StrictModel):
    name: Annotated[
        str,
        Field(min_length=1, max_length=NAME_MAX_LENGTH),
        AfterValidator(clean_name),
        Documented(lambda: {"pattern": name_pattern()}),
    ] = Field(
        description=(
            f"A label for the token, 1-{NAME_MAX_LENGTH} characters, stored trimmed: no control, format or "
            "invisible characters nor line breaks, and at least one visible character."
        ),
        examples=["CI upload token"],
    )
    expires_at: ExpiresAt | None = Field(
        default=None,
        description=(
            "ISO-8601 (RFC 3339) date (valid through that day, UTC) or date-time with offset; in the future "
            "and at most the organisation's max_lifetime_days ahead, else a 400. "
            "Defaults to the organisation's default lifetime."
        ),
        examples=["2027-06-30"],
    )
    scopes: Annotated[
        list[Annotated[str, Field(max_length=64), CatalogName("scopes")]],
        Field(min_length=1, max_length=MAX_SCOPES_PER_TOKEN),
    ] = Field(
        description=(
            "Scopes from the catalog; one your role may not grant is a 403 (GET /scopes lists those it may). "
            "Duplicates are merged."
        ),
        examples=[["import:builds", "import:tests"]],
    )
    allowed_cidrs: AllowedCidrs | None = Field(
        default=None, description=ALLOWED_CIDRS_DESCRIPTION, examples=[["203.0.113.0/24", "2001:db8::/48"]]
    )

    def command(self) -> NewToken:
        expiry: Expiry | None = self.expires_at  # type: ignore[assignment]  # AfterValidator made it an Expiry
        return NewToken(
            name=self.name,
            scopes=tuple(sorted(set(self.scopes))),
            expiry=expiry,
            allowed_cidrs=allowlist(self.allowed_cidrs),
        )


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
    user_id: UserId


class MembershipUpdate(StrictModel):
    role: Annotated[str, Field(min_length=1, max_length=64), CatalogName("roles")] | None = Field(
        description="The user's role now (their tokens keep only the scopes it may grant); null: they left."
    )


# Bulk revoke's selectors: each is "given" when its value is (a list, a string, true).
_BULK_SELECTORS: dict[str, dict[str, Any]] = {
    "token_ids": {"type": "array"},
    "owner_id": {"type": "string"},
    "organisation": {"const": True},
}


class BulkRevokeRequest(StrictModel):
    """Exactly one selector: a list of ids, one user's tokens, or the whole organisation's."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": [name], "properties": {name: given}, "title": name}
                for name, given in _BULK_SELECTORS.items()
            ]
        }
    )

    # Ids are 16 characters: a longer string (a pasted secret, say) is refused, never echoed.
    token_ids: (
        Annotated[
            list[Annotated[str, Field(max_length=16)]],
            Field(min_length=1, max_length=MAX_IDS_PER_BULK_REVOKE),
        ]
        | None
    ) = Field(default=None, description=f"Up to {MAX_IDS_PER_BULK_REVOKE} token ids.")
    owner_id: UserId | None = Field(
        default=None, description="Revoke every active token of this user (yourself unless you are an admin)."
    )
    organisation: StrictBool | None = Field(
        default=None, description="true: revoke every active token of the organisation (admins)."
    )

    @model_validator(mode="after")
    def _one_selector(self) -> BulkRevokeRequest:
        # The same rule as _BULK_SELECTORS' oneOf (tests/unit/test_openapi_contract.py checks they agree).
        given = (self.token_ids is not None, self.owner_id is not None, self.organisation is True)
        if sum(given) != 1:
            raise ValueError("body: give exactly one of token_ids, owner_id or organisation: true")
        return self

    def selection(self) -> BulkSelection:
        token_ids = tuple(self.token_ids) if self.token_ids is not None else None
        return BulkSelection(token_ids=token_ids, owner_id=self.owner_id, organisation=bool(self.organisation))


class PolicyUpdate(StrictModel):
    """Integers may be written with a zero fraction (366.0), as JSON Schema's integers may."""

    max_lifetime_days: Annotated[StrictInt, Field(ge=1, le=MAX_LIFETIME_DAYS_LIMIT), INTEGRAL]
    default_lifetime_days: Annotated[StrictInt, Field(ge=1, le=MAX_LIFETIME_DAYS_LIMIT), INTEGRAL] = Field(
        description="At most max_lifetime_days, else a 400."
    )
    max_active_tokens_per_user: Annotated[StrictInt, Field(ge=1, le=MAX_ACTIVE_TOKENS_LIMIT), INTEGRAL]
    revoke_unused_after_days: (
        Annotated[StrictInt, Field(ge=UNUSED_DAYS_RANGE[0], le=UNUSED_DAYS_RANGE[1]), INTEGRAL] | None
    ) = Field(
        default=None,
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
    allowed_cidrs: list[str] = Field(
        default_factory=list,
        description="The networks the token may be used from, in normal form; empty: any address.",
    )

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
            allowed_cidrs=list(record.allowed_cidrs),
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
