"""DynamoDB's attribute-value format, to and from plain Python values.

The same mapping as boto3's TypeSerializer and TypeDeserializer (numbers come back as
Decimal), without importing boto3: its package import also loads s3transfer, which this
service never uses and which costs every cold start tens of milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from decimal import Clamped, Context, Decimal, DecimalException, Inexact, Overflow, Rounded, Underflow
from typing import Any

# DynamoDB's numbers: 38 significant digits; anything it would round is refused instead.
_NUMBER_CONTEXT = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: to_attribute_value(value) for key, value in item.items()}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: from_attribute_value(value) for key, value in item.items()}


def to_attribute_value(value: Any) -> dict[str, Any]:
    # bool before int: True is an int too.
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal):
        return {"N": _number(value)}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": serialize(value)}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute_value(element) for element in value]}
    if isinstance(value, Set) and value:
        return _set(value)
    # Floats are refused as boto3 refuses them: binary floats would not round-trip exactly.
    raise TypeError(f"Unsupported type for a DynamoDB attribute: {type(value).__name__}")


def from_attribute_value(attribute: Mapping[str, Any]) -> Any:
    ((kind, value),) = attribute.items()
    if kind in ("S", "BOOL", "B"):
        return value
    if kind == "N":
        return Decimal(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return deserialize(value)
    if kind == "L":
        return [from_attribute_value(element) for element in value]
    if kind == "SS" or kind == "BS":
        return set(value)
    if kind == "NS":
        return {Decimal(number) for number in value}
    raise TypeError(f"Unknown DynamoDB attribute type: {kind}")


def _number(value: int | Decimal) -> str:
    if isinstance(value, Decimal) and not value.is_finite():
        raise TypeError("Infinity and NaN are not DynamoDB numbers")
    try:
        return str(_NUMBER_CONTEXT.create_decimal(value))
    except DecimalException:
        raise TypeError(f"{value} does not fit a DynamoDB number (38 significant digits)") from None


def _set(values: Set[Any]) -> dict[str, Any]:
    if all(isinstance(element, str) for element in values):
        return {"SS": list(values)}
    if all(isinstance(element, int | Decimal) and not isinstance(element, bool) for element in values):
        return {"NS": [_number(element) for element in values]}
    if all(isinstance(element, bytes | bytearray) for element in values):
        return {"BS": [bytes(element) for element in values]}
    raise TypeError("A DynamoDB set holds strings, numbers or binary values, all of one kind")
