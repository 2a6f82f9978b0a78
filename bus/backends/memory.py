"""One process, no broker: a publish goes straight to this process's own listener.

Publisher and listener share the event loop. Like a publish to a broker, a publish here
gives the loop a turn, so a publisher looping over ``publish`` lets the dispatcher and the
subscribers run in between; and the hand-over queue is bounded, so a publisher that still
outruns the dispatcher waits for it (never for a subscriber).
"""

from __future__ import annotations

import asyncio
from typing import Any

from broadcaster import BroadcastBackend, Event


class MemoryBackend(BroadcastBackend):
    def __init__(self, url: str = "memory://", *, backlog: int = 4096) -> None:
        self._subscribed: set[str] = set()
        self._events: asyncio.Queue[Event] = asyncio.Queue(backlog)

    @property
    def listening(self) -> frozenset[str]:
        return frozenset(self._subscribed)

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def subscribe(self, channel: str) -> None:
        self._subscribed.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._subscribed.discard(channel)

    async def publish(self, channel: str, message: Any) -> None:
        if channel in self._subscribed:
            await self._events.put(Event(channel, message))
        await asyncio.sleep(0)

    async def next_published(self) -> Event:
        return await self._events.get()
