"""The realtime side of one app: shared streams, open connections, keep-alives, the
connection log and the queue-position watch.

Owned by the GraphQL view (built with the app, nothing started at import). Its tasks
start with the first websocket and stop by themselves once the last one is gone, so an
idle server runs none of them; `aclose` stops everything at once (for a lifespan).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from strawberry.schema import BaseSchema

from comfygraph.bus.tasks import cancel_and_wait
from comfygraph.server.limits import limits_from
from comfygraph.server.realtime.connection import LiveConnection
from comfygraph.server.realtime.connections import ConnectionLog
from comfygraph.server.realtime.gcpolicy import FreezeWhileBusy
from comfygraph.server.realtime.live import QueueWatch
from comfygraph.server.realtime.plans import Plans
from comfygraph.server.realtime.streams import Streams
from comfygraph.server.settings import Settings
from comfygraph.studio.services import Services


@dataclass(frozen=True)
class RealtimeStats:
    connections: int
    subscriptions: int
    streams: int
    stream_tasks: int
    queued_frames: int
    executions: int
    frames: int
    deliveries: int
    queue_watched: int
    log_pending: int
    #: keep-alive, connection log and queue watch tasks now running
    background_tasks: int


class Realtime:
    def __init__(self, settings: Settings, schema: BaseSchema) -> None:
        self.settings = settings
        self.plans = Plans(schema, limits_from(settings))
        self.streams = Streams(schema)
        self.connections: set[LiveConnection] = set()
        self._log: ConnectionLog | None = None
        self._queue_watch: QueueWatch | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self.gc = FreezeWhileBusy(settings.ws_gc_freeze_connections)

    # -- parts that need the app's resources (bound on first use) -------------------
    def log_of(self, services: Services) -> ConnectionLog:
        if self._log is None:
            self._log = ConnectionLog(
                services.pool,
                replica=services.comfy.replica,
                supervisor=services.comfy.supervisor,
                heartbeat_interval=self.settings.ws_heartbeat_interval,
            )
        return self._log

    def queue_watch_of(self, services: Services) -> QueueWatch:
        if self._queue_watch is None:
            self._queue_watch = QueueWatch(services.pool, self.settings.ws_queue_poll_interval)
        return self._queue_watch

    # -- connections ---------------------------------------------------------------
    def opened(self, connection: LiveConnection) -> None:
        self.connections.add(connection)
        if self._keepalive is None or self._keepalive.done():
            self._keepalive = asyncio.create_task(self._keep_alive(), name="ws-keepalive")

    def closed(self, connection: LiveConnection) -> None:
        self.connections.discard(connection)
        if connection.acknowledged and self._log is not None:
            self._log.closed(connection.id)

    async def _keep_alive(self) -> None:
        # One task pings every connection (graphql-transport-ws "ping", graphql-ws "ka")
        # instead of a sleeping task per connection: each second the connections of one
        # slot, so the pings (and the pongs they bring back) are spread over the interval
        # rather than arriving all at once. It also applies the GC policy.
        step = min(1.0, self.settings.ws_keepalive_interval)
        slots = max(1, round(self.settings.ws_keepalive_interval / step))
        turn = 0
        while self.connections:
            await asyncio.sleep(step)
            self.gc.tick(len(self.connections))
            turn = (turn + 1) % slots
            self._ping(turn, slots)
        self.gc.tick(0)

    def _ping(self, turn: int, slots: int) -> None:
        # (Its own frame: a loop variable left in _keep_alive's would keep the last
        # connection alive until the task ends.)
        for connection in list(self.connections):
            if connection.slot % slots == turn:
                connection.keepalive()

    # -- inspection and shutdown ------------------------------------------------------
    def stats(self) -> RealtimeStats:
        background = [
            self._keepalive is not None and not self._keepalive.done(),
            self._log is not None and self._log.running,
            self._queue_watch is not None and self._queue_watch.running,
        ]
        return RealtimeStats(
            connections=len(self.connections),
            subscriptions=sum(c.count for c in self.connections),
            streams=len(self.streams),
            stream_tasks=self.streams.tasks,
            queued_frames=sum(len(c.outbox) for c in self.connections),
            executions=self.streams.executions,
            frames=self.streams.frames,
            deliveries=self.streams.deliveries,
            queue_watched=self._queue_watch.watched if self._queue_watch else 0,
            log_pending=self._log.pending if self._log else 0,
            background_tasks=sum(background),
        )

    async def aclose(self) -> None:
        await self.streams.aclose()
        await cancel_and_wait(self._keepalive)
        if self._queue_watch is not None:
            await self._queue_watch.aclose()
        if self._log is not None:
            await self._log.aclose()
