"""Rate-limit counters in PostgreSQL: a storage for the `limits` library's fixed-window
strategy (incr/get/get_expiry), so replicas without Redis still share their counts."""

from __future__ import annotations

import time

import asyncpg
from limits.aio.storage import Storage

#: one hit on a fixed window, as the `limits` library's storages count it: $1 the key,
#: $2 the amount, $3 the window in seconds. A new or expired window starts at the
#: amount, a running one adds it; answers the row's count and expires_at.
HIT = """INSERT INTO rate_counters AS c (key, count, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))
         ON CONFLICT (key) DO UPDATE SET
             count = CASE WHEN c.expires_at <= now() THEN $2 ELSE c.count + $2 END,
             expires_at = CASE WHEN c.expires_at <= now()
                               THEN now() + make_interval(secs => $3)
                               ELSE c.expires_at END
         RETURNING count, expires_at"""


class PostgresCounters(Storage):
    STORAGE_SCHEME = ["comfygraph+postgres"]

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__()
        self.pool = pool
        self._hits = 0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (asyncpg.PostgresError, OSError)

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        async with self.pool.acquire() as conn:
            count = await conn.fetchval(HIT, key, amount, float(expiry))
        await self.counted()
        return int(count)

    async def counted(self) -> None:
        """Note one hit (also those db/admission.py counts): keep the table small, expired
        rows go now and then."""
        self._hits += 1
        if self._hits % 1000 == 0:
            async with self.pool.acquire() as conn:
                await conn.execute("DELETE FROM rate_counters WHERE expires_at <= now()")

    async def get(self, key: str) -> int:
        async with self.pool.acquire() as conn:
            count = await conn.fetchval(
                "SELECT count FROM rate_counters WHERE key = $1 AND expires_at > now()", key
            )
        return int(count or 0)

    async def get_expiry(self, key: str) -> float:
        async with self.pool.acquire() as conn:
            at = await conn.fetchval(
                """SELECT extract(epoch FROM expires_at) FROM rate_counters
                   WHERE key = $1 AND expires_at > now()""",
                key,
            )
        return float(at) if at is not None else time.time()

    async def check(self) -> bool:
        async with self.pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT true"))

    async def reset(self) -> int | None:
        async with self.pool.acquire() as conn:
            status = await conn.execute("DELETE FROM rate_counters")
        return int(status.split()[-1])

    async def clear(self, key: str) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute("DELETE FROM rate_counters WHERE key = $1", key)
