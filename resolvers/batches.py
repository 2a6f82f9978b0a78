"""Query.batch and cancelBatch. A batch is seen (and cancelled) by whoever may see
(change) its jobs: its owner and admins; for anyone else it does not exist.

cancelBatch's userErrors: INVALID_ID, NOT_FOUND. Jobs that already ended are left as
they are; `cancelledCount` says how many were stopped.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import strawberry

from comfygraph.db.errors import IllegalTransition, NotFound
from comfygraph.db.scheduling import batch_jobs
from comfygraph.db.visibility import can_change_job, can_see_job
from comfygraph.resolvers.args import batch_id
from comfygraph.resolvers.mapping import job_from_row
from comfygraph.schema.batches import Batch, CancelBatchPayload
from comfygraph.schema.errors import (
    NOT_FOUND,
    ApiError,
    UserError,
    unauthenticated,
    user_error,
)
from comfygraph.studio.cancel import cancel_job

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context


async def _load(ctx: Context, uid: uuid.UUID) -> Batch | None:
    async with ctx.pool.acquire() as conn:
        found = [(k, r) for k, r in await batch_jobs(conn, uid) if can_see_job(ctx.viewer, r)]
    if not found:
        return None
    statuses = [r["status"] for _k, r in found]
    return Batch(
        id=strawberry.ID(str(uid)),
        jobs=[job_from_row(k, r) for k, r in found],
        total=len(found),
        pending=statuses.count("pending"),
        processing=statuses.count("processing"),
        completed=statuses.count("completed"),
        failed=statuses.count("failed"),
        cancelled=statuses.count("cancelled"),
    )


def _refused(error: UserError) -> CancelBatchPayload:
    return CancelBatchPayload(batch=None, cancelled_count=0, user_errors=[error])


async def batch(info: strawberry.Info[Context, None], id: strawberry.ID) -> Batch | None:
    return await _load(info.context, batch_id(str(id)))


async def cancel_batch(
    info: strawberry.Info[Context, None], id: strawberry.ID
) -> CancelBatchPayload:
    ctx = info.context
    if ctx.viewer.anonymous:
        raise unauthenticated()
    try:
        uid = batch_id(str(id))
    except ApiError as exc:
        return _refused(user_error(exc.code, exc.message, ["id"]))
    async with ctx.pool.acquire() as conn:
        jobs = [(k, r) for k, r in await batch_jobs(conn, uid) if can_change_job(ctx.viewer, r)]
    if not jobs:
        return _refused(user_error(NOT_FOUND, "no batch with this id", ["id"]))
    cancelled = 0
    # Pending ones first, so none of them starts while the running ones are stopped.
    for kind, row in sorted(jobs, key=lambda kr: kr[1]["status"] != "pending"):
        if row["status"] not in ("pending", "processing"):
            continue
        try:
            await cancel_job(ctx.pool, kind, row["id"], workers=ctx.services.comfy.workers,
                             events=ctx.services.events)  # fmt: skip
            cancelled += 1
        except (IllegalTransition, NotFound):
            continue  # it ended meanwhile
    return CancelBatchPayload(
        batch=await _load(ctx, uid), cancelled_count=cancelled, user_errors=[]
    )
