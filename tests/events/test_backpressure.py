"""A slow or stalled subscriber delays nobody, stays bounded, and never loses a status."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from comfygraph.bus import EventBus, Message, SubscriberOverflow, Subscription
from tests.events.helpers import bus_options, channel, next_message

QUEUE = 64


async def _burst(bus: EventBus, ch: str, start: int, count: int) -> None:
    """``count`` progress ticks with a status change every 1,000."""
    for i in range(start, start + count):
        await bus.publish(ch, {"type": "progress", "progress": i}, coalesce="progress")
        if i % 1000 == 999:
            await bus.publish(ch, {"type": "status", "n": i // 1000})


async def test_a_stalled_subscriber_delays_nobody_and_keeps_only_the_latest_progress() -> None:
    ch = channel()
    async with (
        EventBus.from_url("memory://", queue_size=QUEUE) as bus,
        bus.subscribe(ch) as stalled,
        bus.subscribe(ch) as live,
    ):
        statuses: asyncio.Queue[object] = asyncio.Queue()
        progress = -1
        live_backlog = 0

        async def read_live() -> None:
            nonlocal live_backlog, progress
            async for item in live:
                assert isinstance(item, Message)
                live_backlog = max(live_backlog, live.pending)
                if item.data["type"] == "progress":
                    assert item.data["progress"] > progress  # only ever rises
                    progress = item.data["progress"]
                else:
                    statuses.put_nowait(item.data["n"])

        async def publish_and_follow(start: int, mark: str) -> list[object]:
            """Publish a burst, then wait until the live subscriber got all of it."""
            await _burst(bus, ch, start, 10_000)
            await bus.publish(ch, {"type": "status", "n": mark})
            got: list[object] = []
            async with asyncio.timeout(5):
                while not got or got[-1] != mark:
                    got.append(await statuses.get())
            assert stalled.pending <= QUEUE
            return got

        reader = asyncio.create_task(read_live())
        tracemalloc.start()
        try:
            first_statuses = await publish_and_follow(0, "half")
            first = tracemalloc.get_traced_memory()[0]
            second_statuses = await publish_and_follow(10_000, "end")
            second = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
            reader.cancel()

        # The live subscriber got every status in order, progress only rising, up to the
        # very last tick, and it never fell behind by more than a small backlog.
        assert first_statuses + second_statuses == [*range(10), "half", *range(10, 20), "end"]
        assert progress == 19_999
        assert live_backlog < QUEUE // 2
        # The stalled one holds one progress item (the latest) and every status.
        assert stalled.pending == 1 + 22
        held = [(await next_message(stalled)).data for _ in range(stalled.pending)]
        assert held[0] == {"type": "progress", "progress": 19_999}
        assert [d["n"] for d in held[1:]] == first_statuses + second_statuses
        # The second 10,000 events left no trace in memory.
        assert second - first < 64 * 1024, (first, second)
        stats = bus.stats()
        assert stats.coalesced >= 19_999 and stats.overflows == 0


async def test_status_changes_that_overflow_a_subscriber_end_it_loudly(backend_url: str) -> None:
    ch = channel()
    async with (
        EventBus.from_url(backend_url, queue_size=16, options=bus_options()) as bus,
        bus.subscribe(ch) as stalled,
        bus.subscribe(ch) as live,
    ):
        reader = asyncio.create_task(_read(live, 40))
        for i in range(40):
            await bus.publish(ch, {"type": "status", "i": i})
        async with asyncio.timeout(10):
            assert await reader == list(range(40))
        with pytest.raises(SubscriberOverflow, match="re-subscribe"):
            await stalled.get()
        assert stalled.pending == 0  # what it held is freed at once
        assert bus.stats().overflows == 1
        # Others, and a new subscription of the same client, carry on.
        async with bus.subscribe(ch) as again:
            await bus.publish(ch, {"type": "status", "i": 40})
            assert (await next_message(again)).data["i"] == 40
            assert (await next_message(live)).data["i"] == 40


async def _read(sub: Subscription, count: int) -> list[int]:
    return [(await next_message(sub)).data["i"] for _ in range(count)]
