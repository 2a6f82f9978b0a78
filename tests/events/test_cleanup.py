"""Subscribers that come and go (and clients that vanish mid-stream) leave nothing behind."""

from __future__ import annotations

import asyncio

from redis import asyncio as aioredis

from comfygraph.bus import EventBus
from tests.events.helpers import channel, next_message

CHANNELS = 20


async def test_a_thousand_subscribers_come_and_go_without_leftovers(
    bus: EventBus, backend_url: str
) -> None:
    names = [channel() for _ in range(CHANNELS)]
    baseline = len(asyncio.all_tasks())

    # One after another, on rotating channels: each first one subscribes upstream,
    # each leaving one unsubscribes.
    for i in range(1000):
        async with bus.subscribe(names[i % CHANNELS]):
            pass
    assert len(asyncio.all_tasks()) == baseline

    # All at once, two channels each; half leave normally, half are cancelled mid-stream.
    entered = 0
    everyone_in = asyncio.Event()

    async def client(i: int) -> None:
        nonlocal entered
        async with bus.subscribe([names[i % CHANNELS], names[(i + 1) % CHANNELS]]) as sub:
            entered += 1
            if entered == 1000:
                everyone_in.set()
            await next_message(sub)
            if i % 2:
                async for _ in sub:  # until cancelled, like a client that went away
                    pass

    clients = [asyncio.create_task(client(i)) for i in range(1000)]
    async with asyncio.timeout(20):
        await everyone_in.wait()
    stats = bus.stats()
    assert (stats.subscribers, stats.channels, stats.upstream) == (1000, CHANNELS, CHANNELS)
    for name in names:
        await bus.publish(name, {"type": "status"})
    async with asyncio.timeout(20):
        await asyncio.gather(*clients[0::2])
    for task in clients[1::2]:
        task.cancel()
    await asyncio.wait(clients)
    assert all(task.cancelled() for task in clients[1::2])

    stats = bus.stats()
    assert (stats.subscribers, stats.channels, stats.upstream) == (0, 0, 0)
    assert stats.received == CHANNELS  # one decode per event, not one per subscriber
    assert len(asyncio.all_tasks()) == baseline
    if backend_url.startswith("redis"):
        client_ = aioredis.Redis.from_url(backend_url)
        try:
            counts = await client_.pubsub_numsub(*names)
        finally:
            await client_.aclose()
        assert all(n == 0 for _, n in counts)  # Redis itself has no subscriber left


async def test_clients_that_vanish_while_subscribing_leave_nothing_behind(bus: EventBus) -> None:
    baseline = len(asyncio.all_tasks())
    names = [channel() for _ in range(100)]

    async def client(name: str) -> None:
        async with bus.subscribe(name) as sub:
            await sub.get()

    # Cancelled at once: most are still waiting for the broker to confirm the LISTEN.
    clients = [asyncio.create_task(client(name)) for name in names]
    await asyncio.wait(clients, timeout=0)
    for task in clients:
        task.cancel()
    await asyncio.wait(clients)
    stats = bus.stats()
    assert (stats.subscribers, stats.channels, stats.upstream) == (0, 0, 0)
    assert len(asyncio.all_tasks()) == baseline
    # And the bus still works.
    async with bus.subscribe(names[0]) as sub:
        await bus.publish(names[0], {"type": "status"})
        assert (await next_message(sub)).data == {"type": "status"}


async def test_subscribing_again_while_the_last_subscriber_leaves(bus: EventBus) -> None:
    ch = channel()
    for i in range(30):
        first = bus.subscribe(ch)
        await first.__aenter__()
        leaving = asyncio.create_task(first.__aexit__(None, None, None))
        await asyncio.wait([leaving], timeout=0)  # one turn: it is on its way out
        async with bus.subscribe(ch) as sub:
            await leaving
            await bus.publish(ch, {"type": "status", "i": i})
            assert (await next_message(sub, within=5)).data["i"] == i
            assert bus.stats().upstream == 1
    assert bus.stats().upstream == 0
