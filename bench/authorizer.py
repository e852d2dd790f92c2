"""Figures 1 and 2: the authorizer's warm decision, and its rejection of a malformed token.

Runs the real handler (functions/authorizer/app.py, loaded as the devserver loads it) with
an API Gateway TOKEN event, each variant in single calls alternating with a consistent
GetItem of the same item on a client configured exactly like the authorizer's (the same
`dynamodb_client` call), awscrt not importable (bench.worker). DynamoDB calls and their
parameters are recorded with a botocore `before-call` hook on the authorizer's own client.
Import after `environment.configure`.
"""

from __future__ import annotations

import importlib.util
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench import seeding
from bench.environment import TABLE_NAME, WorkerSettings
from bench.timing import interleaved_calls
from devserver.gateway import LambdaContext, load_handler_module
from devserver.template import function
from token_service.domain.token_format import ALPHABET, generate_token
from token_service.storage.attribute_values import deserialize, serialize
from token_service.storage.aws import dynamodb_client
from token_service.storage.items import token_key

# The attributes the authorizer's decision reads (domain/authorizer.py): its key, hash,
# revocation, expiry, scopes and last use. "ttl" is not among them.
PROJECTION = "token_id, org_id, owner_id, secret_hash, hash_version, revoked_at, expires_at, scopes, last_used_at"


def _wrong_checksum(token: str) -> str:
    last = token[-1]
    return token[:-1] + ALPHABET[(ALPHABET.index(last) + 1) % len(ALPHABET)]


def run(settings: WorkerSettings) -> dict[str, Any]:
    spec = function("AuthorizerFunction")
    module = load_handler_module(spec.code_dir, spec.handler)
    calls: Counter[str] = Counter()
    projections: set[str | None] = set()

    def record_call(model: Any, **_: Any) -> None:
        calls.update([model.name])

    def record_projection(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "GetItem":  # the API parameters (before-call sees the serialized request)
            projections.add(params.get("ProjectionExpression"))

    events = module.authorizer.repository.client.meta.events
    events.register("before-call.dynamodb", record_call)
    events.register("provide-client-params.dynamodb", record_projection)
    # As functions/authorizer/app.py builds its client.
    bare = dynamodb_client(settings.endpoint, connect_timeout=0.5, read_timeout=1.0, attempts=3)
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

    def whole_item() -> None:  # what the authorizer reads and decodes today
        module.authorizer.repository.get_token(generated.token_id)

    def projected_item() -> None:  # only what its decision uses
        item = bare.get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=True, ProjectionExpression=PROJECTION).get(
            "Item"
        )
        deserialize(item)

    pairs, malformed_pairs = (200, 100) if settings.quick else (1000, 400)
    variants: dict[str, tuple[Callable[[], None], Callable[[], None], int]] = {
        "warm": (warm_decision, get_item, pairs),
        "malformed_handler": (reject_in_handler, get_item, malformed_pairs),
        "projection": (whole_item, projected_item, malformed_pairs),
    }
    results: dict[str, Any] = {"awscrt": importlib.util.find_spec("awscrt") is not None}
    for name, (subject, baseline, count) in variants.items():
        calls.clear()
        projections.clear()
        results[name] = {**interleaved_calls(subject, baseline, pairs=count), "calls": dict(calls)}
        results[name]["projections"] = sorted(str(value) for value in projections)
    return results
