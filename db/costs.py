"""Generation costs (seed 004): one row per paid run; a trigger keeps sessions.total_cost."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import asyncpg


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


async def costs_by_jobs(
    conn: asyncpg.Connection, job_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Decimal]:
    rows = await conn.fetch(
        """SELECT job_id, sum(amount) AS amount FROM generation_costs
           WHERE job_id = ANY($1::uuid[]) GROUP BY job_id""",
        list(job_ids),
    )
    return {r["job_id"]: r["amount"] for r in rows}
