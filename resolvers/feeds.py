"""Keyset connections over the jobs feed and the sessions list, for one request."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import TypeVar

from comfygraph.db.feed import Cursor, JobQuery, job_count, job_page
from comfygraph.db.kinds import READ_COLUMNS
from comfygraph.db.kinds import OutputType as Kind
from comfygraph.db.sessions import session_count, session_page
from comfygraph.db.visibility import Scope, Viewer
from comfygraph.resolvers.mapping import job_from_row, session_from_row
from comfygraph.resolvers.request_db import RequestConnection
from comfygraph.schema.jobs import AnyJob
from comfygraph.schema.pagination import (
    Connection,
    CursorCodec,
    CursorKind,
    Edge,
    LazyCursor,
    PageInfo,
    page_size,
)
from comfygraph.schema.sessions import Session

NodeT = TypeVar("NodeT")


class Feeds:
    def __init__(self, db: RequestConnection, viewer: Viewer, cursors: CursorCodec) -> None:
        self.db = db
        self.viewer = viewer
        self.cursors = cursors

    async def jobs(
        self, query: JobQuery, *, first: int | None, after: str | None
    ) -> Connection[AnyJob]:
        """One page of the jobs the viewer may see among those `query` selects."""
        size = page_size(first)
        position = None if after is None else self.cursors.decode(CursorKind.JOBS, after)
        async with self.db.acquire() as conn:
            page = await job_page(
                conn,
                self.viewer,
                query,
                first=size,
                after=position and Cursor(*position),
                columns=READ_COLUMNS,
            )
        edges = [
            Edge(node=job_from_row(Kind(r["kind"]), r),
                 position=self._cursor(CursorKind.JOBS, r["created_at"], r["id"]))
            for r in page.rows
        ]  # fmt: skip
        return Connection(
            edges=edges,
            page_info=_page_info(edges, has_next=page.has_next, after=after),
            count=partial(self._job_count, query),
        )

    async def session_jobs(
        self, session_id: uuid.UUID, *, first: int | None, after: str | None
    ) -> Connection[AnyJob]:
        return await self.jobs(
            JobQuery(scope=Scope.ALL, session_id=session_id), first=first, after=after
        )

    async def sessions(
        self,
        *,
        first: int | None,
        after: str | None,
        statuses: Sequence[str] | None,
        active: bool | None,
    ) -> Connection[Session]:
        """The viewer's sessions (every user's for an admin; none for an anonymous viewer)."""
        size = page_size(first)
        position = None if after is None else self.cursors.decode(CursorKind.SESSIONS, after)
        if self.viewer.user_id is None:
            return Connection(edges=[], page_info=_page_info([], False, after), count=_zero)
        owner = None if self.viewer.is_admin else self.viewer.user_id
        async with self.db.acquire() as conn:
            rows, has_next = await session_page(
                conn, user_id=owner, first=size, after=position, statuses=statuses, active=active
            )
        edges = [
            Edge(node=session_from_row(r),
                 position=self._cursor(CursorKind.SESSIONS, r["created_at"], r["id"]))
            for r in rows
        ]  # fmt: skip
        count = partial(self._session_count, owner, statuses, active)
        return Connection(edges=edges, page_info=_page_info(edges, has_next, after), count=count)

    def _cursor(self, kind: CursorKind, created_at: datetime, row_id: uuid.UUID) -> LazyCursor:
        return LazyCursor(self.cursors, kind, created_at, row_id)  # signed if it is read

    async def _job_count(self, query: JobQuery) -> int:
        async with self.db.acquire() as conn:
            return await job_count(conn, self.viewer, query)

    async def _session_count(
        self, owner: uuid.UUID | None, statuses: Sequence[str] | None, active: bool | None
    ) -> int:
        async with self.db.acquire() as conn:
            return await session_count(conn, user_id=owner, statuses=statuses, active=active)


async def _zero() -> int:
    return 0


def _page_info(edges: Sequence[Edge[NodeT]], has_next: bool, after: str | None) -> PageInfo:
    # Forward paging only: "a previous page exists" is approximated by "we came from a cursor".
    return PageInfo(
        has_next_page=has_next,
        has_previous_page=after is not None,
        start=edges[0].position if edges else None,
        end=edges[-1].position if edges else None,  # the same (once signed) as the edge's
    )
