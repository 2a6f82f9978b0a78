"""pinJob / unpinJob (a pinned job is never expired) and setStorageQuota (admins).

userErrors: pinJob/unpinJob as setJobPublic (INVALID_ID, NOT_FOUND at ["id"]; FORBIDDEN
for someone else's job); setStorageQuota INVALID_ID or NOT_FOUND at ["userId"],
INVALID_QUOTA at ["bytes"] (a negative or fractional number); FORBIDDEN for a non-admin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from comfygraph.db.retention import set_pinned, set_storage_quota
from comfygraph.resolvers.job_mutations import target_job
from comfygraph.resolvers.mapping import job_from_row, user_from_row
from comfygraph.schema.errors import (
    FORBIDDEN,
    NOT_FOUND,
    ApiError,
    UserError,
    unauthenticated,
    user_error,
)
from comfygraph.schema.node import from_global_id
from comfygraph.schema.payloads import JobPayload
from comfygraph.schema.retention import StorageQuotaPayload

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context

INVALID_QUOTA = "INVALID_QUOTA"
MAX_QUOTA = 2**62


async def _pin(info: strawberry.Info[Context, None], id: strawberry.ID, pinned: bool) -> JobPayload:
    async with info.context.db.acquire() as conn:
        target = await target_job(info.context, conn, id)
        if isinstance(target, UserError):
            return JobPayload(user_errors=[target])
        kind, uid = target
        row = await set_pinned(conn, kind, uid, pinned)
    if row is None:
        return JobPayload(user_errors=[user_error(NOT_FOUND, "no such job", ["id"])])
    return JobPayload(job=job_from_row(kind, row))


async def pin_job(info: strawberry.Info[Context, None], id: strawberry.ID) -> JobPayload:
    return await _pin(info, id, True)


async def unpin_job(info: strawberry.Info[Context, None], id: strawberry.ID) -> JobPayload:
    return await _pin(info, id, False)


async def set_storage_quota_of(
    info: strawberry.Info[Context, None], user_id: strawberry.ID, bytes: float | None
) -> StorageQuotaPayload:
    viewer = info.context.viewer
    if viewer.anonymous:
        raise unauthenticated()
    if not viewer.is_admin:
        raise ApiError(FORBIDDEN, "only admins set storage quotas")
    try:
        _, uid = from_global_id(user_id, expect=frozenset({"User"}))
    except ApiError as exc:
        return StorageQuotaPayload(user_errors=[user_error(exc.code, exc.message, ["userId"])])
    if bytes is not None and not (0 <= bytes <= MAX_QUOTA and float(bytes).is_integer()):
        message = "bytes must be a whole number of bytes, 0 or more (null: the default)"
        return StorageQuotaPayload(user_errors=[user_error(INVALID_QUOTA, message, ["bytes"])])
    async with info.context.pool.acquire() as conn:
        row = await set_storage_quota(conn, uid, None if bytes is None else int(bytes))
    if row is None:
        return StorageQuotaPayload(user_errors=[user_error(NOT_FOUND, "no such user", ["userId"])])
    return StorageQuotaPayload(user=user_from_row(row))
