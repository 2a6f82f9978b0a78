"""Mutations on existing jobs that need only the database: cancelJob, deleteJob and
setJobPublic. Each publishes the job's status event once its change has committed, so
feeds and subscribers learn of it (the event carries `deleted` and `public`).

A job the viewer may not see is NOT_FOUND (a userError, exactly as for an unknown id);
one they may see but not change (someone else's public job) is a FORBIDDEN error.
cancelJob is comfy.cancel's: PENDING and PROCESSING jobs become CANCELLED (the guarded
transition, then the status event), and a PROCESSING one is stopped on its worker.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import asyncpg
import strawberry

from comfygraph.db import jobs as db_jobs
from comfygraph.db.errors import IllegalTransition, NotFound
from comfygraph.db.kinds import OutputType as Kind
from comfygraph.db.visibility import can_change_job, can_see_job
from comfygraph.resolvers.args import job_id
from comfygraph.resolvers.mapping import job_from_row
from comfygraph.schema.errors import (
    FORBIDDEN,
    NOT_CANCELLABLE,
    NOT_FOUND,
    ApiError,
    UserError,
    unauthenticated,
    user_error,
)
from comfygraph.schema.payloads import DeletePayload, JobPayload
from comfygraph.studio.cancel import cancel_job as cancel

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context

_NOT_FOUND = "no job with this id"


async def target_job(
    ctx: Context, conn: asyncpg.Connection, id: str
) -> tuple[Kind, uuid.UUID] | UserError:
    """The job `id` names if the viewer may change it; a userError or FORBIDDEN otherwise."""
    if ctx.viewer.anonymous:
        raise unauthenticated()
    try:
        kind, uid = job_id(id)
    except ApiError as exc:
        return user_error(exc.code, exc.message, ["id"])
    row = await db_jobs.get_job(conn, kind, uid)
    if row is None or not can_see_job(ctx.viewer, row):
        return user_error(NOT_FOUND, _NOT_FOUND, ["id"])
    if not can_change_job(ctx.viewer, row):
        raise ApiError(FORBIDDEN, "only the job's owner may change it")
    return kind, uid


async def cancel_job(info: strawberry.Info[Context, None], id: strawberry.ID) -> JobPayload:
    ctx = info.context
    # Not the request's held connection: comfy.cancel takes one of its own, and a request
    # that holds one connection while waiting for another can starve a busy pool.
    async with ctx.pool.acquire() as conn:
        target = await target_job(ctx, conn, id)
    if isinstance(target, UserError):
        return JobPayload(user_errors=[target])
    kind, uid = target
    try:
        row = await cancel(
            ctx.pool, kind, uid, workers=ctx.services.comfy.workers, events=ctx.services.events
        )
    except IllegalTransition as exc:
        message = f"a {exc.current} job can no longer be cancelled"
        return JobPayload(user_errors=[user_error(NOT_CANCELLABLE, message, ["id"])])
    except NotFound:
        return JobPayload(user_errors=[user_error(NOT_FOUND, _NOT_FOUND, ["id"])])
    return JobPayload(job=job_from_row(kind, row))


async def delete_job(info: strawberry.Info[Context, None], id: strawberry.ID) -> DeletePayload:
    """Soft delete: the job leaves every feed; its row stays."""
    async with info.context.db.acquire() as conn:
        target = await target_job(info.context, conn, id)
        if isinstance(target, UserError):
            return DeletePayload(user_errors=[target])
        kind, uid = target
        row = await db_jobs.soft_delete(conn, kind, uid)
    if row is None:  # deleted meanwhile by another request
        return DeletePayload(user_errors=[user_error(NOT_FOUND, _NOT_FOUND, ["id"])])
    await info.context.services.events.status(kind.value, row)  # committed: feeds drop it
    return DeletePayload(deleted_id=id)


async def set_job_public(
    info: strawberry.Info[Context, None], id: strawberry.ID, public: bool
) -> JobPayload:
    async with info.context.db.acquire() as conn:
        target = await target_job(info.context, conn, id)
        if isinstance(target, UserError):
            return JobPayload(user_errors=[target])
        kind, uid = target
        row = await db_jobs.update_job(conn, kind, uid, public=public)
    if row is None or row["deleted_at"] is not None:
        return JobPayload(user_errors=[user_error(NOT_FOUND, _NOT_FOUND, ["id"])])
    # Committed: feeds update (the public one too when the job just left it).
    await info.context.services.events.status(kind.value, row, was_public=not public)
    return JobPayload(job=job_from_row(kind, row))
