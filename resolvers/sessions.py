"""Query fields over ad-video sessions (private to their owner and admins)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from comfygraph.resolvers.args import given, session_id, statuses_of
from comfygraph.schema.enums import SessionStatus
from comfygraph.schema.pagination import Connection
from comfygraph.schema.sessions import Session

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context


async def session(info: strawberry.Info[Context, None], id: strawberry.ID) -> Session | None:
    return await info.context.loaders.sessions.load(session_id(id))


async def sessions(
    info: strawberry.Info[Context, None],
    first: int | None = 20,
    after: str | None = strawberry.UNSET,
    statuses: list[SessionStatus] | None = strawberry.UNSET,
    active: bool | None = strawberry.UNSET,
) -> Connection[Session]:
    return await info.context.feeds.sessions(
        first=first, after=given(after), statuses=statuses_of(statuses), active=given(active)
    )
