"""Hand PENDING jobs to workers with room, keep their leases, adopt orphans.

The queue is PostgreSQL (db/queue.py): any number of replicas run a Dispatcher
against the same database. Each claimed job gets a JobRunner task owned here; its
lease is renewed while this replica lives. Jobs whose lease expired (their replica
died) are adopted: the runner follows them on their worker (by prompt_id) instead
of submitting them again, so nothing finished is lost and nothing runs twice.
The loops ride out a database outage: each round that meets one waits (with backoff)
and tries again, saying so once per outage rather than with a traceback per round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from comfygraph.comfy.workers import Worker, WorkerPool
from comfygraph.db.errors import IllegalTransition
from comfygraph.db.jobs import transition
from comfygraph.db.kinds import OutputType
from comfygraph.db.queue import adopt_expired, renew_leases
from comfygraph.db.unreachable import database_down
from comfygraph.domain.backoff import backoff
from comfygraph.studio.runner import JobRunner
from comfygraph.studio.scheduling import Scheduler

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        workers: WorkerPool,
        runner: JobRunner,
        replica: str,
        lease_s: float = 30.0,
        poll_interval: float = 1.0,
        affinity_window: int = 8,
    ) -> None:
        self.pool, self.workers, self.runner = pool, workers, runner
        self.scheduler = Scheduler(
            pool=pool,
            workers=workers,
            templates=runner.templates,
            affinity_window=affinity_window,
            refresh_interval=poll_interval,
        )
        self.replica, self.lease_s, self.poll_interval = replica, lease_s, poll_interval
        self.tracking: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        # Called with each claimed row (metrics observe dispatch latency here).
        self.claim_listeners: list[Callable[[OutputType, asyncpg.Record], None]] = []

    def wake(self) -> None:
        """A job was queued here: look for a worker now rather than at the next poll."""
        self._wake.set()

    async def aclose(self) -> None:
        """Stop dispatching and following. Jobs in flight keep their rows and leases:
        when the leases expire, a replica (this one restarted, or another) adopts them."""
        tasks = list(self.tracking.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tracking.clear()

    async def dispatch_once(self) -> int:
        """Claim jobs while a worker has room; returns how many were started."""
        if not self.workers.workers:
            return 0  # no worker configured: jobs wait PENDING, nothing to prepare for
        await self.scheduler.prepare()
        started = 0
        done: set[str] = set()  # workers with room but nothing pending they can run
        while (worker := self.workers.pick(exclude=done)) is not None:
            claimed = await self.scheduler.claim(worker, replica=self.replica, lease_s=self.lease_s)
            if claimed is None:
                done.add(worker.url)
                continue
            kind, row = claimed
            for listener in self.claim_listeners:
                listener(kind, row)
            await self.runner.events.status(kind.value, row)
            self._follow(kind, row, worker)
            started += 1
        return started

    def _follow(self, kind: OutputType, row: asyncpg.Record, worker: Worker) -> None:
        worker.running.add(str(row["id"]))
        task = asyncio.create_task(self.runner.run(kind, row, worker), name=f"job-{row['id']}")
        self.tracking[row["id"]] = task
        job_id: uuid.UUID = row["id"]
        task.add_done_callback(lambda done: self._done(job_id, done))

    def _done(self, job_id: uuid.UUID, task: asyncio.Task[None]) -> None:
        if self.tracking.get(job_id) is task:
            del self.tracking[job_id]
        self._wake.set()  # its worker has room again
        # Retrieved here, so no runner ends as "Task exception was never retrieved".
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log.error("job %s: its runner failed; left for lease recovery", job_id, exc_info=error)

    async def dispatch_loop(self) -> None:
        """Dispatch whenever woken, a worker changed, or every `poll_interval` seconds.
        Runs under the replica's supervisor, which restarts it after an error."""
        outage = _Outage("dispatching")
        while True:
            if not await outage.attempt(self.dispatch_once):
                continue
            waits = [
                asyncio.ensure_future(self._wake.wait()),
                asyncio.ensure_future(self.workers.changed.wait()),
            ]
            await asyncio.wait(
                waits, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waits:
                waiter.cancel()
            self._wake.clear()
            self.workers.changed.clear()

    async def lease_loop(self) -> None:
        """Renew this replica's leases and adopt orphans every third of a lease."""
        outage = _Outage("renewing leases", maximum=self.lease_s / 6)
        while True:
            if not outage.failures:
                await asyncio.sleep(self.lease_s / 3)
            await outage.attempt(self._renew_and_adopt)

    async def _renew_and_adopt(self) -> None:
        async with self.pool.acquire() as conn:
            await renew_leases(
                conn, replica=self.replica, job_ids=list(self.tracking), lease_s=self.lease_s
            )
        await self.adopt_orphans()

    async def adopt_orphans(self) -> int:
        """Take over PROCESSING jobs whose replica died, and follow each on its worker."""
        async with self.pool.acquire() as conn:
            adopted = await adopt_expired(conn, replica=self.replica, lease_s=self.lease_s)
        for kind, row in adopted:
            if row["id"] in self.tracking:
                continue
            worker = self.workers.get(row["comfy_url"])
            if worker is None:
                await self._orphan_without_worker(kind, row)
                continue
            log.info("adopting job %s on %s", row["id"], worker.url)
            self._follow(kind, row, worker)
        return len(adopted)

    async def _orphan_without_worker(self, kind: OutputType, row: asyncpg.Record) -> None:
        """Its worker is no longer configured: it cannot be asked, so fail or re-queue."""
        target = "pending" if row["attempts"] < self.runner.config.max_attempts else "failed"
        message = None if target == "pending" else f"worker {row['comfy_url']} is gone"
        with contextlib.suppress(IllegalTransition):
            async with self.pool.acquire() as conn:
                extra = {"error_message": message} if message else {}
                moved = await transition(conn, kind, row["id"], target, **extra)
            await self.runner.events.status(kind.value, moved)


class _Outage:
    """One round of a loop, and what happens when it meets a database outage: a wait
    that grows with each failed round, one warning when the outage starts and one line
    when it ends. Any other error is the supervisor's (it logs and restarts the loop)."""

    def __init__(self, what: str, *, initial: float = 0.2, maximum: float = 5.0) -> None:
        self.what, self.initial, self.maximum = what, initial, maximum
        self.failures = 0

    async def attempt(self, round_: Callable[[], Awaitable[object]]) -> bool:
        """Run one round; False (after the wait) when the database was out of reach."""
        try:
            await round_()
        except Exception as exc:
            if not database_down(exc):
                raise
            self.failures += 1
            if self.failures == 1:
                log.warning("%s: database unreachable (%s: %s); retrying", self.what,
                            type(exc).__name__, exc)  # fmt: skip
            await asyncio.sleep(backoff(self.failures, self.initial, self.maximum))
            return False
        if self.failures:
            log.warning("%s again: the database is back after %d failed rounds", self.what,
                        self.failures)  # fmt: skip
            self.failures = 0
        return True
