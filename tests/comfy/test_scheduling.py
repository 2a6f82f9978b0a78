"""Scheduling a heterogeneous fleet (issue 13): capabilities, blocked reasons, fair
share, model affinity, health checks that validate before they trust a worker."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import httpx

from comfygraph.comfy.templates import load_templates
from comfygraph.comfy.workers import WorkerPool
from comfygraph.db.jobs import create_job, get_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.queue import queue_positions
from comfygraph.db.scheduling import Classified, claim_for_worker, classify_pending
from comfygraph.emulator import create_emulator_app
from tests.comfy.conftest import png_bytes
from tests.comfy.harness import Harness, start_harness
from tests.db.factories import make_user
from tests.servers import free_port, serve_in_thread

DATA = Path(__file__).parents[1] / "data" / "workflows"
DREAMSHAPER = "dreamshaper_8.safetensors"
SDXL = "sd_xl_base_1.0.safetensors"


async def faults(url: str, **body: object) -> dict:
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{url}/emulator/faults", json=body)
        r.raise_for_status()
        return dict(r.json())


def with_checkpoint_template(harness: Harness) -> None:
    extra = load_templates(DATA).templates["checkpoint-image"]
    harness.templates.templates["checkpoint-image"] = extra


async def test_jobs_go_only_to_workers_that_have_their_model(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    with (
        serve_in_thread(create_emulator_app(speed=1000, output_dir=tmp_path / "a",
                                            missing_models=[DREAMSHAPER])) as lacking,
        serve_in_thread(create_emulator_app(speed=1000, output_dir=tmp_path / "b")) as full,
    ):  # fmt: skip
        harness = await start_harness(pool, tmp_path, [(lacking, None), (full, None)])
        try:
            image = await harness.upload("in.png", png_bytes(32, 32))
            jobs = [await harness.submit("img2img", {"image": image, "prompt": f"p{i}"})
                    for i in range(6)]  # fmt: skip
            rows = await asyncio.gather(*(harness.finished(k, j) for k, j in jobs))
            assert [r["status"] for r in rows] == ["completed"] * 6
            assert {r["comfy_url"] for r in rows} == {full}
        finally:
            await harness.runtime.aclose()


async def test_a_job_no_worker_can_run_waits_blocked_then_runs_when_one_appears(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    port = free_port()
    lacking = create_emulator_app(speed=1000, output_dir=tmp_path / "a",
                                  missing_nodes=["KSampler"])  # fmt: skip
    with serve_in_thread(lacking, port=port):
        # A restart quicker than a health check is seen by the periodic re-read.
        harness = await start_harness(pool, tmp_path, [(f"http://127.0.0.1:{port}", None)],
                                      capabilities_refresh=1.0)  # fmt: skip
        image = await harness.upload("in.png", png_bytes(32, 32))
        kind, job_id = await harness.submit("img2img", {"image": image, "prompt": "p"})
        # Passes classify and find no one; the supervised loop runs passes of its own, so
        # poll (with a deadline) until a pass has seen the worker's capabilities.
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            await harness.runtime.dispatcher.dispatch_once()
            async with pool.acquire() as conn:
                row = await get_job(conn, kind, job_id)
            if row["blocked_reason"] or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
        assert row["status"] == "pending"
        assert row["blocked_reason"] == "no healthy worker has node KSampler"
    try:  # the worker comes back (restarted) with the node installed: it is read again
        with serve_in_thread(create_emulator_app(speed=1000, output_dir=tmp_path / "b"),
                             port=port):  # fmt: skip
            row = await harness.finished(kind, job_id)
        assert row["status"] == "completed", row["error_message"]
        assert row["blocked_reason"] is None
    finally:
        await harness.runtime.aclose()


async def test_a_worker_with_malformed_devices_is_not_healthy(tmp_path: Path) -> None:
    with serve_in_thread(create_emulator_app(speed=1000, output_dir=tmp_path / "o")) as url:
        pool = WorkerPool([(url, None)], client_id="t")
        try:
            await faults(url, action="devices", devices=["gpu"])
            await pool.check(pool.workers[url])  # no exception escapes the health loop
            assert pool.workers[url].healthy is False
            await faults(url, action="devices", devices=[{"name": "gpu", "vram_total": "lots"}])
            await pool.check(pool.workers[url])
            assert pool.workers[url].healthy is False
            await faults(url, action="devices", devices=None)
            await pool.check(pool.workers[url])
            worker = pool.workers[url]
            assert worker.healthy and worker.capabilities is not None
            assert "KSampler" in worker.capabilities.nodes
            assert DREAMSHAPER in worker.capabilities.models
        finally:
            await pool.aclose()


def _classified(_workflow: str, _parameters: object) -> Classified:
    return Classified(["SaveImage"], [], "")


async def test_fair_share_takes_users_round_robin_and_priority_still_wins(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        a, b = await make_user(conn), await make_user(conn)
        many = [(await create_job(conn, OutputType.IMAGE, user_id=a["id"],
                                  workflow_name="fair-test", parameters={}))[0]["id"]
                for _ in range(20)]  # fmt: skip
        few = [(await create_job(conn, OutputType.IMAGE, user_id=b["id"],
                                 workflow_name="fair-test", parameters={}))[0]["id"]
               for _ in range(3)]  # fmt: skip
        urgent, _ = await create_job(
            conn, OutputType.IMAGE, user_id=a["id"], workflow_name="fair", parameters={}, priority=5
        )
        assert await classify_pending(conn, _classified) >= 24
        positions = await queue_positions(conn, [*many, *few, urgent["id"]])
        assert positions[urgent["id"]] == 0  # priorities still win
        # B's three come within the first rounds, not after A's twenty.
        assert sorted(positions[j] for j in few) == [2, 4, 6]
        assert [positions[j] for j in many] == sorted(positions[j] for j in many)
        # Several replicas claiming at once never get the same job.
        claims = await asyncio.gather(*(_claim_all(pool, f"r{i}") for i in range(4)))
        claimed = [j for batch in claims for j in batch]
        assert len(claimed) == len(set(claimed)) and set(claimed) >= {*many, *few}


async def _claim_all(pool: asyncpg.Pool, replica: str) -> list[uuid.UUID]:
    got = []
    while True:
        async with pool.acquire() as conn:
            claimed = await claim_for_worker(conn, replica=replica, worker_url="http://w",
                                             lease_s=30, nodes=["SaveImage"], models=[],
                                             model_key="", window=4)  # fmt: skip
        if claimed is None:
            return got
        got.append(claimed[1]["id"])


async def test_affinity_keeps_each_worker_on_its_checkpoint_and_none_idles(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    with (
        serve_in_thread(create_emulator_app(speed=1000, output_dir=tmp_path / "a")) as a,
        serve_in_thread(create_emulator_app(speed=1000, output_dir=tmp_path / "b")) as b,
    ):
        harness = await start_harness(pool, tmp_path, [(a, None), (b, None)], capacity=1)
        with_checkpoint_template(harness)
        try:
            for url in (a, b):
                await faults(url, action="model_load", seconds=0.05)
            jobs = [await harness.submit("checkpoint-image",
                                         {"checkpoint": (DREAMSHAPER, SDXL)[i % 2]})
                    for i in range(16)]  # fmt: skip
            rows = await asyncio.gather(*(harness.finished(k, j) for k, j in jobs))
            assert [r["status"] for r in rows] == ["completed"] * 16
            assert {r["comfy_url"] for r in rows} == {a, b}  # neither worker idles
            loads = [(await faults(url, action="clear"))["model_loads"] for url in (a, b)]
            # Least-loaded alone switches checkpoints on nearly every job (~16 loads).
            assert sum(loads) <= 6, loads
        finally:
            await harness.runtime.aclose()
