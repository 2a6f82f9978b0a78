"""The ComfyUI side of one replica, assembled: worker pool, tracker, dispatcher.
The app's lifespan builds it, starts it and closes it."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from comfy.dispatcher import Dispatcher
from comfy.events import JobEvents, Publish
from comfy.outputs import Store
from comfy.templates import TemplateSet
from comfy.tracker import Tracker, TrackerConfig
from comfy.workers import WorkerPool


def replica_name() -> str:
    """Unique per process start: leases name the replica that holds them."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class ComfyRuntime:
    workers: WorkerPool
    tracker: Tracker
    dispatcher: Dispatcher
    replica: str

    @classmethod
    def build(
        cls,
        *,
        pool: asyncpg.Pool,
        workers: Iterable[tuple[str, float | None]],
        templates: TemplateSet,
        store: Store,
        publish: Publish,
        lease_s: float = 30.0,
        job_timeout: float = 3600.0,
        health_interval: float = 5.0,
        poll_interval: float = 1.0,
        unavailable_after: float = 30.0,
        replica: str | None = None,
    ) -> ComfyRuntime:
        name = replica or replica_name()
        pool_ = WorkerPool(
            workers,
            client_id=f"comfygraph-{name}",
            health_interval=health_interval,
            unavailable_after=unavailable_after,
            reconcile_interval=min(5.0, max(0.5, unavailable_after / 4)),
        )
        tracker = Tracker(
            pool=pool,
            workers=pool_,
            templates=templates,
            store=store,
            events=JobEvents(publish),
            config=TrackerConfig(job_timeout=job_timeout),
        )
        dispatcher = Dispatcher(
            pool=pool,
            workers=pool_,
            tracker=tracker,
            replica=name,
            lease_s=lease_s,
            poll_interval=poll_interval,
        )
        return cls(pool_, tracker, dispatcher, name)

    async def start(self) -> None:
        await self.workers.start()
        await self.dispatcher.start()

    async def aclose(self) -> None:
        await self.dispatcher.aclose()
        await self.workers.aclose()
