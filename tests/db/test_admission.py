"""A submission's checks in one statement (db/admission.py) and what studio/ratelimit.py
decides from it: the same counter as the `limits` library's fixed window, each check only
when the ones before passed, and a failing counter that lets the submission through."""

from __future__ import annotations

import logging
import os
import uuid

import asyncpg
import pytest
from limits import RateLimitItemPerMinute
from limits.aio.strategies import FixedWindowRateLimiter

from comfygraph.db.admission import Hit, submission_checks
from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.rate_counters import PostgresCounters
from comfygraph.db.retention import record_upload, set_storage_quota
from comfygraph.db.visibility import Viewer
from comfygraph.studio.ratelimit import Quotas, RateLimits, submission_refusal
from tests.db.factories import make_user


async def _user(pool: asyncpg.Pool, *, active: int = 0, role: str = "user") -> uuid.UUID:
    async with pool.acquire() as conn:
        uid: uuid.UUID = (await make_user(conn, role=role))["id"]
        for _ in range(active):
            await create_job(conn, OutputType.IMAGE, user_id=uid,
                             workflow_name="product-image", parameters={})  # fmt: skip
    return uid


async def _checks(pool: asyncpg.Pool, hit: Hit | None, uid: uuid.UUID, **kw: object) -> dict:
    args: dict = {"active_of": uid, "active_limit": 2, "quota_of": uid, "default_quota": 100}
    async with pool.acquire() as conn:
        return dict(await submission_checks(conn, hit=hit, **(args | kw)))


async def test_the_hit_counts_in_the_limits_librarys_window(pool: asyncpg.Pool) -> None:
    uid = await _user(pool)
    limiter = FixedWindowRateLimiter(PostgresCounters(pool))
    item = RateLimitItemPerMinute(2, namespace="submit")
    assert await limiter.hit(item, str(uid))  # the library's first hit
    hit = Hit(item.key_for(str(uid)), item.get_expiry(), item.amount)
    row = await _checks(pool, hit, uid)
    assert row == {"hits": 2, "resets_at": row["resets_at"], "active_jobs": 0,
                   "quota": 100, "used": 0}  # fmt: skip
    stats = await limiter.get_window_stats(item, str(uid))
    assert stats.remaining == 0 and stats.reset_time == pytest.approx(row["resets_at"])
    assert not await limiter.hit(item, str(uid))  # the library counts on: the third


async def test_each_check_runs_only_when_the_ones_before_passed(pool: asyncpg.Pool) -> None:
    uid = await _user(pool, active=2)
    async with pool.acquire() as conn:
        await record_upload(conn, f"k/{uid}", uid, 40)
    hit = Hit(f"test/{uid}", 60, 1)
    first = await _checks(pool, hit, uid, active_limit=3)
    assert (first["hits"], first["active_jobs"], first["used"]) == (1, 2, 40)
    over_rate = await _checks(pool, hit, uid, active_limit=3)
    assert (over_rate["hits"], over_rate["active_jobs"], over_rate["used"]) == (2, None, None)
    busy = await _checks(pool, None, uid)  # two active jobs, two allowed
    assert (busy["hits"], busy["active_jobs"], busy["quota"], busy["used"]) == (None, 2, 100, None)
    assert (await _checks(pool, None, None, quota_of=uid))["used"] == 40  # no active count
    async with pool.acquire() as conn:
        await set_storage_quota(conn, uid, 7)
    own = await _checks(pool, None, None, quota_of=uid, default_quota=None)
    assert (own["quota"], own["used"]) == (7, 40)
    async with pool.acquire() as conn:
        await set_storage_quota(conn, uid, None)
    unlimited = await _checks(pool, None, None, quota_of=uid, default_quota=None)
    assert (unlimited["quota"], unlimited["used"]) == (None, None)


def _counters(dsn: str) -> list[str]:
    """Where RateLimits counts: PostgreSQL, memory, and Redis when the run has it."""
    urls = [dsn, "memory://"]
    broadcast = os.environ.get("BROADCAST_URL", "")
    return [*urls, broadcast] if broadcast.startswith("redis") else urls


async def test_refusals_in_order_and_each_counts(pool: asyncpg.Pool, dsn: str) -> None:
    for url in _counters(dsn):
        rates = RateLimits(Quotas(submissions_per_minute=3, active_jobs=1), url)
        uid = await _user(pool)
        viewer = Viewer(uid)
        async with pool.acquire() as conn:
            await set_storage_quota(conn, uid, 0)
        refused = await rates.submission(pool, viewer, uid, None)
        assert refused is not None and refused.code == "QUOTA_EXCEEDED", url
        async with pool.acquire() as conn:
            await set_storage_quota(conn, uid, None)
            await create_job(conn, OutputType.IMAGE, user_id=uid,
                             workflow_name="product-image", parameters={})  # fmt: skip
        busy = await rates.submission(pool, viewer, uid, None)
        assert busy is not None and (busy.code, busy.retry_after) == ("RATE_LIMITED", 5.0), url
        assert "1 jobs are pending or running" in busy.message
        assert await rates.submission(pool, viewer, uid, None) is not None  # the third
        over = await rates.submission(pool, viewer, uid, None)  # the two refusals counted
        assert over is not None and over.message == "at most 3 submissions a minute", url
        assert over.retry_after is not None and 1 <= over.retry_after <= 60


async def test_admins_are_exempt_but_not_from_the_quota(pool: asyncpg.Pool, dsn: str) -> None:
    rates = RateLimits(Quotas(submissions_per_minute=1, active_jobs=1), dsn)
    uid = await _user(pool, active=3, role="admin")
    admin = Viewer(uid, is_admin=True)
    assert await rates.submission(pool, admin, uid, None) is None
    assert await rates.submission(pool, admin, uid, None) is None
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM rate_counters WHERE key LIKE $1",
                                   f"submit/{uid}/%") == 0  # fmt: skip
    refused = await rates.submission(pool, admin, uid, 0)
    assert refused is not None and refused.code == "QUOTA_EXCEEDED"
    # Without rate limits at all, the quota alone.
    assert (await submission_refusal(None, pool, admin, uid, 0)).code == "QUOTA_EXCEEDED"  # type: ignore[union-attr]
    assert await submission_refusal(None, pool, admin, uid, None) is None


async def test_a_failing_counter_lets_the_submission_through(
    pool: asyncpg.Pool, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    rates = RateLimits(Quotas(submissions_per_minute=1, active_jobs=1), dsn)
    uid, busy_uid = await _user(pool), await _user(pool, active=1)
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE rate_counters RENAME TO rate_counters_away")
    try:
        with caplog.at_level(logging.ERROR, "comfygraph.studio.ratelimit"):
            for _ in range(2):  # over the minute's 1, but nothing counts
                assert await rates.submission(pool, Viewer(uid), uid, None) is None
        assert "rate limit storage failed" in caplog.text
        # The other checks still hold.
        busy = await rates.submission(pool, Viewer(busy_uid), busy_uid, None)
        assert busy is not None and "pending or running" in busy.message
        quota = await rates.submission(pool, Viewer(uid), uid, 0)
        assert quota is not None and quota.code == "QUOTA_EXCEEDED"
    finally:
        async with pool.acquire() as conn:
            await conn.execute("ALTER TABLE rate_counters_away RENAME TO rate_counters")
