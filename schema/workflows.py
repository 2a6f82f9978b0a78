"""The workflow catalogue (Query.workflows) and the ComfyUI workers (Query.workers)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from comfygraph.schema.enums import OutputType, ParameterType
from comfygraph.schema.errors import UserError
from comfygraph.schema.scalars import JSON


@strawberry.type
class WorkflowParameter:
    name: str
    type: ParameterType
    required: bool
    default: JSON | None
    description: str | None
    min: float | None
    max: float | None
    choices: list[str] | None


@strawberry.type
class Workflow:
    name: str
    output_type: OutputType
    description: str | None
    parameters: list[WorkflowParameter]
    version: int


@strawberry.type
class WorkflowPayload:
    workflow: Workflow | None
    user_errors: list[UserError]


@strawberry.enum(description="DRAINING: takes no new jobs, still runs some; DRAINED: idle.")
class WorkerStatus(Enum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"
    DRAINED = "drained"


@strawberry.type(description="What a worker's /object_info says it can run (admins only).")
class WorkerCapabilities:
    node_count: int
    model_count: int
    nodes: list[str]
    models: list[str]


@strawberry.type
class Worker:
    url: str
    healthy: bool
    draining: bool
    queue_remaining: int | None
    running_jobs: int
    last_seen_at: datetime | None
    device: str | None
    vram_total_bytes: float | None
    vram_free_bytes: float | None
    status: WorkerStatus = WorkerStatus.HEALTHY
    capabilities: WorkerCapabilities | None = strawberry.field(
        default=None, description="Admins only (null for everyone else, and before it is read)."
    )


@strawberry.type
class WorkerPayload:
    worker: Worker | None
    user_errors: list[UserError]
