"""Lifecycle events on the EventBridge bus."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cached_property
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from token_service.observability import logger, metrics

EVENT_SOURCE = "api-tokens"


class EventPublisher:
    """Publishes lifecycle events to the EventBridge bus. Returns False when not accepted, and
    logs it: the change the event announces is already stored. The client is made on first
    use (`client_factory`): most requests publish nothing."""

    def __init__(self, bus_name: str, client_factory: Callable[[], Any]) -> None:
        self.bus_name = bus_name
        self.client_factory = client_factory

    @cached_property
    def client(self) -> Any:
        return self.client_factory()

    def publish(self, detail_type: str, detail: dict[str, Any]) -> bool:
        try:
            response = self.client.put_events(
                Entries=[
                    {
                        "Source": EVENT_SOURCE,
                        "DetailType": detail_type,
                        "Detail": json.dumps(detail),
                        "EventBusName": self.bus_name,
                    }
                ]
            )
        except (ClientError, BotoCoreError) as error:
            return self._not_published(detail_type, type(error).__name__)
        if int(response.get("FailedEntryCount", 0)) != 0:
            return self._not_published(detail_type, str(response["Entries"][0].get("ErrorCode")))
        return True

    @staticmethod
    def _not_published(detail_type: str, error: str) -> bool:
        logger.warning("Lifecycle event not published", extra={"detail_type": detail_type, "error": error})
        metrics.add_metric(name="EventsNotPublished", unit="Count", value=1)
        return False
