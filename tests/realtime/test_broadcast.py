"""Two server processes sharing PostgreSQL and the broadcast (LISTEN/NOTIFY, then Redis):
a subscriber on A follows jobs that only B runs, also across a killed broadcast link."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.realtime.client import JOB_PROGRESS, JOB_UPDATES, Client
from tests.realtime.conftest import User
from tests.realtime.harness import (
    Process,
    faults,
    kill_pg_listeners,
    kill_redis_listener,
    ready,
    stalled,
    start_process,
    stop_process,
    submit,
)

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module", params=["postgres", "redis"])
async def pair(
    request: pytest.FixtureRequest, dsn: str, emulator: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[str, Process, Process]]:  # fmt: skip
    backend = request.param
    broadcast = dsn if backend == "postgres" else REDIS
    data = Path(tmp_path_factory.mktemp(backend))
    a = start_process(dsn, data, BROADCAST_URL=broadcast)  # no workers: it only serves
    b = start_process(dsn, data, BROADCAST_URL=broadcast, COMFY_WORKERS=emulator)
    try:
        await asyncio.gather(ready(a), ready(b))
        yield backend, a, b
    finally:
        stop_process(a)
        stop_process(b)


async def test_a_subscriber_on_one_process_follows_jobs_another_runs(
    pair: tuple[str, Process, Process], users: dict[str, User], emulator: str, admin_dsn: str,
    dsn: str,
) -> None:  # fmt: skip
    backend, a, _b = pair
    alice = users["alice"]
    async with await Client.connect(a.ws_url, token=alice.token) as client:
        feed = await client.subscribe(JOB_UPDATES, {"filter": {"scope": "MINE"}})
        # A first job, start to end, every event through the broadcast.
        job = await submit(a.url, alice.token)
        op = await client.subscribe(JOB_PROGRESS, {"id": job})
        seen = await op.until(lambda v: v["status"] == "COMPLETED", within=30)
        await op.completed()
        assert [v for v in seen if v["status"] == "PROCESSING"], "it ran on B"
        assert seen[-1]["job"]["outputImageUrls"]
        statuses = []
        while "COMPLETED" not in statuses:
            update = await feed.data()
            if update["id"] == job:
                statuses.append(update["status"])

        # A second job; A's listening connection is killed while B runs it.
        await faults(emulator, action="stall", class_type="KSampler")
        try:
            job = await submit(a.url, alice.token)
            op = await client.subscribe(JOB_PROGRESS, {"id": job})
            await op.data()
            await stalled(emulator)
            if backend == "postgres":  # A's and B's: the database is this module's
                killed = await kill_pg_listeners(admin_dsn, urlsplit(dsn).path.lstrip("/"))
                assert killed == 2
            else:
                assert await kill_redis_listener(REDIS, a.pid) == 1
        finally:
            await faults(emulator, action="release")
        seen = await op.until(lambda v: v["status"] == "COMPLETED", within=30)
        await op.completed()
        assert seen[-1]["progress"] == 100.0
        # The feed on A got there too (live, or re-sent after the link came back).
        await feed.until(lambda update: update["id"] == job and update["status"] == "COMPLETED")
