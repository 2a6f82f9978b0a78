"""The process's realtime event bus: publish after commit, subscribe per client stream.

    bus = EventBus.from_url(settings.effective_broadcast_url(), queue_size=256)
    async with bus:                                   # in the app's lifespan
        await bus.publish(f"job:{job_id}", {"type": "progress", "progress": 42},
                          coalesce="progress")
        async with bus.subscribe(f"job:{job_id}") as sub:
            async for item in sub:
                if isinstance(item, Reconnected):
                    ...                               # re-read the state, send it
                else:
                    ...                               # item.channel, item.data (read-only)

Guarantees, per local subscriber: events of one publisher on one channel arrive in
publish order; an event without a coalescing key is never dropped; of events with the same
key on the same channel, at least the latest arrives; after a lost broker connection a
:class:`Reconnected` marker comes before anything published after the reconnect; when
the subscriber cannot keep up, it is ended with :class:`SubscriberOverflow` instead of
losing events. Nothing else is promised: pub/sub loses what is published while a link is
down, which is what the marker is for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from broadcaster import BroadcastBackend

from comfygraph.bus.backends import BackendOptions, ListeningBackend, create_backend
from comfygraph.bus.codec import check_channel, encode
from comfygraph.bus.errors import BusClosed, PublishError
from comfygraph.bus.hub import Hub, KeyOf, Subscription


@dataclass(frozen=True, slots=True)
class BusStats:
    #: open local subscriptions
    subscribers: int
    #: channels with at least one local subscriber (= upstream subscriptions)
    channels: int
    #: channels the backend's live connection receives right now
    upstream: int
    published: int
    #: events that reached this process for a subscribed channel (each decoded once)
    received: int
    #: hand-offs to local subscribers' queues
    delivered: int
    #: pending events replaced by a newer one with the same coalescing key
    coalesced: int
    #: subscribers ended with SubscriberOverflow
    overflows: int
    reconnects: int
    malformed: int


class EventBus:
    def __init__(
        self,
        backend: BroadcastBackend,
        *,
        queue_size: int = 256,
        publish_timeout: float = 10.0,
    ) -> None:
        if queue_size < 1 or publish_timeout <= 0:
            raise ValueError("queue_size and publish_timeout must be positive")
        self.backend = backend
        self._queue_size = queue_size
        self._publish_timeout = publish_timeout
        self._hub = Hub(backend)
        self._running = False
        self._published = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        queue_size: int = 256,
        publish_timeout: float = 10.0,
        options: BackendOptions | None = None,
    ) -> EventBus:
        """A bus on memory://, postgres(ql):// or redis(s)://; connects nothing yet."""
        return cls(
            create_backend(url, options), queue_size=queue_size, publish_timeout=publish_timeout
        )

    async def __aenter__(self) -> EventBus:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    async def connect(self) -> None:
        """Connect the backend (raises BusUnavailable) and start delivering."""
        if self._running:
            raise RuntimeError("the event bus is already running")
        await self.backend.connect()
        self._hub.start()
        self._running = True

    async def disconnect(self) -> None:
        """End every subscription (BusClosed), stop all tasks, close all connections."""
        if not self._running:
            return
        self._running = False
        try:
            await self._hub.stop()
        finally:
            await self.backend.disconnect()

    async def publish(
        self, channel: str, data: Mapping[str, Any], *, coalesce: str | None = None
    ) -> None:
        """Publish a JSON object on ``channel``; returns once the broker has it.

        Call it after the transaction that made the change committed. ``coalesce`` marks
        events a slow subscriber may skip when a newer one with the same key (on the same
        channel) is waiting, e.g. ``"progress"``. Raises EventTooLarge, InvalidChannel,
        BusClosed, or PublishError (broker unreachable within ``publish_timeout``); it
        never waits for subscribers.
        """
        text = encode(data, coalesce)
        check_channel(channel)
        if not self._running:
            raise BusClosed("the event bus is not running")
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self.backend.publish(channel, text)
        except TimeoutError as exc:
            raise PublishError(f"publishing on {channel!r} timed out") from exc
        self._published += 1

    async def publish_many(
        self, channels: Iterable[str], data: Mapping[str, Any], *, coalesce: str | None = None
    ) -> None:
        """`publish` of one event on several channels, in one round trip to the broker
        where the backend can (a status change goes to up to five channels). Each
        channel gets the event once; raises like `publish`, for all of them (after a
        PublishError some may have it: events are idempotent)."""
        names = tuple(dict.fromkeys(channels))
        text = encode(data, coalesce)
        for name in names:
            check_channel(name)
        if not self._running:
            raise BusClosed("the event bus is not running")
        many = getattr(self.backend, "publish_many", None)
        try:
            async with asyncio.timeout(self._publish_timeout):
                if many is not None:
                    await many(names, text)
                else:
                    for name in names:
                        await self.backend.publish(name, text)
        except TimeoutError as exc:
            raise PublishError(f"publishing on {', '.join(names)} timed out") from exc
        self._published += len(names)

    @asynccontextmanager
    async def subscribe(
        self, channels: str | Iterable[str], *, key_of: KeyOf | None = None
    ) -> AsyncIterator[Subscription]:
        """Receive the events of ``channels`` until the block is left.

        Returns once the broker delivers them: read the current state after entering,
        then apply what arrives. Leaving the block (also by cancellation) frees everything.
        ``key_of``: the subscriber's own coalescing rule (see :class:`Subscription`).
        """
        names = (channels,) if isinstance(channels, str) else tuple(dict.fromkeys(channels))
        if not names:
            raise ValueError("subscribe to at least one channel")
        for name in names:
            check_channel(name)
        sub = Subscription(names, self._queue_size, key_of)
        await self._hub.attach(sub)
        try:
            yield sub
        finally:
            await self._hub.detach(sub)

    def stats(self) -> BusStats:
        hub, backend = self._hub, self.backend
        listening: frozenset[str] = getattr(backend, "listening", frozenset())
        return BusStats(
            subscribers=hub.subscribers,
            channels=hub.channels,
            upstream=len(listening),
            published=self._published,
            received=hub.received,
            delivered=hub.delivered,
            coalesced=hub.coalesced,
            overflows=hub.overflows,
            reconnects=backend.reconnects if isinstance(backend, ListeningBackend) else 0,
            malformed=hub.malformed,
        )
