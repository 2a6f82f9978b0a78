"""A whole ad-video session against an emulator worker over real HTTP: createSession to
COMPLETED in the seed's status order, progress that never goes down, the final video's
file served, costs that add up, and seed 004's sample queries answered from it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from tests.graphql.client import row_id
from tests.sessions.conftest import PRICE_PER_HOUR, Stack
from tests.sessions.helpers import (
    COMPOSE,
    GENERATE_CLIPS,
    GENERATE_IMAGES,
    SEED_ORDER,
    SELECT,
    Watch,
    create,
    is_subsequence,
    mutate,
    of_type,
    ok,
)

SEED_QUERIES = """query($id: ID!) {
  session(id: $id) {
    status
    images: assets(type: IMAGE) { id viewType status }
    clips: assets(type: VIDEO_CLIP) { id status sourceImage { id } }
    finalVideo { id type status url }
    moodBoard { id type selectionOrder }
    costBreakdown { category provider apiCalls totalCost avgLatencyMs }
    totalCost
  }
}"""
JOBS = """{ jobs(first: 100, filter: {statuses: [COMPLETED]}) { edges { node {
  ... on GenerationJob { workflowName costUsd } } } } }"""
ACTIVE = """{ sessions(active: true, first: 50) { totalCount edges { node {
  id status images: assets(type: IMAGE) { id } clips: assets(type: VIDEO_CLIP) { id } } } } }"""


@pytest.fixture(scope="module")
def completed(stack: Stack) -> dict[str, Any]:
    """One session driven from createSession to COMPLETED, with everything seen on the way."""
    alice = stack.clients["alice"]
    created = create(
        alice, numImagesRequested=3, consistencySeed=4242, styleKeywords=["pastel", "studio"],
        productName="Pink Runner", callToAction="Run now", textColor="#FF3366",
        textFont="BebasNeue-Regular", clipDurationSeconds=1.5, productCategory="FOOTWEAR",
        userVideoPrompt="the shoe on a running track at sunrise",
    )  # fmt: skip
    watch = Watch(alice, created["id"])
    watch.read()
    started = ok(mutate(alice, GENERATE_IMAGES, id=created["id"]))
    reviewing = watch.status("REVIEWING_IMAGES", "FAILED")
    images = of_type(reviewing, "IMAGE")
    chosen = [images[2]["id"], images[0]["id"]]
    selected = ok(mutate(alice, SELECT, id=created["id"], assets=chosen))
    ok(mutate(alice, GENERATE_CLIPS, id=created["id"]))
    clips_done = watch.status("REVIEWING_VIDEOS", "FAILED")
    clips = of_type(clips_done, "VIDEO_CLIP")
    clip_order = [clips[1]["id"], clips[0]["id"]]
    ok(mutate(alice, SELECT, id=created["id"], assets=clip_order))
    ok(mutate(alice, COMPOSE, id=created["id"]))
    final = watch.status("COMPLETED", "FAILED")
    return {"created": created, "started": started, "reviewing": reviewing, "chosen": chosen,
            "selected": selected, "clips": clips_done, "clip_order": clip_order,
            "final": final, "watch": watch}  # fmt: skip


def test_status_follows_the_seed_order_and_progress_never_drops(completed: dict) -> None:
    watch: Watch = completed["watch"]
    assert watch.statuses[0] == "CREATED" and watch.statuses[-1] == "COMPLETED"
    assert is_subsequence(watch.statuses, SEED_ORDER), watch.statuses
    for status in ("REVIEWING_IMAGES", "REVIEWING_VIDEOS", "COMPLETED"):
        assert status in watch.statuses
    assert watch.progress == sorted(watch.progress), watch.progress
    assert watch.progress[-1] == 100 and {0, 40, 85, 100} <= set(watch.progress)
    assert completed["reviewing"]["progressPercentage"] == 40
    assert completed["clips"]["progressPercentage"] == 85
    final = completed["final"]
    assert final["currentStage"] == "composition" and final["completedAt"] is not None
    assert final["retryCount"] == 0 and final["errorMessage"] is None


def test_images_cycle_views_with_the_consistency_seed(completed: dict) -> None:
    started = completed["started"]
    assert started["status"] in ("GENERATING_IMAGES", "REVIEWING_IMAGES")
    assert len(started["assets"]) == 3 and all(a["job"] for a in started["assets"])
    assert started["currentStage"] == "image_gen"
    images = of_type(completed["reviewing"], "IMAGE")
    assert [a["viewType"] for a in images] == ["front", "side", "back"]
    for image in images:
        assert image["status"] == "COMPLETED" and image["seed"] == 4242
        assert image["resolution"] == "1024x1024" and image["mimeType"] == "image/png"
        assert image["fileSizeBytes"] > 0 and image["url"].split("?")[0].endswith(".png")
        assert image["storagePath"].startswith("workflows/product-image/")
        assert image["job"]["status"] == "COMPLETED"
        assert image["job"]["workflowName"] == "product-image"
        assert image["generationCost"] == pytest.approx(image["job"]["costUsd"])
        assert image["generationCost"] > 0 and image["generationTimeSeconds"] is not None


def test_selection_makes_the_mood_board_in_order(completed: dict, stack: Stack) -> None:
    selected = completed["selected"]
    by_id = {a["id"]: a for a in of_type(selected, "IMAGE")}
    first, second = completed["chosen"]
    assert (by_id[first]["selectionOrder"], by_id[second]["selectionOrder"]) == (1, 2)
    assert by_id[first]["status"] == by_id[second]["status"] == "APPROVED"
    rejected = [a for a in by_id.values() if a["id"] not in completed["chosen"]]
    assert [a["status"] for a in rejected] == ["REJECTED"]
    assert not rejected[0]["userSelected"] and rejected[0]["selectionOrder"] is None


def test_clips_come_from_the_approved_images(completed: dict) -> None:
    clips = of_type(completed["clips"], "VIDEO_CLIP")
    assert [c["sourceImage"]["id"] for c in clips] == completed["chosen"]
    for clip in clips:
        assert clip["status"] == "COMPLETED" and clip["job"]["workflowName"] == "image-to-clip"
        assert clip["durationSeconds"] > 0 and clip["fps"] == 16
        assert clip["resolution"] == "832x480" and clip["seed"] == 4242


def test_final_video_is_stored_and_served(completed: dict) -> None:
    finals = of_type(completed["final"], "FINAL_VIDEO")
    assert len(finals) == 1
    final = finals[0]
    assert final["status"] == "COMPLETED" and final["job"]["workflowName"] == "compose-ad"
    assert final["resolution"] == "720x1280" and final["durationSeconds"] > 0
    response = httpx.get(final["url"], timeout=10)
    assert response.status_code == 200
    assert len(response.content) == final["fileSizeBytes"]


async def test_compose_used_the_approved_clips_and_overlay_settings(
    completed: dict, pool: asyncpg.Pool
) -> None:
    final = of_type(completed["final"], "FINAL_VIDEO")[0]
    clips = {c["id"]: c for c in of_type(completed["clips"], "VIDEO_CLIP")}
    async with pool.acquire() as conn:
        parameters = await conn.fetchval(
            """SELECT parameters FROM video_jobs
               WHERE id = (SELECT job_id FROM assets WHERE id = $1)""",
            row_id(final["id"]),
        )
    # Rows keep canonical URLs; clients see them signed.
    assert parameters["clips"] == [clips[c]["url"].split("?")[0] for c in completed["clip_order"]]
    assert parameters["product_name"] == "Pink Runner"
    assert parameters["call_to_action"] == "Run now"
    assert (parameters["text_color"], parameters["text_font"]) == ("#FF3366", "BebasNeue-Regular")
    assert "music" not in parameters


async def test_cost_total_is_the_sum_of_job_costs(completed: dict, pool: asyncpg.Pool) -> None:
    final = completed["final"]
    costs = [a["job"]["costUsd"] for a in final["assets"]]
    assert len(costs) == 3 + 2 + 1 and all(c > 0 for c in costs)
    assert final["totalCost"] == pytest.approx(sum(costs), abs=1e-6)
    assert sum(a["generationCost"] for a in final["assets"]) == pytest.approx(sum(costs))
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT c.amount, c.seconds_processed, c.asset_id, a.job_id, c.job_id AS cost_job
               FROM generation_costs c LEFT JOIN assets a ON a.id = c.asset_id
               WHERE c.session_id = $1""",
            row_id(final["id"]),
        )
    assert len(rows) == 6
    for row in rows:  # every cost row names its asset, and the amount is the worker's price
        assert row["asset_id"] is not None and row["job_id"] == row["cost_job"]
        expected = Decimal(str(PRICE_PER_HOUR)) * row["seconds_processed"] / 3600
        assert abs(row["amount"] - expected) < Decimal("0.0001")


def test_seed_queries(completed: dict, stack: Stack) -> None:
    alice = stack.clients["alice"]
    sid = completed["final"]["id"]
    data = alice.data(SEED_QUERIES, {"id": sid})["session"]
    assert len(data["images"]) == 3 and len(data["clips"]) == 2
    assert data["finalVideo"]["type"] == "FINAL_VIDEO" and data["finalVideo"]["url"]
    board = data["moodBoard"]
    images = [a["id"] for a in board if a["type"] == "IMAGE"]
    clips = [a["id"] for a in board if a["type"] == "VIDEO_CLIP"]
    assert images == completed["chosen"] and clips == completed["clip_order"]
    orders = [a["selectionOrder"] for a in board]
    assert orders == sorted(orders)
    lines = {(line["category"], line["provider"]): line for line in data["costBreakdown"]}
    assert {key: line["apiCalls"] for key, line in lines.items()} == {
        ("image_generation", "comfyui"): 3,
        ("video_generation", "comfyui"): 2,
        ("composition", "comfyui"): 1,
    }
    assert sum(line["totalCost"] for line in lines.values()) == pytest.approx(data["totalCost"])
    assert all(line["avgLatencyMs"] > 0 for line in lines.values())


def test_active_sessions_with_counts(completed: dict, stack: Stack) -> None:
    alice = stack.clients["alice"]
    waiting = create(alice, numImagesRequested=1)
    ok(mutate(alice, GENERATE_IMAGES, id=waiting["id"]))
    Watch(alice, waiting["id"]).status("REVIEWING_IMAGES")
    active = alice.data(ACTIVE)["sessions"]
    nodes = {e["node"]["id"]: e["node"] for e in active["edges"]}
    assert completed["final"]["id"] not in nodes  # completed: no longer active
    assert nodes[waiting["id"]]["status"] == "REVIEWING_IMAGES"
    assert (len(nodes[waiting["id"]]["images"]), len(nodes[waiting["id"]]["clips"])) == (1, 0)
    assert active["totalCount"] == len(nodes)
    bob = stack.clients["bob"].data(ACTIVE)["sessions"]
    assert waiting["id"] not in {e["node"]["id"] for e in bob["edges"]}


def test_estimated_cost_comes_from_past_runs(completed: dict, stack: Stack) -> None:
    alice = stack.clients["alice"]
    # A fresh database, no history: each stage's estimatedSeconds at the workers' price
    # (3 images, 3 clips, one compose).
    hinted = (3 * 20 + 3 * 90 + 240) * PRICE_PER_HOUR / 3600
    assert completed["created"]["estimatedCost"] == pytest.approx(hinted, abs=1e-5)
    feed = alice.data(JOBS)["jobs"]["edges"]
    costs: dict[str, list[float]] = {}
    for edge in feed:
        costs.setdefault(edge["node"]["workflowName"], []).append(edge["node"]["costUsd"])
    later = create(alice, numImagesRequested=2)

    def mean(name: str) -> float:
        return sum(costs[name]) / len(costs[name])

    expected = 2 * mean("product-image") + 2 * mean("image-to-clip") + mean("compose-ad")
    assert later["estimatedCost"] == pytest.approx(expected, abs=1e-5)
