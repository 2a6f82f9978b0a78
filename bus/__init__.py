"""The process's realtime event bus (docs/architecture.md, Realtime and Scale-out).

One :class:`EventBus` per process, owned by the app's lifespan::

    bus = EventBus.from_url(settings.effective_broadcast_url(), queue_size=256)
    async with bus:
        ...

Publish after the transaction commits; subscribe per client stream and re-read the state
on every :class:`Reconnected`::

    await bus.publish(f"job:{job.id}", {"type": "progress", "progress": 42},
                      coalesce="progress")          # progress ticks: latest wins
    await bus.publish(f"job:{job.id}", {"type": "status", "status": "completed"})

    async with bus.subscribe(f"job:{job_id}") as sub:   # listening once this returns
        yield await load_job(job_id)                    # so read the state after it
        async for item in sub:
            if isinstance(item, Reconnected):
                yield await load_job(job_id)            # events may have been lost
            else:
                yield to_event(item.data)               # shared: treat as read-only

Modules: bus (the API), hub (per-process fan-out), queue (bounded coalescing queue),
codec (wire format and limits), markers, errors, backends/ (memory, postgres, redis:
broadcaster backends with their own listening connection, reconnect and markers).
"""

from comfygraph.bus.backends import BackendOptions
from comfygraph.bus.codec import MAX_CHANNEL_BYTES, MAX_EVENT_BYTES, Message
from comfygraph.bus.errors import (
    BusClosed,
    BusUnavailable,
    EventBusError,
    EventTooLarge,
    InvalidChannel,
    PublishError,
    SubscriberOverflow,
)
from comfygraph.bus.event_bus import BusStats, EventBus
from comfygraph.bus.hub import Item, Subscription
from comfygraph.bus.markers import Reconnected

__all__ = [
    "MAX_CHANNEL_BYTES",
    "MAX_EVENT_BYTES",
    "BackendOptions",
    "BusClosed",
    "BusStats",
    "BusUnavailable",
    "EventBus",
    "EventBusError",
    "EventTooLarge",
    "InvalidChannel",
    "Item",
    "Message",
    "PublishError",
    "Reconnected",
    "SubscriberOverflow",
    "Subscription",
]
