"""submitJob and retryJob, both through comfy.submit (validation, idempotency, the
status event and the dispatcher's wake-up). Nothing is stored when any error is reported.

submitJob's userErrors: UNKNOWN_WORKFLOW; INVALID_PARAMETER, MISSING_PARAMETER and
UNKNOWN_PARAMETER (one per field, at ["parameters", name]); INVALID_PRIORITY;
INVALID_IDEMPOTENCY_KEY; IDEMPOTENCY_KEY_REUSED (the key went with a different request;
the same request again answers the first job); INVALID_ID (a malformed sessionId);
SESSION_NOT_FOUND (no such session of the viewer's); QUOTA_EXCEEDED (at ["input"]: the
viewer's storage quota is used up, checked before anything is queued).

retryJob submits the job's workflow with its recorded parameters (so a random seed is
replayed), publicity, session and priority, on behalf of the job's owner. Only a finished
job (COMPLETED, FAILED, CANCELLED) may be retried: RETRY_NOT_ALLOWED otherwise. A job the
viewer may not change (not theirs, unless they are an admin) is NOT_FOUND, exactly like
an unknown id. It runs the template version the job ran, not the current one. The
submit's own userErrors apply too (UNKNOWN_WORKFLOW for a deprecated workflow).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import asyncpg
import strawberry

from comfygraph.db.jobs import get_job
from comfygraph.db.visibility import Viewer, can_change_job
from comfygraph.db.webhooks import user_secret
from comfygraph.domain.statuses import TERMINAL
from comfygraph.resolvers.args import given, job_id, session_id
from comfygraph.resolvers.mapping import job_from_row
from comfygraph.resolvers.webhooks import check_webhook_url
from comfygraph.schema.errors import (
    NOT_FOUND,
    ApiError,
    UserError,
    rate_limited,
    unauthenticated,
    user_error,
)
from comfygraph.schema.payloads import SubmitJobInput, SubmitJobPayload
from comfygraph.studio.files import allowed_inputs, canonical
from comfygraph.studio.quota import QUOTA_EXCEEDED
from comfygraph.studio.ratelimit import submission_refusal
from comfygraph.studio.submit import JobRequest, Submitted, submit
from comfygraph.studio.webhooks import new_secret

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context

RETRY_NOT_ALLOWED = "RETRY_NOT_ALLOWED"


def _signed_in(ctx: Context) -> Viewer:
    if ctx.viewer.anonymous:
        raise unauthenticated()
    return ctx.viewer


async def submit_job(
    info: strawberry.Info[Context, None], input: SubmitJobInput
) -> SubmitJobPayload:
    viewer = _signed_in(info.context)
    try:
        session = given(input.session_id)
        session_uid = None if session is None else session_id(session)
    except ApiError as exc:
        return SubmitJobPayload(user_errors=[user_error(exc.code, exc.message, ["sessionId"])])
    webhook_url = given(input.webhook_url)
    if webhook_url is not None:
        bad = await one_off_webhook(info.context, viewer, webhook_url)
        if bad is not None:
            return SubmitJobPayload(user_errors=[bad])
    request = JobRequest(
        workflow_name=input.workflow_name,
        parameters=input.parameters,
        public=bool(input.public),
        idempotency_key=given(input.idempotency_key),
        session_id=session_uid,
        priority=input.priority or 0,
        extra={"webhook_url": webhook_url} if webhook_url else {},
        count=1 if input.count is None else input.count,
    )
    return await _submit(info.context, viewer, request)


async def one_off_webhook(ctx: Context, viewer: Viewer, url: str) -> UserError | None:
    """A userError when `url` may not receive webhooks; else make sure the viewer has
    the secret that signs their one-off deliveries."""
    bad = await check_webhook_url(ctx, url, ["webhookUrl"])
    if bad is None:
        assert viewer.user_id is not None
        async with ctx.pool.acquire() as conn:
            await user_secret(conn, viewer.user_id, new_secret())
    return bad


async def retry_job(info: strawberry.Info[Context, None], id: strawberry.ID) -> SubmitJobPayload:
    viewer = _signed_in(info.context)
    # Not the request's held connection: submit takes one of its own (see cancelJob).
    async with info.context.pool.acquire() as conn:
        found = await _retryable(conn, viewer, id)
    if isinstance(found, UserError):
        return SubmitJobPayload(user_errors=[found])
    owner = Viewer(found["user_id"]) if found["user_id"] else viewer
    request = JobRequest(
        workflow_name=found["workflow_name"],
        parameters=found["parameters"],
        public=found["public"],
        session_id=found["session_id"],
        priority=found["priority"],
        template_version=found["template_version"],
    )
    return await _submit(info.context, owner, request)


async def _retryable(
    conn: asyncpg.Connection, viewer: Viewer, id: str
) -> asyncpg.Record | UserError:
    try:
        kind, uid = job_id(id)
    except ApiError as exc:
        return user_error(exc.code, exc.message, ["id"])
    row = await get_job(conn, kind, uid)
    if row is None or not can_change_job(viewer, row):
        return user_error(NOT_FOUND, "no job with this id", ["id"])
    if row["status"] not in TERMINAL:
        message = f"a {row['status']} job cannot be retried: cancel it or wait until it ends"
        return user_error(RETRY_NOT_ALLOWED, message, ["id"])
    return row


async def _submit(ctx: Context, viewer: Viewer, request: JobRequest) -> SubmitJobPayload:
    services = ctx.services
    assert viewer.user_id is not None, "callers check that the viewer is signed in"
    # The rate limits are the signed-in caller's (ctx.viewer), the quota the owner's.
    refused = await submission_refusal(
        ctx.rates, ctx.pool, ctx.viewer, viewer.user_id, ctx.limits.storage_quota_bytes
    )
    if refused is not None:
        if refused.code == QUOTA_EXCEEDED:
            problem = user_error(QUOTA_EXCEEDED, refused.message, ["input"])
        else:
            assert refused.retry_after is not None
            problem = rate_limited(refused.message, refused.retry_after)
        return SubmitJobPayload(user_errors=[problem])
    client = ctx.request.client
    # File inputs: the URLs a client was shown are signed; rows keep the canonical ones,
    # and only the submitter's own uploads or files of jobs they may see are accepted.
    parameters = canonical(services.storage, request.parameters)
    request = dataclasses.replace(request, parameters=parameters)
    allowed = await allowed_inputs(services.pool, services.storage, viewer, parameters)
    result = await submit(
        ctx.pool,
        services.templates,
        viewer,
        request,
        events=services.events,
        is_allowed_file=allowed.__contains__,
        wake=services.comfy.dispatcher.wake,
        user_ip=client.host if client is not None else None,
        max_count=ctx.limits.max_batch_count,
    )
    if isinstance(result, Submitted):
        rows = result.rows or (result.row,)
        batch = result.row["batch_id"]
        return SubmitJobPayload(
            job=job_from_row(result.kind, result.row),
            jobs=[job_from_row(result.kind, r) for r in rows],
            batch_id=None if batch is None else strawberry.ID(str(batch)),
        )
    return SubmitJobPayload(user_errors=[user_error(p.code, p.message, p.path) for p in result])
