"""The context a shared stream executes with: the GraphQL Context of its audience plus
what resolvers.subscriptions.Live promises (the bus, queue positions, event hints).

- `listen` adapts the event bus: Reconnected (or a publisher's resync event) -> Resync,
  SubscriberOverflow -> a SUBSCRIBER_OVERFLOW error (the stream ends; clients subscribe
  again, reading the state first), a bus shut down -> UNAVAILABLE.
- `QueueWatch` re-reads the queue positions of every followed PENDING job of this
  process in one statement per interval (another job's dispatch says nothing on this
  job's channel), and wakes the streams whose job moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from comfygraph.bus import (
    BusClosed,
    EventBus,
    Message,
    Reconnected,
    SubscriberOverflow,
    Subscription,
)
from comfygraph.bus.tasks import cancel_and_wait
from comfygraph.db.queue import queue_positions
from comfygraph.resolvers.context import Context
from comfygraph.resolvers.subscriptions import Event, Resync
from comfygraph.schema.errors import ApiError
from comfygraph.server.realtime.outbox import SUBSCRIBER_OVERFLOW
from comfygraph.studio.channels import RESYNC_EVENT, job_channel

log = logging.getLogger(__name__)

UNAVAILABLE = "UNAVAILABLE"


class Watcher:
    """One stream's interest in one PENDING job's queue position."""

    __slots__ = ("changed", "done", "job_id", "position", "unseen")

    def __init__(self, job_id: uuid.UUID) -> None:
        self.job_id = job_id
        self.position: int | None = None
        self.unseen = False  # the position changed since the stream last took it
        self.done = False
        self.changed: asyncio.Future[None] | None = None

    def arm(self) -> asyncio.Future[None]:
        if self.changed is None or self.changed.done():
            self.changed = asyncio.get_running_loop().create_future()
        return self.changed

    def _signal(self) -> None:
        if self.changed is not None and not self.changed.done():
            self.changed.set_result(None)


class QueueWatch:
    def __init__(self, pool: asyncpg.Pool, interval: float) -> None:
        self._pool = pool
        self._interval = interval
        self._watchers: dict[uuid.UUID, set[Watcher]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def watched(self) -> int:
        return len(self._watchers)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def watch(self, job_id: uuid.UUID) -> Watcher:
        watcher = Watcher(job_id)
        self._watchers.setdefault(job_id, set()).add(watcher)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="ws-queue-watch")
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        watchers = self._watchers.get(watcher.job_id)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[watcher.job_id]

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _poll(self) -> None:
        while self._watchers:
            await asyncio.sleep(self._interval)
            ids = list(self._watchers)
            if not ids:
                break
            try:
                async with self._pool.acquire() as conn:
                    positions = await queue_positions(conn, ids)
            except Exception as exc:  # a database hiccup: try again next time
                log.warning("reading queue positions failed: %r", exc)
                continue
            for job_id in ids:
                position = positions.get(job_id)
                for watcher in list(self._watchers.get(job_id, ())):
                    if position is None:  # not pending any more: its status event says so
                        watcher.done = True
                        self.unwatch(watcher)
                    elif position != watcher.position:
                        watcher.position, watcher.unseen = position, True
                    else:
                        continue
                    watcher._signal()


class Events:
    """The async iterator `Live.listen` yields."""

    def __init__(self, sub: Subscription, watcher: Watcher | None) -> None:
        self._sub = sub
        self._watcher = watcher
        self._get: asyncio.Future[Any] | None = None

    def __aiter__(self) -> Events:
        return self

    async def __anext__(self) -> Event | Resync:
        try:
            item = await self._next()
        except SubscriberOverflow:
            raise ApiError(
                SUBSCRIBER_OVERFLOW,
                "the server fell behind the events of this subscription: subscribe again",
            ) from None
        except BusClosed:
            raise ApiError(UNAVAILABLE, "the server is shutting down: subscribe again") from None
        if isinstance(item, Reconnected):
            return Resync(item.downtime)
        if item.data.get("type") == RESYNC_EVENT:  # a publisher gave events up
            seconds = item.data.get("seconds")
            return Resync(float(seconds) if isinstance(seconds, int | float) else None)
        return item  # a Message: channel and data

    async def _next(self) -> Any:
        watcher = self._watcher
        if watcher is None or watcher.done:
            if self._get is not None:
                get, self._get = self._get, None
                return await get
            return await self._sub.get()
        # Waiting in the queue: status events are rare, so racing two waits is cheap here.
        if self._get is None:
            self._get = asyncio.ensure_future(self._sub.get())
        if not watcher.unseen:
            changed = watcher.arm()
            await asyncio.wait([self._get, changed], return_when=asyncio.FIRST_COMPLETED)
        if self._get.done():
            get, self._get = self._get, None
            return get.result()
        watcher.unseen = False
        position = watcher.position
        return Message(
            job_channel(watcher.job_id),
            {"type": "queue", "id": str(watcher.job_id), "position": position},
        )

    @property
    def pending(self) -> int:
        """Events already queued: taking them does not wait (0 while a queue position
        is watched, whose next item needs a race of two waits)."""
        if self._watcher is not None or self._get is not None:
            return 0
        return self._sub.pending

    def close(self) -> None:
        if self._get is not None:
            self._get.cancel()
            self._get = None


@dataclass
class StreamContext(Context):
    """A stream's context: built once per stream for its audience's representative
    viewer; its DataLoaders are forgotten whenever the resolver says so (`fresh`)."""

    bus: EventBus | None = None
    queue_watch: QueueWatch | None = None
    _hints: tuple[bool, bool] = field(default=(False, False))

    @classmethod
    def of(cls, ctx: Context, queue_watch: QueueWatch) -> StreamContext:
        """The stream context for a connection's (websocket or SSE) request context."""
        return cls(
            request=ctx.request,
            response=None,
            services=ctx.services,
            keys=ctx.keys,
            limits=ctx.limits,
            viewer=ctx.viewer,
            bus=ctx.services.bus,
            queue_watch=queue_watch,
        )

    def emit(self, *, state: bool = False, transient: bool = False, fresh: bool = False) -> None:
        self._hints = (state, transient)
        if fresh:
            self.__dict__.pop("loaders", None)
            self.__dict__.pop("feeds", None)

    def take_hints(self) -> tuple[bool, bool]:
        hints, self._hints = self._hints, (False, False)
        return hints

    @contextlib.asynccontextmanager
    async def listen(
        self,
        channels: Sequence[str],
        *,
        queue_of: uuid.UUID | None = None,
        key_of: Callable[[Event], Hashable | None] | None = None,
    ) -> AsyncIterator[Events]:
        bus = self.bus
        if bus is None:
            raise ApiError(UNAVAILABLE, "live events are not available")
        try:
            async with bus.subscribe(channels, key_of=key_of) as sub:
                watcher = None if queue_of is None or self.queue_watch is None else (
                    self.queue_watch.watch(queue_of)
                )  # fmt: skip
                events = Events(sub, watcher)
                try:
                    yield events
                finally:
                    events.close()
                    if watcher is not None and self.queue_watch is not None:
                        self.queue_watch.unwatch(watcher)
        except BusClosed:
            raise ApiError(UNAVAILABLE, "the server is shutting down: subscribe again") from None
