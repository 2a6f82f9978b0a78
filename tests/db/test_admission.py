"""A submission's checks in one statement (db/admission.py): the same counter as the
`limits` library's fixed window, and each check only when the ones before passed."""

from __future__ import annotations

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
