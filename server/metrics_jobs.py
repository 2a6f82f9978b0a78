"""Dispatch latency and job duration histograms per workflow, into /metrics.

Observed through two hooks: the dispatcher's claim listeners (created -> claimed, read
from the claimed row's own timestamps, so every replica measures the same thing) and
the runner's terminal listeners (the row's processing_time_seconds). Workflow names
come from the loaded templates, so the label set is bounded."""

from __future__ import annotations

import asyncpg
from prometheus_client import CollectorRegistry, Histogram

from comfygraph.db.kinds import OutputType
from comfygraph.studio.dispatcher import Dispatcher
from comfygraph.studio.runner import JobRunner

# Queue waits go from milliseconds (idle fleet) to many minutes (a backlog).
DISPATCH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 3600)
TERMINAL = ("completed", "failed", "cancelled")


class JobTiming:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.dispatch = Histogram(
            "comfygraph_dispatch_seconds",
            "Time from a job's creation to its claim by a worker, by workflow",
            ["workflow"],
            buckets=DISPATCH_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "comfygraph_job_seconds",
            "Time from claim to terminal state, by workflow and final status",
            ["workflow", "status"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )

    def attach(self, dispatcher: Dispatcher, runner: JobRunner) -> None:
        dispatcher.claim_listeners.append(self.claimed)
        runner.listeners.append(self.ended)

    def claimed(self, kind: OutputType, row: asyncpg.Record) -> None:
        created, started = row["created_at"], row["started_at"]
        if created is not None and started is not None:
            wait = max(0.0, (started - created).total_seconds())
            self.dispatch.labels(row["workflow_name"] or "").observe(wait)

    async def ended(self, kind: OutputType, row: asyncpg.Record) -> None:
        seconds = row["processing_time_seconds"]
        if row["status"] in TERMINAL and seconds is not None:
            self.duration.labels(row["workflow_name"] or "", row["status"]).observe(seconds)
