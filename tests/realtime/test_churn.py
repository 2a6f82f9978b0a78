"""A thousand clients come and go, every way a client can go: nothing stays behind (no
task, no bus subscription, no stream, no connection object, no memory growth)."""

from __future__ import annotations

import asyncio
import gc
import os

import asyncpg
import psutil

from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.server.realtime.connection import LiveConnection
from comfygraph.server.realtime.live import StreamContext
from comfygraph.server.realtime.outbox import Member, Outbox
from comfygraph.server.realtime.streams import Stream
from tests.graphql.client import gid
from tests.realtime.client import JOB_PROGRESS, JOB_UPDATES, PROTOCOLS, Client
from tests.realtime.conftest import User
from tests.realtime.harness import Running, until

LEFTOVERS = (LiveConnection, Member, Outbox, Stream, StreamContext)


async def one_client(server: Running, job: str, token: str, i: int) -> None:
    client = await Client.connect(server.ws_url, PROTOCOLS[i % 2], token if i % 4 else None)
    op = await client.subscribe(JOB_PROGRESS, {"id": job})
    await op.data()
    if i % 5 == 0:
        await client.subscribe(JOB_UPDATES, {"filter": {"scope": "ALL"}})
    way = i % 3
    if way == 0:  # complete, then close
        await op.stop()
        await client.close()
    elif way == 1:  # close mid-stream
        await client.close()
    else:  # vanish: the TCP connection is cut without a close handshake
        client.connection.transport.abort()
        await client.wait_closed()


async def churn(server: Running, job: str, token: str, count: int, batch: int = 50) -> None:
    for start in range(0, count, batch):
        await asyncio.gather(
            *(one_client(server, job, token, i) for i in range(start, min(count, start + batch)))
        )


async def test_a_thousand_clients_come_and_go_and_leave_nothing_behind(
    server: Running, users: dict[str, User], pool: asyncpg.Pool
) -> None:
    alice = users["alice"]
    async with pool.acquire() as conn:
        row, _ = await create_job(conn, OutputType.IMAGE, user_id=alice.id, public=True,
                                  workflow_name="product-image", parameters={},
                                  status="processing")  # fmt: skip
    job = gid("ImageJob", row["id"])
    me = psutil.Process(os.getpid())

    # The app's own standing subscriptions (the workflows channel every replica follows)
    # are there before any client comes.
    _, standing, _ = await server.stats()

    async def settled() -> tuple[int, int] | None:
        realtime, bus_subscribers, tasks = await server.stats()
        busy = (realtime.connections, realtime.subscriptions, realtime.streams,
                realtime.stream_tasks, realtime.queued_frames,
                bus_subscribers - standing)  # fmt: skip
        if any(busy) or realtime.background_tasks > 1:  # the connection log may still flush
            return None
        return tasks, realtime.queue_watched

    await churn(server, job, alice.token, 100)  # warm up: caches, pools, first-time imports
    baseline_tasks, _ = await until(settled)
    gc.collect()
    baseline_rss = me.memory_info().rss

    await churn(server, job, alice.token, 1000)

    async def back_to_baseline() -> bool:
        state = await settled()
        return state is not None and state[0] <= baseline_tasks and state[1] == 0

    await until(back_to_baseline, within=60)
    gc.collect()
    leftovers = [o for o in gc.get_objects() if isinstance(o, LEFTOVERS)]
    assert leftovers == []
    grown = (me.memory_info().rss - baseline_rss) / 2**20
    assert grown < 16, f"memory grew by {grown:.1f} MiB over 1,000 connections"
