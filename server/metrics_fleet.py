"""More of /metrics (issue 12): what an autoscaler and an on-call engineer need across
hosts. Jobs by workflow and status, the pending queue's depth and oldest age, open
websockets and subscriptions, and the broadcast publisher's failures and backlog.
Read at scrape time like the rest (server/metrics.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from comfygraph.db.stats import pending_queue, workflow_status_counts
from comfygraph.studio.publish import RetryingPublisher


@dataclass(eq=False)  # the registry keeps collectors in a set
class FleetCollector(Collector):
    realtime: Callable[[], Any] | None = None  # () -> RealtimeStats
    publisher: RetryingPublisher | None = None
    by_workflow: dict[tuple[str, str], int] = field(default_factory=dict)
    queue: tuple[int, float] = (0, 0.0)

    async def refresh(self, conn: asyncpg.Connection) -> None:
        self.by_workflow = await workflow_status_counts(conn)
        self.queue = await pending_queue(conn)

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "comfygraph_workflow_jobs", "Jobs by workflow and status", labels=["workflow", "status"]
        )
        for (workflow, status), n in sorted(self.by_workflow.items()):
            jobs.add_metric([workflow, status], n)
        yield jobs
        yield GaugeMetricFamily(
            "comfygraph_queue_depth", "Pending jobs (all replicas)", value=self.queue[0]
        )
        yield GaugeMetricFamily(
            "comfygraph_queue_oldest_seconds", "Age of the oldest pending job", value=self.queue[1]
        )
        if self.realtime is not None:
            stats = self.realtime()
            yield GaugeMetricFamily(
                "comfygraph_websockets", "Open websockets on this replica", value=stats.connections
            )
            yield GaugeMetricFamily(
                "comfygraph_subscriptions",
                "Active subscriptions on this replica",
                value=stats.subscriptions,
            )
        if self.publisher is not None:
            p = self.publisher.stats
            for name, value, help_ in (
                ("failures", p.failures, "Publishes the broker refused (each retry counts)"),
                ("retried", p.retried, "Events published late, after a broker outage"),
                ("dropped", p.dropped, "Events given up (their channel got a resync)"),
            ):
                yield CounterMetricFamily(f"comfygraph_publish_{name}", help_, value=value)
            yield GaugeMetricFamily(
                "comfygraph_publish_waiting", "Events waiting for the broker", value=p.waiting
            )
