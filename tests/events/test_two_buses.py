"""Several processes' buses on one broker see each other's events."""

from __future__ import annotations

import asyncio
import sys
import textwrap

from comfygraph.bus import EventBus, Message
from tests.events.helpers import bus_options, channel, next_message

PUBLISHER = textwrap.dedent(
    """
    import asyncio, sys
    from comfygraph.bus import EventBus

    async def main(url: str, ch: str, count: int) -> None:
        async with EventBus.from_url(url) as bus:
            for i in range(count):
                await bus.publish(ch, {"type": "status", "i": i, "from": "child"})

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def test_two_buses_see_each_others_events(shared_url: str) -> None:
    job, feed = channel(), "feed:public"
    async with (
        EventBus.from_url(shared_url, options=bus_options()) as one,
        EventBus.from_url(shared_url, options=bus_options()) as two,
        one.subscribe([job, feed]) as on_one,
        two.subscribe(job) as on_two,
    ):
        await one.publish(job, {"type": "status", "by": "one"})
        await two.publish(job, {"type": "status", "by": "two"})
        assert [(await next_message(on_two)).data["by"] for _ in range(2)] == ["one", "two"]
        assert [(await next_message(on_one)).data["by"] for _ in range(2)] == ["one", "two"]
        # Each bus listens once per channel however many local subscribers it has.
        assert (one.stats().upstream, two.stats().upstream) == (2, 1)


async def test_a_second_process_publishes(shared_url: str) -> None:
    ch = channel()
    count = 20
    async with (
        EventBus.from_url(shared_url, options=bus_options()) as bus,
        bus.subscribe(ch) as sub,
    ):
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PUBLISHER, shared_url, ch, str(count),
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            got: list[Message] = [await next_message(sub, within=30) for _ in range(count)]
        finally:
            async with asyncio.timeout(30):
                _, err = await child.communicate()
        assert child.returncode == 0, err.decode()
    assert [m.data for m in got] == [
        {"type": "status", "i": i, "from": "child"} for i in range(count)
    ]
