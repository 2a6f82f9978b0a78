"""websocket_connections bookkeeping for this process, batched.

Connects, the session a connection follows and disconnects are remembered in memory
(with the time they happened) and written a moment later, many per statement; one
statement per heartbeat interval refreshes last_heartbeat_at of every open connection of
this replica and closes the rows of replicas that stopped heartbeating (they died). The
task that writes runs only while there are open connections or writes pending.
A database hiccup delays the writes; it never touches a websocket.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import asyncpg

from comfygraph.bus.tasks import cancel_and_wait
from comfygraph.db import ws_connections as db
from comfygraph.studio.supervisor import Supervisor

log = logging.getLogger(__name__)

# Past this many pending writes (the database is down) the oldest are dropped.
MAX_PENDING = 100_000


class ConnectionLog:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        replica: str,
        heartbeat_interval: float,
        supervisor: Supervisor,
        flush_delay: float = 0.25,
    ) -> None:
        self._pool = pool
        self._supervisor = supervisor
        self.replica = replica
        self._heartbeat_interval = heartbeat_interval
        self._flush_delay = flush_delay
        self._live: set[str] = set()
        self._inserts: dict[str, db.Connected] = {}
        self._sessions: dict[str, uuid.UUID] = {}
        self._gone: dict[str, datetime] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.heartbeats = 0

    @property
    def pending(self) -> int:
        return len(self._inserts) + len(self._sessions) + len(self._gone)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def opened(
        self,
        connection_id: str,
        *,
        user_id: uuid.UUID | None,
        client_ip: str | None,
        user_agent: str | None,
        metadata: dict[str, Any],
    ) -> None:
        self._live.add(connection_id)
        self._inserts[connection_id] = db.Connected(
            connection_id=connection_id,
            user_id=user_id,
            replica=self.replica,
            client_ip=client_ip,
            user_agent=user_agent[:1000] if user_agent else None,
            connected_at=datetime.now(UTC),
            metadata=metadata,
        )
        self._changed()

    def session(self, connection_id: str, session_id: uuid.UUID) -> None:
        if connection_id in self._live:
            self._sessions.setdefault(connection_id, session_id)
            self._changed()

    def closed(self, connection_id: str) -> None:
        if connection_id not in self._live:
            return
        self._live.discard(connection_id)
        now = datetime.now(UTC)
        waiting = self._inserts.get(connection_id)
        if waiting is not None:  # never written: write it closed
            self._inserts[connection_id] = replace(waiting, disconnected_at=now)
        else:
            self._gone[connection_id] = now
        self._changed()

    async def aclose(self) -> None:
        """Write what is pending (best effort) and stop."""
        await cancel_and_wait(self._task)
        self._task = None
        if self.pending:
            await self._flush()

    def _changed(self) -> None:
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = self._supervisor.start("ws-connection-log", self._run)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        beat_at = loop.time() + self._heartbeat_interval
        failures = 0
        while self._live or self.pending:
            self._wake.clear()
            if self.pending:
                await asyncio.sleep(self._flush_delay)  # let a burst of changes gather
                if await self._flush():
                    failures = 0
                else:
                    failures += 1
                    if not self._live and failures >= 3:  # shutting down, most likely
                        log.warning("dropping %d websocket connection records", self.pending)
                        self._inserts, self._sessions, self._gone = {}, {}, {}
                        return
                    await asyncio.sleep(1.0)
            elif (wait := beat_at - loop.time()) > 0:
                try:
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            if loop.time() >= beat_at and self._live:
                beat_at = loop.time() + self._heartbeat_interval
                await self._heartbeat()

    async def _flush(self) -> bool:
        inserts, sessions, gone = self._inserts, self._sessions, self._gone
        self._inserts, self._sessions, self._gone = {}, {}, {}
        try:
            async with self._pool.acquire() as conn:
                await db.record_connected(conn, list(inserts.values()))
                await db.record_sessions(conn, list(sessions.items()))
                await db.record_disconnected(conn, list(gone.items()))
        except Exception as exc:  # bookkeeping: never let it take anything else down
            log.warning("recording websocket connections failed (will retry): %r", exc)
            self._inserts = {**inserts, **self._inserts}
            self._sessions = {**sessions, **self._sessions}
            self._gone = {**gone, **self._gone}
            self._trim()
            return False
        self.written += len(inserts) + len(sessions) + len(gone)
        return True

    async def _heartbeat(self) -> None:
        try:
            async with self._pool.acquire() as conn:
                await db.heartbeat(conn, replica=self.replica)
                await db.close_abandoned(conn, silent_for=3 * self._heartbeat_interval)
            self.heartbeats += 1
        except Exception as exc:
            log.warning("websocket heartbeat failed: %r", exc)

    def _trim(self) -> None:
        for pending in (self._inserts, self._gone):
            while len(pending) > MAX_PENDING:
                pending.pop(next(iter(pending)))
