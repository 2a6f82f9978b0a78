"""jobProgress and sessionProgress against real jobs on the emulator, over both protocols."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from comfygraph.bus import EventBus
from comfygraph.db.assets import create_asset
from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.sessions import create_session, set_status
from comfygraph.studio.channels import JobEvents
from comfygraph.studio.publish import bus_publisher
from comfygraph.studio.sessions.channels import SessionEvents
from tests.graphql.client import gid
from tests.realtime.client import (
    JOB_PROGRESS,
    LEGACY_WS,
    PROTOCOLS,
    SESSION_PROGRESS,
    Client,
)
from tests.realtime.conftest import User
from tests.realtime.harness import Running, faults, graphql, stalled, submit

CANCEL = "mutation($id: ID!) { cancelJob(id: $id) { userErrors { code } } }"


def statuses(values: list[dict[str, Any]]) -> list[str]:
    return [v["status"] for v in values]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_job_on_the_emulator_streams_progress_to_completion(
    server: Running, users: dict[str, User], emulator: str, protocol: str
) -> None:
    alice = users["alice"]
    await faults(emulator, action="stall", class_type="KSampler")
    job = await submit(server.url, alice.token)
    async with await Client.connect(server.ws_url, protocol, alice.token) as client:
        op = await client.subscribe(JOB_PROGRESS, {"id": job})
        seen = [await op.data()]  # the current state first, then every change
        assert seen[0]["job"]["id"] == job
        await stalled(emulator)  # mid-run on the worker
        await faults(emulator, action="release")
        seen += await op.until(lambda v: v["status"] == "COMPLETED", within=30)
        await op.completed()  # ends after the terminal event
    final = seen[-1]
    assert final["progress"] == 100.0 and final["job"]["status"] == "COMPLETED"
    assert final["job"]["outputImageUrls"] and final["job"]["outputs"][0]["url"]
    progress = [v["progress"] for v in seen]
    assert progress == sorted(progress), "progress never decreases"
    ticks = [v for v in seen if v["nodeProgress"]]
    assert ticks, "the sampler's steps arrive as progress events"
    assert {t["nodeProgress"]["classType"] for t in ticks} == {"KSampler"}
    assert all(t["node"] == t["nodeProgress"]["node"] for t in ticks)
    assert any(v["etaSeconds"] is not None for v in seen)


async def test_a_finished_job_gives_its_state_and_completes(
    server: Running, users: dict[str, User], pool: asyncpg.Pool
) -> None:
    alice = users["alice"]
    async with pool.acquire() as conn:
        row, _ = await create_job(conn, OutputType.IMAGE, user_id=alice.id, parameters={},
                                  workflow_name="product-image", status="failed",
                                  error_message="out of memory")  # fmt: skip
    async with await Client.connect(server.ws_url, LEGACY_WS, alice.token) as client:
        op = await client.subscribe(JOB_PROGRESS, {"id": gid("ImageJob", row["id"])})
        assert (await op.data())["status"] == "FAILED"
        await op.completed()


async def test_queue_position_follows_the_queue(
    server: Running, users: dict[str, User], emulator: str
) -> None:
    alice = users["alice"]
    await faults(emulator, action="stall", class_type="KSampler")
    async with await Client.connect(server.ws_url, token=alice.token) as client:
        await submit(server.url, alice.token)
        await stalled(emulator)
        # The worker takes one more (queued on it); the others wait in the dispatch queue.
        jobs = [await submit(server.url, alice.token, prompt=f"shoe {i}") for i in range(3)]
        last = await client.subscribe(JOB_PROGRESS, {"id": jobs[2]})
        first = await last.data()
        assert first["status"] == "PENDING" and first["queuePosition"] == 1
        body = await graphql(server.url, alice.token, CANCEL, {"id": jobs[1]})
        assert body["data"]["cancelJob"]["userErrors"] == []
        moved = await last.until(lambda v: v["queuePosition"] == 0)
        assert moved[-1]["status"] == "PENDING"
        await faults(emulator, action="release")
        seen = await last.until(lambda v: v["status"] == "COMPLETED", within=40)
        assert "PROCESSING" in statuses(seen) and seen[-1]["queuePosition"] is None


async def test_late_subscribers_share_the_stream_and_get_the_state_first(
    server: Running, users: dict[str, User], emulator: str
) -> None:
    alice, bob = users["alice"], users["bob"]
    await faults(emulator, action="stall", class_type="KSampler")
    job = await submit(server.url, alice.token, public=True)
    async with (
        await Client.connect(server.ws_url, token=bob.token) as early,
        await Client.connect(server.ws_url, token=users["admin"].token) as other,
    ):
        op = await early.subscribe(JOB_PROGRESS, {"id": job})
        await op.data()
        await stalled(emulator)
        before, _, _ = await server.stats()
        async with await Client.connect(server.ws_url) as anonymous:
            late = await anonymous.subscribe(JOB_PROGRESS, {"id": job})
            state = await late.data()
            assert state["status"] == "PROCESSING" and state["job"]["id"] == job
            after, _, _ = await server.stats()
            # bob and an anonymous viewer see the same: one execution serves both.
            assert after.executions == before.executions
            admin_op = await other.subscribe(JOB_PROGRESS, {"id": job})
            assert (await admin_op.data())["job"]["id"] == job
            assert (await server.stats())[0].executions == before.executions + 1
            await faults(emulator, action="release")
            a = await op.until(lambda v: v["status"] == "COMPLETED", within=30)
            b = await late.until(lambda v: v["status"] == "COMPLETED", within=30)
            assert a[-1] == b[-1]


async def test_session_progress_streams_the_session_and_its_assets(
    server: Running, users: dict[str, User], pool: asyncpg.Pool, dsn: str
) -> None:
    alice = users["alice"]
    async with pool.acquire() as conn:
        session = await create_session(conn, user_id=alice.id, user_product_prompt="red bag")
    sid = session["id"]
    async with (
        await Client.connect(server.ws_url, "graphql-ws", alice.token) as client,
        EventBus.from_url(server.broadcast_url) as bus,
    ):
        events = SessionEvents(bus_publisher(bus))
        op = await client.subscribe(SESSION_PROGRESS, {"id": gid("Session", sid)})
        first = await op.data()
        assert first["__typename"] == "Session" and first["status"] == "CREATED"
        assert first["sessionStatus"] == "CREATED"  # no alias needed beside Asset's
        async with pool.acquire() as conn:
            await set_status(conn, sid, "generating_images", allowed_from=["created"])
        await events.session(sid)
        changed = await op.data()
        assert changed["__typename"] == "Session" and changed["status"] == "GENERATING_IMAGES"
        async with pool.acquire() as conn:
            asset = await create_asset(conn, session_id=sid, type="image", url="http://f/a.png")
        await events.assets([asset])
        appeared = await op.data()
        assert appeared == {"__typename": "Asset", "id": gid("Asset", asset["id"]),
                            "assetStatus": "GENERATING", "url": "http://f/a.png"}  # fmt: skip
        # Job events on the session's channel are not sessionProgress's business.
        await JobEvents(bus_publisher(bus)).progress("image", uuid.uuid4(), progress=5.0,
                                                     session_id=sid)  # fmt: skip
        await op.quiet()
