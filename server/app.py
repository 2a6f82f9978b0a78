"""The Starlette app factory. Nothing is built at import time; the lifespan owns
the pool (and, as they arrive, the broadcast, workers and background tasks)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL

from db.migrate import apply_migrations
from db.pool import create_pool
from schema import build_schema
from server.database import resolve_dsn
from server.health import healthz, readyz
from server.settings import Settings
from server.state import AppState

logger = logging.getLogger(__name__)


def create_app(settings: Settings, *, dsn: str | None = None) -> Starlette:
    """Build the ASGI app. `dsn` overrides settings (the CLI resolves it once, up front)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        target = dsn if dsn is not None else await asyncio.to_thread(resolve_dsn, settings)
        pool = await create_pool(
            target,
            min_size=settings.db_pool_min,
            max_size=max(settings.db_pool_max, settings.db_pool_min),
            command_timeout=settings.db_command_timeout,
            connect_timeout=settings.db_connect_timeout,
        )
        try:
            async with pool.acquire() as conn:
                applied = await apply_migrations(conn)
            if applied:
                logger.info("applied migrations: %s", ", ".join(applied))
            app.state.comfygraph = AppState(settings=settings, dsn=target, pool=pool)
            yield
        finally:
            await pool.close()

    graphql = GraphQL(build_schema())
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )
