"""GraphQL request latency by operation name, into the app's /metrics registry.

Operation names come from clients: only well-formed ones, and at most MAX_NAMES distinct
ones per app, become label values (the rest count as "other"), so a client cannot
grow the registry without bound."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from strawberry.extensions import SchemaExtension

from comfygraph.server.access_log import note_operation

MAX_NAMES = 200
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class GraphQLTiming:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram(
            "comfygraph_graphql_seconds",
            "GraphQL operation durations by operation name and type",
            ["operation", "type"],
            registry=registry,
        )
        self._names: set[str] = set()

    def observe(self, name: str | None, kind: str, seconds: float) -> None:
        label = name if name and _NAME.match(name) else "anonymous" if not name else "other"
        if label not in self._names:
            if len(self._names) >= MAX_NAMES:
                label = "other"
            else:
                self._names.add(label)
        self.histogram.labels(label, kind).observe(seconds)


class OperationTimer(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        start = time.perf_counter()
        yield
        ec = self.execution_context
        note_operation(ec.operation_name)
        request: Any = getattr(ec.context, "request", None)
        app = getattr(request, "app", None) if request is not None else None
        timing = getattr(getattr(app, "state", None), "graphql_timing", None)
        if isinstance(timing, GraphQLTiming):
            try:
                kind = ec.operation_type.value
            except Exception:  # unparsable documents have no operation type
                kind = "unknown"
            timing.observe(ec.operation_name, kind, time.perf_counter() - start)
