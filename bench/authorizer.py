"""Figures 1 and 2: the authorizer's warm decision, and its rejection of a malformed token.

Runs the real handler (functions/authorizer/app.py, loaded as the devserver loads it) with
an API Gateway TOKEN event, each variant in single calls alternating with a consistent
GetItem of the same item on a bare boto3 client. DynamoDB calls are counted with a botocore
`before-call` hook on the authorizer's own client. Import after `environment.configure`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench import seeding
from bench.backends import client
from bench.environment import TABLE_NAME, WorkerSettings
from bench.timing import interleaved_calls
from devserver.gateway import LambdaContext, load_handler_module
from devserver.template import function
from token_service.domain.token_format import ALPHABET, generate_token
from token_service.storage.attribute_values import serialize
from token_service.storage.items import token_key


def _wrong_checksum(token: str) -> str:
    last = token[-1]
    return token[:-1] + ALPHABET[(ALPHABET.index(last) + 1) % len(ALPHABET)]


def run(settings: WorkerSettings) -> dict[str, Any]:
    spec = function("AuthorizerFunction")
    module = load_handler_module(spec.code_dir, spec.handler)
    calls: Counter[str] = Counter()
    module.authorizer.repository.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.update([model.name])
    )
    bare = client("dynamodb", settings.endpoint)
    generated = generate_token(module.authorizer.token_prefix)
    token = seeding.record(
        generated.token_id,
        org_id="org-bench",
        owner_id="user-bench",
        now=time.time(),
        secret_hash=generated.secret_hash(),
    )
    bare.put_item(TableName=TABLE_NAME, Item=next(seeding.items([token])))
    key = serialize(token_key(generated.token_id))
    valid, malformed = seeding.token_event(generated.token), seeding.token_event(_wrong_checksum(generated.token))
    context = LambdaContext(function_name="AuthorizerFunction")

    # The first call records the token's last use (GetItem + UpdateItem); it is throttled after that.
    policy = module.lambda_handler(valid, context)
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow", policy

    def get_item() -> None:
        bare.get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=True)

    def warm_decision() -> None:
        module.lambda_handler(valid, context)

    def reject_in_handler() -> None:
        try:
            module.lambda_handler(malformed, context)
        except Exception as error:  # API Gateway answers 401 to exactly this message
            if str(error) != "Unauthorized":
                raise
            return
        raise AssertionError("a malformed token was not rejected")

    def reject_decision() -> None:  # without the handler's event parsing, decision line and response
        assert not module.authorizer.decide(malformed["authorizationToken"], "GET", "/v1/reports").allowed

    pairs, malformed_pairs = (200, 100) if settings.quick else (1000, 400)
    variants: dict[str, tuple[Callable[[], None], int]] = {
        "warm": (warm_decision, pairs),
        "malformed_handler": (reject_in_handler, malformed_pairs),
        "malformed_decision": (reject_decision, malformed_pairs),
    }
    results: dict[str, Any] = {}
    for name, (subject, count) in variants.items():
        calls.clear()
        results[name] = {**interleaved_calls(subject, get_item, pairs=count), "calls": dict(calls)}
    return results
