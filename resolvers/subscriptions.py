"""Subscriptions. Placeholders until the broadcast and the progress tracker arrive:
each fails at once with NOT_IMPLEMENTED. This module is replaced then."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import strawberry

from schema.errors import NOT_IMPLEMENTED, ApiError
from schema.jobs import Job, JobFilter
from schema.progress import JobProgress
from schema.sessions import SessionEvent

if TYPE_CHECKING:
    from server.context import Context


def _not_yet(field: str) -> ApiError:
    return ApiError(NOT_IMPLEMENTED, f"{field} is not implemented yet")


async def job_progress(
    info: strawberry.Info[Context, None], id: strawberry.ID
) -> AsyncGenerator[JobProgress, None]:
    raise _not_yet("jobProgress")
    yield  # an async generator, as strawberry requires


async def job_updates(
    info: strawberry.Info[Context, None], filter: JobFilter | None = strawberry.UNSET
) -> AsyncGenerator[Job, None]:
    raise _not_yet("jobUpdates")
    yield


async def session_progress(
    info: strawberry.Info[Context, None], id: strawberry.ID
) -> AsyncGenerator[SessionEvent, None]:
    raise _not_yet("sessionProgress")
    yield
