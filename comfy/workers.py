"""The pool of ComfyUI workers: health, load, and which one gets the next job.

Health comes from GET /system_stats (and the websocket staying up), load from
GET /queue plus the jobs this replica has in flight there, what it can run from
GET /object_info (comfy/capabilities.py; read when the worker (re)appears and every
`capabilities_refresh` seconds). A worker is healthy only once all of that was read and
made sense. Which job a worker with room takes is the scheduler's (studio/scheduling.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from comfygraph.comfy.capabilities import Capabilities, parse_object_info
from comfygraph.comfy.client import ComfyClient
from comfygraph.comfy.errors import ComfyError, ProtocolError

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
    capabilities: Capabilities | None = None
    capabilities_read_at: float = -math.inf  # time.monotonic()
    last_model_key: str | None = None  # models of the last job started here (affinity)

    @property
    def load(self) -> int:
        return max(self.queue_remaining or 0, len(self.running))

    @property
    def has_room(self) -> bool:
        return (
            self.healthy
            and not self.draining
            and self.capabilities is not None
            and len(self.running) < self.capacity
        )


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
        capabilities_refresh: float = 60.0,
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
        self._refresh = capabilities_refresh
        self.changed = asyncio.Event()  # set when a worker gains room or health

    async def aclose(self) -> None:
        await asyncio.gather(*(w.client.aclose() for w in self.workers.values()))

    def get(self, url: str | None) -> Worker | None:
        return self.workers.get(url or "")

    def pick(self, exclude: Collection[str] = ()) -> Worker | None:
        """The healthy worker with the least work that has room, or None."""
        candidates = [w for w in self.workers.values() if w.has_room and w.url not in exclude]
        return min(candidates, key=lambda w: (w.load, len(w.running)), default=None)

    def release(self, worker: Worker, job_id: str) -> None:
        worker.running.discard(job_id)
        self.changed.set()

    def stale(self, worker: Worker) -> None:
        """Read its /object_info again at the next check (it may have restarted)."""
        worker.capabilities_read_at = -math.inf

    def mark_unhealthy(self, worker: Worker, reason: str) -> None:
        if worker.healthy:
            log.warning("worker %s unhealthy: %s", worker.url, reason)
        worker.healthy = False

    async def check(self, worker: Worker) -> None:
        """Healthy only when /system_stats, its devices, /queue and (when due)
        /object_info all answered and made sense; anything else marks it unhealthy."""
        was_healthy = worker.healthy
        try:
            stats = await worker.client.system_stats()
            device = _first_device(stats.get("devices"))
            remaining = await worker.client.queue_remaining()
            capabilities = worker.capabilities
            due = time.monotonic() - worker.capabilities_read_at >= self._refresh
            if capabilities is None or not was_healthy or due:
                capabilities = parse_object_info(await worker.client.object_info())
        except ComfyError as exc:
            worker.failures += 1
            self.mark_unhealthy(worker, str(exc))
            return
        if capabilities is not worker.capabilities:
            if capabilities != worker.capabilities:
                # A restarted or reconfigured worker: its loaded models are gone too.
                worker.last_model_key = None
                self.changed.set()
            worker.capabilities = capabilities
            worker.capabilities_read_at = time.monotonic()
        worker.device, worker.vram_total, worker.vram_free = device
        worker.healthy, worker.failures = True, 0
        worker.queue_remaining = remaining
        worker.last_seen_at = datetime.now(UTC)
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


def _number(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ProtocolError(f"GET /system_stats: {what} is not a number of bytes: {value!r}")
    return float(value)


def _first_device(devices: object) -> tuple[str | None, float | None, float | None]:
    """(name, vram_total, vram_free) of the first device; ProtocolError when malformed."""
    if devices is None or devices == []:
        return None, None, None
    if not isinstance(devices, list) or not isinstance(devices[0], dict):
        raise ProtocolError(f"GET /system_stats: devices is not a list of objects: {devices!r}")
    first = devices[0]
    name = first.get("name") or first.get("type")
    if name is not None and not isinstance(name, str):
        raise ProtocolError(f"GET /system_stats: device name is not a string: {name!r}")
    return (
        name or None,
        _number(first.get("vram_total"), "vram_total"),
        _number(first.get("vram_free"), "vram_free"),
    )
