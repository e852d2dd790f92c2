"""Fixtures of the cleanup tests: the service at the cleanup's test dates, and the harness."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from support import BUS_NAME, CREATED, Cleanup, FakeClock

from token_service import wiring
from token_service.domain.service import TokenService


@pytest.fixture
def clock(dynamodb: Any) -> FakeClock:
    fake = FakeClock(CREATED)
    wiring.get_service().clock = fake
    return fake


@pytest.fixture
def svc(clock: FakeClock) -> TokenService:
    return wiring.get_service()


@pytest.fixture
def cleanup(svc: TokenService) -> Cleanup:
    return Cleanup(svc)


@pytest.fixture
def fast_thread_switching() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


@pytest.fixture
def event_queue(dynamodb: Any) -> Callable[[], list[dict[str, Any]]]:
    """A real (moto) bus named like the deployed one, with a rule sending the service's events to SQS."""
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events.create_event_bus(Name=BUS_NAME)
    queue_url = sqs.create_queue(QueueName="token-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="to-queue", EventBusName=BUS_NAME, EventPattern=json.dumps({"source": ["api-tokens"]}))
    events.put_targets(Rule="to-queue", EventBusName=BUS_NAME, Targets=[{"Id": "queue", "Arn": queue_arn}])

    def receive() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    return receive
