"""The event bus: in-process fan-out to many subscribers, and publish-to-receive latency.

    python bench/bus.py [--subscribers 10000] [--events 50] [--runs 300]
                        [--dsn DSN] [--redis URL] [--uvloop]

1. fan-out: SUBSCRIBERS consumer tasks on one channel (memory://) read EVENTS status
   events; time from the first publish until every subscriber has the last one.
2. dispatch only: the same subscribers never read, and progress ticks coalesce in their
   queues; this is the hub's own cost per event.
3. latency: publish -> receive on one bus, per backend (memory, PostgreSQL at --dsn,
   Redis at --redis; each skipped when unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import summary
from comfygraph.bus import BusUnavailable, EventBus, Message


async def fan_out(subscribers: int, events: int) -> None:
    ch = "job:bench"
    async with EventBus.from_url("memory://", queue_size=events + 8) as bus:
        remaining = subscribers
        all_done = asyncio.Event()

        async def consume(ready: asyncio.Event) -> None:
            nonlocal remaining
            async with bus.subscribe(ch) as sub:
                ready.set()
                async for item in sub:
                    assert isinstance(item, Message)
                    if item.data["i"] == events - 1:
                        break
            remaining -= 1
            if remaining == 0:
                all_done.set()

        readies = [asyncio.Event() for _ in range(subscribers)]
        tasks = [asyncio.create_task(consume(r)) for r in readies]
        for ready in readies:
            await ready.wait()
        start = time.perf_counter()
        for i in range(events):
            await bus.publish(ch, {"type": "status", "i": i, "status": "processing"})
        await all_done.wait()
        elapsed = time.perf_counter() - start
        await asyncio.gather(*tasks)
        print(
            f"fan-out   {subscribers} subscribers x {events} events: {elapsed:.2f} s, "
            f"{events / elapsed:,.0f} events/s, {subscribers * events / elapsed:,.0f} deliveries/s"
        )


async def dispatch_only(subscribers: int, events: int) -> None:
    ch = "job:bench"
    async with EventBus.from_url("memory://", queue_size=4) as bus, AsyncExitStack() as stack:
        for _ in range(subscribers):
            await stack.enter_async_context(bus.subscribe(ch))
        async with bus.subscribe(ch) as probe:
            start = time.perf_counter()
            for i in range(events):
                await bus.publish(ch, {"type": "progress", "i": i}, coalesce="progress")
            while not isinstance(item := await probe.get(), Message) or item.data["i"] < events - 1:
                pass
            elapsed = time.perf_counter() - start
        stats = bus.stats()
        print(
            f"dispatch  {subscribers} stalled subscribers x {events} coalescing events: "
            f"{events / elapsed:,.0f} events/s, {subscribers * events / elapsed:,.0f} puts/s "
            f"(coalesced {stats.coalesced:,}, overflows {stats.overflows})"
        )


async def latency(name: str, url: str, runs: int) -> None:
    ch = f"job:{uuid.uuid4()}"
    try:
        async with EventBus.from_url(url) as bus, bus.subscribe(ch) as sub:
            samples = []
            for i in range(runs + 20):
                start = time.perf_counter()
                await bus.publish(ch, {"type": "status", "i": i})
                await sub.get()
                if i >= 20:
                    samples.append((time.perf_counter() - start) * 1000)
    except (BusUnavailable, OSError) as exc:
        print(f"latency   {name}: skipped ({exc})")
        return
    print(f"latency   {name:9} publish->receive {summary(samples)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL",
                        "postgresql://postgres@127.0.0.1:5432/postgres"))  # fmt: skip
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as uvicorn does")
    args = parser.parse_args()
    print(f"event loop: {type(asyncio.get_running_loop()).__module__}")
    await fan_out(args.subscribers, args.events)
    await dispatch_only(args.subscribers, args.events)
    for name, url in (("memory", "memory://"), ("postgres", args.dsn), ("redis", args.redis)):
        await latency(name, url, args.runs)


if __name__ == "__main__":
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
