"""Background loops run under one supervisor: a loop that raises comes back.

The faults are real: a worker on a real socket that answers /system_stats with
garbage devices (the health check must report it unhealthy, not trip over it, and
see it mend), and a database that lost a table the dispatch loop reads (it raises,
is restarted with backoff, /readyz names it, and it recovers once the table is back).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings, WorkerSpec
from tests.servers import serve_in_thread


class FlakyWorker:
    """Speaks just enough of ComfyUI for a health check; `garbage` breaks its devices."""

    def __init__(self) -> None:
        self.garbage = True
        self.app = Starlette(
            routes=[
                Route("/system_stats", self.stats),
                Route("/prompt", self.prompt),
                Route("/object_info", self.object_info),
            ]
        )

    async def stats(self, request: Request) -> JSONResponse:
        if self.garbage:
            return JSONResponse({"system": {}, "devices": ["not-a-device"]})
        return JSONResponse(
            {"system": {"comfyui_version": "0.8.0"}, "devices": [{"name": "mended"}]}
        )

    async def prompt(self, request: Request) -> JSONResponse:
        return JSONResponse({"exec_info": {"queue_remaining": 0}})

    async def object_info(self, request: Request) -> JSONResponse:
        return JSONResponse({"SaveImage": {"input": {"required": {}}}})


@pytest.fixture
def worker() -> Iterator[tuple[FlakyWorker, str]]:
    flaky = FlakyWorker()
    with serve_in_thread(flaky.app) as url:
        yield flaky, url


def wait_for(check, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.05)  # polling an HTTP endpoint, not waiting for time to pass


def sql(dsn: str, statement: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def restarts(base: str, loop: str = "dispatch") -> float:
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith(f'comfygraph_loop_restarts_total{{loop="{loop}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_loop_that_raises_is_restarted_reported_and_recovers(
    dsn: str, tmp_path: Path, worker: tuple[FlakyWorker, str]
) -> None:
    flaky, worker_url = worker
    settings = Settings(
        database_url=dsn,
        data_dir=tmp_path,
        comfy_workers=(WorkerSpec(worker_url),),
        worker_health_interval=0.05,
        loop_backoff_initial=0.05,
        loop_backoff_max=0.2,
        loop_failing_after=3,
        loop_healthy_after=1.0,
    )
    with serve_in_thread(create_app(settings, dsn=dsn)) as base:
        query = {"query": "{ workers { url healthy device } }"}

        def seen() -> dict:  # type: ignore[type-arg]
            return httpx.post(f"{base}/graphql", json=query).json()["data"]["workers"][0]

        # Garbage devices: unhealthy, and the health loop does not trip over it.
        assert seen()["healthy"] is False
        flaky.garbage = False
        wait_for(lambda: seen()["device"] == "mended" and seen()["healthy"])
        assert restarts(base, "worker-health") == 0

        # The dispatch loop keeps failing: counted, and /readyz says which loop and why.
        sql(dsn, "ALTER TABLE worker_drains RENAME TO worker_drains_gone")
        try:
            wait_for(lambda: restarts(base) >= 3)
            ready = wait_for(lambda: (r := httpx.get(f"{base}/readyz")).status_code == 503 and r)
            assert "worker_drains" in ready.json()["checks"]["loop:dispatch"]
        finally:
            sql(dsn, "ALTER TABLE worker_drains_gone RENAME TO worker_drains")
        wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200)
        assert restarts(base) >= 3
