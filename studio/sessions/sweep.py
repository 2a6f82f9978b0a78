"""Settle every running session periodically, so that each reaches its next state
within seconds whatever happened to its jobs: one cancelled with cancelJob (no runner
listener hears it), or a replica that died between a job's end and its listener.
One replica at a time (a PostgreSQL advisory lock held for the sweep)."""

from __future__ import annotations

import asyncio
import logging

from comfygraph.db import sessions as db_sessions
from comfygraph.studio.sessions import states
from comfygraph.studio.sessions.pipeline import SessionPipeline

log = logging.getLogger(__name__)


async def settle_running(pipeline: SessionPipeline) -> int | None:
    """Settle each running session once; None when another replica is sweeping."""
    async with pipeline.pool.acquire() as conn, conn.transaction():
        if not await db_sessions.try_settle_lock(conn):
            return None
        ids = await db_sessions.running_session_ids(conn, list(states.RUNNING))
        for session_id in ids:  # each settle locks its session on its own connection
            await pipeline.settle(session_id)
    return len(ids)


async def settle_loop(pipeline: SessionPipeline, interval: float) -> None:
    while True:
        await settle_running(pipeline)
        await asyncio.sleep(interval)
