"""The Starlette app factory. Nothing is built at import time; the lifespan owns
the pool, the ComfyUI runtime (workers, dispatcher, trackers) and the broadcast."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from comfy.runtime import ComfyRuntime
from comfy.sessions import SessionPipeline
from comfy.templates import load_templates
from db.migrate import apply_migrations
from db.pool import create_pool
from server.body_limit import BodyLimit
from server.database import resolve_dsn
from server.events import EventBus
from server.graphql import graphql_app
from server.health import healthz, readyz
from server.metrics import Metrics
from server.publish import bus_publisher
from server.settings import Settings
from server.state import AppState
from server.storage import open_storage

logger = logging.getLogger(__name__)


def create_app(settings: Settings, *, dsn: str | None = None) -> Starlette:
    """Build the ASGI app. `dsn` overrides settings (the CLI resolves it once, up front)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:  # closes in reverse order
            target = dsn if dsn is not None else await asyncio.to_thread(resolve_dsn, settings)
            pool = await create_pool(
                target,
                min_size=settings.db_pool_min,
                max_size=max(settings.db_pool_max, settings.db_pool_min),
                command_timeout=settings.db_command_timeout,
                connect_timeout=settings.db_connect_timeout,
            )
            stack.push_async_callback(pool.close)
            # Websocket bookkeeping flushes its connection rows before the pool closes.
            stack.push_async_callback(graphql.realtime.aclose)
            async with pool.acquire() as conn:
                applied = await apply_migrations(conn)
            if applied:
                logger.info("applied migrations: %s", ", ".join(applied))
            bus = EventBus.from_url(settings.effective_broadcast_url())
            await bus.connect()
            stack.push_async_callback(bus.disconnect)
            state = AppState(
                settings=settings,
                dsn=target,
                pool=pool,
                templates=templates,
                storage=storage,
                bus=bus,
                publish=bus_publisher(bus),
            )
            state.comfy = ComfyRuntime.build(
                pool=pool,
                workers=[(w.url, w.price_per_hour) for w in settings.comfy_workers],
                templates=templates,
                store=storage,
                publish=state.publish,
                lease_s=settings.lease_seconds,
                job_timeout=settings.job_timeout_seconds,
            )
            SessionPipeline(
                pool=pool,
                templates=templates,
                store=storage,
                publish=state.publish,
                workers=state.comfy.workers,
                wake=state.comfy.dispatcher.wake,
            ).register(state.comfy.tracker)  # sessions follow their jobs on this replica
            await state.comfy.start()
            stack.push_async_callback(state.comfy.aclose)
            app.state.comfygraph = state
            yield

    templates = load_templates(settings.workflows_dir)
    for problem in templates.problems:
        logger.warning("workflow template skipped: %s", problem)
    base_url = settings.public_base_url or "http://127.0.0.1:8000"
    storage = open_storage(settings.effective_storage_url(), base_url)
    graphql = graphql_app(settings)
    metrics = Metrics()
    return Starlette(
        routes=[
            Mount("/files", app=StaticFiles(directory=storage.root), name="files"),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics.endpoint),
        ],
        lifespan=lifespan,
        # An upload plus room for the rest of a multipart request.
        middleware=[
            Middleware(metrics.middleware),
            Middleware(BodyLimit, max_bytes=settings.max_upload_bytes + 1024 * 1024),
        ],
    )
