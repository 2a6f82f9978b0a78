"""The runtime's publish function, on top of the event bus: nothing is dropped in a
broker outage shorter than `retry_seconds`.

A publish the broker refuses is kept, in order per channel, and retried with backoff
by one drain task; while anything waits, new events queue behind it (so a later event
never overtakes an earlier one on its channel, and callers never wait on a dead
broker). Events older than `retry_seconds`, or beyond `backlog` waiting in all, are
given up; their channels then get one `{"type": "resync"}` event once the broker is
back, which tells every subscriber on every replica to re-read the state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from comfygraph.bus import EventBus, EventBusError, EventTooLarge, InvalidChannel
from comfygraph.studio.channels import RESYNC_EVENT, Publish

log = logging.getLogger(__name__)


@dataclass
class PublishStats:
    failures: int = 0  #: publishes the broker refused (each retry counts)
    retried: int = 0  #: events published late, after waiting
    dropped: int = 0  #: events given up (their channel got a resync)
    waiting: int = 0


@dataclass
class _Pending:
    event: dict[str, Any]
    coalesce: str | None
    since: float = field(default_factory=time.monotonic)


class RetryingPublisher:
    def __init__(
        self,
        bus: EventBus,
        *,
        retry_seconds: float = 300.0,
        backlog: int = 10_000,
        backoff_initial: float = 0.1,
        backoff_max: float = 2.0,
    ) -> None:
        self._bus = bus
        self._retry_seconds = retry_seconds
        self._backlog = backlog
        self._backoff = (backoff_initial, backoff_max)
        self._waiting: dict[str, deque[_Pending]] = {}
        self._resync: dict[str, float] = {}  # channel -> monotonic time of the first drop
        self._drain: asyncio.Task[None] | None = None
        self.stats = PublishStats()

    async def __call__(self, channel: str, event: dict[str, Any], coalesce: str | None) -> None:
        # The row is already committed: a broker hiccup must not undo the caller's work.
        if self._waiting or self._resync:
            self._enqueue(channel, event, coalesce)
            return
        try:
            await self._bus.publish(channel, event, coalesce=coalesce)
        except (EventTooLarge, InvalidChannel) as exc:
            log.error("event on %s can never be published: %s", channel, exc)
        except EventBusError as exc:
            self.stats.failures += 1
            log.warning("event on %s not published yet (%s); retrying", channel, exc)
            self._enqueue(channel, event, coalesce)

    async def publish_many(self, channels: Sequence[str], event: dict[str, Any]) -> None:
        """One event on several channels in one round trip (a status change); the same
        guarantees per channel as one call per channel."""
        if self._waiting or self._resync:
            for channel in channels:
                self._enqueue(channel, event, None)
            return
        try:
            await self._bus.publish_many(channels, event)
        except (EventTooLarge, InvalidChannel) as exc:
            log.error("event on %s can never be published: %s", ", ".join(channels), exc)
        except EventBusError as exc:
            self.stats.failures += 1
            log.warning("event on %s not published yet (%s); retrying", ", ".join(channels), exc)
            for channel in channels:  # some may have it already: events are idempotent
                self._enqueue(channel, event, None)

    def _enqueue(self, channel: str, event: dict[str, Any], coalesce: str | None) -> None:
        queue = self._waiting.setdefault(channel, deque())
        if coalesce is not None and queue and queue[-1].coalesce == coalesce:
            queue[-1] = _Pending(event, coalesce, queue[-1].since)  # the latest tick wins
        else:
            queue.append(_Pending(event, coalesce))
            self.stats.waiting += 1
        if self.stats.waiting > self._backlog:
            self._drop_oldest()
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._run(), name="publish-retry")

    def _drop_oldest(self) -> None:
        channel = min(self._waiting, key=lambda c: self._waiting[c][0].since)
        self._drop(channel, 1)

    def _drop(self, channel: str, count: int) -> None:
        queue = self._waiting[channel]
        for _ in range(min(count, len(queue))):
            queue.popleft()
            self.stats.waiting -= 1
            self.stats.dropped += 1
        self._resync.setdefault(channel, time.monotonic())
        if not queue:
            del self._waiting[channel]

    async def _run(self) -> None:
        delay = self._backoff[0]
        while self._waiting or self._resync:
            if await self._flush():
                delay = self._backoff[0]
                continue
            self._expire()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])
        log.warning("broadcast publishing caught up (%s)", self.stats)

    async def _flush(self) -> bool:
        """Publish what waits, oldest channel first; False at the first refusal."""
        for channel in list(self._waiting):
            queue = self._waiting.get(channel)
            while queue:
                item = queue[0]
                if not await self._try(channel, item.event, item.coalesce):
                    return False
                if queue and queue[0] is item:  # else a newer tick replaced it: still due
                    queue.popleft()
                    self.stats.waiting -= 1
                    self.stats.retried += 1
            if queue is not None and self._waiting.get(channel) is queue and not queue:
                del self._waiting[channel]
        for channel, since in list(self._resync.items()):
            gap = time.monotonic() - since + self._retry_seconds
            if not await self._try(channel, {"type": RESYNC_EVENT, "seconds": gap}, None):
                return False
            self._resync.pop(channel, None)
        return True

    async def _try(self, channel: str, event: dict[str, Any], coalesce: str | None) -> bool:
        try:
            await self._bus.publish(channel, event, coalesce=coalesce)
        except (EventTooLarge, InvalidChannel) as exc:
            log.error("event on %s can never be published: %s", channel, exc)
        except EventBusError:
            self.stats.failures += 1
            return False
        return True

    def _expire(self) -> None:
        horizon = time.monotonic() - self._retry_seconds
        for channel in list(self._waiting):
            queue = self._waiting[channel]
            old = sum(1 for item in queue if item.since < horizon)
            if old:
                log.warning("gave up %d event(s) on %s after %.0fs", old, channel,
                            self._retry_seconds)  # fmt: skip
                self._drop(channel, old)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Give what waits a last chance, then stop."""
        task = self._drain
        if task is None or task.done():
            return
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            log.warning("%d event(s) not published at shutdown", self.stats.waiting)


def bus_publisher(bus: EventBus, **options: Any) -> RetryingPublisher:
    return RetryingPublisher(bus, **options)


__all__ = ["RESYNC_EVENT", "Publish", "PublishStats", "RetryingPublisher", "bus_publisher"]
