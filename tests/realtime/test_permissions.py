"""Nobody follows what they may not see: refused at subscribe time exactly like what does
not exist, and never delivered through a feed."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from comfygraph.bus import EventBus
from comfygraph.db.jobs import create_job, get_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.sessions import create_session
from comfygraph.studio.channels import JobEvents
from comfygraph.studio.publish import bus_publisher
from tests.graphql.client import gid
from tests.realtime.client import (
    JOB_PROGRESS,
    JOB_UPDATES,
    PROTOCOLS,
    SESSION_PROGRESS,
    Client,
    codes,
)
from tests.realtime.conftest import User
from tests.realtime.harness import SET_PUBLIC, Running, graphql, until

IMAGE = OutputType.IMAGE


@pytest.fixture(scope="module")
async def rows(pool: asyncpg.Pool, users: dict[str, User]) -> dict[str, asyncpg.Record]:
    """Jobs and a session of Alice's that nobody runs (no dispatch: not submitted)."""
    alice = users["alice"].id
    async with pool.acquire() as conn:
        made = {}
        for name, public in (("private", False), ("public", True), ("flip", True)):
            made[name], _ = await create_job(
                conn, IMAGE, user_id=alice, workflow_name="product-image", parameters={},
                public=public, status="processing",
            )  # fmt: skip
        made["session"] = await create_session(conn, user_id=alice, user_product_prompt="x")
        return made


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_another_users_private_job_or_session_is_refused_like_a_missing_one(
    server: Running, users: dict[str, User], rows: dict[str, asyncpg.Record], protocol: str
) -> None:
    private = gid("ImageJob", rows["private"]["id"])
    missing = gid("ImageJob", uuid.uuid4())
    session = gid("Session", rows["session"]["id"])
    async with await Client.connect(server.ws_url, protocol, users["bob"].token) as bob:
        refusals = []
        for query, variables in (
            (JOB_PROGRESS, {"id": private}),
            (JOB_PROGRESS, {"id": missing}),
            (SESSION_PROGRESS, {"id": session}),
            (SESSION_PROGRESS, {"id": gid("Session", uuid.uuid4())}),
        ):
            op = await bob.subscribe(query, variables)
            refusals.append(await op.error())
        assert [codes(errors) for errors in refusals] == [["NOT_FOUND"]] * 4
        assert refusals[0][0]["message"] == refusals[1][0]["message"] == "no such job"
        # Malformed ids, and ids of the wrong type, are INVALID_ID.
        for bad in ("nope", gid("Session", rows["private"]["id"]), "SW1hZ2VKb2I6eA"):
            op = await bob.subscribe(JOB_PROGRESS, {"id": bad})
            assert codes(await op.error()) == ["INVALID_ID"]
        # The connection is still fine.
        ok = await bob.subscribe(JOB_PROGRESS, {"id": gid("ImageJob", rows["public"]["id"])})
        assert (await ok.data())["status"] == "PROCESSING"


async def test_owner_and_admin_may_follow_a_private_job_and_anonymous_a_public_one(
    server: Running, users: dict[str, User], rows: dict[str, asyncpg.Record]
) -> None:
    private = gid("ImageJob", rows["private"]["id"])
    for token in (users["alice"].token, users["admin"].token):
        async with await Client.connect(server.ws_url, token=token) as client:
            op = await client.subscribe(JOB_PROGRESS, {"id": private})
            assert (await op.data())["job"]["id"] == private
    async with await Client.connect(server.ws_url) as anonymous:
        op = await anonymous.subscribe(JOB_PROGRESS, {"id": gid("ImageJob", rows["public"]["id"])})
        assert (await op.data())["status"] == "PROCESSING"
        op = await anonymous.subscribe(JOB_PROGRESS, {"id": private})
        assert codes(await op.error()) == ["NOT_FOUND"]


async def test_a_job_made_private_ends_its_public_followers(
    server: Running, users: dict[str, User], rows: dict[str, asyncpg.Record]
) -> None:
    flip = gid("ImageJob", rows["flip"]["id"])
    async with (
        await Client.connect(server.ws_url, token=users["bob"].token) as bob,
        await Client.connect(server.ws_url, token=users["alice"].token) as alice,
    ):
        watching = await bob.subscribe(JOB_PROGRESS, {"id": flip})
        owner = await alice.subscribe(JOB_PROGRESS, {"id": flip})
        await watching.data(), await owner.data()
        body = await graphql(server.url, users["alice"].token, SET_PUBLIC,
                             {"id": flip, "public": False})  # fmt: skip
        assert body["data"]["setJobPublic"]["userErrors"] == []
        # bob's stream sees the status event say "private": it ends with NOT_FOUND.
        payload = await watching.next()
        assert codes(payload["errors"]) == ["NOT_FOUND"] and payload["data"] is None
        await watching.completed()
        state = await owner.data()  # the owner's stream carries on
        assert state["job"]["id"] == flip


async def test_feeds_never_carry_other_users_private_jobs(
    server: Running, users: dict[str, User], pool: asyncpg.Pool, dsn: str
) -> None:
    alice, bob = users["alice"], users["bob"]
    async with (
        await Client.connect(server.ws_url, token=bob.token) as b,
        await Client.connect(server.ws_url, token=alice.token) as a,
        await Client.connect(server.ws_url) as anonymous,
        EventBus.from_url(server.broadcast_url) as bus,
    ):
        ops = [await b.subscribe(JOB_UPDATES, {"filter": {"scope": s}}) for s in ("ALL", "PUBLIC")]
        ops.append(await anonymous.subscribe(JOB_UPDATES, {"filter": {"scope": "ALL"}}))
        witness = await a.subscribe(JOB_UPDATES, {"filter": {"scope": "MINE"}})

        async def listening() -> bool:
            realtime, _, _ = await server.stats()
            return realtime.subscriptions >= 4 and realtime.streams >= 4

        await until(listening)
        async with pool.acquire() as conn:
            row, _ = await create_job(conn, IMAGE, user_id=alice.id,
                                      workflow_name="product-image", parameters={})  # fmt: skip
            fresh = await get_job(conn, IMAGE, row["id"])
        assert fresh is not None
        events = JobEvents(bus_publisher(bus))
        await events.status("image", fresh)  # what submitJob publishes
        assert (await witness.data())["id"] == gid("ImageJob", fresh["id"])
        for op in ops:
            await op.quiet(0.3)
