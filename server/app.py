"""The Starlette app factory. Nothing is built at import time; the lifespan owns
the pool, the ComfyUI runtime (workers, dispatcher, runners) and the broadcast."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from comfygraph.bus import EventBus
from comfygraph.comfy.templates import load_templates
from comfygraph.db.migrate import apply_migrations
from comfygraph.db.pool import create_pool
from comfygraph.server import gc_tuning
from comfygraph.server.access_log import AccessLog
from comfygraph.server.body_limit import BodyLimit
from comfygraph.server.database import resolve_dsn
from comfygraph.server.embedded_watch import watch_embedded
from comfygraph.server.files import files_endpoint
from comfygraph.server.graphiql import ASSETS_PATH
from comfygraph.server.graphql import graphql_app
from comfygraph.server.health import healthz, readyz
from comfygraph.server.metrics import Metrics
from comfygraph.server.metrics_graphql import GraphQLTiming
from comfygraph.server.realtime.sse import SSE_PATH, SseEndpoint
from comfygraph.server.realtime.wire import CaptureSend
from comfygraph.server.request_id import RequestId
from comfygraph.server.settings import Settings
from comfygraph.server.state import AppState
from comfygraph.server.tracing import asgi_middleware, graphql_extensions, tracer_provider
from comfygraph.server.webhooks import webhook_sender
from comfygraph.storage import S3Options, open_storage
from comfygraph.studio import workflows
from comfygraph.studio.clean_outputs import output_store
from comfygraph.studio.files import FileSigner
from comfygraph.studio.publish import bus_publisher
from comfygraph.studio.retention import Retention
from comfygraph.studio.runtime import ComfyRuntime
from comfygraph.studio.services import Services
from comfygraph.studio.sessions.sweep import settle_loop
from comfygraph.studio.supervisor import Supervisor

logger = logging.getLogger(__name__)


def supervisor_from(settings: Settings) -> Supervisor:
    return Supervisor(
        backoff_initial=settings.loop_backoff_initial,
        backoff_max=settings.loop_backoff_max,
        failing_after=settings.loop_failing_after,
        healthy_after=settings.loop_healthy_after,
    )


def graphiql_assets(settings: Settings) -> list[Mount]:
    folder = settings.graphiql_assets_dir
    return (
        []
        if folder is None
        else [Mount(ASSETS_PATH, app=StaticFiles(directory=folder, follow_symlink=True))]
    )


def _s3_options(settings: Settings) -> S3Options:
    return S3Options(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.aws_region,
        access_key_id=settings.aws_access_key_id,
        secret_access_key=settings.aws_secret_access_key,
        session_token=settings.aws_session_token,
    )


def create_app(settings: Settings, *, dsn: str | None = None) -> Starlette:
    """Build the ASGI app. `dsn` overrides settings (the CLI resolves it once, up front)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:  # closes in reverse order
            if tracing is not None:  # last out: flushes the last spans
                stack.push_async_callback(asyncio.to_thread, tracing.shutdown)
            target = dsn if dsn is not None else await asyncio.to_thread(resolve_dsn, settings)
            pool = await create_pool(
                target,
                min_size=settings.db_pool_min,
                max_size=max(settings.db_pool_max, settings.db_pool_min),
                command_timeout=settings.db_command_timeout,
                connect_timeout=settings.db_connect_timeout,
                full_reset=settings.db_pool_full_reset,
            )
            stack.push_async_callback(pool.close)
            # Websocket bookkeeping flushes its connection rows before the pool closes.
            stack.push_async_callback(graphql.realtime.aclose)
            async with pool.acquire() as conn:
                applied = await apply_migrations(conn)
            if applied:
                logger.info("applied migrations: %s", ", ".join(applied))
            bus = EventBus.from_url(
                settings.effective_broadcast_url(),
                queue_size=settings.bus_queue_size,
                publish_timeout=settings.bus_publish_timeout,
            )
            await bus.connect()
            stack.push_async_callback(bus.disconnect)
            supervisor = supervisor_from(settings)
            stack.push_async_callback(supervisor.aclose)
            if settings.embedded:
                watch_embedded(supervisor, settings)
            publish = bus_publisher(
                bus,
                retry_seconds=settings.bus_publish_retry_seconds,
                backlog=settings.bus_publish_backlog,
            )
            stack.push_async_callback(publish.aclose)  # before the bus disconnects
            comfy = ComfyRuntime.build(
                pool=pool,
                workers=[(w.url, w.price_per_hour) for w in settings.comfy_workers],
                templates=templates,
                store=output_store(storage, keep_metadata=settings.keep_output_metadata),
                publish=publish,
                lease_s=settings.lease_seconds,
                job_timeout=settings.job_timeout_seconds,
                health_interval=settings.worker_health_interval,
                poll_interval=settings.dispatch_poll_interval,
                unavailable_after=settings.worker_unavailable_after,
                capacity=settings.worker_capacity,
                request_timeout=settings.worker_request_timeout,
                max_attempts=settings.job_max_attempts,
                stall_seconds=settings.stall_seconds,
                supervisor=supervisor,
                affinity_window=settings.scheduler_affinity_window,
                capabilities_refresh=settings.worker_capabilities_refresh,
            )
            files = FileSigner(
                storage,
                settings.effective_jwt_secret(),
                ttl_seconds=settings.file_url_ttl_seconds,
                public_ttl_seconds=settings.public_file_url_ttl_seconds,
            )
            webhooks = webhook_sender(settings, pool, comfy.runner)
            webhooks.signer = FileSigner(  # a receiver may fetch a file a day later
                storage,
                settings.effective_jwt_secret(),
                ttl_seconds=max(settings.file_url_ttl_seconds, 86400),
                public_ttl_seconds=max(settings.public_file_url_ttl_seconds, 86400),
            )
            supervisor.start("webhooks", webhooks.loop)
            services = Services(pool, templates, storage, comfy, bus, publish, files, webhooks)
            services.sessions().register(comfy.runner)  # sessions follow their jobs here
            await workflows.reload(pool, templates)  # published versions, before serving
            supervisor.start("workflows", lambda: workflows.follow(pool, templates, bus))
            supervisor.start(
                "session-settle",
                lambda: settle_loop(services.sessions(), settings.session_settle_interval),
            )
            metrics.jobs.attach(comfy.dispatcher, comfy.runner)
            retention = Retention(
                pool,
                storage,
                settings.retention_days,
                settings.retention_sweep_interval,
                services.events,
            )
            supervisor.start("retention", retention.loop)
            await comfy.start()
            stack.push_async_callback(comfy.aclose)
            app.state.comfygraph = AppState(settings, target, services, supervisor)
            gc_tuning.apply(settings.gc_thresholds, settings.gc_freeze_at_start)
            yield

    templates = load_templates(settings.workflows_dir)
    for problem in templates.problems:
        logger.warning("workflow template skipped: %s", problem)
    base_url = settings.public_base_url or "http://127.0.0.1:8000"
    storage = open_storage(settings.effective_storage_url(), base_url, _s3_options(settings))
    tracing = tracer_provider(settings)
    graphql = graphql_app(settings, graphql_extensions(tracing))
    metrics = Metrics()
    metrics.fleet.realtime = graphql.realtime.stats
    app = Starlette(
        routes=[
            Route("/files/{path:path}", files_endpoint, methods=["GET", "HEAD"], name="files"),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route(SSE_PATH, SseEndpoint(graphql), methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics.endpoint),
            Route("/", lambda _: RedirectResponse("/graphql", status_code=307)),
            *graphiql_assets(settings),
        ],
        lifespan=lifespan,
        # An upload plus room for the rest of a multipart request.
        middleware=[
            Middleware(CaptureSend),  # outermost: websocket deliveries write frames directly
            *asgi_middleware(tracing),
            Middleware(RequestId),
            *([Middleware(AccessLog)] if settings.access_log else []),  # inside: the id is bound
            Middleware(metrics.middleware),
            Middleware(
                BodyLimit,
                max_bytes=settings.max_upload_bytes + 1024 * 1024,
                other_max_bytes=settings.max_json_body_bytes,
            ),
        ],
    )
    app.state.graphql_timing = GraphQLTiming(metrics.registry)
    return app
