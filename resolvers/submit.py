"""submitJob and retryJob. Placeholders: they need the workflow templates and the
dispatcher (comfy/), which arrive next; this module is replaced then."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from resolvers.not_implemented import not_implemented
from schema.payloads import SubmitJobInput, SubmitJobPayload

if TYPE_CHECKING:
    from server.context import Context


async def submit_job(
    info: strawberry.Info[Context, None], input: SubmitJobInput
) -> SubmitJobPayload:
    return SubmitJobPayload(user_errors=not_implemented("submitJob"))


async def retry_job(info: strawberry.Info[Context, None], id: strawberry.ID) -> SubmitJobPayload:
    return SubmitJobPayload(user_errors=not_implemented("retryJob"))
