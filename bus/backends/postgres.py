"""PostgreSQL LISTEN/NOTIFY, with a dedicated listening connection that comes back.

broadcaster 0.3.1's own PostgreSQL backend LISTENs and NOTIFYs on one asyncpg connection
(concurrent publishes fail with "another operation is in progress") and never notices
that connection die. Here:

- one connection only LISTENs (``application_name`` "<client_name>/listen"); asyncpg's
  termination listener reports it closed at once, a ``SELECT 1`` every
  ``ping_interval`` (answered within ``command_timeout``) catches a half-open one, and
  :class:`ListeningBackend` reconnects;
- NOTIFY goes through a small pool of its own ("<client_name>/publish"), so publishing
  never waits on listening; a publish that meets a dead pooled connection is retried once
  on a fresh one (a NOTIFY may then, rarely, arrive twice: events must be idempotent).

Channel names are quoted identifiers (asyncpg quotes LISTEN; ``pg_notify`` takes text).
A NOTIFY is delivered when its transaction commits; ``pg_notify`` here runs in its own
autocommitted statement, so call ``publish`` after your own transaction committed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from comfygraph.bus.backends.base import BackendOptions, ListeningBackend
from comfygraph.bus.errors import PublishError

_NOTIFY = "SELECT pg_notify($1, $2)"
_NOTIFY_MANY = "SELECT pg_notify(c, $2) FROM unnest($1::text[]) AS c"
_CONNECTION_TROUBLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # a connection whose backend was terminated while idle: "another operation is in progress"
    asyncpg.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,
    OSError,
)


async def _no_reset(conn: asyncpg.Connection) -> None:
    pass


class PostgresBackend(ListeningBackend):
    def __init__(self, dsn: str, options: BackendOptions | None = None) -> None:
        super().__init__(options or BackendOptions())
        self._dsn = dsn
        self._pool: asyncpg.Pool | None = None
        self._conn: asyncpg.Connection | None = None

    async def publish(self, channel: str, message: Any) -> None:
        await self._notify(_NOTIFY, (channel, message), repr(channel))

    async def publish_many(self, channels: tuple[str, ...], message: Any) -> None:
        """One NOTIFY per channel, all in one autocommitted statement (one round trip);
        PostgreSQL delivers a transaction's notifications in the order they were sent."""
        await self._notify(_NOTIFY_MANY, (list(channels), message), repr(channels))

    async def _notify(self, sql: str, args: tuple[Any, ...], what: str) -> None:
        """Run one NOTIFY statement on a pooled connection; one that meets a dead
        connection is retried once on a fresh one (see the module's docstring)."""
        pool = self._pool
        if pool is None:
            raise PublishError("the PostgreSQL backend is not connected")
        timeout = self.options.command_timeout
        for attempt in (1, 2):
            try:
                async with pool.acquire(timeout=timeout) as conn:
                    await conn.execute(sql, *args, timeout=timeout)
                return
            except _CONNECTION_TROUBLE as exc:
                if attempt == 2:
                    raise PublishError(f"NOTIFY on {what} failed: {exc!r}") from exc
            except (asyncpg.PostgresError, TimeoutError) as exc:
                raise PublishError(f"NOTIFY on {what} failed: {exc!r}") from exc

    # -- publisher -------------------------------------------------------------------
    async def _open_publisher(self) -> None:
        opts = self.options
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=1,
            max_size=opts.publish_connections,
            timeout=opts.connect_timeout,
            command_timeout=opts.command_timeout,
            server_settings={"application_name": f"{opts.client_name}/publish"},
            # These connections only NOTIFY, autocommitted: no session state to reset,
            # so no reset statement (a round trip) on every release.
            reset=_no_reset,
        )

    async def _close_publisher(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            async with asyncio.timeout(self.options.command_timeout):
                await pool.close()
        except (TimeoutError, *_CONNECTION_TROUBLE):
            pool.terminate()

    # -- listening link ----------------------------------------------------------------
    async def _open_link(self) -> None:
        opts = self.options
        conn = await asyncpg.connect(
            self._dsn,
            timeout=opts.connect_timeout,
            command_timeout=opts.command_timeout,
            server_settings={"application_name": f"{opts.client_name}/listen"},
        )
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn

    async def _close_link(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        conn.remove_termination_listener(self._on_terminated)
        try:
            await conn.close(timeout=self.options.command_timeout)
        except Exception:
            conn.terminate()

    async def _listen(self, channels: list[str]) -> None:
        conn = self._live()
        for channel in channels:
            await conn.add_listener(channel, self._on_notify)

    async def _unlisten(self, channel: str) -> None:
        await self._live().remove_listener(channel, self._on_notify)

    async def _ping(self) -> None:
        await self._live().execute("SELECT 1")

    def _live(self) -> asyncpg.Connection:
        conn = self._conn
        if conn is None or conn.is_closed():
            raise asyncpg.InterfaceError("the listening connection is closed")
        return conn

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        if conn is self._conn:
            self._deliver(channel, payload)

    def _on_terminated(self, conn: Any) -> None:
        if conn is self._conn:
            self._link_lost()
