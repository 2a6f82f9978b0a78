"""The database connection of one request."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import asyncpg

from comfygraph.db.visibility import ANONYMOUS, Viewer

#: the role a request's statements run as: row-level security applies to it
#: (db/migrations/0012_row_security.sql)
REQUEST_ROLE = "comfygraph_request"


def _begin(viewer: Viewer) -> str:
    """One round trip: a transaction as the request role, with the viewer set for the
    policies. The values are a uuid and a fixed word, never client text."""
    uid = str(viewer.user_id) if viewer.user_id is not None else ""
    role = "admin" if viewer.is_admin else "user"
    return (
        f"BEGIN; SET LOCAL ROLE {REQUEST_ROLE}; "
        f"SELECT set_config('comfygraph.viewer_id', '{uid}', true), "
        f"set_config('comfygraph.viewer_role', '{role}', true)"
    )


class RequestConnection:
    """While held (the HTTP view holds it around each query and mutation) the first
    statement acquires a pooled connection and every later one reuses it, so a request
    pays for one acquire, and for one reset when the connection goes back, however many
    loaders run.

    Statements take turns on a lock: code must not await a DataLoader (or anything else
    that needs the connection) inside `acquire()`. When not held (subscriptions, whose
    context lives as long as their websocket) each use acquires and releases.

    While held, the statements run in one transaction as REQUEST_ROLE with the viewer
    set, so PostgreSQL's row-level security holds them to the visibility rules too (a
    second wall: a query that forgot its filter still shows nobody else's private
    rows). `finish()` commits it before the response leaves.
    """

    def __init__(
        self, pool: asyncpg.Pool, viewer: Callable[[], Viewer] = lambda: ANONYMOUS
    ) -> None:
        self.pool = pool
        self._viewer = viewer
        self._lock = asyncio.Lock()
        self._conn: asyncpg.Connection | None = None
        self._holders = 0

    def hold(self) -> None:
        self._holders += 1

    async def finish(self) -> None:
        """Commit the request's transaction (rolled back when a statement failed)."""
        async with self._lock:
            conn = self._conn
            if conn is None or not conn.is_in_transaction():
                return
            try:
                await conn.execute("COMMIT")
            except asyncpg.PostgresError:
                await conn.execute("ROLLBACK")

    async def release(self) -> None:
        """Undo one hold(); the last one gives the connection back to the pool."""
        self._holders -= 1
        if self._holders == 0 and self._conn is not None:
            conn, self._conn = self._conn, None
            await self.pool.release(conn)

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        if not self._holders:
            async with self.pool.acquire() as conn:
                yield conn
            return
        async with self._lock:
            if self._conn is None:
                self._conn = await self.pool.acquire()
            if not self._conn.is_in_transaction():
                await self._conn.execute(_begin(self._viewer()))
            yield self._conn
