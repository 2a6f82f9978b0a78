"""OpenTelemetry traces, on when OTEL_EXPORTER_OTLP_ENDPOINT is set (the `otel` extra).

One TracerProvider per app (not the process-global one, so two apps in one process,
as in tests, never mix their spans), exporting over OTLP/HTTP in batches. The ASGI
instrumentation opens a span per HTTP request or websocket; Strawberry's extension
adds the GraphQL operation, parse, validation and resolver spans beneath it. The
exporter's other OTEL_* variables (headers, timeout, OTEL_SERVICE_NAME) apply as usual.
"""

from __future__ import annotations

import os
from functools import partial
from typing import TYPE_CHECKING, Any

from comfygraph.server.settings import Settings, SettingsError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from starlette.middleware import Middleware


def tracer_provider(settings: Settings) -> TracerProvider | None:
    endpoint = settings.otel_exporter_otlp_endpoint
    if not endpoint:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise SettingsError(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed:"
            " pip install 'comfygraph[otel]'"
        ) from None
    # "comfygraph" unless OTEL_SERVICE_NAME says otherwise (create() would say "unknown").
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "comfygraph")})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def graphql_extensions(provider: TracerProvider | None) -> list[Any]:
    if provider is None:
        return []
    from strawberry.extensions.tracing import OpenTelemetryExtension

    return [partial(OpenTelemetryExtension, tracer_provider=provider)]


def asgi_middleware(provider: TracerProvider | None) -> list[Middleware]:
    if provider is None:
        return []
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from starlette.middleware import Middleware

    # A span per websocket message would be one per progress event: the connection's
    # own span is enough.
    return [
        Middleware(
            OpenTelemetryMiddleware, tracer_provider=provider, exclude_spans=["receive", "send"]
        )
    ]
