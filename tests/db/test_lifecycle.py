from __future__ import annotations

import asyncio

import asyncpg
import pytest

from comfygraph.db.errors import IllegalTransition
from comfygraph.db.jobs import create_job, get_job, transition
from comfygraph.db.kinds import OutputType
from comfygraph.db.queue import claim_next_pending, queue_positions
from tests.db.factories import make_user

IMAGE = OutputType.IMAGE


async def _job(conn: asyncpg.Connection, **kw: object) -> asyncpg.Record:
    user = await make_user(conn)
    row, _ = await create_job(
        conn, IMAGE, user_id=user["id"], workflow_name="img2img", parameters={}, **kw
    )
    return row


async def _finish(conn: asyncpg.Connection, job_id: object, final: str) -> None:
    if final != "cancelled":
        await transition(conn, IMAGE, job_id, "processing")
    await transition(conn, IMAGE, job_id, final)


@pytest.mark.parametrize(
    ("final", "target"), [("completed", "processing"), ("cancelled", "completed"),
                          ("failed", "completed"), ("completed", "cancelled")],
)  # fmt: skip
async def test_illegal_transitions_are_refused_and_change_nothing(
    pool: asyncpg.Pool, final: str, target: str
) -> None:
    async with pool.acquire() as conn:
        job = await _job(conn)
        await _finish(conn, job["id"], final)
        before = dict(await get_job(conn, IMAGE, job["id"]))
        with pytest.raises(IllegalTransition) as info:
            await transition(conn, IMAGE, job["id"], target)
        assert (info.value.current, info.value.target) == (final, target)
        assert dict(await get_job(conn, IMAGE, job["id"])) == before


async def test_legal_path_stamps_times_and_progress(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        job = await _job(conn)
        running = await transition(conn, IMAGE, job["id"], "processing")
        assert running["started_at"] is not None and running["attempts"] == 1
        done = await transition(conn, IMAGE, job["id"], "completed", width=64, height=64)
        assert done["progress"] == 100 and done["completed_at"] is not None
        assert done["processing_time_seconds"] >= 0 and done["width"] == 64


async def test_two_concurrent_claims_of_one_pending_job_exactly_one_wins(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await conn.execute("UPDATE image_jobs SET status = 'cancelled' WHERE status = 'pending'")
        job = await _job(conn)

    async def claim(worker: str) -> object:
        async with pool.acquire() as conn:
            return await claim_next_pending(
                conn, replica=worker, worker_url=f"http://{worker}", lease_s=30
            )

    results = await asyncio.gather(claim("a"), claim("b"))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    kind, row = winners[0]  # type: ignore[misc]
    assert kind is IMAGE and row["id"] == job["id"] and row["status"] == "processing"


async def test_claims_follow_priority_then_age_across_tables(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        for kind in OutputType:
            await conn.execute(
                f"UPDATE {kind.table} SET status = 'cancelled' WHERE status = 'pending'"
            )
        user = await make_user(conn)
        made = []
        for kind, priority in [(OutputType.VIDEO, 0), (OutputType.TEXT, 5), (IMAGE, 0),
                               (OutputType.AUDIO, 5)]:  # fmt: skip
            row, _ = await create_job(
                conn, kind, user_id=user["id"], workflow_name="w", parameters={},
                priority=priority,
            )  # fmt: skip
            made.append(row["id"])
        positions = await queue_positions(conn, made)
        assert [positions[i] for i in made] == [2, 0, 3, 1]
        order = []
        while (claimed := await claim_next_pending(
            conn, replica="r", worker_url="http://w", lease_s=30
        )) is not None:  # fmt: skip
            order.append(claimed[1]["id"])
        assert order == [made[1], made[3], made[0], made[2]]
