"""Counts for monitoring: jobs by table and status (one statement)."""

from __future__ import annotations

import asyncpg

from comfygraph.db.kinds import OutputType


async def job_status_counts(conn: asyncpg.Connection) -> dict[tuple[str, str], int]:
    """(output type, status) -> live (not deleted) jobs."""
    union = " UNION ALL ".join(
        f"SELECT '{k.value}' AS kind, status, count(*) AS n FROM {k.table} "
        "WHERE deleted_at IS NULL GROUP BY status"
        for k in OutputType
    )
    return {(r["kind"], r["status"]): r["n"] for r in await conn.fetch(union)}


async def workflow_status_counts(conn: asyncpg.Connection) -> dict[tuple[str, str], int]:
    """(workflow, status) -> live jobs, across the four tables."""
    union = " UNION ALL ".join(
        f"SELECT workflow_name, status, count(*) AS n FROM {k.table} "
        "WHERE deleted_at IS NULL GROUP BY workflow_name, status"
        for k in OutputType
    )
    rows = await conn.fetch(
        f"SELECT workflow_name, status, sum(n)::bigint AS n FROM ({union}) u "
        "GROUP BY workflow_name, status"
    )
    return {(r["workflow_name"], r["status"]): r["n"] for r in rows}


async def pending_queue(conn: asyncpg.Connection) -> tuple[int, float]:
    """(pending jobs, age in seconds of the oldest): what an autoscaler watches. Served
    by the `*_pending` partial indexes."""
    union = " UNION ALL ".join(
        f"SELECT count(*) AS n, min(created_at) AS oldest FROM {k.table} "
        "WHERE status = 'pending' AND deleted_at IS NULL"
        for k in OutputType
    )
    row = await conn.fetchrow(
        f"""SELECT coalesce(sum(n), 0)::bigint AS n,
                   coalesce(extract(epoch FROM now() - min(oldest)), 0)::float8 AS age
            FROM ({union}) u"""
    )
    assert row is not None
    return int(row["n"]), float(row["age"])
