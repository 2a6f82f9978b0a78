"""Session assets (seed 004): images, clips, final videos; the mood board."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from comfygraph.db.kinds import OutputType
from comfygraph.db.rows import check_writable, insert_row

_WRITABLE = frozenset({
    "type", "source", "status", "url", "storage_path", "file_size_bytes", "mime_type",
    "resolution", "duration_seconds", "fps", "generation_cost", "generation_time_seconds",
    "model_version", "view_type", "seed", "guidance_scale", "source_image_id", "scene_prompt",
    "camera_movement", "motion_intensity", "generation_prompt", "negative_prompt",
    "user_selected", "selection_order", "job_id", "job_output_type", "metadata",
})  # fmt: skip


def _check(columns: Iterable[str]) -> None:
    check_writable("assets", _WRITABLE, columns)


async def create_asset(
    conn: asyncpg.Connection, *, session_id: uuid.UUID, **columns: Any
) -> asyncpg.Record:
    _check(columns)
    return await insert_row(conn, "assets", {"session_id": session_id, **columns})


async def create_assets_in_order(
    conn: asyncpg.Connection, *, session_id: uuid.UUID, assets: Sequence[dict[str, Any]]
) -> list[asyncpg.Record]:
    """Insert a batch of assets in this order. Rows of one transaction share now(), so
    each gets created_at one microsecond after the previous one: reads ordered by
    (created_at, id) keep the batch's order (front, side, back... views)."""
    rows = []
    for index, columns in enumerate(assets):
        _check(columns)
        names = ["session_id", *columns]
        placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        row = await conn.fetchrow(
            f"""INSERT INTO assets ({", ".join(names)}, created_at)
                VALUES ({placeholders}, now() + ${len(names) + 1} * interval '1 microsecond')
                RETURNING *""",
            session_id,
            *columns.values(),
            index,
        )
        assert row is not None
        rows.append(row)
    return rows


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


# ---------------------------------------------------------------- the session pipeline

_TERMINAL_JOB = "('completed', 'failed', 'cancelled')"


def _per_job_table(select: str, where: str) -> str:
    """One branch per job table, joining assets to the job each one points at."""
    return " UNION ALL ".join(
        f"""SELECT {select} FROM assets a JOIN {k.table} j ON j.id = a.job_id
            WHERE a.job_output_type = '{k.value}' AND {where}"""
        for k in OutputType
    )


async def asset_id_for_job(conn: asyncpg.Connection, job_id: uuid.UUID) -> uuid.UUID | None:
    """The asset a generation job makes (one per job), if the pipeline made one."""
    return await conn.fetchval(
        "SELECT id FROM assets WHERE job_id = $1 AND deleted_at IS NULL LIMIT 1", job_id
    )


async def finished_jobs_of_generating_assets(
    conn: asyncpg.Connection, session_id: uuid.UUID
) -> list[asyncpg.Record]:
    """GENERATING assets of a session whose job has ended, each with that job's result:
    asset_id, type, job_id, job_status, outputs, cost_usd, processing_time_seconds,
    error_message."""
    return list(
        await conn.fetch(
            _per_job_table(
                "a.id AS asset_id, a.type, a.job_id, j.status AS job_status, j.outputs, j.cost_usd,"
                " j.processing_time_seconds, j.error_message",
                f"""a.session_id = $1 AND a.status = 'generating' AND a.deleted_at IS NULL
                    AND j.status IN {_TERMINAL_JOB}""",
            ),
            session_id,
        )
    )


async def job_progress_of_assets(
    conn: asyncpg.Connection, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, float]:
    """Progress (0..100) of the job behind each asset; a job that ended counts as 100.
    Assets without a job are left out."""
    rows = await conn.fetch(
        _per_job_table(
            f"a.id, CASE WHEN j.status IN {_TERMINAL_JOB} THEN 100 ELSE j.progress END AS p",
            "a.id = ANY($1::uuid[])",
        ),
        list(asset_ids),
    )
    return {r["id"]: float(r["p"]) for r in rows}


async def settle_asset(
    conn: asyncpg.Connection, asset_id: uuid.UUID, *, error: str | None = None, **columns: Any
) -> asyncpg.Record | None:
    """Record a GENERATING asset's result (COMPLETED with its file facts, or FAILED with
    `error` added to its metadata). None when it is no longer GENERATING: settled already,
    or failed by a cancel, so a result that arrives late never brings an asset back."""
    _check(columns)
    sets = [f"{n} = ${i}" for i, n in enumerate(columns, start=3)]
    sets.append("metadata = CASE WHEN $2::text IS NULL THEN metadata"
                " ELSE metadata || jsonb_build_object('error', $2::text) END")  # fmt: skip
    return await conn.fetchrow(
        f"UPDATE assets SET {', '.join(sets)} WHERE id = $1 AND status = 'generating' RETURNING *",
        asset_id,
        error,
        *columns.values(),
    )


async def fail_generating_assets(
    conn: asyncpg.Connection, session_id: uuid.UUID, *, reason: str
) -> list[asyncpg.Record]:
    """Every GENERATING asset of the session becomes FAILED (a cancel): `reason` goes to
    its metadata.error. Returns the changed rows."""
    return list(
        await conn.fetch(
            """UPDATE assets SET status = 'failed',
                      metadata = metadata || jsonb_build_object('error', $2::text)
               WHERE session_id = $1 AND status = 'generating' AND deleted_at IS NULL
               RETURNING *""",
            session_id,
            reason,
        )
    )


async def outcomes(
    conn: asyncpg.Connection, asset_ids: Sequence[uuid.UUID]
) -> list[asyncpg.Record]:
    """Status and metadata error of each of these assets (a stage's batch), oldest first."""
    return list(
        await conn.fetch(
            """SELECT id, status, metadata->>'error' AS error FROM assets
               WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL ORDER BY created_at, id""",
            list(asset_ids),
        )
    )


async def approve_in_order(
    conn: asyncpg.Connection,
    session_id: uuid.UUID,
    chosen: Sequence[uuid.UUID],
    *,
    among: Sequence[uuid.UUID],
) -> list[asyncpg.Record]:
    """The mood board of one stage: `chosen` become APPROVED and selected, with
    selection_order 1..n in the given order; every other successfully generated asset of
    `among` (the stage's batch) becomes REJECTED and unselected. Returns the rows touched."""
    return list(
        await conn.fetch(
            """UPDATE assets a
                  SET status = CASE WHEN c.ord IS NULL THEN 'rejected' ELSE 'approved' END,
                      user_selected = c.ord IS NOT NULL,
                      selection_order = c.ord::integer
                 FROM unnest($3::uuid[]) AS batch(id)
                 LEFT JOIN unnest($2::uuid[]) WITH ORDINALITY AS c(id, ord) ON c.id = batch.id
                WHERE a.id = batch.id AND a.session_id = $1 AND a.deleted_at IS NULL
                  AND a.status IN ('completed', 'approved', 'rejected')
            RETURNING a.*""",
            session_id,
            list(chosen),
            list(among),
        )
    )


async def reject_assets(
    conn: asyncpg.Connection, session_id: uuid.UUID, *, types: Sequence[str]
) -> list[asyncpg.Record]:
    """A stage is generated again: the session's completed or approved assets of `types`
    become REJECTED and leave the mood board. Returns the changed rows."""
    return list(
        await conn.fetch(
            """UPDATE assets SET status = 'rejected', user_selected = false, selection_order = NULL
               WHERE session_id = $1 AND type = ANY($2::text[]) AND deleted_at IS NULL
                 AND status IN ('completed', 'approved')
               RETURNING *""",
            session_id,
            list(types),
        )
    )
