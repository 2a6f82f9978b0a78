"""The dispatch queue is PostgreSQL itself: PENDING rows, by priority then age.

Any number of replicas claim from it safely with FOR UPDATE SKIP LOCKED. A claimed job
carries a lease (claimed_by, lease_expires_at) that its replica renews; a job whose
lease expired belongs to a replica that died and may be adopted by another.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

import asyncpg

from comfygraph.db.kinds import OutputType

_ORDER = "priority DESC, created_at, id"


def _candidates(kinds: Sequence[OutputType]) -> str:
    # One locked candidate per table (FOR UPDATE is not allowed directly under a UNION,
    # so each lives in its own CTE); the best is claimed, the others are released when
    # the transaction ends.
    ctes = ", ".join(
        f"""c_{k.value} AS (SELECT '{k.value}'::text AS kind, id, priority, created_at
             FROM {k.table} WHERE status = 'pending' AND deleted_at IS NULL
             ORDER BY {_ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED)"""
        for k in kinds
    )
    union = " UNION ALL ".join(f"SELECT * FROM c_{k.value}" for k in kinds)
    return f"WITH {ctes} SELECT kind, id FROM ({union}) c ORDER BY {_ORDER} LIMIT 1"


async def claim_next_pending(
    conn: asyncpg.Connection,
    *,
    replica: str,
    worker_url: str,
    lease_s: float,
    kinds: Sequence[OutputType] = tuple(OutputType),
) -> tuple[OutputType, asyncpg.Record] | None:
    """Claim the best PENDING job for `worker_url` and move it to PROCESSING.

    Concurrent claimers never get the same job: the loser skips the locked row.
    """
    async with conn.transaction():
        best = await conn.fetchrow(_candidates(kinds))
        if best is None:
            return None
        kind = OutputType(best["kind"])
        row = await conn.fetchrow(
            f"""UPDATE {kind.table}
                SET status = 'processing', started_at = now(), attempts = attempts + 1,
                    claimed_by = $2, comfy_url = $3,
                    lease_expires_at = now() + make_interval(secs => $4)
                WHERE id = $1 AND status = 'pending' RETURNING *""",
            best["id"], replica, worker_url, lease_s,
        )  # fmt: skip
    assert row is not None  # the row was locked by us and pending
    return kind, row


async def renew_leases(
    conn: asyncpg.Connection, *, replica: str, job_ids: Iterable[uuid.UUID], lease_s: float
) -> int:
    """Extend the leases this replica holds; returns how many it still holds."""
    ids = list(job_ids)
    total = 0
    for kind in OutputType:
        status = await conn.execute(
            f"""UPDATE {kind.table} SET lease_expires_at = now() + make_interval(secs => $3)
                WHERE id = ANY($2::uuid[]) AND claimed_by = $1 AND status = 'processing'""",
            replica, ids, lease_s,
        )  # fmt: skip
        total += int(status.split()[-1])
    return total


async def adopt_expired(
    conn: asyncpg.Connection, *, replica: str, lease_s: float, limit: int = 100
) -> list[tuple[OutputType, asyncpg.Record]]:
    """Take over PROCESSING jobs whose lease expired (their replica died)."""
    adopted: list[tuple[OutputType, asyncpg.Record]] = []
    for kind in OutputType:
        rows = await conn.fetch(
            f"""UPDATE {kind.table} SET claimed_by = $1,
                       lease_expires_at = now() + make_interval(secs => $2)
                WHERE id IN (SELECT id FROM {kind.table}
                             WHERE status = 'processing' AND lease_expires_at < now()
                             ORDER BY lease_expires_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                RETURNING *""",
            replica, lease_s, limit,
        )  # fmt: skip
        adopted += [(kind, r) for r in rows]
    return adopted


async def queue_positions(
    conn: asyncpg.Connection, job_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """How many PENDING jobs are ahead of each given PENDING job (0 = next to run), in
    the scheduler's order (priority, fair share, age; see db/scheduling.py).

    One statement for any number of ids; jobs that are not PENDING are absent.
    """
    ids = list(job_ids)
    if not ids:
        return {}
    pending = " UNION ALL ".join(
        f"""SELECT id, priority, coalesce(fair_key, 'infinity') AS fk, created_at FROM {k.table}
            WHERE status = 'pending' AND deleted_at IS NULL"""
        for k in OutputType
    )
    rows = await conn.fetch(
        f"""WITH q AS ({pending}),
                 mine AS (SELECT * FROM q WHERE id = ANY($1::uuid[]))
            SELECT m.id, (SELECT count(*) FROM q
                          WHERE q.priority > m.priority
                             OR (q.priority = m.priority
                                 AND (q.fk, q.created_at, q.id) < (m.fk, m.created_at, m.id)))
                   AS ahead
            FROM mine m""",
        ids,
    )
    return {r["id"]: int(r["ahead"]) for r in rows}
