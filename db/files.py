"""What `/files` and submit need to know about a stored file's owner (studio/files.py)."""

from __future__ import annotations

import uuid

import asyncpg

from comfygraph.db.kinds import OutputType


async def job_visibility(conn: asyncpg.Connection, job_id: uuid.UUID) -> asyncpg.Record | None:
    """user_id, public and deleted_at of a job in whichever output table holds it."""
    branches = " UNION ALL ".join(
        f"SELECT user_id, public, deleted_at FROM {kind.table} WHERE id = $1" for kind in OutputType
    )
    return await conn.fetchrow(f"{branches} LIMIT 1", job_id)


async def session_visibility(
    conn: asyncpg.Connection, session_id: uuid.UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, user_id, deleted_at FROM sessions WHERE id = $1", session_id
    )


async def user_role(conn: asyncpg.Connection, user_id: uuid.UUID) -> str | None:
    """The role of a user who still exists (None: deleted or unknown)."""
    role = await conn.fetchval(
        "SELECT role FROM users WHERE id = $1 AND deleted_at IS NULL", user_id
    )
    return None if role is None else str(role)
