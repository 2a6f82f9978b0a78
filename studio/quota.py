"""Per-user storage quotas: what a user's outputs and uploads take, against their quota
(an admin's override, else STORAGE_QUOTA_BYTES; none: unlimited).

A submission is refused once the quota is used up (its outputs' size is unknown until it
ran); an upload is refused if its bytes would go past it (it is read against the
smaller of MAX_UPLOAD_BYTES and what is left). Both before anything is stored or queued.
"""

from __future__ import annotations

import uuid

import asyncpg

from comfygraph.db.retention import record_upload, storage_quota, storage_used
from comfygraph.storage import Storage

QUOTA_EXCEEDED = "QUOTA_EXCEEDED"


async def usage(
    pool: asyncpg.Pool, user_id: uuid.UUID, default: int | None
) -> tuple[int, int | None]:
    """(bytes used, quota in bytes or None)."""
    async with pool.acquire() as conn:
        return await storage_used(conn, user_id), await storage_quota(conn, user_id, default)


async def remaining(pool: asyncpg.Pool, user_id: uuid.UUID, default: int | None) -> int | None:
    """Bytes the user may still store (never below 0), or None: no quota (then usage,
    a sum over all the user's outputs, is not computed: no cost on each submit)."""
    async with pool.acquire() as conn:
        quota = await storage_quota(conn, user_id, default)
        if quota is None:
            return None
        return max(quota - await storage_used(conn, user_id), 0)


def exceeded_message(quota_left: int) -> str:
    if quota_left <= 0:
        return "your storage quota is used up: delete or let expire some jobs first"
    return f"the file is larger than what is left of your storage quota ({quota_left} bytes)"


async def note_upload(
    pool: asyncpg.Pool, storage: Storage, url: str, user_id: uuid.UUID, size: int
) -> None:
    """Count an uploaded file against its owner's quota."""
    key = storage.key_for_url(url)
    if key is not None:
        async with pool.acquire() as conn:
            await record_upload(conn, key, user_id, size)
