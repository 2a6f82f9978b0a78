"""A request whose transaction cannot be committed must not answer as if it were saved:
RequestConnection.finish() says so, and the view turns that into SERVICE_UNAVAILABLE."""

from __future__ import annotations

import asyncpg

from comfygraph.resolvers.request_db import RequestConnection


async def test_finish_reports_a_commit_that_did_not_happen(pool: asyncpg.Pool) -> None:
    db = RequestConnection(pool)
    db.hold()
    try:
        async with db.acquire() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
        async with pool.acquire() as other:  # the request's server process dies
            assert await other.fetchval("SELECT pg_terminate_backend($1)", pid)
        assert await db.finish() is False
    finally:
        await db.release()


async def test_finish_commits(pool: asyncpg.Pool) -> None:
    db = RequestConnection(pool)
    db.hold()
    try:
        async with db.acquire() as conn:
            assert conn.is_in_transaction()
        assert await db.finish() is True
    finally:
        await db.release()
