"""Unit tests of the token format: generation, parsing, hashing and display hints."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from token_service.domain import token_format
from token_service.domain.token_format import (
    ALPHABET,
    BODY_LENGTH,
    CHECKSUM_LENGTH,
    ID_LENGTH,
    ParsedToken,
    checksum,
    display_hint,
    generate_token,
    hash_token,
    matches_hash,
    parse_token,
    token_regex,
)

PREFIX = "lgk"
TOKEN_LENGTH = len(PREFIX) + 1 + BODY_LENGTH
PUBLISHED = re.compile(token_regex(PREFIX))
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def valid_token() -> str:
    return generate_token(PREFIX).token


FIXED_TOKEN = valid_token()


# -- generation ---------------------------------------------------------------------------


def test_ten_thousand_tokens_are_unique_in_secret_and_id(many_tokens: list[ParsedToken]) -> None:
    assert len({parsed.token for parsed in many_tokens}) == len(many_tokens)
    assert len({parsed.token_id for parsed in many_tokens}) == len(many_tokens)
    # The secret part alone is unique too (it is not derived from the id).
    secrets_only = {parsed.token[len(PREFIX) + 1 + ID_LENGTH : -CHECKSUM_LENGTH] for parsed in many_tokens}
    assert len(secrets_only) == len(many_tokens)


def test_generated_tokens_have_the_documented_shape(many_tokens: list[ParsedToken]) -> None:
    assert BODY_LENGTH == 54  # 16 id + 32 secret + 6 checksum, as documented
    for parsed in many_tokens:
        assert len(parsed.token) == TOKEN_LENGTH
        assert parsed.token.startswith(f"{PREFIX}_")
        body = parsed.token[len(PREFIX) + 1 :]
        assert set(body) <= set(ALPHABET)
        assert body[:ID_LENGTH] == parsed.token_id
        assert PUBLISHED.fullmatch(parsed.token)


def test_generated_tokens_parse_back_to_the_same_id(many_tokens: list[ParsedToken]) -> None:
    for parsed in many_tokens:
        assert parse_token(parsed.token, PREFIX) == parsed


def test_generated_tokens_use_the_whole_alphabet(many_tokens: list[ParsedToken]) -> None:
    # 160,000 random id characters: all 62 show up; a generator stuck on a sub-alphabet would not.
    ids = "".join(parsed.token_id for parsed in many_tokens)
    assert set(ids) == set(ALPHABET)


def test_published_regex_finds_a_token_inside_text_but_not_a_longer_word() -> None:
    token = valid_token()
    assert PUBLISHED.search(f"export LGK_TOKEN={token}\n").group(0) == token
    assert PUBLISHED.search(f'{{"token": "{token}"}}').group(0) == token
    assert PUBLISHED.search(f"{token}X") is None
    assert PUBLISHED.search(f"x{token}") is None


def test_checksum_is_six_characters_of_the_alphabet() -> None:
    for data in ("", "lgk_", "lgk_" + "z" * 48):
        digits = checksum(data)
        assert len(digits) == CHECKSUM_LENGTH
        assert set(digits) <= set(ALPHABET)


# -- parsing ------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(data=st.data())
def test_any_single_character_substitution_is_rejected(data: st.DataObject) -> None:
    # One token for every example: hypothesis replays a failing example and must draw the
    # same way, which a token that changed between runs (and the filter below) would prevent.
    token = FIXED_TOKEN
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1), label="position")
    replacement = data.draw(
        st.one_of(st.sampled_from(ALPHABET + "_-.+/= "), st.characters()).filter(lambda c: c != token[position]),
        label="replacement",
    )
    tampered = token[:position] + replacement + token[position + 1 :]
    assert parse_token(tampered, PREFIX) is None


@pytest.mark.parametrize("position", range(TOKEN_LENGTH))
def test_every_position_is_protected_against_a_typo_within_the_alphabet(position: int) -> None:
    # Exhaustive over positions, with the neighbouring alphabet character: a typo anywhere,
    # including the checksum itself, must not produce another well-formed token.
    token = valid_token()
    original = token[position]
    replacement = ALPHABET[(ALPHABET.index(original) + 1) % len(ALPHABET)] if original in ALPHABET else "a"
    assert parse_token(token[:position] + replacement + token[position + 1 :], PREFIX) is None


def _outcome(candidate: object) -> str:
    result = parse_token(candidate, PREFIX)
    if result is None:
        return "invalid"
    assert isinstance(result, ParsedToken)
    return "parsed"


near_tokens = st.builds(
    lambda body: f"{PREFIX}_{body}",
    st.text(alphabet=st.sampled_from(ALPHABET), min_size=BODY_LENGTH, max_size=BODY_LENGTH),
)
right_length_anything = st.builds(lambda body: f"{PREFIX}_{body}", st.text(min_size=BODY_LENGTH, max_size=BODY_LENGTH))
decoded_binary = st.one_of(
    st.binary(max_size=80).map(lambda raw: raw.decode("latin-1")),
    st.binary(max_size=80).map(lambda raw: raw.decode("utf-8", errors="surrogateescape")),
    st.binary(min_size=BODY_LENGTH, max_size=BODY_LENGTH).map(
        lambda raw: f"{PREFIX}_" + raw.decode("utf-8", errors="surrogateescape")
    ),
)


@PROPERTY_SETTINGS
@given(candidate=st.one_of(st.text(), near_tokens, right_length_anything, decoded_binary))
def test_parser_is_total_on_strings(candidate: str) -> None:
    # Only a ParsedToken or None: never IndexError, UnicodeError, TypeError...
    if _outcome(candidate) == "parsed":
        assert PUBLISHED.fullmatch(candidate)


@PROPERTY_SETTINGS
@given(candidate=st.one_of(st.none(), st.integers(), st.floats(), st.binary(), st.lists(st.text(), max_size=3)))
def test_parser_is_total_on_non_strings(candidate: object) -> None:
    assert _outcome(candidate) == "invalid"


@PROPERTY_SETTINGS
@given(body=st.text(alphabet=st.sampled_from(ALPHABET), min_size=BODY_LENGTH, max_size=BODY_LENGTH))
def test_made_up_bodies_pass_only_with_the_right_checksum(body: str) -> None:
    candidate = f"{PREFIX}_{body}"
    expected = checksum(candidate[:-CHECKSUM_LENGTH]) == candidate[-CHECKSUM_LENGTH:]
    assert (_outcome(candidate) == "parsed") is expected


def test_the_token_as_bytes_is_rejected() -> None:
    assert parse_token(valid_token().encode(), PREFIX) is None


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: "abc" + t[3:], id="other-prefix-same-length"),
        pytest.param(lambda t: "LGK" + t[3:], id="uppercase-prefix"),
        pytest.param(lambda t: t.replace("_", "-", 1), id="dash-separator"),
        pytest.param(lambda t: t[4:], id="no-prefix"),
        pytest.param(lambda t: "lgkx_" + t[4:], id="longer-prefix"),
        pytest.param(lambda t: " " + t, id="leading-space"),
        pytest.param(lambda t: t + "\n", id="trailing-newline"),
        pytest.param(lambda t: t[:-1], id="one-short"),
        pytest.param(lambda t: t + "A", id="one-long"),
        pytest.param(lambda t: t + t, id="doubled"),
        pytest.param(lambda t: t[:10] + "é" + t[11:], id="non-ascii-letter"),
        pytest.param(lambda t: t[:10] + "\uff21" + t[11:], id="fullwidth-letter"),
        pytest.param(lambda t: t[:10] + "٣" + t[11:], id="arabic-indic-digit"),
        pytest.param(lambda t: t[:10] + "_" + t[11:], id="underscore-in-body"),
        pytest.param(lambda t: t[:10] + "\x00" + t[11:], id="nul"),
        pytest.param(lambda t: t.upper(), id="case-changed"),
        pytest.param(lambda t: "", id="empty"),
    ],
)
def test_wrong_prefix_length_or_alphabet_is_rejected(mangle: object) -> None:
    token = valid_token()
    candidate = mangle(token)  # type: ignore[operator]
    assert candidate != token
    assert parse_token(candidate, PREFIX) is None


def test_a_token_is_only_valid_for_its_own_prefix() -> None:
    other = generate_token("abc").token
    assert parse_token(other, "abc").token == other
    assert parse_token(other, PREFIX) is None


# -- hashing and display ------------------------------------------------------------------


def test_matches_hash_accepts_the_right_token_only() -> None:
    parsed = generate_token(PREFIX)
    other = generate_token(PREFIX)
    stored = parsed.secret_hash()
    assert matches_hash(parse_token(parsed.token, PREFIX), stored)
    assert not matches_hash(other, stored)
    assert not matches_hash(parsed, other.secret_hash())
    # The stored value is a digest, never the token or its secret.
    assert parsed.token not in stored
    assert stored == hash_token(parsed.token)
    assert re.fullmatch(r"[0-9a-f]{64}", stored)


def test_matches_hash_rejects_a_token_sharing_the_id_but_not_the_secret() -> None:
    parsed = generate_token(PREFIX)
    forged_unchecked = f"{PREFIX}_{parsed.token_id}{'A' * 32}"
    forged = parse_token(forged_unchecked + checksum(forged_unchecked), PREFIX)
    assert forged.token_id == parsed.token_id
    assert not matches_hash(forged, parsed.secret_hash())


def test_display_hint_shows_the_prefix_and_last_four_characters_only() -> None:
    parsed = generate_token(PREFIX)
    hint = display_hint(parsed.token)
    assert hint == f"{PREFIX}_…{parsed.token[-4:]}"
    assert parsed.token_id not in hint
    secret = parsed.token[len(PREFIX) + 1 + ID_LENGTH : -CHECKSUM_LENGTH]
    assert not any(secret[i : i + 5] in hint for i in range(len(secret) - 4))
    assert sum(character in ALPHABET for character in hint) == len(PREFIX) + 4


def test_prefix_validation() -> None:
    assert token_format.validate_prefix("lgk") == "lgk"
    for bad in ("", "a", "Lgk", "1gk", "lg_k", "abcdefghijk"):
        with pytest.raises(ValueError, match="token prefix"):
            token_format.validate_prefix(bad)
