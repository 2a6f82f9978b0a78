"""What the jobProgress subscription streams."""

from __future__ import annotations

import strawberry

from comfygraph.schema.enums import JobStatus
from comfygraph.schema.files import signed
from comfygraph.schema.jobs import Job


@strawberry.type
class NodeProgress:
    node: str
    class_type: str | None
    value: int
    max: int


@strawberry.type
class JobProgress:
    job: Job
    status: JobStatus
    progress: float
    node: str | None = strawberry.field(description="ComfyUI node id executing now.")
    node_progress: NodeProgress | None
    queue_position: int | None
    eta_seconds: float | None
    preview_url: str | None = signed("Latest preview frame the worker sent, if any.")
