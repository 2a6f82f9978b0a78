"""The outbox on its own (no app): deliveries commit or roll back with the status
change, senders never share a delivery, and one killed mid-delivery loses nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from standardwebhooks.webhooks import Webhook

from comfygraph.db import webhooks as db
from comfygraph.db.jobs import create_job, transition
from comfygraph.db.kinds import OutputType
from comfygraph.studio.webhooks import WebhookPolicy, WebhookSender, new_secret
from comfygraph.studio.webhooks.policy import UnsafeUrl
from comfygraph.studio.webhooks.sender import SenderConfig
from tests.db.factories import make_user
from tests.webhooks.receiver import Receiver, serve_receiver


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver(Receiver()) as r:
        yield r


async def _job(conn: asyncpg.Connection, user: uuid.UUID, status: str = "processing") -> uuid.UUID:
    row, _ = await create_job(
        conn, OutputType.IMAGE, user_id=user, workflow_name="w", parameters={}
    )
    if status == "processing":
        await transition(conn, OutputType.IMAGE, row["id"], "processing")
    return row["id"]  # type: ignore[no-any-return]


async def _count(conn: asyncpg.Connection, job: uuid.UUID) -> int:
    return int(
        await conn.fetchval("SELECT count(*) FROM webhook_deliveries WHERE subject_id = $1", job)
    )


async def test_deliveries_commit_and_roll_back_with_the_status_change(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        user = (await make_user(conn))["id"]
        await db.create_endpoint(
            conn, user_id=user, url="https://receiver.invalid/h", events=["job.completed"],
            secret=new_secret(),
        )  # fmt: skip
        job = await _job(conn, user)
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await transition(conn, OutputType.IMAGE, job, "completed")
                assert await _count(conn, job) == 1  # written by the same statement
                raise RuntimeError("the replica dies before commit")
        assert await _count(conn, job) == 0
        await transition(conn, OutputType.IMAGE, job, "completed")
        assert await _count(conn, job) == 1


async def test_two_senders_never_claim_the_same_delivery(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        user = (await make_user(conn))["id"]
        await db.create_endpoint(
            conn, user_id=user, url="https://receiver.invalid/two", events=["job.failed"],
            secret=new_secret(),
        )  # fmt: skip
        jobs = [await _job(conn, user) for _ in range(20)]
        for job in jobs:
            await transition(conn, OutputType.IMAGE, job, "failed")

    async def claim() -> set[uuid.UUID]:
        async with pool.acquire() as conn, conn.transaction():
            rows = await db.claim_due(conn, limit=15, hold_seconds=60)
            await asyncio.sleep(0.2)  # hold the row locks while the other one claims
            return {r["id"] for r in rows if r["subject_id"] in set(jobs)}

    a, b = await asyncio.gather(claim(), claim())
    assert not a & b and len(a | b) == 20


async def test_a_sender_killed_mid_delivery_loses_nothing(
    pool: asyncpg.Pool, receiver: Receiver
) -> None:
    async with pool.acquire() as conn:
        user = (await make_user(conn))["id"]
        secret = new_secret()
        await db.create_endpoint(
            conn, user_id=user, url=f"{receiver.url}/killed", events=["job.completed"],
            secret=secret,
        )  # fmt: skip
        job = await _job(conn, user)
        await transition(conn, OutputType.IMAGE, job, "completed")
    policy = WebhookPolicy(allow_private=True, http_hosts=frozenset({"127.0.0.1"}))
    config = SenderConfig(timeout=5, poll_interval=0.1, hold_seconds=1.0, backoff_initial=0.1)
    # The first sender is killed as soon as its request reached the receiver.
    first_seen = asyncio.Event()

    def answer(r, n):  # type: ignore[no-untyped-def]
        if r.path == "/killed" and n == 0:
            first_seen.set()
        return 200

    receiver.answer = answer
    dying = WebhookSender(pool, policy, config)
    task = asyncio.create_task(dying.loop())
    await asyncio.wait_for(first_seen.wait(), 20)
    task.cancel()  # killed: its attempt may or may not have been recorded
    with pytest.raises(asyncio.CancelledError):
        await task
    async with pool.acquire() as conn:  # simulate the kill before the attempt was written
        await conn.execute(
            """UPDATE webhook_deliveries SET status = 'pending', delivered_at = NULL,
                      locked_until = now() + interval '1 second' WHERE subject_id = $1""",
            job,
        )
    other = WebhookSender(pool, policy, config)
    task = asyncio.create_task(other.loop())
    try:
        await receiver.wait_for(lambda: len(receiver.at("/killed")) == 2)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    a, b = receiver.at("/killed")
    assert a.headers["webhook-id"] == b.headers["webhook-id"]  # the receiver can dedupe
    Webhook(secret).verify(b.body, b.headers)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/h",
        "https://localhost/h",
        "https://10.1.2.3/h",
        "https://192.168.0.10/h",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/h",
        "https://[fd00:ec2::254]/h",
        "https://[::ffff:127.0.0.1]/h",
        "https://100.64.0.1/h",
    ],
)
async def test_internal_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="internal address"):
        await WebhookPolicy().check_address(url)
    await WebhookPolicy(allow_private=True).check_address(url)


async def test_http_only_for_allowed_hosts() -> None:
    with pytest.raises(UnsafeUrl, match="https"):
        WebhookPolicy(allow_private=True).check_url("http://127.0.0.1/h")
    WebhookPolicy(allow_private=True, http_hosts=frozenset({"127.0.0.1"})).check_url(
        "http://127.0.0.1/h"
    )
    await WebhookPolicy().check_address("https://93.184.215.14/h")  # a public address


async def test_progress_is_throttled_and_sessions_announce_their_end(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        user = (await make_user(conn))["id"]
        await db.create_endpoint(
            conn, user_id=user, url="https://receiver.invalid/p",
            events=["job.progress", "session.completed", "session.failed"], secret=new_secret(),
        )  # fmt: skip
        job = await _job(conn, user)
        args = {"subject_type": "image", "job_id": job, "user_id": user, "min_interval": 60}
        assert await db.enqueue_progress(conn, one_off_url=None, progress=10, **args) == 1
        assert await db.enqueue_progress(conn, one_off_url=None, progress=20, **args) == 0
        # a one-off URL is throttled on its own
        assert (
            await db.enqueue_progress(conn, one_off_url="https://o.invalid", progress=30, **args)
            == 1
        )
        session = await conn.fetchval(
            "INSERT INTO sessions (user_id, user_product_prompt) VALUES ($1, 'x') RETURNING id",
            user,
        )
        await conn.execute("UPDATE sessions SET status = 'composing' WHERE id = $1", session)
        await conn.execute("UPDATE sessions SET status = 'completed' WHERE id = $1", session)
        events = await conn.fetch(
            "SELECT event, subject_type FROM webhook_deliveries WHERE subject_id = $1", session
        )
        assert [tuple(e) for e in events] == [("session.completed", "session")]
        await conn.execute(
            "UPDATE webhook_deliveries SET status = 'failed' WHERE user_id = $1", user
        )  # nobody sends to .invalid after this test
