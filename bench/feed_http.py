"""The jobs feed over HTTP, compiled vs interpreted, against the floor of the same page
through raw asyncpg, all in one run.

    python bench/feed_http.py [--dsn DSN] [--rows 1000000] [--users 1000]
                              [--runs 1000] [--concurrency 32] [--seconds 5] [--reps 3]

DSN is a database to use (default: DATABASE_URL, else database bench_http_ROWS of an
embedded server under .data/bench). It is migrated, and seeded with ROWS jobs
(bench/feed_sql.py's COPY seeder) when its job tables are empty, so a second run
starts at once.

Two servers, each `comfygraph serve`'s app under uvicorn in its own process, access log
off: one with compiled plans (COMPILED_QUERIES=true), one without. Two pages for the
user who owns the most jobs: `jobs(first: 20)` (four tables, 15 fields and
`owner { email }`) and `imageJobs(first: 20)` (12 fields). Each rep, interleaved:
latency one request at a time (p50/p99), then CONCURRENCY connections for SECONDS
(req/s, p50/p99 under load, and how evenly the connections were served). The floor:
the same statements (db.feed.job_page, db.users.users_by_ids) on one asyncpg
connection. The machine may be noisy: compare the ratios within one run.
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

from bench.common import percentile, time_async  # noqa: E402
from comfygraph.db.feed import JobQuery, job_page  # noqa: E402
from comfygraph.db.kinds import OutputType  # noqa: E402
from comfygraph.db.migrate import apply_migrations  # noqa: E402
from comfygraph.db.pool import connect  # noqa: E402
from comfygraph.db.users import users_by_ids  # noqa: E402
from comfygraph.db.visibility import Scope, Viewer  # noqa: E402
from comfygraph.studio.auth import issue_token  # noqa: E402
from tests.servers import free_port  # noqa: E402

SECRET = "bench-secret-0123456789abcdefghij"
IMAGE_QUERY = """query Images($first: Int!) {
  imageJobs(first: $first) {
    edges { node {
      id workflowName status progress prompt width height public createdAt completedAt
      outputImageUrls costUsd
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
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


def start_server(
    dsn: str, port: int, data_dir: Path, *, compiled: bool = True
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": dsn, "JWT_SECRET": SECRET,
           "COMFYGRAPH_DATA_DIR": str(data_dir),
           "COMPILED_QUERIES": "true" if compiled else "false"}  # fmt: skip
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


async def under_load(clients: list[RawHTTP], seconds: float) -> dict[str, float]:
    """req/s with every client busy, latency percentiles under that load, and the
    fewest and most requests one connection got served."""
    per_client = [0] * len(clients)
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker(i: int, client: RawHTTP) -> None:
        while (now := time.perf_counter()) < stop:
            await client.post()
            latencies.append((time.perf_counter() - now) * 1000)
            per_client[i] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i, c) for i, c in enumerate(clients)))
    return {
        "rps": sum(per_client) / (time.perf_counter() - started),
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "min_conn": min(per_client),
        "max_conn": max(per_client),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=3)
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
    images = JobQuery(scope=Scope.MINE, output_types=frozenset({OutputType.IMAGE}))

    conn = await connect(dsn)

    # The floor selects only what each page shows, as the compiled plans do.
    feed_columns = [
        "workflow_name",
        "status",
        "progress",
        "parameters",
        "public",
        "created_at",
        "started_at",
        "completed_at",
        "processing_time_seconds",
        "error_message",
        "comfy_job_id",
        "comfy_url",
        "cost_usd",
        "user_id",
    ]
    image_columns = [
        "workflow_name",
        "status",
        "progress",
        "prompt",
        "width",
        "height",
        "public",
        "created_at",
        "completed_at",
        "output_image_urls",
        "cost_usd",
    ]

    async def floor_page() -> object:
        page = await job_page(conn, viewer, query, first=20, columns=feed_columns)
        return await users_by_ids(conn, {r["user_id"] for r in page.rows})

    async def floor_images() -> object:
        return await job_page(conn, viewer, images, first=20, columns=image_columns)

    floors = {
        "jobs": await time_async(floor_page, runs=args.runs),
        "imageJobs": await time_async(floor_images, runs=args.runs),
    }
    await conn.close()

    token = issue_token(SECRET, hot, ttl=3600)
    documents = {"jobs": QUERY, "imageJobs": IMAGE_QUERY}
    sides = {"compiled": True, "interpreted": False}
    servers = {}
    for side, compiled in sides.items():
        port = free_port()
        servers[side] = (port, start_server(dsn, port, data_dir, compiled=compiled))
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    try:
        for port, _ in servers.values():
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as probe:
                await wait_ready(probe)
        for rep in range(args.reps):
            for doc, text in documents.items():
                body = orjson.dumps({"query": text, "variables": {"first": 20}})
                for side, (port, _) in servers.items():
                    clients = [await RawHTTP(port, body, token).open()
                               for _ in range(args.concurrency)]  # fmt: skip
                    page = orjson.loads(await clients[0].post())
                    assert "errors" not in page and len(page["data"][doc]["edges"]) == 20, page
                    one = await time_async(clients[0].post, runs=args.runs, warmup=100)
                    load = await under_load(clients, args.seconds)
                    for client in clients:
                        client.close()
                    got = results.setdefault((doc, side), {})
                    got.setdefault("p50@1", []).append(percentile(one, 50))
                    got.setdefault("p99@1", []).append(percentile(one, 99))
                    for key, value in load.items():
                        got.setdefault(key, []).append(value)
                    print(f"rep {rep + 1} {doc:9} {side:11} p50@1 {percentile(one, 50):.2f} ms  "
                          f"{load['rps']:,.0f} req/s @{args.concurrency}", flush=True)  # fmt: skip
    finally:
        for _, server in servers.values():
            server.terminate()
            server.wait(10)

    def med(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    print(f"\npage of 20 for the user owning the most of {args.rows:,} jobs; "
          f"median of {args.reps} interleaved reps; {args.concurrency} connections")  # fmt: skip
    header = (f"{'page':9} {'target':11} {'p50@1':>8} {'p99@1':>8} {'req/s':>7} "
              f"{'p50@N':>8} {'p99@N':>8} {'p99/p50':>7} {'conn min..max':>14}")  # fmt: skip
    print(header)
    for doc in documents:
        floor = floors[doc]
        print(f"{doc:9} {'asyncpg':11} {percentile(floor, 50):7.2f}  {percentile(floor, 99):7.2f}")
        for side in sides:
            r = {k: med(v) for k, v in results[(doc, side)].items()}
            print(f"{doc:9} {side:11} {r['p50@1']:7.2f}  {r['p99@1']:7.2f}  {r['rps']:7,.0f} "
                  f"{r['p50']:7.2f}  {r['p99']:7.2f}  {r['p99'] / r['p50']:6.1f}x "
                  f"{r['min_conn']:6.0f}..{r['max_conn']:<6.0f}")  # fmt: skip
        c, i = (med(results[(doc, s)]["rps"]) for s in sides)
        print(
            f"{doc:9} compiled / interpreted req/s: {c / i:.2f}x; compiled p50@1 / floor "
            f"p50: {med(results[(doc, 'compiled')]['p50@1']) / percentile(floor, 50):.2f}x"
        )


if __name__ == "__main__":
    asyncio.run(main())
