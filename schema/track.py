"""trackComfyJob's input."""

from __future__ import annotations

import strawberry

from comfygraph.schema.scalars import JSON


@strawberry.input(description="A prompt queued directly on a worker, to be followed as a job.")
class TrackComfyJobInput:
    worker_url: str = strawberry.field(description="One of the configured workers (Query.workers).")
    prompt_id: str
    workflow_name: str = strawberry.field(description="The template the prompt was built from.")
    parameters: JSON | None = strawberry.UNSET
    public: bool | None = False
    session_id: strawberry.ID | None = strawberry.UNSET
