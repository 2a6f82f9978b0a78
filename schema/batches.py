"""A batch: the jobs one submitJob with `count` created (Query.batch, cancelBatch)."""

from __future__ import annotations

import strawberry

from comfygraph.schema.errors import UserError
from comfygraph.schema.jobs import Job


@strawberry.type(description="The jobs one submitJob(count: N) created, oldest first.")
class Batch:
    id: strawberry.ID
    jobs: list[Job]
    total: int
    pending: int
    processing: int
    completed: int
    failed: int
    cancelled: int


@strawberry.type
class CancelBatchPayload:
    batch: Batch | None
    cancelled_count: int
    user_errors: list[UserError]
