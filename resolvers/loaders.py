"""Per-request DataLoaders: every batch is one SQL statement (two for assets), and
every loader that returns something a viewer might not see checks it with
db.visibility and answers None exactly as for an id that does not exist."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from functools import cached_property
from typing import TypeVar

from strawberry.dataloader import DataLoader

from comfygraph.db import assets as db_assets
from comfygraph.db import costs as db_costs
from comfygraph.db import queue as db_queue
from comfygraph.db import sessions as db_sessions
from comfygraph.db import users as db_users
from comfygraph.db import webhooks as db_webhooks
from comfygraph.db.feed import jobs_by_ids
from comfygraph.db.kinds import READ_COLUMNS
from comfygraph.db.kinds import OutputType as Kind
from comfygraph.db.visibility import Viewer, can_see_asset, can_see_job, can_see_session
from comfygraph.resolvers.mapping import (
    asset_from_row,
    cost_line_from_row,
    job_from_row,
    session_from_row,
    user_from_row,
)
from comfygraph.resolvers.request_db import RequestConnection
from comfygraph.schema.jobs import AnyJob
from comfygraph.schema.sessions import Asset, CostLine, Session
from comfygraph.schema.users import User

JobKey = tuple[str, uuid.UUID]  # (db kind value, id)
K = TypeVar("K")
V = TypeVar("V")


class _Loader(DataLoader[K, V]):
    """A DataLoader whose cached futures outlive a cancelled waiter. graphql-core
    cancels the sibling fields of a non-null field that failed; a task cancelled while
    awaiting a cached future cancelled the future itself, so every other field waiting
    for the same key (a job's owner and a session's owner) raised CancelledError and
    the request answered 500."""

    def load(self, key: K) -> Awaitable[V]:
        return asyncio.shield(super().load(key))


class Loaders:
    """Built lazily, one loader at a time, for one request and one viewer."""

    def __init__(self, db: RequestConnection, viewer: Viewer) -> None:
        self.db = db
        self.viewer = viewer

    @cached_property
    def users(self) -> DataLoader[uuid.UUID, User | None]:
        return _Loader(self._users)

    @cached_property
    def sessions(self) -> DataLoader[uuid.UUID, Session | None]:
        return _Loader(self._sessions)

    @cached_property
    def assets(self) -> DataLoader[uuid.UUID, Asset | None]:
        return _Loader(self._assets)

    @cached_property
    def jobs(self) -> DataLoader[JobKey, AnyJob | None]:
        return _Loader(self._jobs)

    @cached_property
    def queue_positions(self) -> DataLoader[uuid.UUID, int | None]:
        return _Loader(self._queue_positions)

    @cached_property
    def session_assets(self) -> DataLoader[uuid.UUID, list[Asset]]:
        return _Loader(self._session_assets)

    @cached_property
    def cost_breakdowns(self) -> DataLoader[uuid.UUID, list[CostLine]]:
        return _Loader(self._cost_breakdowns)

    async def webhook_secret(self, user_id: uuid.UUID) -> str | None:
        """Not batched: only ever asked for the viewer themselves."""
        async with self.db.acquire() as conn:
            return await db_webhooks.get_user_secret(conn, user_id)

    async def _users(self, ids: Sequence[uuid.UUID]) -> list[User | None]:
        async with self.db.acquire() as conn:
            rows = await db_users.users_by_ids(conn, ids)
        return [user_from_row(rows[i]) if i in rows else None for i in ids]

    async def _sessions(self, ids: Sequence[uuid.UUID]) -> list[Session | None]:
        async with self.db.acquire() as conn:
            rows = await db_sessions.sessions_by_ids(conn, ids)
        found = (rows.get(i) for i in ids)
        return [
            session_from_row(row) if row and can_see_session(self.viewer, row) else None
            for row in found
        ]

    async def _assets(self, ids: Sequence[uuid.UUID]) -> list[Asset | None]:
        async with self.db.acquire() as conn:
            rows = await db_assets.assets_by_ids(conn, ids)
            owners = await db_sessions.sessions_by_ids(
                conn, {r["session_id"] for r in rows.values()}
            )
        result: list[Asset | None] = []
        for i in ids:
            row = rows.get(i)
            visible = row and can_see_asset(self.viewer, row, owners.get(row["session_id"]))
            result.append(asset_from_row(row) if row and visible else None)
        return result

    async def _jobs(self, keys: Sequence[JobKey]) -> list[AnyJob | None]:
        kinds = sorted({Kind(kind) for kind, _ in keys})
        async with self.db.acquire() as conn:
            rows = await jobs_by_ids(conn, {uid for _, uid in keys}, kinds, READ_COLUMNS)
        result: list[AnyJob | None] = []
        for kind, uid in keys:
            row = rows.get(uid)
            visible = row and row["kind"] == kind and can_see_job(self.viewer, row)
            result.append(job_from_row(Kind(kind), row) if row and visible else None)
        return result

    async def _queue_positions(self, ids: Sequence[uuid.UUID]) -> list[int | None]:
        async with self.db.acquire() as conn:
            ahead = await db_queue.queue_positions(conn, ids)
        return [ahead.get(i) for i in ids]

    async def _session_assets(self, session_ids: Sequence[uuid.UUID]) -> list[list[Asset]]:
        # Callers hold a Session object, which exists only when the viewer may see it.
        async with self.db.acquire() as conn:
            grouped = await db_assets.session_assets(conn, session_ids)
        return [[asset_from_row(r) for r in grouped[sid]] for sid in session_ids]

    async def _cost_breakdowns(self, session_ids: Sequence[uuid.UUID]) -> list[list[CostLine]]:
        async with self.db.acquire() as conn:
            grouped = await db_costs.cost_breakdowns(conn, session_ids)
        return [[cost_line_from_row(r) for r in grouped[sid]] for sid in session_ids]
