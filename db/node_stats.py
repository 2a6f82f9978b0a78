"""Per-workflow node timings: a running average of each node's seconds (and the total)."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

TOTAL = "*"
# Averages follow recent runs: older samples weigh less once there are this many.
WINDOW = 20


async def load_node_stats(conn: asyncpg.Connection, workflow: str) -> dict[str, float]:
    rows = await conn.fetch(
        "SELECT node_id, avg_seconds FROM workflow_node_stats WHERE workflow_name = $1", workflow
    )
    return {r["node_id"]: r["avg_seconds"] for r in rows}


async def record_node_stats(
    conn: asyncpg.Connection, workflow: str, durations: Mapping[str, float], total: float
) -> None:
    items = [*durations.items(), (TOTAL, total)]
    await conn.execute(  # every node in one statement (node ids are unique per graph)
        """INSERT INTO workflow_node_stats (workflow_name, node_id, avg_seconds)
           SELECT $1, node, seconds FROM unnest($2::text[], $3::float8[]) AS x(node, seconds)
           ON CONFLICT (workflow_name, node_id) DO UPDATE SET
               avg_seconds = workflow_node_stats.avg_seconds
                   + (excluded.avg_seconds - workflow_node_stats.avg_seconds)
                     / least(workflow_node_stats.samples + 1, $4),
               samples = workflow_node_stats.samples + 1,
               updated_at = now()""",
        workflow,
        [node for node, _ in items],
        [max(0.0, seconds) for _, seconds in items],
        WINDOW,
    )
