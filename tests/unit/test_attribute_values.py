"""token_service.storage.attribute_values: the service's own DynamoDB (de)serializer agrees with boto3's."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from token_service.storage.attribute_values import deserialize, from_attribute_value, serialize, to_attribute_value

numbers = st.integers(min_value=-(10**30), max_value=10**30) | st.decimals(
    allow_nan=False, allow_infinity=False, places=6, min_value=-(10**20), max_value=10**20
)
scalars = st.none() | st.booleans() | st.text() | numbers | st.binary()
values = st.recursive(
    scalars
    | st.frozensets(st.text(), min_size=1, max_size=5)
    | st.frozensets(st.integers(), min_size=1, max_size=5)
    | st.frozensets(st.binary(), min_size=1, max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _canonical(attribute: Any) -> Any:
    """Set members come in no particular order."""
    if isinstance(attribute, dict):
        return {
            key: sorted(value, key=repr) if key in ("SS", "NS", "BS") else _canonical(value)
            for key, value in attribute.items()
        }
    if isinstance(attribute, list):
        return [_canonical(element) for element in attribute]
    return attribute


@given(values)
def test_serializes_as_boto3_does(value: Any) -> None:
    try:
        expected = TypeSerializer().serialize(value)
    except (TypeError, ArithmeticError):  # boto3 refuses numbers DynamoDB would round
        with pytest.raises(TypeError):
            to_attribute_value(value)
        return
    ours = to_attribute_value(value)
    assert _canonical(ours) == _canonical(expected)
    assert from_attribute_value(ours) == TypeDeserializer().deserialize(ours)


@given(st.dictionaries(st.text(min_size=1, max_size=8), scalars | st.lists(scalars, max_size=3), max_size=6))
def test_an_item_round_trips(item: dict[str, Any]) -> None:
    try:
        expected = {key: TypeDeserializer().deserialize(TypeSerializer().serialize(v)) for key, v in item.items()}
    except ArithmeticError:
        return
    assert deserialize(serialize(item)) == expected


@pytest.mark.parametrize("value", [1.5, Decimal("NaN"), Decimal("Infinity"), 10**40 + 1, set(), {1, "a"}, object()])
def test_refuses_what_dynamodb_cannot_store_exactly(value: Any) -> None:
    with pytest.raises(TypeError):
        to_attribute_value(value)


def test_the_service_never_imports_boto3() -> None:
    """boto3's import pulls in s3transfer: tens of milliseconds of every cold start."""
    modules = "token_service.wiring, token_service.http.proxy, token_service.storage.lifecycle_store"
    code = f"import sys; import {modules}; print('boto3' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # noqa: S603
    assert result.stdout.strip() == "False"
