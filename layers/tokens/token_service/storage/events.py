"""Lifecycle events on the EventBridge bus."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

EVENT_SOURCE = "api-tokens"


class EventPublisher:
    """Publishes lifecycle events to the EventBridge bus. Returns False when not accepted."""

    def __init__(self, bus_name: str, client: Any) -> None:
        self.bus_name = bus_name
        self.client = client

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
        except (ClientError, BotoCoreError):
            return False
        return int(response.get("FailedEntryCount", 0)) == 0
