"""AWS WAF in front of a local API stage: the web ACL that template.yaml associates with the
stage, evaluated as AWS WAF evaluates one, before API Gateway routes or authorizes anything.

AWS WAF inspects the rules in order of `Priority`; the first rule whose statement matches and
whose action terminates (Allow or Block) decides, and the web ACL's default action decides a
request no rule matched (Count only counts, and inspection goes on). A Block with a custom
response is sent instead of anything API Gateway would answer. A statement on a single header
or query argument does not match when the request lacks it, which is why "no such header"
is written NOT(the header exists and ...). Only the statements, fields and text
transformations the template uses are emulated; loading a web ACL with anything else fails,
so a template change cannot be silently mis-emulated.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from devserver.template import TEMPLATE_PATH, load_template

Query = Mapping[str, str | Sequence[str]]

_CONTENT_TYPES = {"APPLICATION_JSON": "application/json", "TEXT_PLAIN": "text/plain", "TEXT_HTML": "text/html"}
_TRANSFORMATIONS: dict[str, Callable[[str], str]] = {
    "NONE": lambda value: value,
    "LOWERCASE": str.lower,
    "URL_DECODE": unquote,
    "COMPRESS_WHITE_SPACE": lambda value: re.sub(r"[ \t\n\r\f\v]+", " ", value),
}
_SIZE_OPERATORS: dict[str, Callable[[int, int], bool]] = {
    "EQ": operator.eq,
    "NE": operator.ne,
    "LE": operator.le,
    "LT": operator.lt,
    "GE": operator.ge,
    "GT": operator.gt,
}
_POSITIONS: dict[str, Callable[[str, str], bool]] = {
    "EXACTLY": operator.eq,
    "STARTS_WITH": str.startswith,
    "ENDS_WITH": str.endswith,
    "CONTAINS": operator.contains,
}
_LEAF_STATEMENTS = ("ByteMatchStatement", "RegexMatchStatement", "SizeConstraintStatement")
_FIELDS = ("SingleHeader", "SingleQueryArgument", "UriPath", "Method")
_RESTAPI_STAGE = re.compile(r"/restapis/\$\{(\w+)\}/stages/")


@dataclass(frozen=True)
class WafRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    query: Query


@dataclass(frozen=True)
class WafAnswer:
    """What AWS WAF sends back instead of forwarding the request."""

    status: int
    headers: dict[str, str]
    body: str
    rule: str  # the rule that blocked the request


@dataclass(frozen=True)
class WebAcl:
    logical_id: str
    rules: tuple[dict[str, Any], ...]  # in order of priority
    default_action: dict[str, Any]
    bodies: dict[str, dict[str, Any]]

    def inspect(self, request: WafRequest) -> WafAnswer | None:
        """None: the request goes on to API Gateway; otherwise WAF's own answer."""
        for rule in self.rules:
            if not _matches(rule["Statement"], request):
                continue
            action = rule["Action"]
            if "Allow" in action:
                return None
            if "Block" in action:
                return self._block(action["Block"], rule["Name"])
        if "Allow" in self.default_action:
            return None
        return self._block(self.default_action["Block"], "default action")

    def _block(self, block: dict[str, Any], rule: str) -> WafAnswer:
        custom = block.get("CustomResponse")
        if custom is None:  # WAF's own block page
            return WafAnswer(403, {"Content-Type": "text/plain"}, "Forbidden", rule)
        headers = {header["Name"]: str(header["Value"]) for header in custom.get("ResponseHeaders", [])}
        body = ""
        if "CustomResponseBodyKey" in custom:
            definition = self.bodies[custom["CustomResponseBodyKey"]]
            headers = {"Content-Type": _CONTENT_TYPES[definition["ContentType"]], **headers}
            body = str(definition["Content"])
        return WafAnswer(int(custom["ResponseCode"]), headers, body, rule)


def _header(headers: Mapping[str, str], name: str) -> list[str]:
    return [value for key, value in headers.items() if key.lower() == name.lower()]


def _query_argument(query: Query, name: str) -> list[str]:
    values: list[str] = []
    for key, value in query.items():  # argument names are not case-sensitive in WAF
        if key.lower() == name.lower():
            values += [value] if isinstance(value, str) else list(value)
    return values


def _field_values(field: dict[str, Any], request: WafRequest) -> list[str]:
    """The values a statement inspects: none when the request lacks the component."""
    (kind, settings), *_ = field.items()
    if kind == "SingleHeader":
        return _header(request.headers, settings["Name"])
    if kind == "SingleQueryArgument":
        return _query_argument(request.query, settings["Name"])
    if kind == "UriPath":
        return [request.path]
    return [request.method.upper()]  # Method


def _transform(value: str, transformations: list[dict[str, Any]]) -> str:
    for step in sorted(transformations, key=lambda step: int(step["Priority"])):
        value = _TRANSFORMATIONS[step["Type"]](value)
    return value


def _leaf_matches(kind: str, statement: dict[str, Any], value: str) -> bool:
    if kind == "ByteMatchStatement":
        return _POSITIONS[statement["PositionalConstraint"]](value, str(statement["SearchString"]))
    if kind == "RegexMatchStatement":
        return re.search(str(statement["RegexString"]), value) is not None
    size = len(value.encode())  # SizeConstraintStatement: bytes
    return _SIZE_OPERATORS[statement["ComparisonOperator"]](size, int(statement["Size"]))


def _matches(statement: dict[str, Any], request: WafRequest) -> bool:
    (kind, body), *_ = statement.items()
    if kind == "NotStatement":
        return not _matches(body["Statement"], request)
    if kind == "AndStatement":
        return all(_matches(inner, request) for inner in body["Statements"])
    if kind == "OrStatement":
        return any(_matches(inner, request) for inner in body["Statements"])
    # A repeated header or argument: any of its values may match.
    return any(
        _leaf_matches(kind, body, _transform(value, body["TextTransformations"]))
        for value in _field_values(body["FieldToMatch"], request)
    )


def _check(statement: dict[str, Any], where: str) -> None:
    """Refuses what this emulation does not implement, at load rather than per request."""
    if len(statement) != 1:
        raise ValueError(f"{where}: a statement has exactly one kind: {sorted(statement)}")
    (kind, body), *_ = statement.items()
    if kind == "NotStatement":
        return _check(body["Statement"], where)
    if kind in ("AndStatement", "OrStatement"):
        for inner in body["Statements"]:
            _check(inner, where)
        return None
    if kind not in _LEAF_STATEMENTS:
        raise ValueError(f"{where}: {kind} is not emulated by devserver/waf.py")
    field = body["FieldToMatch"]
    if len(field) != 1 or next(iter(field)) not in _FIELDS:
        raise ValueError(f"{where}: FieldToMatch {sorted(field)} is not emulated by devserver/waf.py")
    for step in body["TextTransformations"]:
        if step["Type"] not in _TRANSFORMATIONS:
            raise ValueError(f"{where}: text transformation {step['Type']} is not emulated by devserver/waf.py")
    if kind == "ByteMatchStatement" and body["PositionalConstraint"] not in _POSITIONS:
        raise ValueError(f"{where}: PositionalConstraint {body['PositionalConstraint']} is not emulated")
    if kind == "SizeConstraintStatement" and body["ComparisonOperator"] not in _SIZE_OPERATORS:
        raise ValueError(f"{where}: ComparisonOperator {body['ComparisonOperator']} is not emulated")
    return None


def web_acl(logical_id: str, path: Path = TEMPLATE_PATH) -> WebAcl:
    properties = load_template(path)["Resources"][logical_id]["Properties"]
    rules = tuple(sorted(properties.get("Rules", []), key=lambda rule: int(rule["Priority"])))
    for rule in rules:
        _check(rule["Statement"], f"{logical_id}.{rule['Name']}")
        if not {"Allow", "Block", "Count"} & set(rule["Action"]):
            raise ValueError(f"{logical_id}.{rule['Name']}: action {sorted(rule['Action'])} is not emulated")
    return WebAcl(logical_id, rules, properties["DefaultAction"], properties.get("CustomResponseBodies", {}))


@cache
def stage_web_acls(path: Path = TEMPLATE_PATH) -> dict[str, WebAcl]:
    """The web ACL of each RestApi's stage, by the RestApi's logical id (from the template's
    AWS::WAFv2::WebACLAssociation resources)."""
    acls: dict[str, WebAcl] = {}
    for logical_id, resource in load_template(path)["Resources"].items():
        if resource.get("Type") != "AWS::WAFv2::WebACLAssociation":
            continue
        properties = resource["Properties"]
        stage = _RESTAPI_STAGE.search(json.dumps(properties["ResourceArn"]))
        if stage is None:
            raise ValueError(f"{logical_id}: ResourceArn names no REST API stage of this template")
        acl_id = str(properties["WebACLArn"]["GetAtt"]).split(".")[0]
        acls[stage.group(1)] = web_acl(acl_id, path)
    return acls
