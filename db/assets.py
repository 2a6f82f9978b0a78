"""Session assets (seed 004): images, clips, final videos; the mood board."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

_WRITABLE = frozenset({
    "type", "source", "status", "url", "storage_path", "file_size_bytes", "mime_type",
    "resolution", "duration_seconds", "fps", "generation_cost", "generation_time_seconds",
    "model_version", "view_type", "seed", "guidance_scale", "source_image_id", "scene_prompt",
    "camera_movement", "motion_intensity", "generation_prompt", "negative_prompt",
    "user_selected", "selection_order", "job_id", "job_output_type", "metadata",
})  # fmt: skip


def _check(columns: Iterable[str]) -> None:
    unknown = set(columns) - _WRITABLE
    if unknown:
        raise ValueError(f"assets has no writable column(s) {sorted(unknown)}")


async def create_asset(
    conn: asyncpg.Connection, *, session_id: uuid.UUID, **columns: Any
) -> asyncpg.Record:
    _check(columns)
    names = ["session_id", *columns]
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO assets ({', '.join(names)}) VALUES ({placeholders}) RETURNING *",
        session_id,
        *columns.values(),
    )
    assert row is not None
    return row


async def update_asset(
    conn: asyncpg.Connection, asset_id: uuid.UUID, **columns: Any
) -> asyncpg.Record | None:
    _check(columns)
    sets = ", ".join(f"{n} = ${i}" for i, n in enumerate(columns, start=2))
    return await conn.fetchrow(
        f"UPDATE assets SET {sets} WHERE id = $1 RETURNING *", asset_id, *columns.values()
    )


async def assets_by_ids(
    conn: asyncpg.Connection, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT * FROM assets WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL", list(ids)
    )
    return {r["id"]: r for r in rows}


async def session_assets(
    conn: asyncpg.Connection,
    session_ids: Sequence[uuid.UUID],
    *,
    type: str | None = None,
    status: str | None = None,
) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """Assets of many sessions at once (a DataLoader's batch), oldest first."""
    rows = await conn.fetch(
        """SELECT * FROM assets
           WHERE session_id = ANY($1::uuid[]) AND deleted_at IS NULL
             AND ($2::text IS NULL OR type = $2) AND ($3::text IS NULL OR status = $3)
           ORDER BY created_at, id""",
        list(session_ids), type, status,
    )  # fmt: skip
    grouped: dict[uuid.UUID, list[asyncpg.Record]] = {sid: [] for sid in session_ids}
    for row in rows:
        grouped[row["session_id"]].append(row)
    return grouped


async def mood_board(conn: asyncpg.Connection, session_id: uuid.UUID) -> list[asyncpg.Record]:
    """Seed 004's mood board query: selected assets in selection order."""
    return list(
        await conn.fetch(
            """SELECT * FROM assets
               WHERE session_id = $1 AND user_selected AND deleted_at IS NULL
               ORDER BY selection_order, created_at""",
            session_id,
        )
    )


async def asset_counts(
    conn: asyncpg.Connection, session_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """Seed 004's 'active sessions' counts: images and clips per session."""
    rows = await conn.fetch(
        """SELECT session_id,
                  count(*) FILTER (WHERE type = 'image') AS image_count,
                  count(*) FILTER (WHERE type = 'video_clip') AS clip_count
           FROM assets WHERE session_id = ANY($1::uuid[]) AND deleted_at IS NULL
           GROUP BY session_id""",
        list(session_ids),
    )
    counts = {sid: {"image_count": 0, "clip_count": 0} for sid in session_ids}
    for r in rows:
        counts[r["session_id"]] = {"image_count": r["image_count"], "clip_count": r["clip_count"]}
    return counts
