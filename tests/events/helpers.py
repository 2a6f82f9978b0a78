"""Waiting on a subscription with deadlines (never sleeping), and finding our connections."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

import asyncpg
from redis import asyncio as aioredis

from comfygraph.bus import BackendOptions, Item, Message, Reconnected, Subscription

WAIT = 10.0


def bus_options(**overrides: Any) -> BackendOptions:
    """Fast timeouts, and a client name unique to this bus so tests find its connections."""
    base = BackendOptions(
        connect_timeout=5.0,
        command_timeout=2.0,
        ping_interval=5.0,
        backoff_initial=0.05,
        backoff_max=0.5,
        client_name=f"evt-{uuid.uuid4().hex[:10]}",
    )
    return replace(base, **overrides)


def channel(kind: str = "job") -> str:
    return f"{kind}:{uuid.uuid4()}"


async def next_item(sub: Subscription, within: float = WAIT) -> Item:
    async with asyncio.timeout(within):
        return await sub.get()


async def next_message(sub: Subscription, within: float = WAIT) -> Message:
    item = await next_item(sub, within)
    assert isinstance(item, Message), item
    return item


async def next_marker(sub: Subscription, within: float = WAIT) -> Reconnected:
    """Skip messages that were on their way before the link died; return the marker."""
    async with asyncio.timeout(within):
        while not isinstance(item := await sub.get(), Reconnected):
            pass
        return item


async def assert_quiet(sub: Subscription, within: float = 0.2) -> None:
    """Prove nothing arrives in a short window."""
    try:
        async with asyncio.timeout(within):
            item = await sub.get()
    except TimeoutError:
        return
    raise AssertionError(f"expected nothing, got {item!r}")


async def kill_pg(dsn: str, application_name: str) -> int:
    """pg_terminate_backend every connection with this application_name; how many."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1",
                application_name,
            )
        )
    finally:
        await conn.close()


async def kill_redis(url: str, name: str, kind: str = "normal") -> int:
    """CLIENT KILL our own connections by id: TYPE pubsub alone would also cut other test
    runs sharing this Redis."""
    client = aioredis.Redis.from_url(url)
    try:
        clients = await client.client_list(_type=kind)
        ids = [c["id"] for c in clients if c.get("name") == name]
        for cid in ids:
            await client.execute_command("CLIENT", "KILL", "ID", cid, "TYPE", kind)
        return len(ids)
    finally:
        await client.aclose()
