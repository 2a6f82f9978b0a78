"""Lost broker connections, from real faults: pg_terminate_backend, CLIENT KILL, a line
that goes silent, a server that refuses connections for a while."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from comfygraph.bus import BusUnavailable, EventBus, Reconnected
from tests.events.helpers import (
    assert_quiet,
    bus_options,
    channel,
    kill_pg,
    kill_redis,
    next_item,
    next_marker,
    next_message,
)
from tests.events.proxy import (
    FreezingProxy,
    Streams,
    pg_through,
    pg_upstream,
    redis_through,
    redis_upstream,
)


async def kill(url: str, client_name: str, role: str) -> int:
    if url.startswith("redis"):
        return await kill_redis(
            url, f"{client_name}/{role}", "pubsub" if role == "listen" else "normal"
        )
    return await kill_pg(url, f"{client_name}/{role}")


@asynccontextmanager
async def proxied(url: str) -> AsyncIterator[tuple[FreezingProxy, str]]:
    """A proxy in front of the broker, and the URL that goes through it."""
    upstream: Callable[[], Awaitable[Streams]]
    through: Callable[[str, int], str]
    if url.startswith("redis"):
        upstream, through = redis_upstream(url), redis_through
    else:
        upstream, through = pg_upstream(url), pg_through
    async with FreezingProxy(upstream) as proxy:
        yield proxy, through(url, proxy.port)


async def test_a_killed_listener_comes_back_and_says_so(shared_url: str) -> None:
    opts = bus_options()
    a, b = channel(), channel("feed:user")
    async with (
        EventBus.from_url(shared_url, options=opts) as bus,
        bus.subscribe(a) as sub,
        bus.subscribe([a, b]) as both,
    ):
        await bus.publish(a, {"type": "status", "status": "pending"})
        assert (await next_message(sub)).data["status"] == "pending"
        assert (await next_message(both)).data["status"] == "pending"

        waiting = asyncio.create_task(next_item(sub))
        assert await kill(shared_url, opts.client_name, "listen") == 1
        marker = await waiting
        assert isinstance(marker, Reconnected) and marker.generation == 1
        assert await next_item(both) == marker  # one marker for a subscriber of two channels

        await bus.publish(a, {"type": "status", "status": "processing"})
        await bus.publish(b, {"type": "feed", "n": 1})
        assert (await next_message(sub)).data["status"] == "processing"
        assert [(await next_message(both)).channel for _ in range(2)] == [a, b]
        await assert_quiet(sub, 0.1)
        stats = bus.stats()
        assert (stats.reconnects, stats.channels, stats.upstream) == (1, 2, 2)


async def test_publishing_survives_killed_publisher_connections(shared_url: str) -> None:
    opts = bus_options()
    ch = channel()
    async with EventBus.from_url(shared_url, options=opts) as bus, bus.subscribe(ch) as sub:
        await bus.publish(ch, {"type": "status", "i": 0})
        await next_message(sub)
        assert await kill(shared_url, opts.client_name, "publish") >= 1
        for i in range(1, 4):
            await bus.publish(ch, {"type": "status", "i": i})
        assert [(await next_message(sub)).data["i"] for _ in range(3)] == [1, 2, 3]
        assert bus.stats().reconnects == 0


async def test_a_silent_line_is_noticed_by_the_liveness_check(shared_url: str) -> None:
    """No EOF, no termination callback: only the periodic ping can tell."""
    ch = channel()
    fast = bus_options(ping_interval=0.2, command_timeout=0.5)
    async with (
        proxied(shared_url) as (proxy, through),
        EventBus.from_url(through, options=fast) as bus,
        EventBus.from_url(shared_url, options=bus_options()) as publisher,
        bus.subscribe(ch) as sub,
    ):
        await publisher.publish(ch, {"type": "status", "i": 1})
        assert (await next_message(sub)).data["i"] == 1
        assert proxy.freeze() >= 2  # the listener and the publisher pool
        marker = await next_marker(sub)
        assert marker.generation == 1 and bus.stats().reconnects == 1
        await publisher.publish(ch, {"type": "status", "i": 2})
        assert (await next_message(sub)).data["i"] == 2


async def test_reconnect_backs_off_and_takes_subscriptions_made_meanwhile(
    shared_url: str,
) -> None:
    first, later = channel(), channel("session")
    opts = bus_options(backoff_initial=0.05, backoff_max=0.2)
    async with (
        proxied(shared_url) as (proxy, through),
        EventBus.from_url(through, options=opts) as bus,
        EventBus.from_url(shared_url, options=bus_options()) as publisher,
        bus.subscribe(first) as sub,
    ):
        proxy.refusing = True
        assert await kill(shared_url, opts.client_name, "listen") == 1
        async with asyncio.timeout(10):
            await proxy.refused.wait()  # the bus noticed and is trying to come back
        assert bus.stats().upstream == 0
        # While the link is down a new subscription returns at once, listening later.
        async with asyncio.timeout(2):
            opened = bus.subscribe(later)
            late = await opened.__aenter__()
        try:
            await publisher.publish(first, {"type": "lost"})  # nobody can hear this one
            proxy.refusing = False
            marker = await next_marker(sub)
            assert marker.attempts >= 2
            assert await next_item(late) == marker
            await publisher.publish(later, {"type": "status", "i": 1})
            await publisher.publish(first, {"type": "status", "i": 2})
            assert (await next_message(late)).data["i"] == 1
            assert (await next_message(sub)).data["i"] == 2
        finally:
            await opened.__aexit__(None, None, None)


async def test_a_broker_that_is_down_at_start_is_reported(shared_url: str) -> None:
    async with proxied(shared_url) as (proxy, through):
        proxy.refusing = True
        bus = EventBus.from_url(through, options=bus_options(connect_timeout=2.0))
        with pytest.raises(BusUnavailable):
            await bus.connect()
