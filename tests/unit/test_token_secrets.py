"""The secret half of the token format: where the secret's randomness comes from, and how a
presented token is compared with the stored hash.

Each test here kills a bug that the rest of the suite let through (issue 17): a hash compared
with `==` instead of in constant time, a secret made with `uuid4().hex` or derived from the
token id. Fast: no AWS, no moto."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import zlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from token_service.domain import token_format
from token_service.domain.token_format import (
    ALPHABET,
    BODY_LENGTH,
    CHECKSUM_LENGTH,
    ID_LENGTH,
    SECRET_LENGTH,
    checksum,
    generate_token,
    matches_hash,
    parse_token,
    token_regex,
    validate_prefix,
)

PREFIX = "lgk"


def secret_of(token: str) -> str:
    body = token[len(PREFIX) + 1 :]
    return body[ID_LENGTH:-CHECKSUM_LENGTH]


class ChoiceSpy:
    """Stands in for `secrets.choice`: records every draw, and answers from `source`."""

    def __init__(self, source: Callable[[str], str]) -> None:
        self.source = source
        self.populations: list[str] = []
        self.drawn: list[str] = []

    def __call__(self, population: str) -> str:
        self.populations.append(population)
        self.drawn.append(self.source(population))
        return self.drawn[-1]


@pytest.fixture
def choice_spy(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[str], str]], ChoiceSpy]:
    def install(source: Callable[[str], str]) -> ChoiceSpy:
        spy = ChoiceSpy(source)
        monkeypatch.setattr(token_format.secrets, "choice", spy)
        return spy

    return install


# -- where the secret comes from ----------------------------------------------------------


def test_every_character_of_id_and_secret_is_drawn_from_secrets_over_the_whole_alphabet(
    choice_spy: Callable[[Callable[[str], str]], ChoiceSpy],
) -> None:
    spy = choice_spy(secrets.choice)
    parsed = generate_token(PREFIX)
    # One draw per character of the id and of the secret, each from the 62-character alphabet:
    # a secret from uuid4().hex, token_hex or a hash of the id would skip these draws.
    assert len(spy.drawn) == ID_LENGTH + SECRET_LENGTH
    assert spy.populations == [ALPHABET] * (ID_LENGTH + SECRET_LENGTH)
    assert "".join(spy.drawn[:ID_LENGTH]) == parsed.token_id
    assert "".join(spy.drawn[ID_LENGTH:]) == secret_of(parsed.token)


def test_the_secret_does_not_depend_on_the_token_id(choice_spy: Callable[[Callable[[str], str]], ChoiceSpy]) -> None:
    # The id's draws are pinned, so every token gets the same id; the secrets must still differ.
    draws = {"count": 0}
    real_choice = secrets.choice

    def pinned_id(population: str) -> str:
        draws["count"] += 1
        if (draws["count"] - 1) % (ID_LENGTH + SECRET_LENGTH) < ID_LENGTH:
            return "A"
        return real_choice(population)

    choice_spy(pinned_id)
    tokens = [generate_token(PREFIX) for _ in range(20)]
    assert {parsed.token_id for parsed in tokens} == {"A" * ID_LENGTH}
    assert len({secret_of(parsed.token) for parsed in tokens}) == len(tokens)


def test_secrets_use_the_whole_alphabet_evenly() -> None:
    # 64,000 secret characters: each of the 62 within 25% of its expected share (about 8
    # standard deviations). A hex secret (uuid4().hex, token_hex) uses 16 characters; a biased
    # draw (e.g. a byte modulo 62) skews the counts.
    tokens = [generate_token(PREFIX) for _ in range(2000)]
    counts = Counter("".join(secret_of(parsed.token) for parsed in tokens))
    assert set(counts) == set(ALPHABET)
    expected = len(tokens) * SECRET_LENGTH / len(ALPHABET)
    assert all(abs(count - expected) < 0.25 * expected for count in counts.values()), counts.most_common(3)


def test_the_secret_carries_at_least_the_documented_entropy() -> None:
    # ~190 bits; NIST 800-63B asks at least 112 for a secret that is hashed with a fast hash.
    assert SECRET_LENGTH == 32
    assert len(set(ALPHABET)) == len(ALPHABET) == 62
    assert SECRET_LENGTH * math.log2(len(ALPHABET)) > 190


# -- comparing a presented token with the stored hash ------------------------------------------


def test_the_hash_comparison_goes_through_hmac_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = generate_token(PREFIX)
    stored = parsed.secret_hash()
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(token_format.hmac, "compare_digest", spy)
    assert matches_hash(parsed, stored) is True
    assert calls == [(stored, stored)]  # the presented token's hash against the stored one
    calls.clear()
    assert matches_hash(parsed, "0" * 64) is False
    assert calls == [(stored, "0" * 64)]


def test_the_hash_comparison_answers_what_compare_digest_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    # The answer is compare_digest's own, not a second comparison next to it.
    parsed = generate_token(PREFIX)
    monkeypatch.setattr(token_format.hmac, "compare_digest", lambda a, b: False)
    assert matches_hash(parsed, parsed.secret_hash()) is False
    monkeypatch.setattr(token_format.hmac, "compare_digest", lambda a, b: True)
    assert matches_hash(parsed, "0" * 64) is True


def test_the_hash_is_the_sha256_of_the_whole_token() -> None:
    parsed = generate_token(PREFIX)
    assert parsed.secret_hash() == hashlib.sha256(parsed.token.encode()).hexdigest()
    assert parse_token(parsed.token, PREFIX).secret_hash() == parsed.secret_hash()


# -- the rest of the format, exactly -----------------------------------------------------------


def test_the_published_regex_is_exactly_the_documented_one() -> None:
    assert token_regex("lgk") == r"\blgk_[0-9A-Za-z]{54}\b"
    assert token_regex("ab9") == r"\bab9_[0-9A-Za-z]{54}\b"
    assert BODY_LENGTH == 54


def test_prefix_validation_names_the_rule() -> None:
    assert validate_prefix("ab") == "ab"
    assert validate_prefix("a123456789") == "a123456789"
    for bad in ("a", "a1234567890", "9ab", "aB"):
        with pytest.raises(ValueError, match=r"^token prefix must be 2-10 characters: a lowercase letter, then"):
            validate_prefix(bad)


def test_the_checksum_is_the_crc32_in_six_base62_places() -> None:
    for data in ("", "lgk_", "lgk_" + "z" * 48, "abc_0123456789"):
        value = zlib.crc32(data.encode())
        digits = "".join(ALPHABET[value // 62**place % 62] for place in (5, 4, 3, 2, 1, 0))
        assert checksum(data) == digits
    assert checksum("") == "000000"  # crc32 of nothing is 0
