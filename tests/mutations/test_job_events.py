"""deleteJob and setJobPublic tell feeds and subscribers: a status event on the app's
broadcast once the change has committed (cancelJob already did)."""

from __future__ import annotations

import asyncpg

from comfygraph.bus import EventBus
from comfygraph.db.jobs import create_job, get_job
from comfygraph.db.kinds import OutputType
from tests.graphql.client import gid
from tests.mutations.conftest import App, next_event, quiet

IMAGE = OutputType.IMAGE
SET_PUBLIC = """mutation($id: ID!, $public: Boolean!) { setJobPublic(id: $id, public: $public) {
  job { ... on GenerationJob { id public } } userErrors { code } } }"""
DELETE = "mutation($id: ID!) { deleteJob(id: $id) { deletedId userErrors { code } } }"


async def finished_job(pool: asyncpg.Pool, app: App) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row, _ = await create_job(conn, IMAGE, user_id=app.uid("alice"), workflow_name="img2img",
                                  parameters={}, status="completed")  # fmt: skip
    return row


async def test_set_job_public_publishes(app: App, bus: EventBus, pool: asyncpg.Pool) -> None:
    row = await finished_job(pool, app)
    job = gid("ImageJob", row["id"])
    async with bus.subscribe(["feed:public", f"job:{row['id']}"]) as sub:
        done = await app.clients["alice"].data(SET_PUBLIC, {"id": job, "public": True})
        assert done["setJobPublic"]["job"] == {"id": job, "public": True}
        event = await next_event(sub, lambda e: e["id"] == str(row["id"]) and e["public"])
        assert event["status"] == "completed" and event["deleted"] is False
        async with pool.acquire() as conn:  # published after commit: another reader sees it
            current = await get_job(conn, IMAGE, row["id"])
        assert current is not None and current["public"] is True
        await app.clients["alice"].data(SET_PUBLIC, {"id": job, "public": False})
        event = await next_event(sub, lambda e: e["id"] == str(row["id"]) and not e["public"])
        assert event["status"] == "completed"


async def test_delete_job_publishes(app: App, bus: EventBus, pool: asyncpg.Pool) -> None:
    row = await finished_job(pool, app)
    job = gid("ImageJob", row["id"])
    async with bus.subscribe(f"feed:user:{app.uid('alice')}") as sub:
        body = await app.clients["alice"].data(DELETE, {"id": job})
        assert body["deleteJob"] == {"deletedId": job, "userErrors": []}
        event = await next_event(sub, lambda e: e["id"] == str(row["id"]))
        assert event["deleted"] is True and event["status"] == "completed"
        # Refused changes publish nothing.
        again = await app.clients["alice"].data(DELETE, {"id": job})
        assert again["deleteJob"]["userErrors"] == [{"code": "NOT_FOUND"}]
        hidden = await app.clients["bob"].data(SET_PUBLIC, {"id": job, "public": True})
        assert hidden["setJobPublic"]["userErrors"] == [{"code": "NOT_FOUND"}]
        await quiet(sub, lambda e: e["id"] == str(row["id"]))
