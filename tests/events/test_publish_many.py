"""One event on several channels in one publish (a job's status change goes to up to
five): every channel gets it exactly once, and per channel in publish order, on every
backend; through the retrying publisher and JobEvents too."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack

from comfygraph.bus import EventBus
from comfygraph.studio.channels import (
    ALL_FEED,
    PUBLIC_FEED,
    JobEvents,
    job_channel,
    session_channel,
    user_feed_channel,
)
from comfygraph.studio.publish import bus_publisher
from tests.events.helpers import assert_quiet, channel, next_message


async def test_each_channel_gets_each_event_once_in_order(bus: EventBus) -> None:
    names = [channel("job"), channel("feed:user"), "feed:public", channel("session")]
    async with AsyncExitStack() as stack:
        subs = [await stack.enter_async_context(bus.subscribe(name)) for name in names]
        for i in range(5):
            await bus.publish_many(names, {"type": "status", "i": i})
        await bus.publish(names[0], {"type": "status", "i": 5})  # after them, still last
        for name, sub in zip(names, subs, strict=True):
            got = [(await next_message(sub)).data["i"] for _ in range(5 if name != names[0] else 6)]
            assert got == list(range(len(got))), (name, got)
            await assert_quiet(sub, 0.1)
        assert bus.stats().published == 5 * len(names) + 1


async def test_a_status_change_reaches_every_channel_of_the_job(bus: EventBus) -> None:
    job, user, session = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    row = {"id": job, "status": "pending", "progress": 0, "user_id": user, "public": True,
           "workflow_name": "product-image", "session_id": session, "deleted_at": None}  # fmt: skip
    names = [job_channel(job), user_feed_channel(user), PUBLIC_FEED, ALL_FEED,
             session_channel(session)]  # fmt: skip
    publisher = bus_publisher(bus)
    async with AsyncExitStack() as stack:
        subs = [await stack.enter_async_context(bus.subscribe(name)) for name in names]
        await JobEvents(publisher).status("image", row)
        await JobEvents(publisher).status("image", {**row, "status": "processing"})
        for sub in subs:
            assert (await next_message(sub)).data["status"] == "pending"
            assert (await next_message(sub)).data["status"] == "processing"
            await assert_quiet(sub, 0.1)
    assert publisher.stats.failures == 0
    await publisher.aclose()
