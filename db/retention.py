"""Retention and storage quotas: the SQL of the sweeper, pins and per-user usage."""

from __future__ import annotations

import uuid

import asyncpg

from comfygraph.db.kinds import COLUMNS_OF, OutputType

__all__ = [
    "claim_expired",
    "mark_expired",
    "record_upload",
    "set_pinned",
    "set_storage_quota",
    "storage_quota",
    "storage_used",
    "usage_sql",
]

#: the columns that hold a job's stored output URLs, per kind (outputs[].url as well)
OUTPUT_URL_COLUMNS: dict[OutputType, tuple[str, ...]] = {
    kind: tuple(
        c for c in ("output_video_urls", "output_image_urls", "output_audio_urls", "output_urls")
        if c in COLUMNS_OF[kind]
    )
    for kind in OutputType
}  # fmt: skip

_FINISHED_SESSION = "('completed', 'failed', 'cancelled')"


async def claim_expired(
    conn: asyncpg.Connection, kind: OutputType, default_days: int | None, limit: int
) -> list[asyncpg.Record]:
    """Finished, unpinned jobs past their retention (the template's, else `default_days`),
    not in a session still running; locked for this transaction, skipping rows another
    replica holds (so replicas never sweep the same job)."""
    urls = ", ".join(OUTPUT_URL_COLUMNS[kind])
    return await conn.fetch(
        f"""SELECT j.id, j.outputs, {urls} FROM {kind.table} j
            WHERE j.status IN ('completed', 'failed', 'cancelled') AND NOT j.pinned
              AND j.completed_at < now()
                  - make_interval(days => coalesce(j.retention_days, $1::integer))
              AND (j.session_id IS NULL OR NOT EXISTS (
                    SELECT 1 FROM sessions s WHERE s.id = j.session_id
                      AND s.status NOT IN {_FINISHED_SESSION}))
            ORDER BY j.completed_at LIMIT $2
            FOR UPDATE OF j SKIP LOCKED""",
        default_days,
        limit,
    )


async def mark_expired(
    conn: asyncpg.Connection, kind: OutputType, ids: list[uuid.UUID]
) -> list[asyncpg.Record]:
    """EXPIRED with expiredAt; the URLs of the deleted files go, the row and costs stay."""
    clear = "".join(f", {c} = '{{}}'" for c in OUTPUT_URL_COLUMNS[kind])
    return await conn.fetch(
        f"""UPDATE {kind.table} SET status = 'expired', expired_at = now(),
                outputs = '[]'::jsonb{clear}
            WHERE id = ANY($1::uuid[]) AND status <> 'expired' RETURNING *""",
        ids,
    )


async def set_pinned(
    conn: asyncpg.Connection, kind: OutputType, job_id: uuid.UUID, pinned: bool
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"UPDATE {kind.table} SET pinned = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING *",
        job_id,
        pinned,
    )


def usage_sql(user_id: str) -> str:
    """A scalar query: the bytes the user's stored outputs (of jobs not expired) and
    uploads take; `user_id` is the parameter that holds their id (e.g. "$1")."""
    parts = [
        f"""SELECT coalesce(sum((o ->> 'sizeBytes')::bigint), 0) AS n
            FROM {kind.table} j, jsonb_array_elements(j.outputs) o
            WHERE j.user_id = {user_id} AND j.status <> 'expired'
              AND jsonb_typeof(o -> 'sizeBytes') = 'number'"""
        for kind in OutputType
    ]
    parts.append(f"SELECT coalesce(sum(size_bytes), 0) FROM user_uploads WHERE user_id = {user_id}")
    return f"SELECT coalesce(sum(n), 0)::bigint FROM ({' UNION ALL '.join(parts)}) u"


_USAGE = usage_sql("$1")


async def storage_used(conn: asyncpg.Connection, user_id: uuid.UUID) -> int:
    """Bytes the user's stored outputs (of jobs not expired) and uploads take."""
    return int(await conn.fetchval(_USAGE, user_id) or 0)


async def storage_quota(
    conn: asyncpg.Connection, user_id: uuid.UUID, default: int | None
) -> int | None:
    """The user's quota in bytes: an admin's override, else `default` (None: unlimited)."""
    own = await conn.fetchval("SELECT storage_quota_bytes FROM users WHERE id = $1", user_id)
    return default if own is None else int(own)


async def set_storage_quota(
    conn: asyncpg.Connection, user_id: uuid.UUID, quota: int | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE users SET storage_quota_bytes = $2 WHERE id = $1 RETURNING *", user_id, quota
    )


async def record_upload(conn: asyncpg.Connection, key: str, user_id: uuid.UUID, size: int) -> None:
    await conn.execute(
        "INSERT INTO user_uploads (key, user_id, size_bytes) VALUES ($1, $2, $3)"
        " ON CONFLICT (key) DO NOTHING",
        key,
        user_id,
        size,
    )
