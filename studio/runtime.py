"""The ComfyUI side of one replica, assembled: worker pool, runner, dispatcher.
The app's lifespan builds it, starts it and closes it."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from comfygraph.comfy.templates import TemplateSet
from comfygraph.comfy.workers import WorkerPool
from comfygraph.storage import Storage
from comfygraph.studio.channels import JobEvents, Publish
from comfygraph.studio.dispatcher import Dispatcher
from comfygraph.studio.runner import JobRunner, RunnerConfig
from comfygraph.studio.supervisor import Supervisor

log = logging.getLogger(__name__)


def replica_name() -> str:
    """Unique per process start: leases name the replica that holds them."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class ComfyRuntime:
    workers: WorkerPool
    runner: JobRunner
    dispatcher: Dispatcher
    replica: str
    supervisor: Supervisor

    @classmethod
    def build(
        cls,
        *,
        pool: asyncpg.Pool,
        workers: Iterable[tuple[str, float | None]],
        templates: TemplateSet,
        store: Storage,
        publish: Publish,
        lease_s: float = 30.0,
        job_timeout: float = 3600.0,
        health_interval: float = 5.0,
        poll_interval: float = 1.0,
        unavailable_after: float = 30.0,
        capacity: int = 2,
        request_timeout: float = 10.0,
        max_attempts: int = 2,
        stall_seconds: float = 120.0,
        replica: str | None = None,
        supervisor: Supervisor | None = None,
        affinity_window: int = 8,
        capabilities_refresh: float = 60.0,
    ) -> ComfyRuntime:
        name = replica or replica_name()
        pool_ = WorkerPool(
            workers,
            client_id=f"comfygraph-{name}",
            capacity=capacity,
            health_interval=health_interval,
            request_timeout=request_timeout,
            unavailable_after=unavailable_after,
            reconcile_interval=min(5.0, max(0.5, unavailable_after / 4)),
            capabilities_refresh=capabilities_refresh,
        )
        runner = JobRunner(
            pool=pool,
            workers=pool_,
            templates=templates,
            store=store,
            events=JobEvents(publish),
            config=RunnerConfig(
                job_timeout=job_timeout,
                max_attempts=max_attempts,
                stall_seconds=stall_seconds,
                db_retry_seconds=lease_s,  # past its lease, another replica may own a job
            ),
        )
        dispatcher = Dispatcher(
            pool=pool,
            workers=pool_,
            runner=runner,
            replica=name,
            lease_s=lease_s,
            poll_interval=poll_interval,
            affinity_window=affinity_window,
        )
        return cls(pool_, runner, dispatcher, name, supervisor or Supervisor())

    async def start(self) -> None:
        # One health check before serving, so the first requests see the workers as
        # they are; what fails here the health loop meets (and reports) at once.
        try:
            await self.workers.check_all()
        except Exception:
            log.warning("first worker health check failed", exc_info=True)
        self.supervisor.start("worker-health", self.workers.health_loop)
        self.supervisor.start("dispatch", self.dispatcher.dispatch_loop)
        self.supervisor.start("leases", self.dispatcher.lease_loop)

    async def aclose(self) -> None:
        for name in ("dispatch", "leases", "worker-health"):
            await self.supervisor.stop(name)
        await self.dispatcher.aclose()
        await self.workers.aclose()
