"""The database connection of one request."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
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


class FairGate:
    """First come, first served admission to a pool's connections. asyncpg's pool is
    LIFO and lets a newcomer take a connection that was just released before the
    request that waited longest runs, so under load some requests wait many turns (a
    p99 of 100x the p50, connections served 1 to 180 times in the same seconds). Here
    a released slot is handed straight to the oldest waiter."""

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


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
        self,
        pool: asyncpg.Pool,
        viewer: Callable[[], Viewer] = lambda: ANONYMOUS,
        gate: FairGate | None = None,
    ) -> None:
        self.pool = pool
        self._viewer = viewer
        self.gate = gate
        self._lock = asyncio.Lock()
        self._conn: asyncpg.Connection | None = None
        self._holders = 0

    def hold(self) -> None:
        self._holders += 1

    async def finish(self) -> bool:
        """Commit the request's transaction; False when it could not be committed (the
        connection died, or COMMIT failed and was rolled back): its writes are not
        saved, and the client must not hear otherwise."""
        async with self._lock:
            conn = self._conn
            if conn is None:
                return True
            try:
                if not conn.is_in_transaction():
                    return True
                await conn.execute("COMMIT")
                return True
            except asyncpg.PostgresError:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                return False
            except (OSError, asyncpg.InterfaceError, asyncpg.InternalClientError):
                # The server went away under the COMMIT (InternalClientError: asyncpg's
                # protocol met the closed socket mid-message).
                return False

    async def release(self) -> None:
        """Undo one hold(); the last one gives the connection back to the pool."""
        self._holders -= 1
        if self._holders == 0 and self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                # A connection whose server died was already taken back by the pool.
                with contextlib.suppress(asyncpg.InterfaceError):
                    await self.pool.release(conn)
            finally:
                if self.gate is not None:
                    self.gate.release()

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        if not self._holders:
            async with self.pool.acquire() as conn:
                yield conn
            return
        async with self._lock:
            if self._conn is None:
                if self.gate is not None:
                    await self.gate.acquire()
                try:
                    self._conn = await self.pool.acquire()
                except BaseException:
                    if self.gate is not None:
                        self.gate.release()
                    raise
            if not self._conn.is_in_transaction():
                await self._conn.execute(_begin(self._viewer()))
            yield self._conn
