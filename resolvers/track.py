"""trackComfyJob: follow a prompt a browser queued on a worker itself (studio/track.py).

userErrors: UNKNOWN_WORKER (not a configured worker), UNKNOWN_WORKFLOW, INVALID_PROMPT_ID,
UNKNOWN_PROMPT (the worker has it neither queued, running nor in its history),
WORKER_UNAVAILABLE, INVALID_PARAMETER, INVALID_ID / SESSION_NOT_FOUND (sessionId).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from comfygraph.resolvers.args import given, session_id
from comfygraph.resolvers.mapping import job_from_row
from comfygraph.schema.errors import ApiError, unauthenticated, user_error
from comfygraph.schema.payloads import SubmitJobPayload
from comfygraph.schema.track import TrackComfyJobInput
from comfygraph.studio.submit import Submitted
from comfygraph.studio.track import TrackRequest, track

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context


async def track_comfy_job(
    info: strawberry.Info[Context, None], input: TrackComfyJobInput
) -> SubmitJobPayload:
    ctx = info.context
    if ctx.viewer.anonymous:
        raise unauthenticated()
    try:
        session = given(input.session_id)
        session_uid = None if session is None else session_id(session)
    except ApiError as exc:
        return SubmitJobPayload(user_errors=[user_error(exc.code, exc.message, ["sessionId"])])
    parameters = given(input.parameters)
    request = TrackRequest(
        worker_url=input.worker_url,
        prompt_id=input.prompt_id,
        workflow_name=input.workflow_name,
        parameters={} if parameters is None else parameters,
        public=bool(input.public),
        session_id=session_uid,
    )
    services = ctx.services
    result = await track(
        ctx.pool,
        services.templates,
        services.comfy.workers,
        services.comfy.dispatcher,
        ctx.viewer,
        request,
        events=services.events,
    )
    if isinstance(result, Submitted):
        return SubmitJobPayload(job=job_from_row(result.kind, result.row))
    return SubmitJobPayload(user_errors=[user_error(p.code, p.message, p.path) for p in result])
