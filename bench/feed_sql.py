"""Unified feed at the database: first page vs a page 10,000 rows deep.

    python bench/feed_sql.py [--dsn DSN] [--rows 1000000] [--users 1000] [--runs 500]

Seeds ROWS jobs over the four tables for USERS users with COPY (into a scratch
database it creates and drops, unless --keep), then times `db.feed.job_page` for one
user's first page of 20 and for the page after that user's 10,000th row.
The measured user owns 2% of all rows so that a 10,000-deep page exists.
Targets (issue 2): deep/first <= 1.5 and first-page p50 <= 3 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile, summary, time_async
from comfygraph.db.feed import Cursor, JobQuery, job_page
from comfygraph.db.kinds import OutputType
from comfygraph.db.migrate import apply_migrations
from comfygraph.db.pool import create_pool
from comfygraph.db.visibility import Scope, Viewer

WORKFLOWS = {
    OutputType.VIDEO: ["lipsync-one", "lipsync-multi", "video-lipsync", "wan-i2v"],
    OutputType.IMAGE: ["img2img", "style-transfer", "image-edit"],
    OutputType.TEXT: ["character-caption"],
    OutputType.AUDIO: ["tts"],
}
STATUSES = ["completed"] * 8 + ["failed", "cancelled", "pending", "processing"]
COLUMNS = ["id", "user_id", "workflow_name", "status", "progress", "public", "created_at"]


async def seed(
    conn: asyncpg.Connection, *, rows: int, users: int, hot_share: float = 0.02
) -> uuid.UUID:
    """COPY `rows` jobs into the four tables; return the id of the measured ('hot') user."""
    user_ids = [uuid.uuid4() for _ in range(users)]
    await conn.copy_records_to_table(
        "users",
        records=[(u, f"bench{i}@example.com", "x") for i, u in enumerate(user_ids)],
        columns=["id", "email", "password_hash"],
    )
    hot = user_ids[0]
    rng = random.Random(1)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    kinds = list(OutputType)
    batches: dict[OutputType, list[tuple]] = {k: [] for k in kinds}
    for i in range(rows):
        kind = kinds[i % 4]
        owner = hot if rng.random() < hot_share else user_ids[rng.randrange(users)]
        status = rng.choice(STATUSES)
        batches[kind].append((
            uuid.uuid4(), owner, rng.choice(WORKFLOWS[kind]), status,
            100.0 if status == "completed" else 0.0, rng.random() < 0.3,
            # ~2 jobs a minute over the period, with many equal timestamps
            start + timedelta(seconds=(i // 3) * 30),
        ))  # fmt: skip
        if len(batches[kind]) >= 50_000:
            await conn.copy_records_to_table(kind.table, records=batches[kind], columns=COLUMNS)
            batches[kind].clear()
    for kind, batch in batches.items():
        if batch:
            await conn.copy_records_to_table(kind.table, records=batch, columns=COLUMNS)
    for kind in kinds:
        await conn.execute(f"ANALYZE {kind.table}")
    await conn.execute("ANALYZE users")
    return hot


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL",
                        "postgresql://postgres@127.0.0.1:5432/postgres"))  # fmt: skip
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--depth", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    from tests.dbutil import create_database, drop_database

    dsn = await create_database(args.dsn, "bench_feed")
    try:
        conn = await asyncpg.connect(dsn)
        await apply_migrations(conn)
        t0 = time.perf_counter()
        hot = await seed(conn, rows=args.rows, users=args.users)
        took = time.perf_counter() - t0
        print(f"seeded {args.rows:,} jobs for {args.users:,} users in {took:.1f} s")
        await conn.close()

        pool = await create_pool(dsn, min_size=1, max_size=2)
        viewer, query = Viewer(hot), JobQuery(scope=Scope.MINE)
        async with pool.acquire() as conn:
            owned = 0
            for k in OutputType:
                sql = f"SELECT count(*) FROM {k.table} WHERE user_id = $1"
                owned += await conn.fetchval(sql, hot)
            depth = min(args.depth, owned - 20)
            deep_row = await conn.fetchrow(
                " UNION ALL ".join(f"(SELECT created_at, id FROM {k.table} WHERE user_id = $1 "
                                   "AND deleted_at IS NULL)" for k in OutputType)
                + " ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1", hot, depth - 1,
            )  # fmt: skip
            deep = Cursor(deep_row["created_at"], deep_row["id"])

            async def first_page() -> object:
                return await job_page(conn, viewer, query, first=20)

            async def deep_page() -> object:
                return await job_page(conn, viewer, query, first=20, after=deep)

            first = await time_async(first_page, runs=args.runs)
            deeper = await time_async(deep_page, runs=args.runs)
        await pool.close()
        print(f"user owns {owned:,} rows; deep page starts after row {depth:,}")
        print(f"first page of 20   : {summary(first)}")
        print(f"page {depth:,} deep : {summary(deeper)}")
        ratio = percentile(deeper, 50) / percentile(first, 50)
        print(f"deep/first at p50  : {ratio:.2f}  (target <= 1.5; first p50 target <= 3 ms)")
    finally:
        if not args.keep:
            await drop_database(args.dsn, dsn)


if __name__ == "__main__":
    asyncio.run(main())
