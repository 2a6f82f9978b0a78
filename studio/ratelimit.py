"""Rate limits and quotas (issue 11), counted with the `limits` library's fixed-window
strategy in storage every replica shares: Redis when the broadcast is Redis, else the
rate_counters table in PostgreSQL (db/rate_counters.py). Memory only if asked for
(`memory://` broadcast: one process, as in the demo and the embedded tests).

Each check answers None (go ahead) or the seconds until the window frees up. Admins are
exempt when `admins_exempt` says so. A storage that fails lets the request through and
logs: a limit must never turn an outage of Redis into an outage of the API.

A submission's checks (the counter, the active jobs, the storage quota) are one
statement when the counters are in PostgreSQL (db/admission.py); with Redis or memory
counters, their hit and then one statement.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass

import asyncpg
from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute
from limits import RateLimitItemPerSecond as PerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter

from comfygraph.db.admission import Hit, submission_checks
from comfygraph.db.rate_counters import PostgresCounters
from comfygraph.db.visibility import Viewer
from comfygraph.schema.errors import RATE_LIMITED
from comfygraph.studio.quota import QUOTA_EXCEEDED, exceeded_message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Quotas:
    submissions_per_minute: int = 120
    active_jobs: int = 50
    uploads_per_minute: int = 60
    upload_bytes_per_day: int = 10 * 1024**3
    logins_per_minute_per_address: int = 20
    logins_per_minute_per_email: int = 10
    anonymous_per_second: int = 50
    admins_exempt: bool = True


@dataclass(frozen=True)
class Refusal:
    """Why a submission is refused: RATE_LIMITED (retry_after seconds) or QUOTA_EXCEEDED."""

    code: str
    message: str
    retry_after: float | None = None


def _retry_after(reset: float) -> float:
    """Seconds until a window that ends at `reset` (epoch seconds) frees up: at least 1."""
    return max(1.0, math.ceil(reset - time.time()))


class RateLimits:
    def __init__(self, quotas: Quotas, storage_url: str) -> None:
        self.quotas = quotas
        self.storage_url = storage_url
        self._limiter: FixedWindowRateLimiter | None = None
        q = quotas
        self._submit = RateLimitItemPerMinute(q.submissions_per_minute, namespace="submit")
        self._upload = RateLimitItemPerMinute(q.uploads_per_minute, namespace="upload")
        self._bytes = RateLimitItemPerDay(q.upload_bytes_per_day, namespace="upload-bytes")
        self._login_ip = RateLimitItemPerMinute(q.logins_per_minute_per_address,
                                                namespace="login-ip")  # fmt: skip
        self._login_email = RateLimitItemPerMinute(q.logins_per_minute_per_email,
                                                   namespace="login-email")  # fmt: skip
        self._anonymous = PerSecond(q.anonymous_per_second, namespace="anonymous")

    def _bind(self, pool: asyncpg.Pool) -> FixedWindowRateLimiter:
        if self._limiter is None:
            storage: Storage
            url = self.storage_url
            if url.startswith(("redis://", "rediss://")):
                storage = RedisStorage(f"async+{url}", implementation="redispy")
            elif url.startswith("memory://"):
                storage = MemoryStorage()
            else:
                storage = PostgresCounters(pool)
            self._limiter = FixedWindowRateLimiter(storage)
        return self._limiter

    async def _hit(
        self, pool: asyncpg.Pool, item: RateLimitItem, key: str, cost: int = 1
    ) -> float | None:
        limiter = self._bind(pool)
        try:
            if await limiter.hit(item, key, cost=cost):
                return None
            reset = (await limiter.get_window_stats(item, key)).reset_time
        except Exception:
            log.exception("rate limit storage failed; letting the request through")
            return None
        return _retry_after(reset)

    def _exempt(self, viewer: Viewer) -> bool:
        return viewer.is_admin and self.quotas.admins_exempt

    async def submission(
        self, pool: asyncpg.Pool, viewer: Viewer, owner: uuid.UUID, default_quota: int | None
    ) -> Refusal | None:
        """None, or why one more submitJob of `viewer` is refused. The storage quota is
        `owner`'s (a retry stores for the job's owner), `default_quota` unless an admin
        set theirs. The counter's hit comes first: a refused submission of any kind
        counts too."""
        hit = None
        counted = viewer.user_id is not None and not self._exempt(viewer)
        if counted:
            if isinstance(self._bind(pool).storage, PostgresCounters):
                item = self._submit
                hit = Hit(item.key_for(str(viewer.user_id)), item.get_expiry(), item.amount)
            else:
                retry = await self._hit(pool, self._submit, str(viewer.user_id))
                if retry is not None:
                    return self._too_many(retry)
        active_of = viewer.user_id if counted else None
        row = await self._checks(pool, hit, active_of, owner, default_quota)
        if row["hits"] is not None and row["hits"] > self._submit.amount:
            return self._too_many(_retry_after(row["resets_at"]))
        running = row["active_jobs"]
        if running is not None and running >= self.quotas.active_jobs:
            return Refusal(
                RATE_LIMITED,
                f"{running} jobs are pending or running, the most one user may have; "
                "wait for one to finish",
                5.0,
            )
        return _quota_refusal(row)

    def _too_many(self, retry: float) -> Refusal:
        per = self.quotas.submissions_per_minute
        return Refusal(RATE_LIMITED, f"at most {per} submissions a minute", retry)

    async def _checks(
        self,
        pool: asyncpg.Pool,
        hit: Hit | None,
        active_of: uuid.UUID | None,
        owner: uuid.UUID,
        default_quota: int | None,
    ) -> asyncpg.Record:
        """db/admission.py's row; without the hit when the counter fails (logged, as
        `_hit` does), so the other checks still hold."""

        async def checks(hit: Hit | None) -> asyncpg.Record:
            async with pool.acquire() as conn:
                return await submission_checks(
                    conn, hit=hit, active_of=active_of, active_limit=self.quotas.active_jobs,
                    quota_of=owner, default_quota=default_quota,
                )  # fmt: skip

        if hit is not None:
            counters = self._bind(pool).storage
            assert isinstance(counters, PostgresCounters)
            try:
                row = await checks(hit)
            except Exception:
                log.exception("rate limit storage failed; letting the request through")
            else:
                await counters.counted()
                return row
        return await checks(None)

    async def upload(
        self, pool: asyncpg.Pool, viewer: Viewer, size: int | None
    ) -> tuple[str, float] | None:
        if viewer.user_id is None or self._exempt(viewer):
            return None
        key = str(viewer.user_id)
        retry = await self._hit(pool, self._upload, key)
        if retry is not None:
            return f"at most {self.quotas.uploads_per_minute} uploads a minute", retry
        if size:
            retry = await self._hit(pool, self._bytes, key, cost=size)
            if retry is not None:
                return f"at most {self.quotas.upload_bytes_per_day} upload bytes a day", retry
        return None

    async def login(
        self, pool: asyncpg.Pool, address: str | None, email: str
    ) -> tuple[str, float] | None:
        if address is not None:
            retry = await self._hit(pool, self._login_ip, address)
            if retry is not None:
                per = self.quotas.logins_per_minute_per_address
                return f"at most {per} logins a minute from one address", retry
        retry = await self._hit(pool, self._login_email, email.strip().lower()[:320])
        if retry is not None:
            per = self.quotas.logins_per_minute_per_email
            return f"at most {per} logins a minute for one email", retry
        return None

    async def anonymous(self, pool: asyncpg.Pool, address: str | None) -> float | None:
        """None, or the seconds to wait before this address's next anonymous request."""
        return await self._hit(pool, self._anonymous, address or "unknown")


def _quota_refusal(row: asyncpg.Record) -> Refusal | None:
    """QUOTA_EXCEEDED once the owner's quota is used up (db/admission.py's row)."""
    quota = row["quota"]
    if quota is not None and max(quota - row["used"], 0) == 0:
        return Refusal(QUOTA_EXCEEDED, exceeded_message(0))
    return None


async def submission_refusal(
    rates: RateLimits | None,
    pool: asyncpg.Pool,
    viewer: Viewer,
    owner: uuid.UUID,
    default_quota: int | None,
) -> Refusal | None:
    """`RateLimits.submission`; without rate limits, the storage quota alone."""
    if rates is not None:
        return await rates.submission(pool, viewer, owner, default_quota)
    async with pool.acquire() as conn:
        row = await submission_checks(conn, hit=None, active_of=None, active_limit=0,
                                      quota_of=owner, default_quota=default_quota)  # fmt: skip
    return _quota_refusal(row)
