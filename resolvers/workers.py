"""drainWorker / undrainWorker (admins): a draining worker gets no new jobs from any
replica (the flag is in PostgreSQL), finishes what it runs, then shows DRAINED.

userErrors: FORBIDDEN (not an admin), NOT_FOUND (no configured worker at that URL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from comfygraph.db.scheduling import processing_counts, set_draining
from comfygraph.resolvers.catalog import worker_view
from comfygraph.schema.errors import FORBIDDEN, NOT_FOUND, unauthenticated, user_error
from comfygraph.schema.workflows import WorkerPayload

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context


async def _set(ctx: Context, url: str, draining: bool) -> WorkerPayload:
    if ctx.viewer.anonymous:
        raise unauthenticated()
    if not ctx.viewer.is_admin:
        return WorkerPayload(
            worker=None, user_errors=[user_error(FORBIDDEN, "admins only", ["url"])]
        )
    runtime = ctx.services.comfy
    worker = runtime.workers.get(url.rstrip("/")) or runtime.workers.get(url)
    if worker is None:
        known = ", ".join(sorted(runtime.workers.workers)) or "none"
        return WorkerPayload(
            worker=None,
            user_errors=[user_error(NOT_FOUND, f"no worker {url!r} (known: {known})", ["url"])],
        )
    async with ctx.pool.acquire() as conn:
        await set_draining(conn, worker.url, draining)
        busy = await processing_counts(conn)
    worker.draining = draining  # this replica at once; the others at their next pass
    runtime.workers.changed.set()
    return WorkerPayload(worker=worker_view(worker, busy.get(worker.url, 0), admin=True),
                         user_errors=[])  # fmt: skip


async def drain_worker(info: strawberry.Info[Context, None], url: str) -> WorkerPayload:
    return await _set(info.context, url, True)


async def undrain_worker(info: strawberry.Info[Context, None], url: str) -> WorkerPayload:
    return await _set(info.context, url, False)
