"""The database connection of one request."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg


class RequestConnection:
    """While held (the HTTP view holds it around each query and mutation) the first
    statement acquires a pooled connection and every later one reuses it, so a request
    pays for one acquire, and for one reset when the connection goes back, however many
    loaders run.

    Statements take turns on a lock: code must not await a DataLoader (or anything else
    that needs the connection) inside `acquire()`. When not held (subscriptions, whose
    context lives as long as their websocket) each use acquires and releases.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._lock = asyncio.Lock()
        self._conn: asyncpg.Connection | None = None
        self._holders = 0

    def hold(self) -> None:
        self._holders += 1

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
            yield self._conn
