"""trackComfyJob: a prompt a browser queued straight on a worker becomes a job the
server follows exactly like its own (progress, outputs into storage, cost, the feed,
subscriptions, webhooks), whether it is still queued, running or already finished.

The job is stored PROCESSING with the prompt id and an already expired lease, then
adopted at once by this replica's dispatcher: the recovery path, which asks the worker
(`/history`, `/queue`) what became of the prompt and follows it from there. Tracking
the same prompt on the same worker again answers the same job (an idempotency key).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from comfygraph.comfy.errors import ComfyError
from comfygraph.comfy.templates import TemplateSet
from comfygraph.comfy.workers import WorkerPool
from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.sessions import get_session
from comfygraph.db.visibility import Viewer, can_change_session
from comfygraph.studio.channels import JobEvents
from comfygraph.studio.dispatcher import Dispatcher
from comfygraph.studio.submit import Problem, Submitted

_PROMPT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


@dataclass(frozen=True)
class TrackRequest:
    worker_url: str
    prompt_id: str
    workflow_name: str
    parameters: Any
    public: bool = False
    session_id: uuid.UUID | None = None


async def track(
    pool: asyncpg.Pool,
    templates: TemplateSet,
    workers: WorkerPool,
    dispatcher: Dispatcher,
    viewer: Viewer,
    request: TrackRequest,
    *,
    events: JobEvents,
) -> Submitted | list[Problem]:
    assert viewer.user_id is not None, "callers check that the viewer is signed in"
    problems: list[Problem] = []
    worker = workers.get(request.worker_url.rstrip("/"))
    if worker is None:  # never an arbitrary URL: only the workers this server knows
        problems.append(
            Problem("UNKNOWN_WORKER", "not one of the configured workers", ("workerUrl",))
        )
    template = templates.get(request.workflow_name)
    if template is None:
        message = f"no workflow named {request.workflow_name!r}"
        problems.append(Problem("UNKNOWN_WORKFLOW", message, ("workflowName",)))
    if not _PROMPT_ID.fullmatch(request.prompt_id):
        problems.append(Problem("INVALID_PROMPT_ID", "not a prompt id", ("promptId",)))
    if not isinstance(request.parameters, dict):
        problems.append(
            Problem("INVALID_PARAMETER", "parameters must be an object", ("parameters",))
        )
    if request.session_id is not None:
        async with pool.acquire() as conn:
            session = await get_session(conn, request.session_id)
        if session is None or not can_change_session(viewer, session):
            problems.append(Problem("SESSION_NOT_FOUND", "no such session", ("sessionId",)))
    if problems:
        return problems
    assert worker is not None and template is not None
    try:
        known = await worker.client.history(request.prompt_id) is not None
        if not known:
            known = request.prompt_id in await worker.client.queue()
    except ComfyError as exc:
        return [Problem("WORKER_UNAVAILABLE", f"cannot ask the worker: {exc}", ("workerUrl",))]
    if not known:
        message = f"{worker.url} knows no prompt {request.prompt_id!r} (queued, running or done)"
        return [Problem("UNKNOWN_PROMPT", message, ("promptId",))]
    kind = OutputType(template.output_type.lower())
    key = f"track:{worker.url}:{request.prompt_id}"
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        row, created = await create_job(
            conn,
            kind,
            user_id=viewer.user_id,
            workflow_name=template.name,
            template_version=template.version,
            parameters=request.parameters,
            idempotency_key=key,
            request={"worker_url": worker.url, "prompt_id": request.prompt_id},
            status="processing",
            comfy_job_id=request.prompt_id,
            comfy_url=worker.url,
            started_at=now,
            attempts=1,
            lease_expires_at=now - timedelta(seconds=1),  # adopted below, like an orphan
            public=request.public,
            session_id=request.session_id,
        )
    if created:
        await events.status(kind.value, row)
        await dispatcher.adopt_orphans()
    return Submitted(kind, row, created)
