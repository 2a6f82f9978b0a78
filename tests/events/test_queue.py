"""The bounded coalescing queue on its own: no I/O."""

from __future__ import annotations

import asyncio

import pytest

from comfygraph.bus.queue import CoalescingQueue, QueueFull


def drain(q: CoalescingQueue[str]) -> list[str]:
    out = []
    while len(q):
        out.append(_pop(q))
    return out


def _pop(q: CoalescingQueue[str]) -> str:
    # get() returns without suspending while items are pending
    coro = q.get()
    try:
        coro.send(None)
    except StopIteration as done:
        return str(done.value)
    raise AssertionError("get() suspended with items pending")


def test_keyed_items_coalesce_in_place_and_plain_ones_stay_in_order() -> None:
    q: CoalescingQueue[str] = CoalescingQueue(8)
    assert q.put("p1", "progress") is False
    q.put("s1")
    assert q.put("p2", "progress") is True
    q.put("s2")
    assert q.put("p3", "progress") is True
    assert drain(q) == ["p3", "s1", "s2"]
    q.put("p4", "progress")  # the key is free again once its item was read
    assert drain(q) == ["p4"]


def test_full_queue_refuses_new_places_but_still_coalesces() -> None:
    q: CoalescingQueue[str] = CoalescingQueue(2)
    q.put("p1", "progress")
    q.put("s1")
    with pytest.raises(QueueFull):
        q.put("s2")
    with pytest.raises(QueueFull):
        q.put("x", "other-key")
    assert q.put("p2", "progress") is True
    assert drain(q) == ["p2", "s1"]


def test_a_marker_replaces_an_older_one_and_fences_coalescing() -> None:
    q: CoalescingQueue[str] = CoalescingQueue(4)
    q.put("p1", "progress")
    q.put_marker("m1")
    q.put("p2", "progress")  # after the marker: does not rewrite p1
    q.put_marker("m2")  # m1 goes, m2 is last
    q.put("p3", "progress")
    assert drain(q) == ["p1", "p2", "m2", "p3"]


async def test_fail_drops_pending_and_wakes_a_waiting_consumer() -> None:
    q: CoalescingQueue[str] = CoalescingQueue(4)
    waiter = asyncio.create_task(q.get())
    done, _ = await asyncio.wait({waiter}, timeout=0.05)  # it is waiting, nothing to get
    assert not done
    q.fail(RuntimeError("ended"))
    with pytest.raises(RuntimeError, match="ended"):
        await waiter
    q.put("ignored")
    assert len(q) == 0
    with pytest.raises(RuntimeError):
        await q.get()


async def test_a_cancelled_get_leaves_the_queue_usable() -> None:
    q: CoalescingQueue[str] = CoalescingQueue(4)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await q.get()
    q.put("a")
    assert await q.get() == "a"
