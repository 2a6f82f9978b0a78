"""GET /metrics in Prometheus text format.

Values are read from the app's state when scraped (a custom collector), so nothing
counts on a hot path except the request histogram. Each app has its own registry:
two apps in one process (tests) never share counters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from comfygraph.db.scheduling import blocked_counts
from comfygraph.db.stats import job_status_counts
from comfygraph.server.metrics_fleet import FleetCollector
from comfygraph.server.metrics_jobs import JobTiming
from comfygraph.server.state import AppState
from comfygraph.studio.publish import RetryingPublisher


class StateCollector(Collector):
    """Workers, runners and the bus, read from AppState at scrape time."""

    def __init__(self) -> None:
        self.state: AppState | None = None
        self.job_counts: dict[tuple[str, str], int] = {}
        self.blocked: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "comfygraph_jobs", "Jobs by output type and status", labels=["output_type", "status"]
        )
        for (kind, status), n in sorted(self.job_counts.items()):
            jobs.add_metric([kind, status], n)
        yield jobs
        blocked = GaugeMetricFamily(
            "comfygraph_jobs_blocked",
            "PENDING jobs no healthy worker can run, by reason",
            labels=["reason"],
        )
        for reason, n in sorted(self.blocked.items()):
            blocked.add_metric([reason], n)
        yield blocked
        state = self.state
        if state is None:
            return
        healthy = GaugeMetricFamily(
            "comfygraph_worker_healthy", "1 when the worker answers", labels=["worker"]
        )
        running = GaugeMetricFamily(
            "comfygraph_worker_running_jobs",
            "Jobs this replica has on the worker",
            labels=["worker"],
        )
        for w in state.comfy.workers.workers.values():
            healthy.add_metric([w.url], 1 if w.healthy else 0)
            running.add_metric([w.url], len(w.running))
        yield healthy
        yield running
        yield GaugeMetricFamily(
            "comfygraph_tracked_jobs",
            "Jobs this replica follows",
            value=len(state.comfy.dispatcher.tracking),
        )
        restarts = CounterMetricFamily(
            "comfygraph_loop_restarts",
            "Restarts of a background loop after it raised",
            labels=["loop"],
        )
        for name, loop in sorted(state.supervisor.loops.items()):
            restarts.add_metric([name], loop.restarts)
        yield restarts
        stats = state.bus.stats()
        for name in (
            "subscribers",
            "channels",
            "published",
            "delivered",
            "coalesced",
            "overflows",
            "reconnects",
        ):
            yield GaugeMetricFamily(
                f"comfygraph_bus_{name}", f"Event bus: {name}", value=getattr(stats, name)
            )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.collector = StateCollector()
        self.registry.register(self.collector)
        self.fleet = FleetCollector()
        self.registry.register(self.fleet)
        self.requests = Histogram(
            "comfygraph_http_request_seconds",
            "HTTP request durations",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self.jobs = JobTiming(self.registry)

    async def endpoint(self, request: Request) -> Response:
        state: AppState = request.app.state.comfygraph
        self.collector.state = state
        async with state.pool.acquire() as conn:
            self.collector.job_counts = await job_status_counts(conn)
            self.collector.blocked = await blocked_counts(conn)
            await self.fleet.refresh(conn)
        publish = state.services.publish
        self.fleet.publisher = publish if isinstance(publish, RetryingPublisher) else None
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        known = ("/graphql", "/healthz", "/readyz", "/metrics")

        async def timed(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start, status = time.perf_counter(), [500]

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await app(scope, receive, capture)
            finally:
                # Fixed label values only: a path per stored file would grow without bound.
                path = scope["path"] if scope["path"] in known else "other"
                self.requests.labels(scope["method"], path, str(status[0])).observe(
                    time.perf_counter() - start
                )

        return timed
