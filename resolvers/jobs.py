"""Query fields over jobs: the unified feed, the per-type feeds, single jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import strawberry

from comfygraph.db.feed import jobs_by_comfy_id
from comfygraph.db.kinds import OutputType as Kind
from comfygraph.db.visibility import can_see_job
from comfygraph.resolvers.args import given, job_id, job_query
from comfygraph.resolvers.mapping import job_from_row
from comfygraph.schema.errors import invalid_argument
from comfygraph.schema.jobs import AnyJob, AudioJob, ImageJob, Job, JobFilter, TextJob, VideoJob
from comfygraph.schema.pagination import Connection

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context

MAX_COMFY_ID = 200


async def _feed(
    info: strawberry.Info[Context, None],
    first: int | None,
    after: str | None,
    filter: JobFilter | None,
    *kinds: Kind,
) -> Connection[AnyJob]:
    ctx = info.context
    query = job_query(ctx.viewer, filter, kinds=frozenset(kinds or Kind))
    return await ctx.feeds.jobs(query, first=first, after=given(after))


async def jobs(
    info: strawberry.Info[Context, None],
    first: int | None = 20,
    after: str | None = strawberry.UNSET,
    filter: JobFilter | None = strawberry.UNSET,
) -> Connection[Job]:
    return await _feed(info, first, after, filter)


async def video_jobs(
    info: strawberry.Info[Context, None],
    first: int | None = 20,
    after: str | None = strawberry.UNSET,
    filter: JobFilter | None = strawberry.UNSET,
) -> Connection[VideoJob]:
    return cast(Connection[VideoJob], await _feed(info, first, after, filter, Kind.VIDEO))


async def image_jobs(
    info: strawberry.Info[Context, None],
    first: int | None = 20,
    after: str | None = strawberry.UNSET,
    filter: JobFilter | None = strawberry.UNSET,
) -> Connection[ImageJob]:
    return cast(Connection[ImageJob], await _feed(info, first, after, filter, Kind.IMAGE))


async def text_jobs(
    info: strawberry.Info[Context, None],
    first: int | None = 20,
    after: str | None = strawberry.UNSET,
    filter: JobFilter | None = strawberry.UNSET,
) -> Connection[TextJob]:
    return cast(Connection[TextJob], await _feed(info, first, after, filter, Kind.TEXT))


async def audio_jobs(
    info: strawberry.Info[Context, None],
    first: int | None = 20,
    after: str | None = strawberry.UNSET,
    filter: JobFilter | None = strawberry.UNSET,
) -> Connection[AudioJob]:
    return cast(Connection[AudioJob], await _feed(info, first, after, filter, Kind.AUDIO))


async def job(info: strawberry.Info[Context, None], id: strawberry.ID) -> Job | None:
    kind, uid = job_id(id)
    return await info.context.loaders.jobs.load((kind.value, uid))


async def job_by_comfy_id(info: strawberry.Info[Context, None], comfy_job_id: str) -> Job | None:
    if not 0 < len(comfy_job_id) <= MAX_COMFY_ID:
        raise invalid_argument("comfyJobId", f"expected 1 to {MAX_COMFY_ID} characters")
    async with info.context.db.acquire() as conn:
        rows = await jobs_by_comfy_id(conn, comfy_job_id)
    viewer = info.context.viewer
    visible = next((r for r in rows if can_see_job(viewer, r)), None)
    return None if visible is None else job_from_row(Kind(visible["kind"]), visible)
