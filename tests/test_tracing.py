"""OpenTelemetry traces when OTEL_EXPORTER_OTLP_ENDPOINT is set (issue 12): the app
exports over real OTLP/HTTP to an in-process collector, which sees the HTTP request's
span (ASGI instrumentation) and, in the same trace, the GraphQL operation's (Strawberry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk")  # the `otel` extra, part of the dev extras

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings
from comfygraph.server.tracing import tracer_provider
from tests.servers import serve_in_thread


def collector(spans: list[Any], services: set[str]) -> Starlette:
    async def traces(request: Request) -> Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.body())
        for resource in export.resource_spans:
            for attribute in resource.resource.attributes:
                if attribute.key == "service.name":
                    services.add(attribute.value.string_value)
            for scope in resource.scope_spans:
                spans.extend(scope.spans)
        return Response(b"", media_type="application/x-protobuf")

    return Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])


def test_graphql_and_http_spans_reach_the_collector(dsn: str, tmp_path: Path) -> None:
    spans: list[Any] = []
    services: set[str] = set()
    with serve_in_thread(collector(spans, services)) as otlp:
        settings = Settings(database_url=dsn, data_dir=tmp_path, otel_exporter_otlp_endpoint=otlp)
        with serve_in_thread(create_app(settings, dsn=dsn)) as url:
            r = httpx.post(f"{url}/graphql", json={"query": "query Probe { __typename }"})
            assert r.json() == {"data": {"__typename": "Query"}}
        # The app's shutdown flushed its batch to the collector.
        names = {span.name: span for span in spans}
        graphql = names.get("GraphQL Query: Probe")
        assert graphql is not None, sorted(names)
        http = [s for s in spans if s.name.startswith("POST") and s.trace_id == graphql.trace_id]
        assert http, sorted(names)  # the ASGI span of the same request, in the same trace
        assert services == {"comfygraph"}


def test_no_endpoint_no_tracing(tmp_path: Path) -> None:
    assert tracer_provider(Settings(data_dir=tmp_path)) is None
