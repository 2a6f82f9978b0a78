"""What the runner does with a job whose worker stalled (comfy.errors.JobStalled): the
prompt is interrupted on that worker so it stops holding the GPU, then the job is
re-queued once (another run may land on a healthy worker) or failed with the reason."""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import TYPE_CHECKING

import asyncpg

from comfygraph.comfy.errors import ComfyError, JobStalled
from comfygraph.comfy.workers import Worker
from comfygraph.db.kinds import OutputType

if TYPE_CHECKING:
    from comfygraph.studio.runner import JobRunner

log = logging.getLogger(__name__)


def prompt_id_for(job_id: uuid.UUID, attempt: int) -> str:
    """The job's id on its first run; a new id (derived, stable) on a re-run, so the
    worker's history of the interrupted run is not mistaken for the new one's."""
    if attempt <= 1:
        return str(job_id)
    return str(uuid.uuid5(job_id, f"attempt-{attempt}"))


async def stalled(
    runner: JobRunner, kind: OutputType, row: asyncpg.Record, worker: Worker, exc: JobStalled
) -> None:
    with contextlib.suppress(ComfyError):  # a wedged worker may not answer: still move on
        await worker.client.cancel(exc.prompt_id)
    reason = f"stalled on worker {worker.url}: no progress for {exc.seconds:g} s"
    if row["attempts"] < runner.config.max_attempts:
        log.warning("job %s %s: interrupted and re-queued", row["id"], reason)
        await runner._end(kind, row["id"], "pending")
    else:
        log.warning("job %s %s: interrupted and failed", row["id"], reason)
        await runner._end(kind, row["id"], "failed", error_message=reason)
