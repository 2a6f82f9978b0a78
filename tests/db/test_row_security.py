"""Row-level security as a second wall (issue 11): a request's statements run as a role
that PostgreSQL holds to the same visibility rules as db/visibility.py, so a query that
forgot its filter still shows Bob none of Alice's private rows."""

from __future__ import annotations

import asyncpg

from comfygraph.db.assets import create_asset
from comfygraph.db.costs import record_cost
from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.sessions import create_session
from comfygraph.db.visibility import ANONYMOUS, Viewer
from comfygraph.resolvers.request_db import RequestConnection
from tests.db.factories import make_user


async def _rows(pool: asyncpg.Pool, viewer: Viewer, sql: str) -> set:
    db = RequestConnection(pool, lambda: viewer)
    db.hold()
    try:
        async with db.acquire() as conn:
            rows = await conn.fetch(sql)  # deliberately no visibility filter
        await db.finish()
    finally:
        await db.release()
    return {r[0] for r in rows}


async def test_an_unfiltered_query_as_bob_sees_none_of_alices_private_rows(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        alice, bob, admin = (await make_user(conn), await make_user(conn),
                             await make_user(conn, role="admin"))  # fmt: skip
        jobs = {}
        for name, owner, public in (("alice-private", alice, False), ("alice-public", alice, True),
                                    ("bob-private", bob, False)):  # fmt: skip
            row, _ = await create_job(conn, OutputType.IMAGE, user_id=owner["id"],
                                      workflow_name="product-image", parameters={},
                                      public=public)  # fmt: skip
            jobs[name] = row["id"]
        session = await create_session(conn, user_id=alice["id"], user_product_prompt="x")
        asset = await create_asset(conn, session_id=session["id"], type="image")
        await record_cost(conn, session_id=session["id"], category="llm", amount=1)
    everything = "SELECT id FROM image_jobs"
    bob_v, alice_v = Viewer(bob["id"]), Viewer(alice["id"])
    assert await _rows(pool, bob_v, everything) >= {jobs["alice-public"], jobs["bob-private"]}
    assert jobs["alice-private"] not in await _rows(pool, bob_v, everything)
    assert jobs["alice-private"] not in await _rows(pool, ANONYMOUS, everything)
    assert set(jobs.values()) <= await _rows(pool, alice_v, everything) | {jobs["bob-private"]}
    assert set(jobs.values()) <= await _rows(pool, Viewer(admin["id"], is_admin=True), everything)
    assert session["id"] not in await _rows(pool, bob_v, "SELECT id FROM sessions")
    assert asset["id"] not in await _rows(pool, bob_v, "SELECT id FROM assets")
    assert not await _rows(pool, bob_v, "SELECT id FROM generation_costs")
    assert session["id"] in await _rows(pool, alice_v, "SELECT id FROM sessions")
    assert asset["id"] in await _rows(pool, alice_v, "SELECT id FROM assets")
    # Writes too: Bob's unfiltered UPDATE touches only his own rows.
    changed = await _rows(pool, bob_v, "UPDATE image_jobs SET public = true RETURNING id")
    assert changed == {jobs["bob-private"]}
    # The maintenance side (the pool's own role: dispatcher, runner) is not held to it.
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM image_jobs") >= 3
