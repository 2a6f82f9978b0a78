from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from PIL import Image

from comfygraph.comfy.templates import load_templates
from comfygraph.db.queue import queue_positions
from comfygraph.emulator import create_emulator_app
from tests.comfy.conftest import png_bytes
from tests.comfy.harness import Harness, start_harness
from tests.servers import serve_in_thread


@pytest.fixture
async def one(pool: asyncpg.Pool, tmp_path: Path) -> AsyncIterator[tuple[Harness, str]]:
    with serve_in_thread(create_emulator_app(speed=1000, output_dir=tmp_path / "out")) as url:
        harness = await start_harness(pool, tmp_path, [(url, 3.6)])
        try:
            yield harness, url
        finally:
            await harness.runtime.aclose()


async def faults(url: str, **body: object) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{url}/emulator/faults", json=body)
        r.raise_for_status()


async def running_on_worker(harness: Harness, job_id: object, class_type: str) -> None:
    """Wait until the worker is executing a node of `class_type` for this job."""
    await harness.recorder.wait(
        f"job:{job_id}", lambda e: e["type"] == "progress" and e["classType"] == class_type
    )


def stored_path(harness: Harness, url: str) -> Path:
    return harness.store.path_for(url.removeprefix(harness.store.base_url + "/files/"))


async def test_img2img_runs_with_progress_outputs_and_cost(one: tuple[Harness, str]) -> None:
    harness, _url = one
    image = await harness.upload("cat.png", png_bytes(96, 64))
    kind, job_id = await harness.submit("img2img", {"image": image, "prompt": "a watercolor cat"})
    row = await harness.finished(kind, job_id)
    assert row["status"] == "completed", row["error_message"]
    assert row["progress"] == 100 and row["comfy_job_id"] == str(job_id)
    assert row["output_image_urls"] and row["width"] and row["height"]
    with Image.open(stored_path(harness, row["output_image_urls"][0])) as img:
        assert img.size == (row["width"], row["height"])
    assert all(o["url"].startswith("http://files.test/files/workflows/img2img/")
               for o in row["outputs"])  # fmt: skip
    ticks = [e["progress"] for e in harness.recorder.events[f"job:{job_id}"]]
    assert ticks == sorted(ticks) and ticks[-1] == 100
    assert row["cost_usd"] is not None and row["cost_usd"] >= 0


@pytest.mark.parametrize("workflow", sorted(load_templates().templates))
async def test_every_builtin_workflow_end_to_end(one: tuple[Harness, str], workflow: str) -> None:
    harness, _url = one
    kind, job_id = await harness.submit(workflow)
    row = await harness.finished(kind, job_id)
    assert row["status"] == "completed", row["error_message"]
    assert row["outputs"], "a finished job lists its files"
    for output in row["outputs"]:
        assert stored_path(harness, output["url"]).stat().st_size == output["sizeBytes"] > 0
    if kind.value == "video":
        assert row["output_video_urls"] and row["width"] and row["duration_seconds"] > 0
    elif kind.value == "image":
        assert row["output_image_urls"] and row["width"] > 0
    elif kind.value == "text":
        assert row["output_text"]


async def test_node_error_fails_the_job_with_node_and_message(one: tuple[Harness, str]) -> None:
    harness, url = one
    await faults(url, action="fail", class_type="KSampler", message="CUDA out of memory")
    kind, job_id = await harness.submit("img2img")
    row = await harness.finished(kind, job_id)
    assert row["status"] == "failed"
    assert "KSampler" in row["error_message"] and "CUDA out of memory" in row["error_message"]


async def test_stalled_worker_hits_the_job_timeout(pool: asyncpg.Pool, tmp_path: Path) -> None:
    with serve_in_thread(create_emulator_app(speed=1000, output_dir=tmp_path / "o")) as url:
        harness = await start_harness(pool, tmp_path, [(url, None)], job_timeout=2.0)
        try:
            await faults(url, action="stall", class_type="KSampler")
            kind, job_id = await harness.submit("img2img")
            row = await harness.finished(kind, job_id, timeout=20)
            assert row["status"] == "failed" and "timed out" in row["error_message"]
        finally:
            await harness.runtime.aclose()


async def test_restarted_worker_that_forgot_the_job_gets_it_again(
    one: tuple[Harness, str],
) -> None:
    harness, url = one
    await faults(url, action="stall", class_type="KSampler")
    kind, job_id = await harness.submit("img2img")
    await running_on_worker(harness, job_id, "KSampler")
    await faults(url, action="restart")  # forgets queue, history and the running prompt
    row = await harness.finished(kind, job_id)
    assert row["status"] == "completed", row["error_message"]
    assert row["attempts"] == 2


async def test_worker_dying_mid_job_never_leaves_it_stuck(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    app = create_emulator_app(speed=1000, output_dir=tmp_path / "o")
    with serve_in_thread(app) as url:
        harness = await start_harness(pool, tmp_path, [(url, None)])
        await faults(url, action="stall", class_type="KSampler")
        _kind, job_id = await harness.submit("img2img")
        await running_on_worker(harness, job_id, "KSampler")
    try:  # the worker is gone now
        event = await harness.recorder.wait(
            f"job:{job_id}", lambda e: e["status"] in ("pending", "failed"), timeout=30
        )
        assert event["status"] in ("pending", "failed")
    finally:
        await harness.runtime.aclose()


async def test_three_workers_share_sixty_jobs_none_on_the_unhealthy_one(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    from tests.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: down from the start
    with (
        serve_in_thread(create_emulator_app(speed=1000, output_dir=tmp_path / "a")) as a,
        serve_in_thread(create_emulator_app(speed=1000, output_dir=tmp_path / "b")) as b,
    ):
        harness = await start_harness(pool, tmp_path, [(a, None), (b, None), (dead, None)])
        try:
            image = await harness.upload("in.png", png_bytes(32, 32))
            jobs = [await harness.submit("image-edit", {"image": image, "prompt": f"edit #{i}"})
                    for i in range(60)]  # fmt: skip
            rows = await asyncio.gather(*(harness.finished(k, j, timeout=90) for k, j in jobs))
            assert [r["status"] for r in rows] == ["completed"] * 60
            used = {r["comfy_url"] for r in rows}
            assert dead not in used and used == {a, b}
        finally:
            await harness.runtime.aclose()


async def test_jobs_wait_pending_with_queue_positions_when_no_worker_is_up(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    from tests.servers import free_port

    port = free_port()
    harness = await start_harness(pool, tmp_path, [(f"http://127.0.0.1:{port}", None)])
    try:
        jobs = [await harness.submit("img2img") for _ in range(3)]
        async with pool.acquire() as conn:
            positions = await queue_positions(conn, [j for _k, j in jobs])
        assert sorted(positions[j] for _k, j in jobs) == sorted(positions.values())
        assert [positions[j] for _k, j in jobs] == sorted(positions[j] for _k, j in jobs)
        # The worker comes up on its configured address: the waiting jobs run.
        with serve_in_thread(create_emulator_app(speed=1000, output_dir=tmp_path / "o"),
                             port=port):  # fmt: skip
            rows = [await harness.finished(k, j, timeout=30) for k, j in jobs]
        assert [r["status"] for r in rows] == ["completed"] * 3
    finally:
        await harness.runtime.aclose()


async def test_bad_inputs_fail_the_job_clearly(one: tuple[Harness, str]) -> None:
    harness, _url = one
    kind, job_id = await harness.submit("no-such-workflow", {})
    row = await harness.finished(kind, job_id)
    assert row["status"] == "failed" and "unknown workflow" in row["error_message"]
    kind, job_id = await harness.submit(
        "img2img", {"image": "http://elsewhere.example/x.png", "prompt": "p"}
    )
    row = await harness.finished(kind, job_id)
    assert row["status"] == "failed" and "not a stored upload" in row["error_message"]


async def test_cancel_pending_at_once_and_processing_on_the_worker(
    one: tuple[Harness, str],
) -> None:
    from comfygraph.comfy.client import ComfyClient
    from comfygraph.studio.cancel import cancel_job
    from comfygraph.studio.channels import JobEvents

    harness, url = one
    await faults(url, action="stall", class_type="KSampler")
    kind, running = await harness.submit("img2img")
    await running_on_worker(harness, running, "KSampler")
    events = JobEvents(harness.recorder.publish)
    row = await cancel_job(harness.pool, kind, running, workers=harness.runtime.workers,
                           events=events)  # fmt: skip
    assert row["status"] == "cancelled"
    async with ComfyClient(url) as client:  # the worker no longer runs or queues it
        queue = await client.queue()
        assert str(running) not in queue
    # The worker is free again: the next job runs to completion.
    kind2, after = await harness.submit("image-edit")
    assert (await harness.finished(kind2, after))["status"] == "completed"
    async with harness.pool.acquire() as conn:
        from comfygraph.db.jobs import get_job

        assert (await get_job(conn, kind, running))["status"] == "cancelled"


async def test_a_workflow_that_must_not_run_twice_fails_when_lost(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    import dataclasses

    with serve_in_thread(create_emulator_app(speed=1000, output_dir=tmp_path / "o")) as url:
        harness = await start_harness(pool, tmp_path, [(url, None)])
        try:
            once = dataclasses.replace(harness.templates.templates["img2img"], requeue_lost=False)
            harness.templates.templates["img2img"] = once  # this replica's loaded templates
            await faults(url, action="stall", class_type="KSampler")
            kind, job_id = await harness.submit("img2img")
            await running_on_worker(harness, job_id, "KSampler")
            await faults(url, action="restart")
            row = await harness.finished(kind, job_id)
            assert row["status"] == "failed" and "lost on worker" in row["error_message"]
            assert row["attempts"] == 1
        finally:
            await harness.runtime.aclose()


async def test_a_prompt_that_never_reached_its_worker_spends_no_attempt(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """A worker that died since its last health check refuses the connection: the job
    did not run there, so it waits for another worker with its attempts intact (it used
    to be failed once two replicas had each tried that worker)."""
    with serve_in_thread(create_emulator_app(speed=1000, output_dir=tmp_path / "o")) as url:
        harness = await start_harness(pool, tmp_path, [(url, None)], max_attempts=1)
        # Checked once at start; no check from now on, so this replica goes on believing
        # the worker is up after it dies, as one does between two checks.
        await harness.runtime.supervisor.stop("worker-health")
        worker = harness.runtime.workers.workers[url]
        assert worker.healthy
    try:  # gone, and nothing will notice before the job is sent to it
        kind, job_id = await harness.submit("img2img")
        channel = f"job:{job_id}"
        claimed = await harness.recorder.wait(channel, lambda e: e["status"] == "processing")
        events = harness.recorder.events[channel]

        def then_moved(e: dict) -> bool:  # a status change after the claim
            after = events[next(i for i, x in enumerate(events) if x is claimed) + 1 :]
            return any(x is e for x in after) and e["type"] == "status"

        event = await harness.recorder.wait(channel, then_moved)
        async with pool.acquire() as conn:
            from comfygraph.db.jobs import get_job

            row = await get_job(conn, kind, job_id)
        assert event["status"] == "pending", row["error_message"]
        assert row["status"] == "pending" and row["attempts"] == 0, dict(row)
        assert not worker.healthy
    finally:
        await harness.runtime.aclose()
