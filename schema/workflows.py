"""The workflow catalogue (Query.workflows) and the ComfyUI workers (Query.workers)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from comfygraph.schema.enums import OutputType, ParameterType
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
