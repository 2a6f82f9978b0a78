"""The per-process fan-out: one upstream subscription per channel, any number of locals.

The first local subscriber of a channel subscribes the backend to it; the last one to
leave unsubscribes it. One dispatcher task reads the backend, decodes each event once
and hands the same :class:`Message` to every local subscriber's bounded
:class:`CoalescingQueue`. A put never waits, so a stalled subscriber delays nobody: it
only fills its own queue, where keyed events coalesce; when a put needs room it does not
have, that subscriber alone is ended with :class:`SubscriberOverflow`.

A :class:`ReconnectEvent` from the backend becomes one :class:`Reconnected` marker per
local subscriber (even one listening to many channels), queued after what it already
has and before anything that arrived on the new connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

from broadcaster import BroadcastBackend, Event

from comfygraph.bus.backends.base import ReconnectEvent
from comfygraph.bus.codec import Message, decode
from comfygraph.bus.errors import BusClosed, SubscriberOverflow
from comfygraph.bus.markers import Reconnected
from comfygraph.bus.queue import CoalescingQueue, QueueFull
from comfygraph.bus.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Item = Message | Reconnected

# After this many events in a row the dispatcher yields, so consumers drain between bursts.
_BURST = 64

#: A subscriber's own coalescing key for a message (None: the publisher's key, if any).
KeyOf = Callable[[Message], Hashable | None]


class Subscription:
    """What ``EventBus.subscribe`` yields: an async iterator of Message | Reconnected.

    Iteration raises :class:`SubscriberOverflow` if this subscriber fell too far behind,
    and :class:`BusClosed` once the bus shut down or the ``subscribe`` block was left.

    ``key_of``, when given, coalesces by the subscriber's own rule instead of the
    publisher's: a subscriber that re-reads the state an event points at needs only the
    latest event of each thing, whatever kind of event the publisher thought it was.
    """

    __slots__ = ("_generation", "_queue", "channels", "key_of")

    def __init__(
        self, channels: tuple[str, ...], queue_size: int, key_of: KeyOf | None = None
    ) -> None:
        self.channels = channels
        self._queue: CoalescingQueue[Item] = CoalescingQueue(queue_size)
        self._generation = 0
        self.key_of = key_of

    def __aiter__(self) -> Subscription:
        return self

    def __anext__(self) -> Coroutine[Any, Any, Item]:
        return self._queue.get()  # the queue's own coroutine: one frame less per event

    def get(self) -> Coroutine[Any, Any, Item]:
        """The next item (awaitable); raises SubscriberOverflow or BusClosed."""
        return self._queue.get()

    @property
    def pending(self) -> int:
        """Events queued for this subscriber and not read yet."""
        return len(self._queue)

    def __repr__(self) -> str:
        return f"<Subscription {list(self.channels)} pending={self.pending}>"


class _Channel:
    __slots__ = ("name", "ready", "subscribers")

    def __init__(self, name: str, ready: asyncio.Task[None]) -> None:
        self.name = name
        self.ready = ready
        self.subscribers: set[Subscription] = set()


class Hub:
    def __init__(self, backend: BroadcastBackend) -> None:
        self._backend = backend
        self._channels: dict[str, _Channel] = {}
        self._subscriptions: set[Subscription] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._unsubscribing: set[asyncio.Task[None]] = set()
        self._closed = True
        self.received = 0
        self.delivered = 0
        self.coalesced = 0
        self.overflows = 0
        self.malformed = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    @property
    def channels(self) -> int:
        return len(self._channels)

    def start(self) -> None:
        self._closed = False
        self._dispatcher = asyncio.create_task(self._dispatch_forever(), name="events-hub")

    async def stop(self) -> None:
        self._closed = True
        await cancel_and_wait(self._dispatcher)
        self._dispatcher = None
        for sub in self._subscriptions:
            sub._queue.fail(BusClosed("the event bus shut down"))
        self._subscriptions.clear()
        pending = {channel.ready for channel in self._channels.values()} | self._unsubscribing
        self._channels.clear()
        if pending:
            await asyncio.wait(pending)

    async def attach(self, sub: Subscription) -> None:
        """Register ``sub``; return once the backend listens to all of its channels."""
        if self._closed:
            raise BusClosed("the event bus is not running")
        waits = []
        for name in sub.channels:
            channel = self._channels.get(name)
            if channel is None:
                ready = asyncio.create_task(self._backend.subscribe(name), name=f"listen {name}")
                channel = self._channels[name] = _Channel(name, ready)
            channel.subscribers.add(sub)
            waits.append(channel.ready)
        self._subscriptions.add(sub)
        try:
            for ready in waits:
                await asyncio.shield(ready)
        except BaseException:
            await self.detach(sub)
            raise

    async def detach(self, sub: Subscription) -> None:
        """Forget ``sub``; unsubscribe the backend from channels nobody here wants now."""
        sub._queue.fail(BusClosed("this subscription has ended"))
        if sub not in self._subscriptions:
            return
        self._subscriptions.discard(sub)
        emptied = []
        for name in sub.channels:
            channel = self._channels.get(name)
            if channel is not None and sub in channel.subscribers:
                channel.subscribers.discard(sub)
                if not channel.subscribers:
                    del self._channels[name]
                    emptied.append(channel)
        if emptied:
            # Its own task: leaving by cancellation must not leave the backend half-way.
            task = asyncio.create_task(self._unsubscribe(emptied))
            self._unsubscribing.add(task)
            task.add_done_callback(self._unsubscribing.discard)
            await asyncio.shield(task)

    async def _unsubscribe(self, channels: list[_Channel]) -> None:
        for channel in channels:
            # The subscribe must have reached the backend before its unsubscribe does.
            await asyncio.wait([channel.ready])
            # Someone here subscribed again meanwhile: the channel is theirs now. (Checked
            # and acted on in one step: the backend records the change before it awaits.)
            if not self._closed and channel.name not in self._channels:
                await self._backend.unsubscribe(channel.name)

    async def _dispatch_forever(self) -> None:
        burst = 0
        while True:
            try:
                event = await self._backend.next_published()
            except Exception:
                # Only a foreign backend gets here (ours never raise): say so to everyone
                # rather than leave them waiting on a dead stream.
                log.exception("the broadcast backend failed; ending every subscription")
                self._closed = True
                for sub in self._subscriptions:
                    sub._queue.fail(BusClosed("the broadcast backend failed"))
                return
            try:
                self._dispatch(event)
            except Exception:  # never let one bad event stop delivery to everyone
                log.exception("dispatching an event on %r failed", event.channel)
            burst += 1
            if burst >= _BURST:
                burst = 0
                await asyncio.sleep(0)

    def _dispatch(self, event: Event) -> None:
        channel = self._channels.get(event.channel)
        if channel is None:
            return
        if isinstance(event, ReconnectEvent):
            self._mark(channel, event.marker)
            return
        self.received += 1
        try:
            data, key = decode(event.message)
        except ValueError as exc:
            self.malformed += 1
            log.warning("dropped a malformed event on %r: %s", event.channel, exc)
            return
        message = Message(event.channel, data)
        scoped: Hashable | None = None if key is None else (event.channel, key)
        coalesced = 0
        for sub in channel.subscribers:
            try:
                own = scoped if sub.key_of is None else sub.key_of(message)
                if sub._queue.put(message, own):
                    coalesced += 1
            except QueueFull:
                self._overflow(sub)
        self.coalesced += coalesced
        self.delivered += len(channel.subscribers)

    def _mark(self, channel: _Channel, marker: Reconnected) -> None:
        for sub in channel.subscribers:
            if sub._generation < marker.generation:
                sub._generation = marker.generation
                try:
                    sub._queue.put_marker(marker)
                except QueueFull:
                    self._overflow(sub)

    def _overflow(self, sub: Subscription) -> None:
        self.overflows += 1
        size = sub._queue.maxsize
        sub._queue.fail(
            SubscriberOverflow(
                f"subscriber of {', '.join(sub.channels)} fell {size} events behind; "
                "it was ended instead of dropping events: re-subscribe and re-read the state"
            )
        )
