"""`comfygraph serve`: resolve the database once, check it answers, then run uvicorn."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from typing import Any

import uvicorn

from comfygraph.db.embedded import EmbeddedPostgresError
from comfygraph.server import gc_tuning
from comfygraph.server.database import check_reachable, resolve_dsn
from comfygraph.server.embedded_watch import RestartWatch
from comfygraph.server.factory import SETTINGS_ENV
from comfygraph.server.ports import check_port_free
from comfygraph.server.settings import Settings

log = logging.getLogger(__name__)


def exit_on_sigterm() -> None:
    """uvicorn re-raises the SIGTERM it caught once it has shut down; with the default
    handler the process then dies without its exit hooks, so the embedded PostgreSQL
    it started was never stopped. Exiting normally runs them (the wheel's stop)."""

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, leave)


class EmbeddedWatcher:
    """The embedded postmaster checked from a thread of the parent of `--workers N`
    (whose loop is uvicorn's process manager, not an app's): started again when it died
    (SIGKILL, OOM), as a single process's embedded-postgres loop does; when it cannot,
    the workers' /healthz fails (server/embedded_watch.py)."""

    def __init__(self, settings: Settings) -> None:
        self._watch = RestartWatch(settings.data_dir, settings.loop_failing_after)
        self._interval = settings.embedded_check_interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="embedded-postgres", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self._watch.check()
            except EmbeddedPostgresError as exc:
                log.error("%s; retrying in %.0f s", exc, self._interval)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)  # a restart under way finishes first


def with_gc_defaults(settings: Settings) -> Settings:
    """The measured GC policy (server/gc_tuning.py) unless the environment chose one."""
    chosen = settings.model_fields_set
    update: dict[str, Any] = {}
    if "gc_thresholds" not in chosen:
        update["gc_thresholds"] = gc_tuning.SERVE_THRESHOLDS
    if "gc_freeze_at_start" not in chosen:
        update["gc_freeze_at_start"] = gc_tuning.SERVE_FREEZE
    return settings.model_copy(update=update) if update else settings


def for_worker_processes(settings: Settings, dsn: str) -> Settings:
    """The settings each of N processes runs with: the resolved database, and a
    broadcast that crosses processes (memory:// would not)."""
    broadcast = settings.effective_broadcast_url()
    if broadcast.startswith("memory:"):
        broadcast = dsn
    return settings.model_copy(update={
        "database_url": dsn,
        "broadcast_url": broadcast,
        "embedded_watched_by_parent": settings.embedded,
    })  # fmt: skip


def serve_forever(
    settings: Settings,
    *,
    host: str,
    port: int,
    demo: bool = False,
    workers: int = 1,
    access_log: bool = False,
) -> None:
    # Before anything starts (the banner, a token, the database, the dispatcher).
    check_port_free(host, port)
    exit_on_sigterm()
    dsn = resolve_dsn(settings)
    # Fail fast, in one line, before uvicorn prints anything.
    asyncio.run(check_reachable(dsn, connect_timeout=settings.db_connect_timeout))
    if demo:
        from comfygraph.server.demo import (
            DEMO_WORKER_PRICE,
            banner,
            ensure_demo_user,
            start_demo_worker,
        )
        from comfygraph.server.settings import WorkerSpec

        user = asyncio.run(ensure_demo_user(settings, dsn))
        worker = WorkerSpec(start_demo_worker(settings.data_dir), DEMO_WORKER_PRICE)
        settings = settings.model_copy(update={
            "comfy_workers": (*settings.comfy_workers, worker),
            "graphiql_token": settings.graphiql_token or user.token,
        })  # fmt: skip
        workers_text = ", ".join(w.url for w in settings.comfy_workers) or "none yet"
        assets = settings.graphiql_assets_dir
        print(banner(f"http://{host}:{port}", user, workers_text, assets), flush=True)
    settings = with_gc_defaults(settings)
    if access_log:  # our structured line (server/access_log.py), not uvicorn's text one
        settings = settings.model_copy(update={"access_log": True})
    if settings.public_base_url is None:
        settings = settings.model_copy(update={"public_base_url": f"http://{host}:{port}"})
    uv: dict[str, Any] = dict(
        host=host,
        port=port,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        ws_per_message_deflate=False,
        proxy_headers=True,
        log_level="info",
        # A line per request costs ~1% of the CPU of a feed request: on when asked for,
        # and then written by the app as a structured line (ACCESS_LOG / --access-log).
        access_log=False,
        log_config=None,  # uvicorn's loggers propagate to the structured root handler
    )
    if workers > 1:
        # Every worker process gets these very settings (the demo worker, the public base
        # URL, the database this process resolved), not a rebuild from the environment.
        os.environ[SETTINGS_ENV] = for_worker_processes(settings, dsn).model_dump_json()
        target = "comfygraph.server.factory:app_from_env"
        # The workers see a plain DSN; the embedded server is this process's (it started
        # it, and its exit stops it), so this process is the one that restarts it.
        watcher = EmbeddedWatcher(settings) if settings.embedded else None
        try:
            uvicorn.run(target, factory=True, workers=workers, **uv)  # type: ignore[arg-type]
        finally:
            if watcher is not None:
                watcher.stop()  # before the exit hook stops the postmaster for good
        return
    from comfygraph.server.app import create_app

    uvicorn.run(create_app(settings, dsn=dsn), **uv)  # type: ignore[arg-type]
