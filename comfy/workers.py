"""The pool of ComfyUI workers: health, load, and which one gets the next job.

Health comes from GET /system_stats (and the websocket staying up), load from
GET /queue plus the jobs this replica has in flight there. A job goes to the
healthy, non-draining worker with the least work that still has room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from comfygraph.comfy.client import ComfyClient
from comfygraph.comfy.errors import ComfyError

log = logging.getLogger(__name__)


@dataclass
class Worker:
    url: str
    client: ComfyClient
    price_per_hour: float | None = None
    capacity: int = 2  # prompts this replica keeps on the worker: one running, one queued
    healthy: bool = False
    draining: bool = False
    queue_remaining: int | None = None
    running: set[str] = field(default_factory=set)  # job ids this replica has there
    last_seen_at: datetime | None = None
    device: str | None = None
    vram_total: float | None = None
    vram_free: float | None = None
    failures: int = 0

    @property
    def load(self) -> int:
        return max(self.queue_remaining or 0, len(self.running))

    @property
    def has_room(self) -> bool:
        return self.healthy and not self.draining and len(self.running) < self.capacity


class WorkerPool:
    def __init__(
        self,
        workers: Iterable[tuple[str, float | None]],
        *,
        client_id: str,
        capacity: int = 2,
        health_interval: float = 5.0,
        request_timeout: float = 10.0,
        unavailable_after: float = 30.0,
        reconcile_interval: float = 5.0,
    ) -> None:
        self.workers: dict[str, Worker] = {}
        for url, price in workers:
            client = ComfyClient(
                url,
                client_id=client_id,
                timeout=request_timeout,
                connect_timeout=min(5.0, request_timeout),
                unavailable_after=unavailable_after,
                poll_interval=reconcile_interval,
            )
            self.workers[url] = Worker(url, client, price, capacity)
        self._interval = health_interval
        self.changed = asyncio.Event()  # set when a worker gains room or health

    async def aclose(self) -> None:
        await asyncio.gather(*(w.client.aclose() for w in self.workers.values()))

    def get(self, url: str | None) -> Worker | None:
        return self.workers.get(url or "")

    def pick(self) -> Worker | None:
        """The healthy worker with the least work that has room, or None."""
        candidates = [w for w in self.workers.values() if w.has_room]
        return min(candidates, key=lambda w: (w.load, len(w.running)), default=None)

    def release(self, worker: Worker, job_id: str) -> None:
        worker.running.discard(job_id)
        self.changed.set()

    def mark_unhealthy(self, worker: Worker, reason: str) -> None:
        if worker.healthy:
            log.warning("worker %s unhealthy: %s", worker.url, reason)
        worker.healthy = False

    async def check(self, worker: Worker) -> None:
        try:
            stats = await worker.client.system_stats()
            remaining = await worker.client.queue_remaining()
        except ComfyError as exc:
            worker.failures += 1
            self.mark_unhealthy(worker, str(exc))
            return
        was_healthy = worker.healthy
        worker.healthy, worker.failures = True, 0
        worker.queue_remaining = remaining
        worker.last_seen_at = datetime.now(UTC)
        devices = stats.get("devices") or []
        if devices:
            worker.device = str(devices[0].get("name") or devices[0].get("type") or "")
            worker.vram_total = devices[0].get("vram_total")
            worker.vram_free = devices[0].get("vram_free")
        if not was_healthy:
            log.info("worker %s healthy (%s)", worker.url, worker.device)
            self.changed.set()

    async def check_all(self) -> None:
        await asyncio.gather(*(self.check(w) for w in self.workers.values()))

    async def health_loop(self) -> None:
        """Check every worker now and then every `health_interval` seconds, forever.
        Its owner runs it (under the replica's supervisor) and cancels it."""
        while True:
            await self.check_all()
            await asyncio.sleep(self._interval)
