"""Dispatch throughput and added latency, against emulator workers at high speed.

    python bench/dispatch.py [--dsn DSN] [--jobs 2000] [--workers 4] [--latency-samples 200]

(1) Throughput: JOBS product-image jobs queued at once, run through WORKERS emulators
    by one replica's runtime (dispatcher + runners): jobs/s end to end; every job
    must end COMPLETED (none lost).
(2) Added latency, one job at a time on an idle system: from the job's row being
    committed to the worker receiving POST /prompt, against POSTing the same graph
    straight to the emulator (the floor). Target: added p50 <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile, summary
from comfygraph.comfy.templates import bind, load_templates, validate
from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.migrate import apply_migrations
from comfygraph.db.pool import create_pool
from comfygraph.db.users import create_user
from comfygraph.emulator import create_emulator_app
from comfygraph.storage import LocalStorage
from comfygraph.studio.runtime import ComfyRuntime
from tests.dbutil import create_database, drop_database
from tests.servers import free_port, serve_in_thread

RECEIVED: dict[str, float] = {}


def receipt_recorder(app: Any) -> Any:
    """ASGI wrapper noting when each POST /prompt arrives (same process, same clock)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/prompt" and scope["method"] == "POST":
            arrived = time.perf_counter()
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body = b"".join(chunks)
            RECEIVED[json.loads(body).get("prompt_id", "")] = arrived

            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            await app(scope, replay, send)
            return
        await app(scope, receive, send)

    return wrapped


async def wait_listening(urls: list[str]) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        for url in urls:
            for _ in range(200):
                try:
                    await http.get(f"{url}/system_stats")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)


class Run:
    """One replica's runtime over some workers, counting terminal events."""

    def __init__(self, pool: Any, templates: Any, store: LocalStorage, user_id: Any) -> None:
        self.pool, self.templates, self.store, self.user_id = pool, templates, store, user_id
        self.template = templates.get("product-image")
        self.finished: dict[str, str] = {}
        self.target = 0
        self.done = asyncio.Event()
        self.runtime: ComfyRuntime | None = None

    async def publish(self, channel: str, event: dict[str, Any], coalesce: str | None) -> None:
        if channel.startswith("job:") and event.get("status") in ("completed", "failed"):
            self.finished[event["id"]] = event["status"]
            if len(self.finished) >= self.target:
                self.done.set()

    async def start(self, workers: list[str]) -> None:
        self.runtime = ComfyRuntime.build(
            pool=self.pool,
            workers=[(u, None) for u in workers],
            templates=self.templates,
            store=self.store,
            publish=self.publish,
            poll_interval=0.5,
            health_interval=5.0,
        )
        await self.runtime.start()

    async def submit(self, i: int) -> tuple[str, float]:
        clean, _ = validate(self.template, {"prompt": f"shoe {i}", "width": 64, "height": 64})
        async with self.pool.acquire() as conn:
            row, _ = await create_job(
                conn,
                OutputType.IMAGE,
                user_id=self.user_id,
                workflow_name=self.template.name,
                parameters=clean,
            )
        committed = time.perf_counter()
        assert self.runtime is not None
        self.runtime.dispatcher.wake()
        return str(row["id"]), committed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--dsn",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--speed", type=float, default=1e5)
    args = parser.parse_args()

    dsn = await create_database(args.dsn, "bench_dispatch")
    tmp = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    # Throughput: emulators in their own processes, as real workers would be. Latency:
    # one emulator in this process, so that its receipt of POST /prompt is on our clock.
    procs, urls = [], []
    for _ in range(args.workers):
        port = free_port()
        procs.append(
            subprocess.Popen(  # noqa: ASYNC220 - start-up only, not on a hot path
                [
                    sys.executable,
                    "-m",
                    "comfygraph.server.cli",
                    "emulator",
                    "--port",
                    str(port),
                    "--speed",
                    str(args.speed),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    latency_server = serve_in_thread(
        receipt_recorder(create_emulator_app(speed=args.speed, output_dir=tmp / "latency"))
    )
    latency_url = latency_server.__enter__()
    pool = await create_pool(dsn, min_size=4, max_size=16)
    try:
        await wait_listening(urls)
        async with pool.acquire() as conn:
            await apply_migrations(conn)
            user = await create_user(conn, email="bench@example.com", password="x" * 8, rounds=4)
        templates = load_templates()
        store = LocalStorage(tmp / "files", "http://bench")

        run = Run(pool, templates, store, user["id"])
        await run.start(urls)
        run.target = args.jobs
        start = time.perf_counter()
        for i in range(args.jobs):
            await run.submit(i)
        await asyncio.wait_for(run.done.wait(), timeout=1800)
        took = time.perf_counter() - start
        statuses = list(run.finished.values())
        assert run.runtime is not None
        await run.runtime.aclose()
        print(
            f"throughput: {args.jobs} jobs on {args.workers} emulator processes in {took:.1f} s"
            f" = {args.jobs / took:.1f} jobs/s; completed {statuses.count('completed')}, "
            f"failed {statuses.count('failed')}, lost {args.jobs - len(statuses)}"
        )

        run = Run(pool, templates, store, user["id"])
        await run.start([latency_url])
        added = []
        for i in range(args.latency_samples):
            run.target = len(run.finished) + 1
            run.done.clear()
            job_id, committed = await run.submit(10_000 + i)
            await asyncio.wait_for(run.done.wait(), timeout=60)
            added.append((RECEIVED[job_id] - committed) * 1000)
        assert run.runtime is not None
        await run.runtime.aclose()

        floor = []
        async with httpx.AsyncClient() as http:
            for i in range(args.latency_samples):
                clean, _ = validate(run.template, {"prompt": f"floor {i}", "width": 64})
                prompt_id = f"00000000-0000-4000-8000-{i:012d}"
                body = {
                    "prompt": bind(run.template, clean, {}),
                    "client_id": "bench",
                    "prompt_id": prompt_id,
                }
                sent = time.perf_counter()
                await http.post(f"{latency_url}/prompt", json=body)
                floor.append((RECEIVED[prompt_id] - sent) * 1000)
        print(f"submit -> worker receives POST /prompt: {summary(added)}")
        print(f"floor, POST straight to the emulator : {summary(floor)}")
        extra = percentile(added, 50) - percentile(floor, 50)
        print(f"added p50: {extra:.2f} ms (target <= 20 ms)")
    finally:
        await pool.close()
        latency_server.__exit__(None, None, None)
        for proc in procs:
            proc.terminate()
            proc.wait()
        await drop_database(args.dsn, dsn)


if __name__ == "__main__":
    asyncio.run(main())
