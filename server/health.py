"""Liveness and readiness endpoints."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse

from comfygraph.db.migrate import pending_migrations
from comfygraph.server.embedded_watch import LOOP as EMBEDDED_LOOP
from comfygraph.server.embedded_watch import failing_reason
from comfygraph.server.state import AppState


async def healthz(request: Request) -> JSONResponse:
    """200 unless something only a process restart can fix is failing: the embedded
    PostgreSQL that could not be started again (in every process of `--workers N`, not
    only the parent that restarts it: server/embedded_watch.py)."""
    state: AppState | None = getattr(request.app.state, "comfygraph", None)
    reason = failing_reason(state.settings) if state is not None else None
    if reason is not None:
        return JSONResponse({"status": "failing", EMBEDDED_LOOP: reason}, status_code=503)
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """200 once the database answers, every migration is applied and no background
    loop keeps failing; else 503 with the reason."""
    state: AppState = request.app.state.comfygraph
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(3):
            async with state.pool.acquire() as conn:
                pending = await pending_migrations(conn)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if not pending else f"pending: {', '.join(pending)}"
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        checks["database"] = f"error: {type(exc).__name__}"
        checks["migrations"] = "unknown"
    checks.update(state.ready)
    for loop, error in state.supervisor.failing().items():
        checks[f"loop:{loop}"] = f"failing: {error}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)
