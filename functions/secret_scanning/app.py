"""POST /v1/secret-scanning: leaked-token reports from GitHub's secret-scanning partner program.

No authorizer: the report's signature is the credential (token_service.http.secret_scanning).
Each well-formed token of ours is revoked, its caches flushed and TokenLeaked announced
(TokenService.revoke_leaked_token); the answer labels every match true or false positive.

The only function that loads `cryptography` (the ECDSA check below): no other cold start pays for it.
"""

import token_service.startup  # first: pauses garbage collection while modules load

from dataclasses import replace
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from token_service.config import management_config, secret_scanning_config
from token_service.domain.leaks import TRUE_POSITIVE, SigningKeys, judge_report
from token_service.domain.service import TokenService
from token_service.http.proxy import serving_stage
from token_service.http.rest import JsonResponse
from token_service.http.secret_scanning import (
    LeakReport,
    SignedReportResolver,
    VerdictsView,
    key_list_fetcher,
    signed_report_handler,
    verdicts_response,
)
from token_service.observability import logger, metrics
from token_service.wiring import get_service

app = SignedReportResolver()


def ecdsa_p256_sha256(pem: str, signature: bytes, message: bytes) -> bool:
    """Whether `signature` (DER) is the P-256 key's ECDSA SHA-256 signature of `message`."""
    key = load_pem_public_key(pem.encode("ascii"))  # ValueError when malformed
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not a P-256 public key")
    try:
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def reporting_service() -> TokenService:
    """The service, flushing the stage that served the report too: the token API, whose cache
    holds the leaked token's policies and which this function cannot name in its configuration
    (the API refers to the function)."""
    service = get_service()
    stage = serving_stage(app)
    if stage is None or stage in service.settings.flush_stages:
        return service
    return replace(service, settings=replace(service.settings, flush_stages=(*service.settings.flush_stages, stage)))


@app.route(
    "POST",
    "/v1/secret-scanning",
    summary="A leaked-token report (GitHub secret-scanning partner format): revoke ours, label each match",
    body=LeakReport,
    response=VerdictsView,
    errors={401: "No valid signature of the report by a key of the partner's key list.", 503: ""},
)
def report_leaked_tokens(body: LeakReport) -> JsonResponse:
    service = reporting_service()
    verdicts = judge_report(body.reported(), service.settings.token_prefix, service)
    found = sum(verdict.label == TRUE_POSITIVE for verdict in verdicts)
    metrics.add_metric(name="LeakedTokensReported", unit=MetricUnit.Count, value=len(verdicts))
    metrics.add_metric(name="LeakedTokensFound", unit=MetricUnit.Count, value=found)
    logger.info("Leak report judged", extra={"matches": len(verdicts), "true_positives": found})
    return verdicts_response(verdicts)


config = secret_scanning_config()
signing_keys = SigningKeys(
    key_list_fetcher(config.keys_url, config.fetch_timeout), ecdsa_p256_sha256, config.refetch_seconds
)

# Start-up goes on through the first event, which creates the AWS clients and builds the validators.
lambda_handler: Any = token_service.startup.through_first_event(
    signed_report_handler(app, signing_keys, management_config().sdk_tracing)
)

token_service.startup.finished()
