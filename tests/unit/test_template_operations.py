"""template.yaml's operational shape: alarms on the metrics the code really emits, JSON access
logs without credentials, one log retention for every log group, the cleanup's retries and
dead-letter queue, a table that cannot be deleted by accident, no reserved concurrency, and a
reason for every checkov finding skipped."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from devserver.template import ROOT, load_template
from token_service.domain.authorizer import Reason
from token_service.observability import DecisionLog

RESOURCES: dict[str, Any] = load_template()["Resources"]
ENVIRONMENT = load_template()["Globals"]["Function"]["Environment"]["Variables"]
SERVICE, NAMESPACE = ENVIRONMENT["POWERTOOLS_SERVICE_NAME"], ENVIRONMENT["POWERTOOLS_METRICS_NAMESPACE"]


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {logical_id: resource for logical_id, resource in RESOURCES.items() if resource["Type"] == kind}


def alarm(logical_id: str) -> dict[str, Any]:
    resource = RESOURCES[logical_id]
    assert resource["Type"] == "AWS::CloudWatch::Alarm"
    return dict(resource["Properties"])


def dimensions(properties: dict[str, Any]) -> dict[str, Any]:
    return {dimension["Name"]: dimension["Value"] for dimension in properties["Dimensions"]}


# -- alarms -------------------------------------------------------------------------------


def test_every_alarm_notifies_the_topic_whose_email_subscription_is_optional() -> None:
    alarms = of_type("AWS::CloudWatch::Alarm")
    assert set(alarms) == {
        "AuthorizerErrorsAlarm",
        "AuthorizerThrottlesAlarm",
        "AuthorizerLatencyAlarm",
        "CleanupErrorsAlarm",
        "CleanupIncompleteRunsAlarm",
        "AuthorizerCacheFlushFailedAlarm",
        "FlushDeadLetterAlarm",
        "CleanupDeadLetterAlarm",
    }
    for properties in (resource["Properties"] for resource in alarms.values()):
        assert properties["AlarmActions"] == properties["OKActions"] == [{"Ref": "AlarmTopic"}]
        assert properties["TreatMissingData"] == "notBreaching"
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert load_template()["Parameters"]["AlarmEmail"]["Default"] == ""
    assert load_template()["Conditions"]["HasAlarmEmail"] == {"Not": [{"Equals": [{"Ref": "AlarmEmail"}, ""]}]}


def test_the_authorizer_errors_alarm_counts_the_decision_line_of_a_fail_closed_denial(capsys) -> None:
    """Lambda's Errors metric would count every 401 (a REST authorizer raises "Unauthorized")."""
    DecisionLog(SERVICE, NAMESPACE).record("Denied", {"reason": Reason.UNAVAILABLE.value}, {"token_id": None})
    line = json.loads(capsys.readouterr().out)
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    properties = alarm("AuthorizerErrorsAlarm")
    assert (properties["Namespace"], properties["MetricName"]) == (directive["Namespace"], "Denied")
    assert directive["Metrics"] == [{"Name": "Denied", "Unit": "Count"}]
    (names,) = directive["Dimensions"]
    assert (
        dimensions(properties)
        == {name: line[name] for name in names}
        == {
            "service": SERVICE,
            "reason": "store_unavailable",
        }
    )
    handler = (ROOT / "functions" / "authorizer" / "app.py").read_text(encoding="utf-8")
    assert '"Denied"' in handler and '{"reason": decision.reason.value}' in handler


@pytest.mark.parametrize(
    ("logical_id", "metric", "source"),
    [
        ("CleanupIncompleteRunsAlarm", "IncompleteRuns", "functions/cleanup/app.py"),
        ("AuthorizerCacheFlushFailedAlarm", "AuthorizerCacheFlushFailed", "layers/tokens/token_service/storage"),
    ],
)
def test_the_powertools_metric_alarms_match_what_powertools_writes(logical_id: str, metric: str, source: str) -> None:
    sources = [ROOT / source] if source.endswith(".py") else sorted((ROOT / source).glob("*.py"))
    assert any(f'name="{metric}"' in path.read_text(encoding="utf-8") for path in sources), f"{metric} not emitted"
    metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
    metrics.add_metric(name=metric, unit="Count", value=1)
    document = metrics.serialize_metric_set()
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    properties = alarm(logical_id)
    assert (properties["Namespace"], properties["MetricName"]) == (directive["Namespace"], metric)
    (names,) = directive["Dimensions"]
    assert dimensions(properties) == {name: document[name] for name in names} == {"service": SERVICE}


def test_the_lambda_metric_alarms_watch_the_right_functions() -> None:
    expected = {
        "AuthorizerThrottlesAlarm": ("Throttles", "AuthorizerFunction"),
        "AuthorizerLatencyAlarm": ("Duration", "AuthorizerFunction"),
        "CleanupErrorsAlarm": ("Errors", "CleanupFunction"),
    }
    for logical_id, (metric, function) in expected.items():
        properties = alarm(logical_id)
        assert (properties["Namespace"], properties["MetricName"]) == ("AWS/Lambda", metric)
        assert dimensions(properties) == {"FunctionName": {"Ref": function}}
    latency = alarm("AuthorizerLatencyAlarm")
    assert latency["ExtendedStatistic"] == "p99" and "Statistic" not in latency
    assert latency["Threshold"] == {"Ref": "AuthorizerLatencyAlarmMs"}


# -- the cleanup's schedule: retries and dead letters ----------------------------------------


def test_the_cleanup_schedule_retries_and_dead_letters_go_to_an_alarmed_queue() -> None:
    cleanup = RESOURCES["CleanupFunction"]["Properties"]
    queue_arn = {"GetAtt": "CleanupDeadLetterQueue.Arn"}
    schedule = cleanup["Events"]["Schedule"]
    assert schedule["Type"] == "Schedule"
    assert schedule["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert schedule["Properties"]["DeadLetterConfig"] == {"Arn": queue_arn}
    assert cleanup["DeadLetterQueue"] == {"Type": "SQS", "TargetArn": queue_arn}
    # With an Arn, SAM adds no queue policy: EventBridge needs this one (the rule SAM generates
    # is named <function><event>).
    (statement,) = RESOURCES["CleanupDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"GetAtt": "CleanupFunctionSchedule.Arn"}
    properties = alarm("CleanupDeadLetterAlarm")
    assert (properties["Namespace"], properties["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dimensions(properties) == {"QueueName": {"GetAtt": "CleanupDeadLetterQueue.QueueName"}}
    assert "ReservedConcurrentExecutions" not in cleanup


# -- logs ---------------------------------------------------------------------------------


def test_every_log_group_keeps_events_for_the_log_retention_parameter() -> None:
    groups = of_type("AWS::Logs::LogGroup")
    for resource in groups.values():
        assert resource["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    named = {str(resource["Properties"]["LogGroupName"]["Sub"]) for resource in groups.values()}
    functions = of_type("AWS::Serverless::Function")
    assert {f"/aws/lambda/${{{logical_id}}}" for logical_id in functions} <= named
    parameter = load_template()["Parameters"]["LogRetentionDays"]
    assert parameter["Default"] in parameter["AllowedValues"]


@pytest.mark.parametrize(
    ("api", "who"), [("TokenApi", "$context.authorizer.token_id"), ("ConsoleApi", "$context.authorizer.claims.sub")]
)
def test_both_apis_write_json_access_logs_that_name_the_caller_but_no_credential(api: str, who: str) -> None:
    setting = RESOURCES[api]["Properties"]["AccessLogSetting"]
    destination = setting["DestinationArn"]["GetAtt"].removesuffix(".Arn")
    assert RESOURCES[destination]["Type"] == "AWS::Logs::LogGroup"
    entry = json.loads(setting["Format"])
    values = set(entry.values())
    assert "$context.requestId" in values  # required by API Gateway
    assert who in values
    assert all(re.fullmatch(r"\$context\.[A-Za-z_.]+", value) for value in values)  # no headers, no $input
    assert "authorization" not in setting["Format"].lower()
    assert "header" not in setting["Format"].lower()
    assert RESOURCES[api]["DependsOn"] == "ApiGatewayLoggingReady"


# -- deploys anywhere -----------------------------------------------------------------------


def test_the_table_survives_deletes_and_no_function_reserves_concurrency() -> None:
    table = RESOURCES["TokensTable"]
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    for logical_id, resource in of_type("AWS::Serverless::Function").items():
        assert "ReservedConcurrentExecutions" not in resource["Properties"], logical_id
    assert "ReservedConcurrentExecutions" not in load_template()["Globals"]["Function"]


def test_every_checkov_skip_names_a_check_and_gives_its_reason() -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in RESOURCES.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), logical_id
        assert len(skip.get("comment", "")) >= 60, f"{logical_id} {skip['id']}: say why"


def test_every_parameter_is_in_the_readmes_configuration_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    documented = {name for cell in first_cells for name in re.findall(r"`([A-Za-z0-9]+)`", cell)}
    assert set(load_template()["Parameters"]) == documented
