"""Fixtures every tier shares: DynamoDB (moto in-process, or dynalite for modules marked
`dynamodb_backends`) with the table built from template.yaml; the service's clock; console
users; log capture, and a check after every test that no token ever reached a log line.

`--dynamodb=moto|dynalite|both` chooses the backends of the modules marked
`dynamodb_backends` (default: both, as `make test` runs them)."""

from __future__ import annotations

import io
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator

# Set before any service module is imported: configuration is read once per process.
os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "TABLE_NAME": "api-tokens-test",
        "TOKEN_PREFIX": "lgk",
        "RETENTION_DAYS": "30",
        "POWERTOOLS_SERVICE_NAME": "api-tokens",
        "POWERTOOLS_METRICS_NAMESPACE": "ApiTokens",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "EVENT_BUS_NAME": "api-tokens-test",
        "NOTIFY_BEFORE_DAYS": "7,1",
        # The app client of devserver.gateway.Identity's claims and of the sample events (`aud`).
        "CONSOLE_CLIENT_IDS": "4example0client0id0abcdef",
    }
)
os.environ.pop("DYNAMODB_ENDPOINT_URL", None)
os.environ.pop("SCOPE_CATALOG_PATH", None)

import boto3
import pytest
from moto import mock_aws
from support import ORG, OTHER_ORG, T0, TABLE_NAME, TOKEN_IN_TEXT, Console, FakeClock, RecordingPublisher

from devserver.dynalite import DYNALITE, start_dynalite
from devserver.gateway import Identity
from devserver.template import table_definition
from token_service import observability, wiring
from token_service.observability import logger


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--dynamodb",
        choices=("moto", "dynalite", "both"),
        default="both",
        help="backends of the modules marked dynamodb_backends (default: both)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dynamodb_backends: also run against dynalite (DynamoDB's own validation)")
    config.addinivalue_line("markers", "clock_at(moment): the service's clock starts at this datetime or epoch")
    config.addinivalue_line(
        "markers", "devserver(identity_headers=True, identity_fallback=True, env={}): how the module's server starts"
    )


def dynamodb_backends(config: pytest.Config) -> list[str]:
    wanted = config.getoption("--dynamodb")
    if wanted == "moto":
        return ["moto"]
    if DYNALITE.exists() and shutil.which("node"):
        return ["dynalite"] if wanted == "dynalite" else ["moto", "dynalite"]
    if os.environ.get("CI"):
        raise RuntimeError("CI must run the tests against dynalite too: run `npm ci` first (see .ci/run)")
    return ["moto"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not metafunc.definition.get_closest_marker("dynamodb_backends"):
        return
    backends = dynamodb_backends(metafunc.config)
    if "dynamodb" in metafunc.fixturenames:
        metafunc.parametrize("dynamodb", backends, indirect=True)
    elif "server" in metafunc.fixturenames:  # the dev server, on each backend (tests/system)
        metafunc.parametrize("server", backends, indirect=True, scope="module")


@pytest.fixture(scope="session")
def dynalite_endpoint() -> Iterator[str]:
    process, endpoint = start_dynalite(DYNALITE)
    yield endpoint
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def dynamodb(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    backend = getattr(request, "param", "moto")
    wiring.reset()
    if backend == "moto":
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(TableName=TABLE_NAME, **table_definition())
            yield client
    else:
        endpoint = request.getfixturevalue("dynalite_endpoint")
        monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", endpoint)
        client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint)
        if TABLE_NAME in client.list_tables()["TableNames"]:
            client.delete_table(TableName=TABLE_NAME)
            client.get_waiter("table_not_exists").wait(TableName=TABLE_NAME, WaiterConfig={"Delay": 0.1})
        client.create_table(TableName=TABLE_NAME, **table_definition())
        client.get_waiter("table_exists").wait(TableName=TABLE_NAME, WaiterConfig={"Delay": 0.1})
        yield client
    wiring.reset()


@pytest.fixture(autouse=True)
def lifecycle_events(monkeypatch: pytest.MonkeyPatch) -> RecordingPublisher:
    """The management functions' lifecycle events, recorded instead of sent to EventBridge
    (the cleanup's go to moto's bus, where its handler tests read them)."""
    recorder = RecordingPublisher()
    monkeypatch.setattr(wiring, "EventPublisher", lambda bus_name, client_factory: recorder)
    return recorder


@pytest.fixture
def clock(request: pytest.FixtureRequest, dynamodb: object) -> FakeClock:
    """The service's clock, fixed at T0 (or the module's `clock_at` moment) until a test moves it."""
    marker = request.node.get_closest_marker("clock_at")
    fake = FakeClock(marker.args[0] if marker else T0)
    wiring.get_service().clock = fake
    return fake


@pytest.fixture
def admin(dynamodb: object) -> Console:
    return Console(Identity(user_id="user-admin", org_id=ORG, role="admin"))


@pytest.fixture
def member(dynamodb: object) -> Console:
    return Console(Identity(user_id="user-member", org_id=ORG, role="member"))


@pytest.fixture
def other_member(dynamodb: object) -> Console:
    return Console(Identity(user_id="user-member-2", org_id=ORG, role="member"))


@pytest.fixture
def viewer(dynamodb: object) -> Console:
    return Console(Identity(user_id="user-viewer", org_id=ORG, role="viewer"))


@pytest.fixture
def outsider_admin(dynamodb: object) -> Console:
    return Console(Identity(user_id="user-globex-admin", org_id=OTHER_ORG, role="admin"))


class LeakScan(logging.Handler):
    """On the root logger: every record of every library (botocore, Powertools, moto, the dev
    server...), DEBUG included, formatted as a log line would be; keeps those that hold a token
    or an Authorization value.

    Except the tests' own HTTP clients: urllib3 (under requests) logs each request's URL at
    DEBUG, and the tests that check a token in a query string is refused send one there on
    purpose; selenium logs what the browser test types and reads. In this process urllib3
    carries only the tests' requests: moto answers botocore before urllib3, and in tests/system
    the service runs in a process of its own."""

    CLIENTS = ("urllib3", "selenium")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".", 1)[0] in self.CLIENTS:
            return
        line = self.format(record)
        if "Bearer " in line or TOKEN_IN_TEXT.search(line):
            self.leaks.append(line)


@pytest.fixture(autouse=True)
def one_invocation_per_metrics_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lambda runs one invocation per process at a time; tests that call handlers from several
    threads share Powertools' one metrics buffer, where one thread's flush can empty it between
    another's check and its serialisation ("Must contain at least one metric"). One lock around
    adding, flushing and clearing restores what each process has in Lambda, and nothing more."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    lock = threading.RLock()

    def locked(original: Callable[..., object]) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            with lock:
                return original(*args, **kwargs)

        return call

    for name in ("add_metric", "flush_metrics", "clear_metrics"):
        monkeypatch.setattr(AmazonCloudWatchEMFProvider, name, locked(getattr(AmazonCloudWatchEMFProvider, name)))


@pytest.fixture(autouse=True)
def service_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The service's log lines exactly as Lambda would ship them (Powertools JSON).

    Autouse: after every test of the suite, no log line may contain a token, at any level. The
    service's logger and the root logger (every library's records) log from DEBUG up during
    the test, whatever POWERTOOLS_LOG_LEVEL says, so a `logger.debug` of a secret is caught."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    service_logger, root = logger._logger, logging.getLogger()
    levels = service_logger.level, root.level
    scan = LeakScan()
    service_logger.addHandler(handler)
    root.addHandler(scan)
    service_logger.setLevel(logging.DEBUG)
    root.setLevel(logging.DEBUG)
    write_to_stdout = observability.write_decision_line

    def write_decision_line(line: str) -> None:  # the authorizer's lines: to stdout, and here
        stream.write(line + "\n")
        write_to_stdout(line)

    monkeypatch.setattr(observability, "write_decision_line", write_decision_line)
    yield stream
    service_logger.removeHandler(handler)
    root.removeHandler(scan)
    service_logger.setLevel(levels[0])
    root.setLevel(levels[1])
    text = stream.getvalue()
    leaked = TOKEN_IN_TEXT.findall(text)
    assert not leaked, f"a token reached the service's logs: {leaked[0][:8]}..."
    assert "Bearer " not in text, "an Authorization header value reached the service's logs"
    assert not scan.leaks, "a token or an Authorization value reached a log line: " + TOKEN_IN_TEXT.sub(
        lambda token: token[0][:8] + "...", scan.leaks[0]
    )


@pytest.fixture
def captured_logs(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, service_log: io.StringIO
) -> object:
    """Everything the service logged or printed (metrics are printed as EMF JSON)."""
    caplog.set_level(logging.DEBUG)

    def read() -> str:
        captured = capsys.readouterr()
        return captured.out + captured.err + caplog.text + service_log.getvalue()

    return read
