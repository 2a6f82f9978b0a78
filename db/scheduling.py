"""SQL of the scheduler: classify pending jobs, claim the best one for a worker, say
why jobs wait, and the admin's drained workers.

Classifying gives a PENDING row what a worker must have (`required_nodes`,
`required_models`, sorted), its model set (`model_key`) and its fair-share place
(`fair_key`): user u's next job gets max(V, vtime[u]) + 1, V being the smallest
fair_key still pending (or the largest vtime when nothing is), so at one priority the
claim order takes users round-robin however many jobs one of them queued.

The claim is still one statement with FOR UPDATE SKIP LOCKED per table: replicas never
get the same job. With affinity (`window` > 1) each table locks its first `window`
capable jobs for the claim's instant and the worker takes one with its own model set
if one is there at the top priority, else the first; the others are released at commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from comfygraph.db.kinds import OutputType

ORDER = "priority DESC, fair_key, created_at, id"


@dataclass(frozen=True)
class Classified:
    nodes: Sequence[str]
    models: Sequence[str]
    model_key: str


# (workflow_name, parameters) -> what the job needs; studio/ supplies it (templates).
Classify = Callable[[str, Any], Classified]


def _user_key(user_id: uuid.UUID | None) -> str:
    return str(user_id) if user_id is not None else ""


_ANY_UNCLASSIFIED = "SELECT " + " OR ".join(
    f"EXISTS (SELECT 1 FROM {k.table} WHERE status = 'pending' AND fair_key IS NULL)"
    for k in OutputType
)
# Each table's oldest unclassified rows, locked (a CTE each: FOR UPDATE cannot go with
# UNION), in one statement.
_UNCLASSIFIED = (
    "WITH "
    + ", ".join(
        f"""u_{k.value} AS (
            SELECT '{k.value}'::text AS kind, id, user_id, workflow_name, parameters, created_at
            FROM {k.table} WHERE status = 'pending' AND fair_key IS NULL
            ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)"""
        for k in OutputType
    )
    + " "
    + " UNION ALL ".join(f"SELECT * FROM u_{k.value}" for k in OutputType)
)


async def classify_pending(
    conn: asyncpg.Connection, classify: Classify, limit: int = 500, *, fair: bool = True
) -> int:
    """Classify up to `limit` unclassified PENDING jobs (oldest first); returns how many.
    `fair=False` puts everyone in one share: oldest first (the benchmark's baseline)."""
    # Most passes find nothing new: one statement (the partial index *_unclassified)
    # says so, with no transaction around it.
    if not await conn.fetchval(_ANY_UNCLASSIFIED):
        return 0
    async with conn.transaction():
        rows = [(OutputType(r["kind"]), r) for r in await conn.fetch(_UNCLASSIFIED, limit)]
        if not rows:
            return 0
        rows.sort(key=lambda kr: (kr[1]["created_at"], kr[1]["id"]))

        def user_of(row: asyncpg.Record) -> str:
            return _user_key(row["user_id"]) if fair else "*"

        users = sorted({user_of(r) for _k, r in rows})
        # Locked in one order, so classifiers on two replicas never deadlock.
        vtimes = {
            r["user_key"]: r["vtime"]
            for r in await conn.fetch(
                """SELECT user_key, vtime FROM fair_share WHERE user_key = ANY($1::text[])
                   ORDER BY user_key FOR UPDATE""",
                users,
            )
        }
        now = await _virtual_time(conn)
        updates: dict[OutputType, list[dict[str, Any]]] = {k: [] for k in OutputType}
        for kind, row in rows:
            user = user_of(row)
            key = max(now, vtimes.get(user, now)) + 1.0
            vtimes[user] = key
            needs = classify(row["workflow_name"], row["parameters"])
            updates[kind].append(
                {
                    "id": str(row["id"]),
                    "nodes": sorted(needs.nodes),
                    "models": sorted(needs.models),
                    "model_key": needs.model_key,
                    "fair_key": key,
                }
            )
        await conn.execute(
            """INSERT INTO fair_share (user_key, vtime)
               SELECT * FROM unnest($1::text[], $2::float8[])
               ON CONFLICT (user_key) DO UPDATE
               SET vtime = greatest(fair_share.vtime, excluded.vtime), updated_at = now()""",
            users,
            [vtimes[u] for u in users],
        )
        for kind, items in updates.items():
            if items:
                await conn.execute(
                    f"""UPDATE {kind.table} t SET required_nodes = x.nodes,
                               required_models = x.models, model_key = x.model_key,
                               fair_key = x.fair_key
                        FROM jsonb_to_recordset($1::jsonb)
                             AS x(id uuid, nodes text[], models text[], model_key text,
                                  fair_key float8)
                        WHERE t.id = x.id""",
                    items,
                )
    return len(rows)


async def _virtual_time(conn: asyncpg.Connection) -> float:
    pending = " UNION ALL ".join(
        f"SELECT min(fair_key) AS k FROM {k.table} WHERE status = 'pending' AND deleted_at IS NULL"
        for k in OutputType
    )
    value = await conn.fetchval(
        f"""SELECT coalesce((SELECT min(k) FROM ({pending}) p),
                            (SELECT max(vtime) FROM fair_share), 0)"""
    )
    return float(value)


def _capable(kind: OutputType, window: int) -> str:
    return f"""c_{kind.value} AS (
        SELECT '{kind.value}'::text AS kind, id, priority, fair_key, created_at, model_key
        FROM {kind.table}
        WHERE status = 'pending' AND deleted_at IS NULL AND fair_key IS NOT NULL
          AND required_nodes <@ $1::text[] AND required_models <@ $2::text[]
        ORDER BY {ORDER} LIMIT {window} FOR UPDATE SKIP LOCKED)"""


async def claim_for_worker(
    conn: asyncpg.Connection,
    *,
    replica: str,
    worker_url: str,
    lease_s: float,
    nodes: Iterable[str],
    models: Iterable[str],
    model_key: str | None = None,
    window: int = 1,
) -> tuple[OutputType, asyncpg.Record] | None:
    """Claim the best PENDING job this worker can run and move it to PROCESSING."""
    window = max(1, int(window))
    ctes = ", ".join(_capable(k, window) for k in OutputType)
    union = " UNION ALL ".join(f"SELECT * FROM c_{k.value}" for k in OutputType)
    args: list[Any] = [sorted(nodes), sorted(models)]
    warm = ""
    if model_key is not None and window > 1:
        args.append(model_key)
        warm = "(priority = max(priority) OVER () AND model_key IS NOT DISTINCT FROM $3) DESC, "
    async with conn.transaction():
        best = await conn.fetchrow(
            f"""WITH {ctes} SELECT kind, id FROM ({union}) c ORDER BY {warm}{ORDER} LIMIT 1""",
            *args,
        )
        if best is None:
            return None
        kind = OutputType(best["kind"])
        row = await conn.fetchrow(
            f"""UPDATE {kind.table}
                SET status = 'processing', started_at = now(), attempts = attempts + 1,
                    claimed_by = $2, comfy_url = $3, blocked_reason = NULL,
                    lease_expires_at = now() + make_interval(secs => $4)
                WHERE id = $1 AND status = 'pending' RETURNING *""",
            best["id"], replica, worker_url, lease_s,
        )  # fmt: skip
    assert row is not None  # the row was locked by us and pending
    return kind, row


async def pending_needs(conn: asyncpg.Connection) -> list[tuple[list[str], list[str]]]:
    """The distinct (nodes, models) that classified PENDING jobs need."""
    union = " UNION ".join(
        f"""SELECT DISTINCT required_nodes, required_models FROM {k.table}
            WHERE status = 'pending' AND deleted_at IS NULL AND fair_key IS NOT NULL"""
        for k in OutputType
    )
    return [(list(r[0]), list(r[1])) for r in await conn.fetch(union)]


async def set_blocked(
    conn: asyncpg.Connection, reasons: Iterable[tuple[list[str], list[str], str | None]]
) -> int:
    """Store each need's blocked reason (None: runnable) on its PENDING jobs."""
    items = [{"nodes": n, "models": m, "reason": r} for n, m, r in reasons]
    if not items:
        return 0
    total = 0
    for kind in OutputType:
        status = await conn.execute(
            f"""UPDATE {kind.table} t SET blocked_reason = x.reason
                FROM jsonb_to_recordset($1::jsonb) AS x(nodes text[], models text[], reason text)
                WHERE t.status = 'pending' AND t.fair_key IS NOT NULL
                  AND t.required_nodes = x.nodes AND t.required_models = x.models
                  AND t.blocked_reason IS DISTINCT FROM x.reason""",
            items,
        )
        total += int(status.split()[-1])
    return total


async def blocked_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """blocked reason -> PENDING jobs waiting for it."""
    union = " UNION ALL ".join(
        f"""SELECT blocked_reason AS reason FROM {k.table}
            WHERE status = 'pending' AND deleted_at IS NULL AND blocked_reason IS NOT NULL"""
        for k in OutputType
    )
    rows = await conn.fetch(f"SELECT reason, count(*) AS n FROM ({union}) b GROUP BY reason")
    return {r["reason"]: r["n"] for r in rows}


# ---------------------------------------------------------------- draining


async def set_draining(conn: asyncpg.Connection, url: str, draining: bool) -> None:
    await conn.execute(
        """INSERT INTO worker_drains (url, draining) VALUES ($1, $2)
           ON CONFLICT (url) DO UPDATE SET draining = excluded.draining, updated_at = now()""",
        url,
        draining,
    )


async def draining_urls(conn: asyncpg.Connection) -> set[str]:
    return {r["url"] for r in await conn.fetch("SELECT url FROM worker_drains WHERE draining")}


async def processing_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """worker url -> PROCESSING jobs on it, whichever replica follows them."""
    union = " UNION ALL ".join(
        f"SELECT comfy_url FROM {k.table} WHERE status = 'processing' AND comfy_url IS NOT NULL"
        for k in OutputType
    )
    rows = await conn.fetch(f"SELECT comfy_url, count(*) AS n FROM ({union}) p GROUP BY 1")
    return {r["comfy_url"]: r["n"] for r in rows}


# ---------------------------------------------------------------- batches


async def batch_jobs(
    conn: asyncpg.Connection, batch_id: uuid.UUID
) -> list[tuple[OutputType, asyncpg.Record]]:
    """The live jobs of a batch, oldest first (a batch is one workflow, so one table)."""
    found: list[tuple[OutputType, asyncpg.Record]] = []
    for kind in OutputType:
        rows = await conn.fetch(
            f"""SELECT * FROM {kind.table} WHERE batch_id = $1 AND deleted_at IS NULL
                ORDER BY created_at, id""",
            batch_id,
        )
        found += [(kind, r) for r in rows]
    return found
