"""Settling a session when many of its jobs end at once, on several replicas: each asset
is written once, the stage advances exactly once, and the events sessionProgress follows
are published (after commit) with the shapes it expects."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from comfygraph.comfy.templates import load_templates
from comfygraph.db.assets import create_asset
from comfygraph.db.costs import record_cost
from comfygraph.db.jobs import create_job, transition
from comfygraph.db.kinds import OutputType
from comfygraph.db.sessions import create_session, get_session, set_status
from comfygraph.db.visibility import Viewer
from comfygraph.storage import LocalStorage
from comfygraph.studio.sessions import SessionPipeline
from tests.comfy.conftest import png_bytes
from tests.comfy.harness import Recorder
from tests.db.factories import make_user

IMAGE = OutputType.IMAGE


async def generating_session(
    pool: asyncpg.Pool, store: LocalStorage, outcomes: list[str]
) -> tuple[uuid.UUID, list[uuid.UUID], list[uuid.UUID]]:
    """A session in generating_images whose image jobs are already in `outcomes`
    (completed / failed / processing), each with its GENERATING asset."""
    async with pool.acquire() as conn:
        user = await make_user(conn)
        session = await create_session(conn, user_id=user["id"], user_product_prompt="a mug",
                                       num_images_requested=len(outcomes))  # fmt: skip
        assets, jobs = [], []
        for index, outcome in enumerate(outcomes):
            job, _ = await create_job(conn, IMAGE, user_id=user["id"], parameters={},
                                      workflow_name="product-image",
                                      session_id=session["id"])  # fmt: skip
            await transition(conn, IMAGE, job["id"], "processing")
            if outcome == "completed":
                stored = await store.put(f"workflows/product-image/{job['id']}/{index}.png",
                                         png_bytes(64, 32))  # fmt: skip
                output = {"kind": "IMAGE", "url": stored.url, "filename": f"{index}.png",
                          "mimeType": "image/png", "width": 64, "height": 32,
                          "sizeBytes": stored.size, "temporary": False}  # fmt: skip
                await transition(conn, IMAGE, job["id"], "completed", outputs=[output],
                                 cost_usd=Decimal("0.012"))  # fmt: skip
                # Recorded before its asset existed: settle names the asset afterwards.
                await record_cost(conn, category="image_generation", amount=Decimal("0.012"),
                                  job_id=job["id"], session_id=session["id"])  # fmt: skip
            elif outcome == "failed":
                await transition(conn, IMAGE, job["id"], "failed", error_message="boom")
            asset = await create_asset(conn, session_id=session["id"], type="image",
                                       source="product-image", job_id=job["id"],
                                       job_output_type="image")  # fmt: skip
            assets.append(asset["id"])
            jobs.append(job["id"])
        await set_status(conn, session["id"], "generating_images", allowed_from=["created"],
                         generated_image_ids=assets, current_stage="image_gen")  # fmt: skip
    return session["id"], assets, jobs


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "files", "http://files.test")


def pipeline(pool: asyncpg.Pool, store: LocalStorage, recorder: Recorder) -> SessionPipeline:
    return SessionPipeline(pool=pool, templates=load_templates(), store=store,
                           publish=recorder.publish)  # fmt: skip


def events(recorders: list[Recorder], session_id: uuid.UUID) -> list[dict[str, Any]]:
    return [e for r in recorders for e in r.events[f"session:{session_id}"]]


async def test_jobs_ending_together_advance_the_stage_once(
    pool: asyncpg.Pool, store: LocalStorage
) -> None:
    outcomes = ["completed"] * 5 + ["failed"]
    session_id, assets, jobs = await generating_session(pool, store, outcomes)
    recorders = [Recorder() for _ in range(4)]
    pipelines = [pipeline(pool, store, r) for r in recorders]
    async with pool.acquire() as conn:
        rows = [await conn.fetchrow("SELECT * FROM image_jobs WHERE id = $1", j) for j in jobs]
    # Every job's listener, on each of four replicas, all at once.
    await asyncio.gather(*(p.on_job_ended(IMAGE, row) for p in pipelines for row in rows))

    async with pool.acquire() as conn:
        session = await get_session(conn, session_id)
        settled = await conn.fetch("SELECT * FROM assets WHERE session_id = $1", session_id)
        costs = await conn.fetch(
            "SELECT job_id, asset_id FROM generation_costs WHERE session_id = $1", session_id
        )
    assert session is not None
    assert (session["status"], session["progress_percentage"]) == ("reviewing_images", 40)
    by_id = {a["id"]: a for a in settled}
    assert [by_id[a]["status"] for a in assets] == outcomes
    done = by_id[assets[0]]
    assert (done["resolution"], done["mime_type"], done["generation_cost"]) == (
        "64x32", "image/png", Decimal("0.012"))  # fmt: skip
    assert done["storage_path"] == f"workflows/product-image/{jobs[0]}/0.png"
    assert by_id[assets[-1]]["metadata"]["error"] == "boom"
    assert {c["job_id"]: c["asset_id"] for c in costs} == dict(
        zip(jobs[:5], assets[:5], strict=True)
    )

    seen = events(recorders, session_id)
    assert [e for e in seen if e["type"] == "session"] == [
        {"type": "session", "id": str(session_id)}
    ]  # one move, published once
    asset_events = [e for e in seen if e["type"] == "asset"]
    assert sorted(e["id"] for e in asset_events) == sorted(str(a) for a in assets)
    assert all(e["session"] == str(session_id) for e in asset_events)


async def test_a_stage_whose_jobs_all_failed_fails_the_session(
    pool: asyncpg.Pool, store: LocalStorage
) -> None:
    session_id, _assets, _jobs = await generating_session(pool, store, ["failed", "failed"])
    recorder = Recorder()
    row = await pipeline(pool, store, recorder).settle(session_id)
    assert row is not None and row["status"] == "failed"
    assert row["error_message"] == "all 2 image generations failed: boom"


async def test_progress_is_the_mean_of_the_stage_jobs_and_only_rises(
    pool: asyncpg.Pool, store: LocalStorage
) -> None:
    session_id, _assets, jobs = await generating_session(
        pool, store, ["completed", "processing", "processing", "processing"]
    )
    recorder = Recorder()
    pipe = pipeline(pool, store, recorder)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE image_jobs SET progress = 50 WHERE id = ANY($1)", jobs[1:])
        row = await conn.fetchrow("SELECT * FROM image_jobs WHERE id = $1", jobs[1])
    await pipe.on_job_progress(IMAGE, row, 50.0)
    async with pool.acquire() as conn:
        assert (await get_session(conn, session_id))["progress_percentage"] == 25  # 40 x 62.5%
        await conn.execute("UPDATE image_jobs SET progress = 0 WHERE id = ANY($1)", jobs[1:])
    await pipe.on_job_progress(IMAGE, row, 0.0)  # a re-queued job: progress must not drop
    async with pool.acquire() as conn:
        assert (await get_session(conn, session_id))["progress_percentage"] == 25
    ticks = recorder.events[f"session:{session_id}"]
    assert ticks == [{"type": "session", "id": str(session_id)}]


async def test_cancel_fails_generating_assets_cancels_jobs_and_tells_subscribers(
    pool: asyncpg.Pool, store: LocalStorage
) -> None:
    session_id, assets, jobs = await generating_session(
        pool, store, ["completed", "processing", "processing"]
    )
    recorder = Recorder()
    pipe = pipeline(pool, store, recorder)
    async with pool.acquire() as conn:
        owner = (await get_session(conn, session_id))["user_id"]
    outcome = await pipe.cancel(Viewer(user_id=owner), session_id)
    assert outcome.problems == [] and outcome.session["status"] == "cancelled"
    async with pool.acquire() as conn:
        statuses = [await conn.fetchval("SELECT status FROM image_jobs WHERE id = $1", j)
                    for j in jobs]  # fmt: skip
        settled = {r["id"]: r["status"] for r in await conn.fetch(
            "SELECT id, status FROM assets WHERE session_id = $1", session_id)}  # fmt: skip
    assert statuses == ["completed", "cancelled", "cancelled"]
    # The first job had finished (its asset not settled yet): that result is kept; the
    # others failed, and a settle arriving late changes nothing.
    assert [settled[a] for a in assets] == ["completed", "failed", "failed"]
    assert (await pipe.settle(session_id))["status"] == "cancelled"
    seen = recorder.events[f"session:{session_id}"]
    assert {"type": "session", "id": str(session_id)} in seen
    assert sorted(e["id"] for e in seen if e["type"] == "asset") == sorted(map(str, assets))
    for job in jobs[1:]:
        assert recorder.events[f"job:{job}"][-1]["status"] == "cancelled"
    stranger = await pipe.cancel(Viewer(user_id=uuid.uuid4()), session_id)
    assert [p.code for p in stranger.problems] == ["NOT_FOUND"]
