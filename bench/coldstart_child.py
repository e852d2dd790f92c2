"""One cold start, in a fresh interpreter (run as a script, so that it imports nothing else).

    python bench/coldstart_child.py RESULT_FILE handler CODE_DIR EVENT_FILE [--count]
    python bench/coldstart_child.py RESULT_FILE baseline [--get-item PK] [--count]

`handler` imports functions/<name>/app.py and serves one event, as the Lambda runtime does
at a cold start. `baseline` does `import boto3; boto3.client("dynamodb")` and, with
--get-item, one consistent GetItem. Both write to RESULT_FILE the monotonic clock when the
event was served (the parent subtracts its own clock at spawn), the peak RSS, and (with
--count) the AWS calls made, counted by a handler that every botocore session registers,
and the handler's HTTP status.
"""

import json
import os
import sys
import time


class _NotDeployed:
    """Hides what this venv has only for its dev tools and the Lambda runtime and the layer do
    not ship (layers/tokens/requirements.txt): botocore imports awscrt, and urllib3 pyOpenSSL,
    whenever they are installed. Both sides of every comparison hide the same packages."""

    HIDDEN = frozenset({"awscrt", "_awscrt", "OpenSSL"})

    @classmethod
    def find_spec(cls, name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] in cls.HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r} (not deployed)", name=name)


sys.meta_path.insert(0, _NotDeployed)  # type: ignore[arg-type]


class _Context:
    """The parts of the Lambda context object the handlers read."""

    function_name = "coldstart"
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
    result_file, mode, *rest = sys.argv[1:]
    calls: list = []
    if "--count" in rest:
        rest.remove("--count")
        _count_calls(calls)
    if mode == "handler":
        import importlib.util

        code_dir, event_file = rest
        spec = importlib.util.spec_from_file_location("app", os.path.join(code_dir, "app.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules["app"] = module
        spec.loader.exec_module(module)
        with open(event_file, encoding="utf-8") as stream:
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
    import resource

    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(result_file, "w", encoding="utf-8") as stream:
        json.dump({"served_ns": served_ns, "maxrss_kib": peak_kib, "calls": calls}, stream)


if __name__ == "__main__":
    main()
