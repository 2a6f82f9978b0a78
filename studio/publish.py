"""The runtime's publish function, on top of the event bus."""

from __future__ import annotations

import logging
from typing import Any

from comfygraph.bus import EventBus, EventBusError
from comfygraph.studio.channels import Publish

log = logging.getLogger(__name__)


def bus_publisher(bus: EventBus) -> Publish:
    async def publish(channel: str, event: dict[str, Any], coalesce: str | None) -> None:
        # The row is already committed: a broker hiccup must not undo the caller's
        # work. Subscribers re-read the current state when their connection comes back.
        try:
            await bus.publish(channel, event, coalesce=coalesce)
        except EventBusError as exc:
            log.warning("event on %s not published: %s", channel, exc)

    return publish
