"""Query.workflows and Query.workers: what the server can run, and where. Both read
what the app's lifespan holds: the loaded templates and the ComfyUI worker pool."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from comfygraph.comfy.templates import Parameter, WorkflowTemplate
from comfygraph.comfy.workers import Worker as ComfyWorker
from comfygraph.db.scheduling import processing_counts
from comfygraph.schema.enums import OutputType, ParameterType
from comfygraph.schema.workflows import (
    Worker,
    WorkerCapabilities,
    WorkerStatus,
    Workflow,
    WorkflowParameter,
)

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context


async def workflows(
    info: strawberry.Info[Context, None], output_type: OutputType | None = strawberry.UNSET
) -> list[Workflow]:
    templates = info.context.services.templates
    found = (
        workflow_view(t) for t in templates.templates.values() if t.name not in templates.deprecated
    )
    wanted = [w for w in found if not output_type or w.output_type is output_type]
    return sorted(wanted, key=lambda w: w.name)


async def workers(info: strawberry.Info[Context, None]) -> list[Worker]:
    runtime = info.context.services.comfy
    async with info.context.pool.acquire() as conn:
        busy = await processing_counts(conn)
    admin = info.context.viewer.is_admin
    return [
        worker_view(w, busy.get(w.url, 0), admin=admin)
        for w in sorted(runtime.workers.workers.values(), key=lambda w: w.url)
    ]


def worker_view(worker: ComfyWorker, processing: int, *, admin: bool) -> Worker:
    """The worker as the API shows it; `processing`: its PROCESSING jobs (all replicas)."""
    view = _worker(worker)
    if worker.draining:
        view.status = WorkerStatus.DRAINING if processing else WorkerStatus.DRAINED
    elif not worker.healthy:
        view.status = WorkerStatus.UNHEALTHY
    caps = worker.capabilities
    if admin and caps is not None:
        view.capabilities = WorkerCapabilities(
            node_count=len(caps.nodes),
            model_count=len(caps.models),
            nodes=sorted(caps.nodes),
            models=sorted(caps.models),
        )
    return view


def workflow_view(template: WorkflowTemplate) -> Workflow:
    return Workflow(
        name=template.name,
        output_type=OutputType(template.output_type.lower()),
        description=template.description or None,
        parameters=[_parameter(p) for p in template.parameters],
        version=template.version,
    )


def _parameter(spec: Parameter) -> WorkflowParameter:
    return WorkflowParameter(
        name=spec.name,
        type=ParameterType(spec.type),
        required=spec.required,
        default=spec.default,
        description=spec.description or None,
        min=spec.min,
        max=spec.max,
        choices=None if spec.choices is None else [str(c) for c in spec.choices],
    )


def _worker(worker: ComfyWorker) -> Worker:
    return Worker(
        url=worker.url,
        healthy=worker.healthy,
        draining=worker.draining,
        queue_remaining=worker.queue_remaining,
        running_jobs=len(worker.running),
        last_seen_at=worker.last_seen_at,
        device=worker.device,
        vram_total_bytes=worker.vram_total,
        vram_free_bytes=worker.vram_free,
    )
