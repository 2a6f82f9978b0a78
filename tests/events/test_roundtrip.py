"""Publish and subscribe on every backend: memory, PostgreSQL LISTEN/NOTIFY, Redis."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from broadcaster import Broadcast

from comfygraph.bus import (
    MAX_EVENT_BYTES,
    BusClosed,
    EventBus,
    EventTooLarge,
    InvalidChannel,
    Message,
)
from comfygraph.bus.backends import create_backend
from comfygraph.bus.codec import encode
from comfygraph.server.settings import Settings
from tests.events.helpers import assert_quiet, bus_options, channel, next_message


async def test_round_trip(bus: EventBus) -> None:
    ch = channel()
    async with bus.subscribe(ch) as sub:
        await bus.publish(ch, {"type": "status", "status": "processing"})
        msg = await next_message(sub)
    assert msg == Message(ch, {"type": "status", "status": "processing"})
    assert bus.stats().subscribers == bus.stats().channels == bus.stats().upstream == 0


async def test_many_channels_each_get_only_their_own(bus: EventBus) -> None:
    names = [channel(kind) for kind in ("job", "session", "feed:user") for _ in range(40)]
    names.append("feed:public")
    async with AsyncExitStack() as stack:
        everything = await stack.enter_async_context(bus.subscribe(names))
        single = [await stack.enter_async_context(bus.subscribe(name)) for name in names]
        assert bus.stats().channels == bus.stats().upstream == len(names)
        for i, name in enumerate(names):
            await bus.publish(name, {"type": "status", "i": i})
        got = [await next_message(everything) for _ in names]
        assert [(m.channel, m.data["i"]) for m in got] == [(n, i) for i, n in enumerate(names)]
        # An event reaches all its local subscribers at once: by now each one has its own
        # event waiting, and nothing else.
        for i, (name, sub) in enumerate(zip(names, single, strict=True)):
            assert sub.pending == 1
            assert await next_message(sub) == Message(name, {"type": "status", "i": i})


async def test_separate_subscribers_of_separate_channels(bus: EventBus) -> None:
    a, b = channel(), channel("session")
    async with bus.subscribe(a) as sub_a, bus.subscribe(b) as sub_b:
        await bus.publish(b, {"type": "b"})
        await bus.publish(a, {"type": "a"})
        assert (await next_message(sub_a)).data == {"type": "a"}
        assert (await next_message(sub_b)).data == {"type": "b"}
        await assert_quiet(sub_a, 0.1)


async def test_one_upstream_subscription_and_one_decode_for_many_locals(bus: EventBus) -> None:
    ch = channel()
    async with bus.subscribe(ch) as first:
        subs = [first]
        opened = [bus.subscribe(ch) for _ in range(49)]
        subs += [await cm.__aenter__() for cm in opened]
        try:
            stats = bus.stats()
            assert (stats.subscribers, stats.channels, stats.upstream) == (50, 1, 1)
            await bus.publish(ch, {"type": "status", "n": 1})
            got = [await next_message(s) for s in subs]
        finally:
            for cm in opened:
                await cm.__aexit__(None, None, None)
    assert all(m is got[0] for m in got)  # decoded once, the same object for everyone
    stats = bus.stats()
    assert (stats.received, stats.delivered) == (1, 50)


async def test_order_of_one_publisher_is_kept(bus: EventBus) -> None:
    ch = channel()
    async with bus.subscribe(ch) as sub:
        for i in range(200):
            await bus.publish(ch, {"type": "status", "i": i})
        assert [(await next_message(sub)).data["i"] for _ in range(200)] == list(range(200))


async def test_nothing_arrives_from_before_the_subscription(bus: EventBus) -> None:
    ch = channel()
    await bus.publish(ch, {"type": "early"})
    async with bus.subscribe(ch) as sub:
        await assert_quiet(sub)


async def test_limits_are_the_same_on_every_backend(bus: EventBus) -> None:
    with pytest.raises(EventTooLarge, match="7999"):
        await bus.publish(channel(), {"type": "big", "blob": "x" * MAX_EVENT_BYTES})
    for bad in ("", "j" * 64, "é" * 32, "nul\x00"):
        with pytest.raises(InvalidChannel):
            await bus.publish(bad, {"type": "x"})
        with pytest.raises(InvalidChannel):
            async with bus.subscribe(bad):
                pass
    # Names PostgreSQL must quote: case, spaces, quotes, multi-byte, exactly 63 bytes.
    odd = 'Feed "User" ü ' + "x" * 48
    assert len(odd.encode()) == 63
    async with bus.subscribe(odd) as sub:
        payload = {"type": "status", "blob": ""}
        payload["blob"] = "y" * (MAX_EVENT_BYTES - len(encode(payload)))
        assert len(encode(payload)) == MAX_EVENT_BYTES  # the largest NOTIFY accepts
        await bus.publish(odd, payload)
        assert (await next_message(sub)).data == payload


async def test_a_closed_bus_refuses_work(backend_url: str) -> None:
    bus = EventBus.from_url(backend_url, options=bus_options())
    with pytest.raises(BusClosed):
        await bus.publish(channel(), {"type": "x"})
    async with bus:
        async with bus.subscribe(channel()) as sub:
            pass
        with pytest.raises(BusClosed):
            await sub.get()
        async with bus.subscribe(channel()) as open_at_shutdown:
            await bus.disconnect()
            with pytest.raises(BusClosed):
                await open_at_shutdown.get()
    with pytest.raises(BusClosed):
        async with bus.subscribe(channel()):
            pass


@pytest.mark.parametrize("scheme", ["postgres", "redis"])
async def test_our_backends_plug_into_broadcaster(
    scheme: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("empty_dsn" if scheme == "postgres" else "redis_url")
    ch = channel()
    async with Broadcast(backend=create_backend(url, bus_options())) as broadcast:
        async with broadcast.subscribe(ch) as sub:
            await broadcast.publish(ch, "plain text")
            async with asyncio.timeout(10):
                event = await sub.get()
    assert (event.channel, event.message) == (ch, "plain text")


def test_the_settings_url_picks_the_backend(tmp_path: Path) -> None:
    from comfygraph.bus.backends.memory import MemoryBackend
    from comfygraph.bus.backends.postgres import PostgresBackend
    from comfygraph.bus.backends.redis import RedisBackend

    pg, redis = "postgresql://app@db.internal/comfygraph", "redis://cache.internal:6379/0"
    cases = [
        (Settings(database_url=None, broadcast_url=None, data_dir=tmp_path), MemoryBackend),
        (Settings(database_url=pg, broadcast_url=None, data_dir=tmp_path), PostgresBackend),
        (Settings(database_url=pg, broadcast_url=redis, data_dir=tmp_path), RedisBackend),
    ]
    for settings, kind in cases:  # nothing connects until the lifespan enters the bus
        assert isinstance(EventBus.from_url(settings.effective_broadcast_url()).backend, kind)
    with pytest.raises(ValueError, match="kafka"):
        EventBus.from_url("kafka://broker:9092")
