from __future__ import annotations

from decimal import Decimal

import asyncpg

from comfygraph.db.costs import cost_breakdown, record_cost
from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.sessions import create_session, get_session
from tests.db.factories import make_user


async def test_costs_keep_session_total_in_step(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        user = await make_user(conn)
        s1 = await create_session(conn, user_id=user["id"], user_product_prompt="pink shoes")
        s2 = await create_session(conn, user_id=user["id"], user_product_prompt="blue bag")
        job, _ = await create_job(
            conn, OutputType.IMAGE, user_id=user["id"], workflow_name="product-image",
            parameters={}, session_id=s1["id"],
        )  # fmt: skip
        await record_cost(conn, category="image_generation", amount=0.05, session_id=s1["id"],
                          job_id=job["id"], provider="comfyui", api_latency_ms=100)  # fmt: skip
        second = await record_cost(conn, category="llm", amount="0.0125", session_id=s1["id"])
        assert (await get_session(conn, s1["id"]))["total_cost"] == Decimal("0.0625")

        # The same job charged again is ignored.
        again = await record_cost(conn, category="image_generation", amount=9,
                                  session_id=s1["id"], job_id=job["id"])  # fmt: skip
        assert again is None
        assert (await get_session(conn, s1["id"]))["total_cost"] == Decimal("0.0625")

        # Moving a cost row to another session updates both; deleting one updates its session.
        await conn.execute(
            "UPDATE generation_costs SET session_id = $1 WHERE id = $2", s2["id"], second["id"]
        )
        assert (await get_session(conn, s1["id"]))["total_cost"] == Decimal("0.05")
        assert (await get_session(conn, s2["id"]))["total_cost"] == Decimal("0.0125")
        await conn.execute("DELETE FROM generation_costs WHERE id = $1", second["id"])
        assert (await get_session(conn, s2["id"]))["total_cost"] == Decimal("0")

        lines = await cost_breakdown(conn, s1["id"])
        assert [(r["category"], r["api_calls"], r["total_cost"]) for r in lines] == [
            ("image_generation", 1, Decimal("0.05"))
        ]


async def test_constraints_refuse_bad_values(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        user = await make_user(conn)
        bad = [
            ("INSERT INTO image_jobs (user_id, workflow_name, status) VALUES ($1, 'w', 'done')"),
            ("INSERT INTO image_jobs (user_id, workflow_name, progress) VALUES ($1, 'w', 101)"),
            ("INSERT INTO image_jobs (user_id, workflow_name, width) VALUES ($1, 'w', 0)"),
            ("INSERT INTO sessions (user_id, num_images_requested) VALUES ($1, 13)"),
            ("INSERT INTO sessions (user_id, text_color) VALUES ($1, 'red')"),
        ]
        for sql in bad:
            try:
                await conn.execute(sql, user["id"])
            except asyncpg.CheckViolationError:
                continue
            raise AssertionError(f"accepted: {sql}")
