"""Reads template.yaml: the table definition and the API routes, so nothing is repeated by hand."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
TABLE_RESOURCE = "TokensTable"
_TABLE_PROPERTIES = ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "BillingMode")


class _CloudFormationLoader(yaml.SafeLoader):
    """Keeps intrinsic functions (!Ref, !Sub, !GetAtt, ...) as {"Fn": value} instead of failing."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {tag_suffix: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


@cache
def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506 (a SafeLoader subclass)


@cache
def console_security_headers(path: Path = TEMPLATE_PATH) -> dict[str, str]:
    """The console's security headers as the template's CloudFront response headers policy sets
    them, for a console served from the API's own origin: connect-src is 'self' (the local API
    and managed login), where CloudFront's names the regional execute-api and auth domains."""
    config = load_template(path)["Resources"]["ConsoleResponseHeadersPolicy"]["Properties"]
    security = config["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    policy = security["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Sub"][0]
    directives = [
        "connect-src 'self'" if directive.strip().startswith("connect-src") else directive.strip()
        for directive in policy.split(";")
    ]
    return {
        "Content-Security-Policy": "; ".join(directives),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": security["FrameOptions"]["FrameOption"],
        "Referrer-Policy": security["ReferrerPolicy"]["ReferrerPolicy"],
    }


def table_definition(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The CreateTable arguments of the deployed table, minus its name."""
    properties = load_template(path)["Resources"][TABLE_RESOURCE]["Properties"]
    return {key: properties[key] for key in _TABLE_PROPERTIES if key in properties}


def ttl_attribute(path: Path = TEMPLATE_PATH) -> str:
    properties = load_template(path)["Resources"][TABLE_RESOURCE]["Properties"]
    return str(properties["TimeToLiveSpecification"]["AttributeName"])


def parameter_default(name: str, path: Path = TEMPLATE_PATH) -> str:
    return str(load_template(path)["Parameters"][name]["Default"])


def resolve(value: Any, path: Path = TEMPLATE_PATH) -> Any:
    """Resolves {"Ref": Parameter} to the parameter's default; other values pass through."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in load_template(path)["Parameters"]:
        return parameter_default(value["Ref"], path)
    return value


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, Any]
    timeout: float


@dataclass(frozen=True)
class Authorizer:
    """A Lambda authorizer of an AWS::Serverless::Api, as SAM declares it."""

    function: Function
    payload_type: str  # TOKEN or REQUEST
    headers: tuple[str, ...]  # identity sources: request headers
    context: tuple[str, ...]  # identity sources: $context variables (httpMethod, resourcePath, ...)
    validation_expression: str | None  # TOKEN only
    cache_seconds: int
    timeout_seconds: float  # the function's Timeout: API Gateway gives up after it


@dataclass(frozen=True)
class Cors:
    """An AWS::Serverless::Api's Cors: SAM gives every path of the API an OPTIONS method (a mock
    integration, no authorizer) answering with these headers. Values as the template writes them
    (quoted literals or intrinsics, see header_value)."""

    allow_origin: Any
    allow_headers: Any = None
    allow_methods: Any = None  # None: SAM lists each path's own methods and OPTIONS
    max_age: Any = None
    allow_credentials: bool = False


@dataclass(frozen=True)
class RestApi:
    logical_id: str
    authorizer: Authorizer | None  # None: the Cognito user pool authorizer
    gateway_responses: dict[str, Any]
    cors: Cors | None = None  # None: no OPTIONS methods, no preflight answered


# How template.yaml names the console's origin (its CloudFront distribution's domain), as a header
# value of the console API; a local run serves the console itself.
CONSOLE_ORIGIN_VALUE = {"Sub": "'https://${ConsoleDistribution.DomainName}'"}


def header_value(value: Any, console_origin: str | None) -> str | None:
    """A static header value of a gateway response or of Cors as API Gateway sends it: a quoted
    literal's text, or for the console's origin `console_origin` (None: the header is left out,
    as there is no console). Any other intrinsic is an error, so that the template cannot gain
    a value the emulation silently gets wrong."""
    if value == CONSOLE_ORIGIN_VALUE:
        return console_origin
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == "'" else value
    raise ValueError(f"template.yaml: no local value for the header value {value!r}")


def _cors(value: Any) -> Cors | None:
    if value is None:
        return None
    if isinstance(value, dict) and "AllowOrigin" in value:
        return Cors(
            allow_origin=value["AllowOrigin"],
            allow_headers=value.get("AllowHeaders"),
            allow_methods=value.get("AllowMethods"),
            max_age=value.get("MaxAge"),
            allow_credentials=value.get("AllowCredentials") is True,
        )
    return Cors(allow_origin=value)  # Cors: <origin> sets the origin alone


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # API Gateway resource path, e.g. /tokens/{token_id}
    function: str  # logical id
    code_dir: Path
    handler: str
    pattern: re.Pattern[str]
    api: str = ""  # logical id of the RestApi
    authorized: bool = True  # False: `Auth: Authorizer: NONE` (the API's authorizer does not run)

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method.upper() != self.method:
            return None
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


def _resource_pattern(resource: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", resource)
    regex = "".join(
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") and part.endswith("}") else re.escape(part) for part in parts
    )
    return re.compile(regex)


def function(logical_id: str, path: Path = TEMPLATE_PATH) -> Function:
    template = load_template(path)
    globals_ = template.get("Globals", {}).get("Function", {})
    properties = template["Resources"][logical_id]["Properties"]
    environment = {
        **globals_.get("Environment", {}).get("Variables", {}),
        **properties.get("Environment", {}).get("Variables", {}),
    }
    return Function(
        logical_id=logical_id,
        code_dir=ROOT / str(properties["CodeUri"]),
        handler=str(properties.get("Handler", globals_.get("Handler", "app.lambda_handler"))),
        environment=environment,
        timeout=float(properties.get("Timeout", globals_.get("Timeout", 3))),
    )


@cache
def rest_apis(path: Path = TEMPLATE_PATH) -> dict[str, RestApi]:
    apis = {}
    global_cors = load_template(path).get("Globals", {}).get("Api", {}).get("Cors")
    for logical_id, resource in load_template(path)["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Api":
            continue
        properties = resource["Properties"]
        auth = properties.get("Auth", {})
        definition = auth.get("Authorizers", {}).get(auth.get("DefaultAuthorizer", ""), {})
        authorizer = None
        if "FunctionArn" in definition:
            identity = definition.get("Identity", {})
            payload_type = str(definition.get("FunctionPayloadType", "TOKEN"))
            headers = identity.get("Headers") or [identity.get("Header", "Authorization")]
            handler = function(definition["FunctionArn"]["GetAtt"].split(".")[0], path)
            authorizer = Authorizer(
                function=handler,
                payload_type=payload_type,
                headers=tuple(str(header) for header in headers),
                context=tuple(str(variable) for variable in identity.get("Context", [])),
                validation_expression=identity.get("ValidationExpression") if payload_type == "TOKEN" else None,
                cache_seconds=int(resolve(identity.get("ReauthorizeEvery", 300), path)),
                timeout_seconds=float(handler.timeout),
            )
        apis[logical_id] = RestApi(
            logical_id, authorizer, properties.get("GatewayResponses", {}), _cors(properties.get("Cors", global_cors))
        )
    return apis


@cache
def api_routes(path: Path = TEMPLATE_PATH) -> tuple[Route, ...]:
    template = load_template(path)
    default_handler = template.get("Globals", {}).get("Function", {}).get("Handler", "app.lambda_handler")
    routes = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        for event in properties.get("Events", {}).values():
            if event.get("Type") != "Api":
                continue
            event_properties = event["Properties"]
            routes.append(
                Route(
                    method=str(event_properties["Method"]).upper(),
                    resource=str(event_properties["Path"]),
                    function=logical_id,
                    code_dir=ROOT / str(properties["CodeUri"]),
                    handler=str(properties.get("Handler", default_handler)),
                    pattern=_resource_pattern(str(event_properties["Path"])),
                    api=str(event_properties.get("RestApiId", {}).get("Ref", "")),
                    authorized=(event_properties.get("Auth") or {}).get("Authorizer") != "NONE",
                )
            )
    # Literal segments win over parameters (/tokens/revoke before /tokens/{token_id}).
    return tuple(sorted(routes, key=lambda route: (route.resource.count("{"), -len(route.resource))))
