"""One cold start, in a fresh python3.13 started with -S (no site), as a script in a folder of its own.

    coldstart_child.py RESULT_FILE PATHS handler EVENT_FILE [--count]
    coldstart_child.py RESULT_FILE PATHS baseline [--get-item PK] [--count]

PATHS (os.pathsep-separated) replaces sys.path in front of the standard library: the built
function's folder, the layer's python/ and the runtime stand-in, as on Lambda. `handler`
imports `app` and serves one event, as the Lambda runtime does at a cold start. `baseline`
does `import boto3; boto3.client("dynamodb")` and, with --get-item, one consistent GetItem.
Both write to RESULT_FILE the monotonic clock when the event was served (the parent
subtracts its own clock at spawn), the peak RSS, whether awscrt was importable, and (with
--count) the AWS calls made, counted by a handler every botocore session registers, and the
handler's HTTP status.
"""

import json
import os
import sys
import time


class _Context:
    """The parts of the Lambda context object the handlers read."""

    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "coldstart")
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:coldstart"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/coldstart"
    log_stream_name = "coldstart"

    def __init__(self) -> None:
        self._deadline = time.monotonic() + 10

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _count_calls(calls: list) -> None:
    """Every botocore session created from here on (boto3's default one, or the service's own)
    registers botocore's built-in handlers, this counter among them."""
    from botocore.handlers import BUILTIN_HANDLERS

    BUILTIN_HANDLERS.append(
        ("before-call", lambda model, **_: calls.append(f"{model.service_model.service_name}:{model.name}"))
    )


def main() -> None:
    result_file, paths, mode, *rest = sys.argv[1:]
    sys.path[:] = [*paths.split(os.pathsep), *(entry for entry in sys.path[1:] if "site-packages" not in entry)]
    calls: list = []
    if "--count" in rest:
        rest.remove("--count")
        _count_calls(calls)
    if mode == "handler":
        import importlib

        module = importlib.import_module("app")
        with open(rest[0], encoding="utf-8") as stream:
            event = json.load(stream)
        try:
            answer = module.lambda_handler(event, _Context())
            if isinstance(answer, dict) and "statusCode" in answer:
                calls.append(f"status:{answer['statusCode']}")
        except Exception as error:  # the authorizer answers 401 by raising; the bench checks calls
            calls.append(f"raised:{type(error).__name__}")
    else:
        import boto3

        client = boto3.client("dynamodb")  # AWS_ENDPOINT_URL_DYNAMODB, as the handlers' env
        if rest and rest[0] == "--get-item":
            client.get_item(
                TableName=os.environ["TABLE_NAME"],
                Key={"pk": {"S": rest[1]}, "sk": {"S": "TOKEN"}},
                ConsistentRead=True,
            )
    served_ns = time.monotonic_ns()
    import importlib.util
    import resource

    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    botocore = sys.modules.get("botocore")
    result = {
        "served_ns": served_ns,
        "maxrss_kib": peak_kib,
        "calls": calls,
        "awscrt": importlib.util.find_spec("awscrt") is not None,
        "botocore": os.path.dirname(botocore.__file__) if botocore else None,
    }
    with open(result_file, "w", encoding="utf-8") as stream:
        json.dump(result, stream)


if __name__ == "__main__":
    main()
