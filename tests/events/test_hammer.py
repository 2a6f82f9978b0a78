"""Publishing hard while the same bus listens, subscribes and pings: no shared connection,
so no "another operation is in progress"."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from comfygraph.bus import EventBus
from tests.events.helpers import bus_options, channel, next_message

PUBLISHERS, EACH = 8, 150


async def test_publishing_while_listening_and_resubscribing(shared_url: str) -> None:
    ch = channel()
    # Pings every 50 ms interleave with LISTEN/UNLISTEN on the listening connection.
    opts = bus_options(ping_interval=0.05)
    async with EventBus.from_url(shared_url, options=opts) as bus, bus.subscribe(ch) as sub:

        async def publisher(p: int) -> None:
            for i in range(EACH):
                await bus.publish(ch, {"type": "status", "p": p, "i": i})

        async def churn() -> None:
            for _ in range(60):
                async with bus.subscribe(channel("session")):
                    pass

        seen: dict[int, list[int]] = defaultdict(list)

        async def read() -> None:
            for _ in range(PUBLISHERS * EACH):
                data = (await next_message(sub)).data
                seen[data["p"]].append(data["i"])

        async with asyncio.timeout(30):
            await asyncio.gather(
                read(), *(publisher(p) for p in range(PUBLISHERS)), churn(), churn()
            )
        assert seen == {p: list(range(EACH)) for p in range(PUBLISHERS)}
        assert bus.stats().reconnects == 0
