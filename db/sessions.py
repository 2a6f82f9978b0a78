"""Ad-video sessions (seed 004): creation, reads, keyset pages and guarded status moves."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from comfygraph.db.errors import IllegalTransition, NotFound
from comfygraph.db.kinds import OutputType
from comfygraph.db.rows import check_writable, insert_row, update_row

ACTIVE_EXCLUDES = ("completed", "failed", "cancelled")
_WRITABLE = frozenset({
    "current_stage", "progress_percentage", "product_category", "user_product_prompt",
    "user_video_prompt", "consistency_seed", "style_keywords", "generated_image_ids",
    "approved_image_ids", "generated_clip_ids", "approved_clip_ids", "final_video_id",
    "product_name", "call_to_action", "text_color", "text_font", "background_music_enabled",
    "music_genre", "music_url", "estimated_cost", "num_images_requested",
    "clip_duration_seconds", "error_message", "retry_count", "completed_at", "metadata",
})  # fmt: skip


def _check(columns: Iterable[str]) -> None:
    check_writable("sessions", _WRITABLE, columns)


async def create_session(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, **columns: Any
) -> asyncpg.Record:
    _check(columns)
    return await insert_row(conn, "sessions", {"user_id": user_id, **columns})


async def get_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sessions WHERE id = $1", session_id)


async def sessions_by_ids(
    conn: asyncpg.Connection, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, asyncpg.Record]:
    rows = await conn.fetch("SELECT * FROM sessions WHERE id = ANY($1::uuid[])", list(ids))
    return {r["id"]: r for r in rows}


async def session_page(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID | None,
    first: int,
    after: tuple[datetime, uuid.UUID] | None = None,
    statuses: Sequence[str] | None = None,
    active: bool | None = None,
) -> tuple[list[asyncpg.Record], bool]:
    """Newest first; user_id None means every user's (admins)."""
    conds, args = _session_filter(user_id=user_id, statuses=statuses, active=active)

    def param(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if after is not None:
        conds.append(f"(created_at, id) < ({param(after[0])}, {param(after[1])}::uuid)")
    rows = await conn.fetch(
        f"""SELECT * FROM sessions WHERE {" AND ".join(conds)}
            ORDER BY created_at DESC, id DESC LIMIT {param(first + 1)}""",
        *args,
    )
    return list(rows[:first]), len(rows) > first


async def session_count(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID | None,
    statuses: Sequence[str] | None = None,
    active: bool | None = None,
) -> int:
    """How many sessions session_page walks through with the same filter."""
    conds, args = _session_filter(user_id=user_id, statuses=statuses, active=active)
    return int(
        await conn.fetchval(f"SELECT count(*) FROM sessions WHERE {' AND '.join(conds)}", *args)
    )


def _session_filter(
    *, user_id: uuid.UUID | None, statuses: Sequence[str] | None, active: bool | None
) -> tuple[list[str], list[Any]]:
    """The WHERE conditions (and their arguments) shared by session_page and session_count."""
    conds, args = ["deleted_at IS NULL"], []  # type: list[str], list[Any]

    def param(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if user_id is not None:
        conds.append(f"user_id = {param(user_id)}")
    if statuses is not None:
        conds.append(f"status = ANY({param(list(statuses))}::text[])")
    if active is True:
        conds.append(f"status <> ALL({param(list(ACTIVE_EXCLUDES))}::text[])")
    elif active is False:
        conds.append(f"status = ANY({param(list(ACTIVE_EXCLUDES))}::text[])")
    return conds, args


async def set_status(
    conn: asyncpg.Connection,
    session_id: uuid.UUID,
    target: str,
    *,
    allowed_from: Sequence[str],
    **columns: Any,
) -> asyncpg.Record:
    """Move a session to `target` only from one of `allowed_from`; else IllegalTransition."""
    _check(columns)
    sets = ["status = $3", *(f"{n} = ${i}" for i, n in enumerate(columns, start=4))]
    row = await conn.fetchrow(
        f"""UPDATE sessions SET {", ".join(sets)}
            WHERE id = $1 AND status = ANY($2::text[]) AND deleted_at IS NULL RETURNING *""",
        session_id, list(allowed_from), target, *columns.values(),
    )  # fmt: skip
    if row is not None:
        return row
    current = await conn.fetchval("SELECT status FROM sessions WHERE id = $1", session_id)
    if current is None:
        raise NotFound(f"session {session_id}")
    raise IllegalTransition(session_id, current, target)


async def update_session(
    conn: asyncpg.Connection, session_id: uuid.UUID, **columns: Any
) -> asyncpg.Record | None:
    _check(columns)
    return await update_row(conn, "sessions", session_id, columns)


async def soft_delete_session(
    conn: asyncpg.Connection, session_id: uuid.UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE sessions SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING *",
        session_id,
    )


async def lock_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> asyncpg.Record | None:
    """The live session, locked until the caller's transaction ends: pipeline steps on one
    session (mutations, finished jobs on any replica) take turns here. FOR NO KEY UPDATE,
    so inserting jobs and assets that reference the session is not blocked by it."""
    return await conn.fetchrow(
        "SELECT * FROM sessions WHERE id = $1 AND deleted_at IS NULL FOR NO KEY UPDATE",
        session_id,
    )


async def raise_progress_while(
    conn: asyncpg.Connection, session_id: uuid.UUID, progress: int, *, status: str
) -> asyncpg.Record | None:
    """Raise progress_percentage to `progress` only while the session is still in `status`
    (a value computed for a stage never lands after the stage moved on) and only upward.
    The row when it changed, else None."""
    return await conn.fetchrow(
        """UPDATE sessions SET progress_percentage = $2
           WHERE id = $1 AND status = $3 AND deleted_at IS NULL AND progress_percentage < $2
           RETURNING *""",
        session_id, max(0, min(100, progress)), status,
    )  # fmt: skip


async def active_session_jobs(
    conn: asyncpg.Connection, session_id: uuid.UUID
) -> list[tuple[OutputType, uuid.UUID]]:
    """The session's jobs that are still PENDING or PROCESSING, in every output table."""
    union = " UNION ALL ".join(
        f"""SELECT '{k.value}'::text AS kind, id FROM {k.table}
            WHERE session_id = $1 AND deleted_at IS NULL AND status IN ('pending', 'processing')"""
        for k in OutputType
    )
    rows = await conn.fetch(union, session_id)
    return [(OutputType(r["kind"]), r["id"]) for r in rows]


SETTLE_LOCK = 0x5E7715  # pg advisory lock: one replica settles sessions at a time


async def try_settle_lock(conn: asyncpg.Connection) -> bool:
    """Take the settler's lock for this transaction; False when another replica has it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SETTLE_LOCK))


async def running_session_ids(
    conn: asyncpg.Connection, statuses: list[str], *, limit: int = 500
) -> list[uuid.UUID]:
    """Sessions in a running stage, least recently changed first."""
    rows = await conn.fetch(
        """SELECT id FROM sessions WHERE status = ANY($1::text[]) AND deleted_at IS NULL
            ORDER BY updated_at LIMIT $2""",
        statuses,
        limit,
    )
    return [r["id"] for r in rows]
