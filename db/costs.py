"""Generation costs (seed 004): one row per paid run; a trigger keeps sessions.total_cost."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from comfygraph.db.kinds import OutputType


async def record_cost(
    conn: asyncpg.Connection,
    *,
    category: str,
    amount: Decimal | float,
    job_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    asset_id: uuid.UUID | None = None,
    **columns: Any,
) -> asyncpg.Record | None:
    """Insert a cost row. A job is charged once: recording the same job again returns None."""
    names = ["category", "amount", "job_id", "session_id", "asset_id", *columns]
    values = [category, Decimal(str(amount)), job_id, session_id, asset_id, *columns.values()]
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    return await conn.fetchrow(
        f"""INSERT INTO generation_costs ({", ".join(names)}) VALUES ({placeholders})
            ON CONFLICT (job_id) WHERE job_id IS NOT NULL DO NOTHING RETURNING *""",
        *values,
    )


async def cost_breakdown(conn: asyncpg.Connection, session_id: uuid.UUID) -> list[asyncpg.Record]:
    """Seed 004's breakdown: by category and provider, most expensive first."""
    return list(
        await conn.fetch(
            """SELECT category, provider, count(*) AS api_calls, sum(amount) AS total_cost,
                      avg(api_latency_ms)::float8 AS avg_latency_ms
               FROM generation_costs WHERE session_id = $1
               GROUP BY category, provider ORDER BY total_cost DESC, category, provider""",
            session_id,
        )
    )


async def cost_breakdowns(
    conn: asyncpg.Connection, session_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """cost_breakdown for many sessions in one statement (a DataLoader's batch)."""
    rows = await conn.fetch(
        """SELECT session_id, category, provider, count(*) AS api_calls,
                  sum(amount) AS total_cost, avg(api_latency_ms)::float8 AS avg_latency_ms
           FROM generation_costs WHERE session_id = ANY($1::uuid[])
           GROUP BY session_id, category, provider
           ORDER BY session_id, total_cost DESC, category, provider""",
        list(session_ids),
    )
    grouped: dict[uuid.UUID, list[asyncpg.Record]] = {sid: [] for sid in session_ids}
    for row in rows:
        grouped[row["session_id"]].append(row)
    return grouped


async def average_job_costs(
    conn: asyncpg.Connection,
    workflows: Sequence[tuple[OutputType, str]],
    *,
    recent: int = 100,
) -> dict[str, Decimal | None]:
    """Average cost of each workflow's most recent `recent` completed, costed jobs (None
    for a workflow without any): what an estimate of a new run can go by."""
    averages: dict[str, Decimal | None] = {}
    for kind, name in workflows:
        averages[name] = await conn.fetchval(
            f"""SELECT avg(cost_usd) FROM (
                    SELECT cost_usd FROM {kind.table}
                    WHERE workflow_name = $1 AND deleted_at IS NULL
                      AND status = 'completed' AND cost_usd IS NOT NULL
                    ORDER BY created_at DESC, id DESC LIMIT $2) recent""",
            name,
            recent,
        )
    return averages


async def link_cost_to_asset(
    conn: asyncpg.Connection, *, job_id: uuid.UUID, asset_id: uuid.UUID
) -> None:
    """Name the asset on a job's cost row recorded before the asset existed."""
    await conn.execute(
        "UPDATE generation_costs SET asset_id = $2 WHERE job_id = $1 AND asset_id IS NULL",
        job_id,
        asset_id,
    )


async def set_cost_category(conn: asyncpg.Connection, *, job_id: uuid.UUID, category: str) -> None:
    """Re-file a job's cost row (e.g. the final video's under 'composition')."""
    await conn.execute(
        "UPDATE generation_costs SET category = $2 WHERE job_id = $1 AND category <> $2",
        job_id,
        category,
    )
