"""jobUpdates under a burst: a subscriber that re-reads each job an event names needs only
the newest queued event of each job, so a burst of one job's changes takes one place in
its bounded queue (it used to take one each, and the subscription overflowed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from comfygraph.bus import EventBus
from comfygraph.db.jobs import create_job, transition
from comfygraph.db.kinds import OutputType
from comfygraph.studio.channels import JobEvents
from comfygraph.studio.publish import bus_publisher
from tests.graphql.client import gid
from tests.realtime.client import JOB_UPDATES, Client
from tests.realtime.conftest import User
from tests.realtime.harness import Running, make_settings, running, until
from tests.realtime.test_job_updates import streams_listening

QUEUE = 8  # the least BUS_QUEUE_SIZE allowed


@pytest.fixture(scope="module")
def small(dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A server whose subscribers may have only QUEUE events waiting."""
    settings = make_settings(dsn, Path(tmp_path_factory.mktemp("small")), bus_queue_size=QUEUE)
    with running(settings, dsn) as app:
        yield app


async def reader_blocked_on(pool: asyncpg.Pool, table: str) -> bool:
    """Whether some statement on `table` waits for a lock (the subscriber's read)."""
    async with pool.acquire() as conn:
        waiting = await conn.fetchval(
            """SELECT count(*) FROM pg_stat_activity
               WHERE wait_event_type = 'Lock' AND query ILIKE '%' || $1 || '%'
                 AND pid <> pg_backend_pid()""",
            table,
        )
    return bool(waiting)


async def received(server: Running) -> int:
    """Events the server's bus took from the broadcast (a subscriber's or not)."""

    async def read() -> int:
        bus = server.state.bus
        assert bus is not None
        return bus.stats().received

    return await server.call(read)


async def test_a_burst_of_one_jobs_changes_does_not_overflow_its_subscriber(
    small: Running, users: dict[str, User], pool: asyncpg.Pool
) -> None:
    alice = users["alice"]
    async with pool.acquire() as conn:
        row, _ = await create_job(
            conn, OutputType.IMAGE, user_id=alice.id, workflow_name="product-image",
            parameters={"prompt": "a burst"}, status="processing",
        )  # fmt: skip
    job = gid("ImageJob", row["id"])
    async with (
        await Client.connect(small.ws_url, token=alice.token) as client,
        EventBus.from_url(small.broadcast_url) as bus,
    ):
        op = await client.subscribe(JOB_UPDATES, {"filter": {"scope": "MINE"}})
        await streams_listening(small, 1)
        events = JobEvents(bus_publisher(bus))
        # The subscriber's first read waits behind a lock the test holds, so whatever is
        # published meanwhile piles up in its queue: 5 * QUEUE changes of the one job.
        burst = 5 * QUEUE
        before = await received(small)
        async with pool.acquire() as locker, locker.transaction():
            await locker.execute("LOCK TABLE image_jobs IN ACCESS EXCLUSIVE MODE")
            await events.status("image", row)
            await until(lambda: reader_blocked_on(pool, "image_jobs"))
            for _ in range(burst):
                await events.status("image", row)

            async def all_arrived() -> bool:
                return await received(small) >= before + 1 + burst

            await until(all_arrived)
        seen = [(await op.data(within=15))["status"]]  # read once the lock is gone
        async with pool.acquire() as conn:
            done = await transition(conn, OutputType.IMAGE, row["id"], "completed")
        await events.status("image", done)
        while "COMPLETED" not in seen:
            update = await op.data(within=15)  # an overflow fails here with its error
            assert update["id"] == job
            seen.append(update["status"])
    assert seen[0] == "PROCESSING"
    assert len(seen) <= 3, f"the queued changes of one job were read one by one: {seen}"
