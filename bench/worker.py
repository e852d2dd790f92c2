"""`python -m bench.worker TASK ...`: one figure's measurements in a fresh process.

Each task runs in its own process because the service reads its configuration (and the
handlers build their clients) once per process, at import. Its results go to --out as JSON;
its stdout is the handlers' log and metric lines, which the bench discards (Lambda ships
them to CloudWatch).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings
from pathlib import Path

from bench.environment import WorkerSettings, configure

TASKS = {
    "authorizer": "bench.authorizer",
    "coldstart": "bench.coldstart",
    "revoke": "bench.revoke",
    "scale": "bench.scale",
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--endpoint", default="", help="DynamoDB endpoint (empty: the task starts moto itself)")
    parser.add_argument("--events-endpoint", default=None, help="EventBridge endpoint (the cleanup publishes)")
    parser.add_argument("--backend", default="moto")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    # Powertools warns when an invocation emitted no metric (reads); expected, as in the tests.
    warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
    if arguments.endpoint:
        configure(arguments.endpoint, arguments.events_endpoint)
    # As on Lambda, where the runtime has no awscrt (botocore imports it whenever it is installed,
    # and this venv has it for its dev tools): botocore then finds it not importable.
    sys.modules["awscrt"] = None  # type: ignore[assignment]
    settings = WorkerSettings(
        arguments.endpoint, arguments.backend, arguments.quick, arguments.latency_ms, arguments.events_endpoint or ""
    )
    result = importlib.import_module(TASKS[arguments.task]).run(settings)
    arguments.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
