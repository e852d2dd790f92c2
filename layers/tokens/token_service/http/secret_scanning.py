"""POST /v1/secret-scanning: leaked-token reports in GitHub's secret-scanning partner format.

The request is trusted for its signature only (the route has no authorizer): the
`Github-Public-Key-Signature` header must be an ECDSA P-256 SHA-256 signature (base64 of its
DER form) of the raw body by the key `Github-Public-Key-Identifier` names in the partner's
key list (token_service.domain.leaks.SigningKeys). Then the body, a JSON array of
`{token, type, url, source}`, is read; the answer is a JSON array of
`{token_hash, token_type, label}`, as the partner program's false-positive feedback reads it.
Order of the checks: size (413), signature (401), media type (415), JSON and shape (400).
Nothing is read or written before the signature holds.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, cast

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, RootModel, StrictStr

from token_service.domain.errors import FieldProblem, NotAuthenticated
from token_service.domain.leaks import KeyListUnavailable, ReportedToken, SigningKeys, Verdict
from token_service.http.responses import BodyRejected, response_for
from token_service.http.rest import JsonResponse, RestResolver
from token_service.observability import get_tracer, logger, metrics

KEY_ID_HEADER = "Github-Public-Key-Identifier"
SIGNATURE_HEADER = "Github-Public-Key-Signature"
MAX_REPORT_BYTES = 2 * 1024 * 1024  # ~7,000 matches of ~300 bytes; API Gateway's own limit is 10 MB
MAX_REPORT_TOKENS = 5000
MAX_KEY_ID_LENGTH = 256
MAX_SIGNATURE_LENGTH = 200  # base64 of a DER P-256 signature is at most 96 characters
MAX_KEY_LIST_BYTES = 256 * 1024
NOT_VERIFIED = "The report's signature could not be verified."


class ReportedMatch(BaseModel):
    """One match. Fields the partner may add later are ignored rather than refused: a refused
    report is sent again and again, and none of its tokens is revoked."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    token: Annotated[StrictStr, Field(min_length=1, max_length=1024, description="The string found.")]
    type: Annotated[
        StrictStr, Field(min_length=1, max_length=256, description="The name the partner gave the token pattern.")
    ]
    url: Annotated[StrictStr | None, Field(max_length=8192, description="Where it was found (may be empty).")] = None
    source: Annotated[
        StrictStr | None, Field(max_length=256, description="What it was found in: content, commit, issue_comment...")
    ] = None

    def reported(self) -> ReportedToken:
        return ReportedToken(self.token, self.type, self.url or None, self.source or None)


class LeakReport(RootModel[list[ReportedMatch]]):
    """The partner's report: a JSON array of matches."""

    root: Annotated[list[ReportedMatch], Field(max_length=MAX_REPORT_TOKENS)]

    def reported(self) -> list[ReportedToken]:
        return [match.reported() for match in self.root]


class VerdictView(BaseModel):
    token_hash: str = Field(description="SHA-256 (hex) of the reported string; the string itself is never repeated.")
    token_type: str = Field(description="The reported `type`.")
    label: Literal["true_positive", "false_positive"] = Field(
        description="true_positive: one of this service's tokens, now revoked; false_positive: not one of them."
    )


class VerdictsView(RootModel[list[VerdictView]]):
    """One verdict per reported match, in the report's order."""

    root: list[VerdictView]


@dataclass(frozen=True)
class JsonArrayResponse(JsonResponse):
    """A JSON answer whose top level is an array (the partner's format), not an object."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def proxy_result(self) -> dict[str, Any]:
        result = super().proxy_result()
        result["body"] = json.dumps(self.items, separators=(",", ":"))
        return result


def verdicts_response(verdicts: Sequence[Verdict]) -> JsonArrayResponse:
    items = [VerdictView(token_hash=v.token_hash, token_type=v.token_type, label=v.label) for v in verdicts]
    return JsonArrayResponse(200, {}, {"Cache-Control": "no-store"}, [item.model_dump() for item in items])


class SignedReportResolver(RestResolver):
    """A resolver whose document shows the key id header the signature goes with."""

    def openapi_paths(self, enums: Mapping[str, Sequence[str]] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, schemas = super().openapi_paths(enums)
        # The signature header itself is the document's security scheme (devserver/openapi.py).
        headers = [
            {
                "name": KEY_ID_HEADER,
                "in": "header",
                "required": True,
                "description": "The `key_identifier` of the partner's signing key, from its key list.",
                "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_ID_LENGTH},
            },
        ]
        for operations in paths.values():
            for operation in operations.values():
                operation["parameters"] = [*operation.get("parameters", []), *headers]
        return paths, schemas


# -- the request -------------------------------------------------------------------------------


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    return {str(key).lower(): str(value) for key, value in (event.get("headers") or {}).items()}


def raw_body(event: Mapping[str, Any]) -> bytes:
    """The body exactly as sent (the signature covers these bytes); 413 over MAX_REPORT_BYTES."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        if len(body) > MAX_REPORT_BYTES * 4 // 3 + 4:
            raise _too_large()
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BodyRejected(400, "invalid_request", FieldProblem("body", "is not valid base64")) from None
    else:
        data = str(body).encode("utf-8", "surrogatepass")
    if len(data) > MAX_REPORT_BYTES:
        raise _too_large()
    return data


def _too_large() -> BodyRejected:
    return BodyRejected(413, "payload_too_large", FieldProblem("body", f"must be at most {MAX_REPORT_BYTES} bytes"))


def check_signature(headers: Mapping[str, str], body: bytes, keys: SigningKeys) -> None:
    """Raises NotAuthenticated (401) unless the headers name a key that signed `body`."""
    key_id = headers.get(KEY_ID_HEADER.lower(), "").strip()
    encoded = headers.get(SIGNATURE_HEADER.lower(), "").strip()
    reason = None
    if not key_id or not encoded:
        reason = "missing signature headers"
    elif len(key_id) > MAX_KEY_ID_LENGTH or not key_id.isprintable() or len(encoded) > MAX_SIGNATURE_LENGTH:
        reason = "malformed signature headers"
    else:
        try:
            signature = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        if not signature:
            reason = "signature is not base64"
        elif not keys.verifies(key_id, signature, body):
            reason = "signature not verified"
    if reason is not None:
        logger.warning("Leak report refused", extra={"reason": reason})
        metrics.add_metric(name="LeakReportsRefused", unit=MetricUnit.Count, value=1)
        raise NotAuthenticated(NOT_VERIFIED)


def report_document(headers: Mapping[str, str], body: bytes) -> Any:
    """The signed body as JSON (415 for another media type, 400 for what is not JSON)."""
    content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise BodyRejected(415, "unsupported_media_type", FieldProblem("body", "Content-Type must be application/json"))
    if not body.strip():
        raise BodyRejected(400, "invalid_request", FieldProblem("body", "is required"))
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BodyRejected(400, "invalid_request", FieldProblem("body", "is not UTF-8")) from None
    except RecursionError:
        raise BodyRejected(400, "invalid_request", FieldProblem("body", "is nested too deeply")) from None
    except ValueError:
        raise BodyRejected(400, "invalid_request", FieldProblem("body", "is not valid JSON")) from None


def signed_report_handler(
    app: RestResolver, keys: SigningKeys, sdk_tracing: bool
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The function's Lambda handler: the checks above, then the route of `app` with the report."""

    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            headers = _headers(event)
            body = raw_body(event)
            check_signature(headers, body, keys)
            document = report_document(headers, body)
            if not isinstance(document, list):
                raise BodyRejected(400, "invalid_request", FieldProblem("body", "must be a JSON array of matches"))
            # resolve() validates any document against the route's body model (here a JSON array).
            response = app.resolve(event, cast(Any, document))
        except Exception as error:  # every failure has its defined answer (response_for)
            response = response_for(error)
        return response.proxy_result()

    if sdk_tracing:
        handle = get_tracer().capture_lambda_handler(capture_response=False)(handle)
    traced = metrics.log_metrics(handle)
    logged = logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    return logged(traced)


# -- the partner's key list ----------------------------------------------------------------------


def key_list_fetcher(url: str, timeout: float) -> Callable[[], dict[str, str]]:
    """Fetches `{"public_keys": [{"key_identifier", "key", "is_current"}, ...]}` (GitHub's
    format) as key id -> PEM; raises KeyListUnavailable when it cannot."""

    def fetch() -> dict[str, str]:
        # `url` is https, or http on the loopback interface (config.py refuses anything else).
        request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "api-tokens"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
                data = answer.read(MAX_KEY_LIST_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as error:
            logger.error("Signing key list unreachable", extra={"error_type": type(error).__name__})
            raise KeyListUnavailable() from error
        try:
            if len(data) > MAX_KEY_LIST_BYTES:
                raise ValueError("too large")
            keys = parse_key_list(json.loads(data))
        except (ValueError, UnicodeDecodeError) as error:
            logger.error("Signing key list unreadable", extra={"reason": str(error)[:200]})
            raise KeyListUnavailable() from error
        logger.info("Signing key list fetched", extra={"key_ids": sorted(keys)})
        return keys

    return fetch


def parse_key_list(document: Any) -> dict[str, str]:
    """Key id -> PEM of a key list document; ValueError unless it has the expected shape."""
    entries = document.get("public_keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("no public_keys array")
    keys = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError("a public_keys entry is not an object")
        key_id, pem = entry.get("key_identifier"), entry.get("key")
        if not isinstance(key_id, str) or not key_id or not isinstance(pem, str) or "PUBLIC KEY" not in pem:
            raise ValueError("a public_keys entry lacks key_identifier or key")
        keys[key_id] = pem
    return keys
