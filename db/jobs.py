"""Jobs in the four output-type tables: creation, reads and the guarded lifecycle.

    PENDING --dispatch--> PROCESSING --success--> COMPLETED
       |                      |-----error/lost--> FAILED
       '------cancel----------'-----cancel------> CANCELLED

Every transition is one UPDATE guarded by `status = ANY(allowed sources)`; a refused
transition changes nothing and raises IllegalTransition. PROCESSING -> PENDING exists
only for recovery's one re-queue of a job its worker forgot.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from comfygraph.db.errors import IdempotencyConflict, IllegalTransition, NotFound
from comfygraph.db.kinds import OutputType, writable_columns
from comfygraph.db.rows import check_writable, insert_row, update_row

ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "processing": ("pending",),
    "completed": ("processing",),
    "failed": ("pending", "processing"),
    "cancelled": ("pending", "processing"),
    "pending": ("processing",),
}
# Columns a transition stamps by itself, per target status.
_STAMPS: dict[str, str] = {
    "processing": "started_at = now(), attempts = attempts + 1",
    "completed": "progress = 100, completed_at = now(), lease_expires_at = NULL,"
    " processing_time_seconds = extract(epoch FROM now() - coalesce(started_at, created_at))",
    "failed": "completed_at = now(), lease_expires_at = NULL,"
    " processing_time_seconds = extract(epoch FROM now() - coalesce(started_at, created_at))",
    "cancelled": "completed_at = now(), lease_expires_at = NULL",
    "pending": "claimed_by = NULL, lease_expires_at = NULL, comfy_job_id = NULL,"
    " comfy_url = NULL, started_at = NULL, progress = 0",
}


def _check_columns(kind: OutputType, columns: Mapping[str, Any]) -> None:
    check_writable(kind.table, writable_columns(kind), columns)


async def create_job(
    conn: asyncpg.Connection,
    kind: OutputType,
    *,
    user_id: uuid.UUID | None,
    workflow_name: str,
    parameters: Mapping[str, Any],
    idempotency_key: str | None = None,
    request: Mapping[str, Any] | None = None,
    **columns: Any,
) -> tuple[asyncpg.Record, bool]:
    """Insert a PENDING job; return (row, created).

    With an idempotency key, a repeat of the same request by the same user returns the
    first job and created=False; the same key with a different request raises
    IdempotencyConflict. The key is claimed in job_idempotency in the same transaction.
    `request` is what "the same request" compares (the caller's raw input, before
    defaults and random seeds were filled in); by default the workflow and parameters.
    """
    _check_columns(kind, columns)
    values: dict[str, Any] = {
        "user_id": user_id,
        "workflow_name": workflow_name,
        "parameters": dict(parameters),
        "idempotency_key": idempotency_key,
        **columns,
    }
    claim = idempotency_key is not None and user_id is not None
    # Without a key to claim, the INSERT alone is atomic: no BEGIN/COMMIT round trips.
    async with conn.transaction() if claim else contextlib.nullcontext():
        if claim:
            if request is None:
                request = {"workflow_name": workflow_name, "parameters": dict(parameters)}
            job_id = values.setdefault("id", uuid.uuid4())
            claimed = await conn.fetchrow(
                """INSERT INTO job_idempotency (user_id, key, job_id, output_type, request)
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING job_id""",
                user_id, idempotency_key, job_id, kind.value, request,
            )  # fmt: skip
            if claimed is None:
                first = await conn.fetchrow(
                    "SELECT * FROM job_idempotency WHERE user_id = $1 AND key = $2",
                    user_id, idempotency_key,
                )  # fmt: skip
                assert first is not None
                if first["request"] != request:
                    raise IdempotencyConflict(idempotency_key)
                existing = await get_job(conn, OutputType(first["output_type"]), first["job_id"])
                assert existing is not None
                return existing, False
        row = await insert_row(conn, kind.table, values)
    return row, True


async def get_job(
    conn: asyncpg.Connection, kind: OutputType, job_id: uuid.UUID
) -> asyncpg.Record | None:
    """The row, soft-deleted or not (visibility is the caller's concern, see db.visibility)."""
    return await conn.fetchrow(f"SELECT * FROM {kind.table} WHERE id = $1", job_id)


async def transition(
    conn: asyncpg.Connection,
    kind: OutputType,
    job_id: uuid.UUID,
    target: str,
    *,
    expect_from: Sequence[str] | None = None,
    **columns: Any,
) -> asyncpg.Record:
    """Move a job to `target` if its current status allows it, setting `columns` too.

    `expect_from` narrows the allowed sources further (e.g. a runner that must only
    complete a job it still holds). Raises NotFound or IllegalTransition; on refusal
    the row is left exactly as it was.
    """
    if target not in ALLOWED_FROM:
        raise ValueError(f"unknown status {target!r}")
    _check_columns(kind, columns)
    allowed = [s for s in ALLOWED_FROM[target] if expect_from is None or s in expect_from]
    sets = [_STAMPS[target], "status = $3"]
    args: list[Any] = [job_id, allowed, target]
    for name, value in columns.items():
        args.append(value)
        sets.append(f"{name} = ${len(args)}")
    row = await conn.fetchrow(
        f"""UPDATE {kind.table} SET {", ".join(sets)}
            WHERE id = $1 AND status = ANY($2::text[]) RETURNING *""",
        *args,
    )
    if row is not None:
        return row
    current = await conn.fetchval(f"SELECT status FROM {kind.table} WHERE id = $1", job_id)
    if current is None:
        raise NotFound(f"job {job_id}")
    raise IllegalTransition(job_id, current, target)


async def set_progress(
    conn: asyncpg.Connection, kind: OutputType, job_id: uuid.UUID, progress: float
) -> float | None:
    """Raise a PROCESSING job's progress, never lower it, and never to 100 (that is
    COMPLETED's alone). Returns the stored progress, or None when the job is not running."""
    value = min(max(progress, 0.0), 99.9)
    return await conn.fetchval(
        f"""UPDATE {kind.table} SET progress = greatest(progress, $2)
            WHERE id = $1 AND status = 'processing' RETURNING progress""",
        job_id,
        value,
    )


async def update_job(
    conn: asyncpg.Connection, kind: OutputType, job_id: uuid.UUID, **columns: Any
) -> asyncpg.Record | None:
    """Set plain columns (outputs, media facts, public...) without touching the status."""
    _check_columns(kind, columns)
    if "status" in columns:
        raise ValueError("use transition() to change a job's status")
    return await update_row(conn, kind.table, job_id, columns)


async def soft_delete(
    conn: asyncpg.Connection, kind: OutputType, job_id: uuid.UUID
) -> asyncpg.Record | None:
    """Hide a job from every feed; the row stays. Deleting twice is a no-op (None)."""
    return await conn.fetchrow(
        f"""UPDATE {kind.table} SET deleted_at = now()
            WHERE id = $1 AND deleted_at IS NULL RETURNING *""",
        job_id,
    )
