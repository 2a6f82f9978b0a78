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
