"""The jobs feed over HTTP against the floor of the same page through raw asyncpg.

    python bench/feed_http.py [--dsn DSN] [--rows 1000000] [--users 1000]
                              [--runs 2000] [--concurrency 16] [--seconds 10]

DSN is a database to use (default: DATABASE_URL, else database bench_http_ROWS of an
embedded server under .data/bench). It is migrated, and seeded with ROWS jobs
(bench/feed_sql.py's COPY seeder) when its job tables are empty, so a second run
starts at once.

The server is `comfygraph serve`'s app under uvicorn in one separate process, access
log off. The page: `jobs(first: 20)` for the user who owns the most jobs, asking 15
fields and `owner { email }`. Figures: latency p50/p99 one request at a time, req/s
with CONCURRENCY requests in flight, and the floor: the same statements (db.feed.job_page,
db.users.users_by_ids) on one asyncpg connection. Target: full stack / floor <= 4 at p50.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import percentile, summary, time_async  # noqa: E402
from comfygraph.db.feed import JobQuery, job_page  # noqa: E402
from comfygraph.db.kinds import OutputType  # noqa: E402
from comfygraph.db.migrate import apply_migrations  # noqa: E402
from comfygraph.db.pool import connect  # noqa: E402
from comfygraph.db.users import users_by_ids  # noqa: E402
from comfygraph.db.visibility import Scope, Viewer  # noqa: E402
from comfygraph.studio.auth import issue_token  # noqa: E402
from tests.servers import free_port  # noqa: E402

SECRET = "bench-secret-0123456789abcdefghij"
QUERY = """query Feed($first: Int!) {
  jobs(first: $first) {
    edges { cursor node { ... on GenerationJob {
      id outputType workflowName status progress parameters public createdAt startedAt
      completedAt processingTimeSeconds errorMessage comfyJobId comfyUrl costUsd
      owner { email }
    } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def prepare(dsn: str, rows: int, users: int) -> uuid.UUID:
    """Migrate, seed when empty, and return the user who owns the most jobs."""
    conn = await connect(dsn)
    try:
        await apply_migrations(conn)
        if await conn.fetchval("SELECT NOT EXISTS (SELECT 1 FROM image_jobs)"):
            from bench.feed_sql import seed

            started = time.perf_counter()
            hot = await seed(conn, rows=rows, users=users)
            print(
                f"seeded {rows:,} jobs for {users:,} users in {time.perf_counter() - started:.1f} s"
            )
            return hot
        hot = await conn.fetchval(
            "SELECT user_id FROM image_jobs GROUP BY user_id ORDER BY count(*) DESC LIMIT 1"
        )
        total = sum([await conn.fetchval(f"SELECT count(*) FROM {k.table}") for k in OutputType])
        print(f"database already holds {total:,} jobs")
        return hot  # type: ignore[no-any-return]
    finally:
        await conn.close()


def start_server(dsn: str, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": dsn, "JWT_SECRET": SECRET,
           "COMFYGRAPH_DATA_DIR": str(data_dir)}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "server.factory:app_from_env", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--no-access-log", "--ws-per-message-deflate", "false"],
        cwd=ROOT, env=env,
    )  # fmt: skip


class RawHTTP:
    """Keep-alive HTTP/1.1 POSTs of one prepared request over a bare asyncio stream,
    so that the client adds as little as possible to what is measured."""

    def __init__(self, port: int, body: bytes, token: str) -> None:
        self.port = port
        self.request = (
            f"POST /graphql HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            f"content-type: application/json\r\nauthorization: Bearer {token}\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def open(self) -> RawHTTP:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def post(self) -> bytes:
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def wait_ready(client: httpx.AsyncClient, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not become ready")
        await asyncio.sleep(0.1)


async def throughput(clients: list[RawHTTP], seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(client: RawHTTP) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await client.post()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    return done / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    data_dir = ROOT / ".data" / "bench"
    dsn = args.dsn
    if dsn is None:
        from comfygraph.db.embedded import start_embedded
        from tests.dbutil import with_database

        admin = await asyncio.to_thread(start_embedded, data_dir)
        name = f"bench_http_{args.rows}"
        conn = await asyncpg.connect(admin)
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        dsn = with_database(admin, name)

    hot = await prepare(dsn, args.rows, args.users)
    viewer, query = Viewer(hot), JobQuery(scope=Scope.MINE)

    conn = await connect(dsn)

    async def floor_page() -> object:
        page = await job_page(conn, viewer, query, first=20)
        return await users_by_ids(conn, {r["user_id"] for r in page.rows})

    async def feed_only() -> object:
        return await job_page(conn, viewer, query, first=20)

    floor = await time_async(floor_page, runs=args.runs)
    feed_sql = await time_async(feed_only, runs=args.runs)
    await conn.close()

    port = free_port()
    server = start_server(dsn, port, data_dir)
    token = issue_token(SECRET, hot, ttl=3600)
    body = orjson.dumps({"query": QUERY, "variables": {"first": 20}})
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as probe:
            await wait_ready(probe)
        clients = [await RawHTTP(port, body, token).open() for _ in range(args.concurrency)]
        page = orjson.loads(await clients[0].post())
        assert "errors" not in page and len(page["data"]["jobs"]["edges"]) == 20, page
        full = await time_async(clients[0].post, runs=args.runs, warmup=200)
        rps = await throughput(clients, args.seconds)
        for client in clients:
            client.close()
    finally:
        server.terminate()
        server.wait(10)

    print(f"page of 20 for a user owning ~{args.rows // 50:,} of {args.rows:,} jobs")
    print(f"floor: job_page + users_by_ids : {summary(floor)}")
    print(f"       job_page alone          : {summary(feed_sql)}")
    print(f"full stack over HTTP (1 at a time): {summary(full)}")
    print(f"throughput, {args.concurrency} in flight: {rps:,.0f} req/s")
    ratio = percentile(full, 50) / percentile(floor, 50)
    print(f"full stack / floor at p50: {ratio:.2f}  (target <= 4)")


if __name__ == "__main__":
    asyncio.run(main())
