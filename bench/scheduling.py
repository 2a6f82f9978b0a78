"""Scheduling a heterogeneous fleet (issue 13), each figure against its baseline in the
same run, on emulator workers over real HTTP and one PostgreSQL database:

- affinity: jobs alternating two checkpoints over 2 workers with a simulated model
  load (the emulator's model_load switch): model loads and wall time, affinity vs
  plain least-loaded (SCHEDULER_AFFINITY_WINDOW=1);
- fair share: user A queues 500 jobs, then user B 5: B's wait (claimed - created)
  p50/max, fair share vs oldest-first;
- capabilities: a workflow only one of 3 workers can run: jobs sent to the other two.

    python bench/scheduling.py [--dsn postgresql://...] [--affinity-jobs 200] [--load 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile
from comfygraph.comfy.templates import load_templates, validate
from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.migrate import apply_migrations
from comfygraph.db.pool import create_pool
from comfygraph.db.users import create_user
from comfygraph.emulator import create_emulator_app
from comfygraph.storage import LocalStorage
from comfygraph.studio.runtime import ComfyRuntime
from tests.dbutil import create_database, drop_database
from tests.servers import serve_in_thread

DATA = Path(__file__).parents[1] / "tests" / "data" / "workflows"
CHECKPOINTS = ("dreamshaper_8.safetensors", "sd_xl_base_1.0.safetensors")
TERMINAL = {"completed", "failed", "cancelled"}


class Run:
    """One replica's runtime over some workers; knows when its jobs ended."""

    def __init__(self, pool: Any, templates: Any, store: LocalStorage) -> None:
        self.pool, self.templates, self.store = pool, templates, store
        self.ended: set[str] = set()
        self.changed = asyncio.Event()
        self.runtime: ComfyRuntime | None = None

    async def publish(self, channel: str, event: dict[str, Any], coalesce: str | None) -> None:
        if event.get("type") == "status" and event.get("status") in TERMINAL:
            self.ended.add(channel.removeprefix("job:"))
            self.changed.set()

    async def start(self, urls: list[str], **options: Any) -> None:
        self.runtime = ComfyRuntime.build(
            pool=self.pool, workers=[(u, None) for u in urls], templates=self.templates,
            store=self.store, publish=self.publish, health_interval=0.5, poll_interval=0.2,
            **options,
        )  # fmt: skip
        await self.runtime.start()

    async def submit(self, user_id: uuid.UUID, checkpoint: str) -> uuid.UUID:
        template = self.templates.get("checkpoint-image")
        clean = validate(template, {"checkpoint": checkpoint})[0]
        async with self.pool.acquire() as conn:
            row, _ = await create_job(conn, OutputType.IMAGE, user_id=user_id,
                                      workflow_name=template.name, parameters=clean)  # fmt: skip
        assert self.runtime is not None
        self.runtime.dispatcher.wake()
        job_id: uuid.UUID = row["id"]
        return job_id

    async def wait(self, ids: list[uuid.UUID], timeout: float = 3600) -> None:
        wanted = {f"{i}" for i in ids}
        async with asyncio.timeout(timeout):
            while not wanted <= self.ended:
                self.changed.clear()
                await self.changed.wait()

    async def aclose(self) -> None:
        assert self.runtime is not None
        await self.runtime.aclose()


async def rows(pool: Any, ids: list[uuid.UUID]) -> list[Any]:
    async with pool.acquire() as conn:
        return list(
            await conn.fetch(
                "SELECT id, status, comfy_url, created_at, started_at FROM image_jobs "
                "WHERE id = ANY($1::uuid[])",
                ids,
            )
        )


async def faults(url: str, **body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{url}/emulator/faults", json=body)
        r.raise_for_status()
        return dict(r.json())


def emulators(stack: ExitStack, tmp: Path, n: int, **options: Any) -> list[str]:
    return [
        stack.enter_context(
            serve_in_thread(
                create_emulator_app(speed=1e4, output_dir=tmp / uuid.uuid4().hex, **options)
            )
        )
        for _ in range(n)
    ]


async def affinity(ctx: dict[str, Any], window: int) -> tuple[int, float]:
    with ExitStack() as stack:
        urls = emulators(stack, ctx["tmp"], 2)
        for url in urls:
            await faults(url, action="model_load", seconds=ctx["load"])
        run = Run(ctx["pool"], ctx["templates"], ctx["store"])
        await run.start(urls, affinity_window=window)
        start = time.perf_counter()
        ids = [await run.submit(ctx["a"], CHECKPOINTS[i % 2]) for i in range(ctx["jobs"])]
        await run.wait(ids)
        took = time.perf_counter() - start
        await run.aclose()
        loads = sum([(await faults(u, action="clear"))["model_loads"] for u in urls])
        done = [r["status"] for r in await rows(ctx["pool"], ids)]
        assert done.count("completed") == len(ids), done
        return loads, took


async def fair_share(ctx: dict[str, Any], fair: bool) -> tuple[float, float]:
    with ExitStack() as stack:
        urls = emulators(stack, ctx["tmp"], 2)
        run = Run(ctx["pool"], ctx["templates"], ctx["store"])
        await run.start(urls)
        assert run.runtime is not None
        run.runtime.dispatcher.scheduler.fair_share = fair
        many = [await run.submit(ctx["a"], CHECKPOINTS[0]) for _ in range(500)]
        few = [await run.submit(ctx["b"], CHECKPOINTS[0]) for _ in range(5)]
        await run.wait(many + few)
        await run.aclose()
        waits = [(r["started_at"] - r["created_at"]).total_seconds()
                 for r in await rows(ctx["pool"], few)]  # fmt: skip
        return percentile(waits, 50), max(waits)


async def capabilities(ctx: dict[str, Any]) -> tuple[int, int]:
    with ExitStack() as stack:
        lacking = emulators(stack, ctx["tmp"], 2, missing_nodes=["KSampler"])
        [able] = emulators(stack, ctx["tmp"], 1)
        run = Run(ctx["pool"], ctx["templates"], ctx["store"])
        await run.start([*lacking, able])
        ids = [await run.submit(ctx["a"], CHECKPOINTS[0]) for _ in range(60)]
        await run.wait(ids)
        await run.aclose()
        found = await rows(ctx["pool"], ids)
        elsewhere = sum(1 for r in found if r["comfy_url"] != able)
        return elsewhere, sum(1 for r in found if r["status"] == "completed")


def table(lines: list[tuple[str, str, str]]) -> Iterator[str]:
    widths = [max(len(row[i]) for row in lines) for i in range(3)]
    for index, row in enumerate(lines):
        yield "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        if index == 0:
            yield "|" + "|".join("-" * (w + 2) for w in widths) + "|"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--dsn",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--affinity-jobs", type=int, default=200)
    parser.add_argument("--load", type=float, default=2.0, help="simulated model load (s)")
    args = parser.parse_args()
    dsn = await create_database(args.dsn, "bench_scheduling")
    pool = await create_pool(dsn, min_size=4, max_size=16)
    tmp = Path(tempfile.mkdtemp(prefix="bench-scheduling-"))
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
            a = await create_user(conn, email="a@example.com", password="x" * 8, rounds=4)
            b = await create_user(conn, email="b@example.com", password="x" * 8, rounds=4)
        templates = load_templates(DATA)
        ctx = {"pool": pool, "templates": templates, "tmp": tmp, "a": a["id"], "b": b["id"],
               "store": LocalStorage(tmp / "files", "http://bench"),
               "jobs": args.affinity_jobs, "load": args.load}  # fmt: skip
        n = args.affinity_jobs
        warm_loads, warm_s = await affinity(ctx, 8)
        cold_loads, cold_s = await affinity(ctx, 1)
        fair_p50, fair_max = await fair_share(ctx, True)
        old_p50, old_max = await fair_share(ctx, False)
        elsewhere, completed = await capabilities(ctx)
        lines = [
            ("measure", "issue 13 scheduling", "baseline (same run)"),
            (f"affinity: {n} jobs, 2 checkpoints alternating, 2 workers, {args.load:g} s load",
             f"{warm_loads} model loads, {warm_s:.1f} s wall",
             f"least-loaded: {cold_loads} model loads, {cold_s:.1f} s wall"),
            ("fair share: A queues 500, then B 5; B's wait (claimed - created)",
             f"p50 {fair_p50:.2f} s, max {fair_max:.2f} s",
             f"oldest-first: p50 {old_p50:.2f} s, max {old_max:.2f} s"),
            ("capabilities: 60 jobs, only 1 of 3 workers has KSampler",
             f"{elsewhere} jobs sent to the other two ({completed}/60 completed)",
             "main: least-loaded sends ~2/3 there, where they fail"),
        ]  # fmt: skip
        print("\n".join(table(lines)))
    finally:
        await pool.close()
        await drop_database(args.dsn, dsn)


if __name__ == "__main__":
    asyncio.run(main())
