"""Figures 1 and 2: the authorizer's warm decision, and its rejection of a malformed token.

Runs the real handler (functions/authorizer/app.py, loaded as the devserver loads it) with
an API Gateway TOKEN event. DynamoDB calls are counted with a botocore `before-call` hook
on the authorizer's own client. Import after `environment.configure`.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from bench import seeding
from bench.backends import client
from bench.environment import TABLE_NAME, WorkerSettings
from bench.timing import interleaved_calls
from devserver.gateway import LambdaContext, load_handler_module
from devserver.template import function
from token_service.attribute_values import serialize
from token_service.records import token_key
from token_service.token_format import ALPHABET, generate_token

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:benchapi01/dev/GET/v1/reports"


def _wrong_checksum(token: str) -> str:
    last = token[-1]
    return token[:-1] + ALPHABET[(ALPHABET.index(last) + 1) % len(ALPHABET)]


def run(settings: WorkerSettings) -> dict[str, Any]:
    endpoint, quick = settings.endpoint, settings.quick
    spec = function("AuthorizerFunction")
    module = load_handler_module(spec.code_dir, spec.handler)
    powertools = any(name.partition(".")[0] == "aws_lambda_powertools" for name in sys.modules)
    calls: list[str] = []
    module.authorizer.repository.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    bare = client("dynamodb", endpoint)

    now = time.time()
    generated = generate_token(module.authorizer.token_prefix)
    token = seeding.record(
        generated.token_id, org_id="org-bench", owner_id="user-bench", now=now, secret_hash=generated.secret_hash()
    )
    bare.put_item(TableName=TABLE_NAME, Item=next(seeding.items([token])))
    key = serialize(token_key(generated.token_id))

    valid_event = {"type": "TOKEN", "authorizationToken": f"Bearer {generated.token}", "methodArn": METHOD_ARN}
    bad_token = _wrong_checksum(generated.token)
    bad_event = {"type": "TOKEN", "authorizationToken": f"Bearer {bad_token}", "methodArn": METHOD_ARN}
    context = LambdaContext(function_name="AuthorizerFunction")
    handler = module.lambda_handler

    # The first call is the warm-up: it records the last use (GetItem + UpdateItem).
    policy = handler(valid_event, context)
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow", policy
    first_call = list(calls)

    def get_item() -> None:
        bare.get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=True)

    def warm_decision() -> None:
        handler(valid_event, context)

    def warm_decide() -> None:  # the decision alone, without the handler's event parsing, log line and metrics
        assert module.authorizer.decide(valid_event["authorizationToken"], "GET", "/v1/reports").allowed

    pairs = 200 if quick else 1000
    calls.clear()
    warm = interleaved_calls(warm_decision, get_item, pairs=pairs)
    warm_calls = list(calls)
    decide = interleaved_calls(warm_decide, get_item, pairs=pairs // 2)
    service_client = module.authorizer.repository.client

    def get_item_on_service_client() -> None:  # botocore, fixed User-Agent, no parameter validation
        service_client.get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=True)

    warm_same_client = interleaved_calls(warm_decision, get_item_on_service_client, pairs=pairs // 2)
    stored = bare.get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=True)["Item"]

    def reject_in_handler() -> None:
        try:
            handler(bad_event, context)
        except module.Unauthorized:
            return
        raise AssertionError("a malformed token was not rejected")

    def reject_decision() -> None:
        decision = module.authorizer.decide(bad_event["authorizationToken"], "GET", "/v1/reports")
        assert not decision.allowed

    malformed_pairs = 100 if quick else 400
    calls.clear()
    handler_reject = interleaved_calls(reject_in_handler, get_item, pairs=malformed_pairs)
    decision_reject = interleaved_calls(reject_decision, get_item, pairs=malformed_pairs)
    malformed_calls = list(calls)

    return {
        "imports_powertools": powertools,
        "warm": warm.as_dict(),
        "warm_decide": decide.as_dict(),
        "first_call_operations": first_call,
        "warm_same_client": warm_same_client.as_dict(),
        "warm_calls_total": len(warm_calls),
        "warm_operations": sorted(set(warm_calls)),
        "warm_invocations": warm.repetitions + 10,  # plus the timing warm-up calls
        "last_used_at": int(stored["last_used_at"]["N"]),
        "seeded_at": int(now),
        "malformed_handler": handler_reject.as_dict(),
        "malformed_decision": decision_reject.as_dict(),
        "malformed_calls": len(malformed_calls),
        "malformed_invocations": 2 * (malformed_pairs + 10),
    }
