"""Cancel a job wherever it is: a PENDING one at once; a PROCESSING one is marked
CANCELLED first (so its runner's own final transition is refused), then removed
from its worker's queue or interrupted there. Any replica can do this: the worker
is reached by the job's recorded comfy_url, whoever dispatched it."""

from __future__ import annotations

import logging
import uuid

import asyncpg

from comfygraph.comfy.client import ComfyClient
from comfygraph.comfy.errors import ComfyError
from comfygraph.comfy.workers import WorkerPool
from comfygraph.db.jobs import get_job, transition
from comfygraph.db.kinds import OutputType
from comfygraph.studio.channels import JobEvents

log = logging.getLogger(__name__)


async def cancel_job(
    pool: asyncpg.Pool,
    kind: OutputType,
    job_id: uuid.UUID,
    *,
    workers: WorkerPool | None,
    events: JobEvents,
) -> asyncpg.Record:
    """Raises IllegalTransition (already finished) or NotFound; returns the CANCELLED row."""
    async with pool.acquire() as conn:
        before = await get_job(conn, kind, job_id)
        row = await transition(conn, kind, job_id, "cancelled")
    await events.status(kind.value, row)
    if before is not None and before["status"] == "processing" and before["comfy_job_id"]:
        await _stop_on_worker(workers, before["comfy_url"], before["comfy_job_id"])
    return row


async def _stop_on_worker(workers: WorkerPool | None, url: str | None, prompt_id: str) -> None:
    if not url:
        return
    worker = workers.get(url) if workers is not None else None
    try:
        if worker is not None:
            await worker.client.cancel(prompt_id)
            return
        async with ComfyClient(url, timeout=10.0) as client:
            await client.cancel(prompt_id)
    except ComfyError as exc:
        # The job is CANCELLED either way; a worker we cannot reach is not running it
        # for us any more, or will finish into a result nobody records.
        log.warning("could not stop prompt %s on %s: %s", prompt_id, url, exc)


__all__ = ["cancel_job"]
