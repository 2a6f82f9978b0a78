"""Which pending job a worker with room takes: capabilities, fair share, affinity, drains.

Before each dispatch pass the scheduler classifies new PENDING jobs (what their bound
graph needs, their fair-share place: db/scheduling.py), reads which workers an admin
drains (shared by every replica), and stores on each waiting job why no healthy worker
can run it (`blocked_reason`). A worker then claims the best job it can run; with
affinity it prefers, within the first `affinity_window` of them at the top priority,
one with the model set of its last job (no reload). It never stays idle while a job it
can run waits: when none matches, it takes the first.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg

from comfygraph.comfy.capabilities import Requirements, blocked_reason, requirements
from comfygraph.comfy.templates import TemplateSet, bind
from comfygraph.comfy.workers import Worker, WorkerPool
from comfygraph.db.kinds import OutputType
from comfygraph.db.scheduling import (
    Classified,
    claim_for_worker,
    classify_pending,
    draining_urls,
    pending_needs,
    set_blocked,
)

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        workers: WorkerPool,
        templates: TemplateSet,
        affinity_window: int = 8,
        refresh_interval: float = 1.0,
        fair_share: bool = True,
    ) -> None:
        self.fair_share = fair_share
        self.pool, self.workers, self.templates = pool, workers, templates
        self.affinity_window = affinity_window
        self.refresh_interval = refresh_interval
        self._fleet: tuple[Any, ...] = ()
        self._refreshed_at = -float("inf")

    def needs(self, workflow_name: str, parameters: Any) -> Requirements:
        """What the job's bound graph names (file inputs bound to placeholders)."""
        template = self.templates.get(workflow_name)
        if template is None:
            return Requirements(frozenset(), frozenset())  # the runner fails it clearly
        values = parameters if isinstance(parameters, dict) else {}
        files = {
            p.name: ["input.png"] if p.is_list else "input.png"
            for p in template.parameters
            if p.is_file and p.name in values
        }
        try:
            return requirements(bind(template, values, files))
        except Exception:  # a row the template no longer fits: its graph as written
            return requirements(template.graph)

    def _classify(self, workflow_name: str, parameters: Any) -> Classified:
        needs = self.needs(workflow_name, parameters)
        return Classified(sorted(needs.nodes), sorted(needs.models), needs.model_key)

    async def prepare(self) -> None:
        async with self.pool.acquire() as conn:
            classified = await classify_pending(conn, self._classify, fair=self.fair_share)
            drained = await draining_urls(conn)
        for worker in self.workers.workers.values():
            if worker.draining and worker.url not in drained:
                self.workers.changed.set()
            worker.draining = worker.url in drained
        fleet = tuple(
            (w.url, w.capabilities)
            for w in self.workers.workers.values()
            if w.healthy and not w.draining
        )
        due = time.monotonic() - self._refreshed_at >= self.refresh_interval
        if classified or fleet != self._fleet or due:
            self._fleet = fleet
            self._refreshed_at = time.monotonic()
            await self._refresh_blocked([caps for _url, caps in fleet])

    async def _refresh_blocked(self, fleet: list[Any]) -> None:
        async with self.pool.acquire() as conn:
            needs = await pending_needs(conn)
            reasons = [
                (
                    nodes,
                    models,
                    blocked_reason(Requirements(frozenset(nodes), frozenset(models)), fleet),
                )
                for nodes, models in needs
            ]
            await set_blocked(conn, reasons)

    async def claim(
        self, worker: Worker, *, replica: str, lease_s: float
    ) -> tuple[OutputType, asyncpg.Record] | None:
        caps = worker.capabilities
        if caps is None:
            return None
        async with self.pool.acquire() as conn:
            claimed = await claim_for_worker(
                conn,
                replica=replica,
                worker_url=worker.url,
                lease_s=lease_s,
                nodes=caps.nodes,
                models=caps.models,
                model_key=worker.last_model_key,
                window=self.affinity_window,
            )
        if claimed is not None:
            worker.last_model_key = claimed[1]["model_key"]
        return claimed
