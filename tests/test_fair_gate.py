"""Requests take the pool's connections first come, first served: a released slot
goes to the request that waited longest, never to one that arrives just then
(asyncpg's own pool lets it barge in, which made the latency tail)."""

from __future__ import annotations

import asyncio

from comfygraph.resolvers.request_db import FairGate


async def test_slots_go_to_the_oldest_waiter_not_a_newcomer() -> None:
    gate = FairGate(1)
    await gate.acquire()
    served: list[int] = []

    async def request(i: int) -> None:
        await gate.acquire()
        served.append(i)
        gate.release()

    waiting = [asyncio.create_task(request(i)) for i in range(5)]
    await asyncio.sleep(0)  # every waiter is queued
    gate.release()
    late = asyncio.create_task(request(99))  # arrives as the slot frees up
    await asyncio.wait_for(asyncio.gather(*waiting, late), 10)
    assert served == [0, 1, 2, 3, 4, 99]
    assert gate.free == 1


async def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    gate = FairGate(1)
    await gate.acquire()
    first = asyncio.create_task(gate.acquire())
    second = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    first.cancel()
    gate.release()
    await asyncio.wait_for(second, 10)
    assert first.cancelled()
    gate.release()
    assert gate.free == 1 and not gate.waiters
