"""What a submission is checked against, in one statement: a hit on the submitter's
rate counter (when the counters are in PostgreSQL), their PENDING and PROCESSING jobs,
and the owner's storage quota and usage. studio/ratelimit.py decides from the row.

Each check runs only when the ones before it passed (a CASE evaluates its subqueries
only when taken): a refused flood costs an upsert, not a sum over someone's outputs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from comfygraph.db.kinds import OutputType
from comfygraph.db.rate_counters import HIT
from comfygraph.db.retention import usage_sql

__all__ = ["Hit", "submission_checks"]


@dataclass(frozen=True)
class Hit:
    """One hit on a fixed-window counter: the `limits` library's key and window, and the
    count the window allows."""

    key: str
    window_seconds: int
    limit: int
    amount: int = 1


_ACTIVE = " + ".join(
    f"""(SELECT count(*) FROM {kind.table} WHERE user_id = $5
           AND status IN ('pending', 'processing') AND deleted_at IS NULL)"""
    for kind in OutputType
)

# $1-$3 the hit, $4 the count its window allows; $5 whose active jobs to count (NULL:
# none), $6 how many they may have; $7 whose quota, $8 the default quota.
_CHECKS = """
WITH hit AS ({hit}),
rate AS (
    SELECT hit.count AS hits, extract(epoch FROM hit.expires_at)::float8 AS resets_at,
           coalesce(hit.count <= $4::bigint, true) AS within,
           coalesce((SELECT storage_quota_bytes FROM users WHERE id = $7::uuid),
                    $8::bigint) AS quota
    FROM (VALUES (1)) AS one (x) LEFT JOIN hit ON true
),
active AS MATERIALIZED (  -- counted once, though read twice below
    SELECT rate.*, CASE WHEN $5::uuid IS NOT NULL AND within THEN {active} END AS active_jobs
    FROM rate
)
SELECT hits, resets_at, active_jobs, quota,
       CASE WHEN quota IS NOT NULL AND within AND coalesce(active_jobs < $6::bigint, true)
            THEN ({usage}) END AS used
FROM active"""
_WITH_HIT = _CHECKS.format(hit=HIT, active=_ACTIVE, usage=usage_sql("$7"))
# The counters are elsewhere (or failing): no row, and rate_counters is not touched.
_NO_HIT = _CHECKS.format(
    hit="""SELECT $2::bigint AS count, now() + make_interval(secs => $3::float8) AS expires_at
           WHERE $1::text IS NOT NULL""",
    active=_ACTIVE,
    usage=usage_sql("$7"),
)


async def submission_checks(
    conn: asyncpg.Connection,
    *,
    hit: Hit | None,
    active_of: uuid.UUID | None,
    active_limit: int,
    quota_of: uuid.UUID,
    default_quota: int | None,
) -> asyncpg.Record:
    """One row: `hits` (the count after this hit; None without one), `resets_at` (when
    its window ends, epoch seconds), `active_jobs` (None when not counted: no
    `active_of`, or over the rate), `quota` (bytes; None: unlimited) and `used` (bytes;
    None when no quota or an earlier check failed)."""
    row = await conn.fetchrow(
        _NO_HIT if hit is None else _WITH_HIT,
        None if hit is None else hit.key,
        None if hit is None else hit.amount,
        None if hit is None else float(hit.window_seconds),
        None if hit is None else hit.limit,
        active_of,
        active_limit,
        quota_of,
        default_quota,
    )
    assert row is not None  # one row always: the LEFT JOIN keeps it without a hit
    return row
