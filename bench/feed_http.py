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

    python bench/feed_http.py --gc [--rows 100000 --runs 500 --seconds 4 --reps 2]

instead compares GC policies (server/gc_tuning.py): one server per (GC_THRESHOLDS,
GC_FREEZE_AT_START) in GC_POLICIES, on both paths, `jobs(first: 20)` only, and prints
the same figures per policy, plus the median and the worst per-rep ratio to the
interpreter's default (700,10,10, no freeze). docs/gc.md has the figures behind
`serve`'s choice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import psutil

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


#: name -> (GC_THRESHOLDS, GC_FREEZE_AT_START) compared by --gc
GC_POLICIES = {
    "700,10,10": ("700,10,10", "false"),  # the interpreter's default
    "700,10,10+freeze": ("700,10,10", "true"),
    "10000,10,10+freeze": ("10000,10,10", "true"),
    "10000,20,100+freeze": ("10000,20,100", "true"),
    "50000,20,100+freeze": ("50000,20,100", "true"),
}


def start_server(
    dsn: str, port: int, data_dir: Path, *, compiled: bool = True,
    gc: tuple[str, str] | None = None,
) -> subprocess.Popen[bytes]:  # fmt: skip
    env = {**os.environ, "DATABASE_URL": dsn, "JWT_SECRET": SECRET,
           "COMFYGRAPH_DATA_DIR": str(data_dir),
           "COMPILED_QUERIES": "true" if compiled else "false"}  # fmt: skip
    if gc is not None:  # timed collections (bench/gc_probe.py)
        env["GC_THRESHOLDS"], env["GC_FREEZE_AT_START"] = gc
        env["GC_PROBE_OUT"] = str(data_dir / f"gc-{port}.json")
        env["DB_POOL_MAX"] = "4"  # ten servers at once on a shared PostgreSQL
        probe = [sys.executable, "bench/gc_probe.py", str(port)]
        return subprocess.Popen(probe, cwd=ROOT, env=env)
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
    parser.add_argument("--gc", action="store_true", help="compare GC policies instead")
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
    if args.gc:
        await compare_gc(args, dsn, data_dir, token)
        return
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


def med(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


async def measure(port: int, body: bytes, token: str, args: argparse.Namespace, doc: str,
                  server: subprocess.Popen[bytes]) -> dict[str, float]:  # fmt: skip
    """Latency at 1 connection, then load; `cpu` is the server's CPU ms per request
    under load (less hostage to a busy machine than wall-clock figures)."""
    clients = [await RawHTTP(port, body, token).open() for _ in range(args.concurrency)]
    page = orjson.loads(await clients[0].post())
    assert "errors" not in page and len(page["data"][doc]["edges"]) == 20, page
    one = await time_async(clients[0].post, runs=args.runs, warmup=100)
    process = psutil.Process(server.pid)
    gc_before = await gc_totals(server, port)
    before = process.cpu_times()
    load = await under_load(clients, args.seconds)
    after = process.cpu_times()
    gc_after = await gc_totals(server, port)
    for client in clients:
        client.close()
    spent = (after.user + after.system) - (before.user + before.system)
    requests = load["rps"] * args.seconds
    gc_figures = {
        "gc_ms": (gc_after["seconds"] - gc_before["seconds"]) * 1000 / requests,
        "gen2": (gc_after["collections"][2] - gc_before["collections"][2]) * 1000 / requests,
        "pause": gc_after["max_pause_ms"],
    }
    return {"p50@1": percentile(one, 50), "p99@1": percentile(one, 99), **load,
            "cpu": spent * 1000 / requests, **gc_figures}  # fmt: skip


async def gc_totals(server: subprocess.Popen[bytes], port: int) -> dict[str, Any]:
    """The probe's totals so far (SIGUSR1 makes it write them)."""
    out = ROOT / ".data" / "bench" / f"gc-{port}.json"
    out.unlink(missing_ok=True)
    server.send_signal(signal.SIGUSR1)
    for _ in range(500):
        if out.exists() and out.stat().st_size:
            return orjson.loads(out.read_bytes())  # type: ignore[no-any-return]
        await asyncio.sleep(0.01)
    raise TimeoutError("the GC probe did not answer")


async def compare_gc(args: argparse.Namespace, dsn: str, data_dir: Path, token: str) -> None:
    """One server per (path, GC policy); reps interleave every server."""
    body = orjson.dumps({"query": QUERY, "variables": {"first": 20}})
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    servers: dict[tuple[str, str], tuple[int, subprocess.Popen[bytes]]] = {}
    for path, compiled in (("compiled", True), ("interpreted", False)):
        for name, policy in GC_POLICIES.items():
            port = free_port()
            servers[(path, name)] = (
                port, start_server(dsn, port, data_dir, compiled=compiled, gc=policy)
            )  # fmt: skip
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    try:
        for port, _ in servers.values():
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as probe:
                await wait_ready(probe)
        for rep in range(args.reps):
            for key, (port, server) in servers.items():
                got = await measure(port, body, token, args, "jobs", server)
                for k, v in got.items():
                    results.setdefault(key, {}).setdefault(k, []).append(v)
                print(f"rep {rep + 1} {key[0]:11} {key[1]:20} p50@1 {got['p50@1']:.2f} ms "
                      f"{got['rps']:,.0f} req/s p99@{args.concurrency} {got['p99']:.1f} ms "
                      f"cpu {got['cpu']:.2f} ms/req gc {got['gc_ms']:.3f} ms/req "
                      f"max pause {got['pause']:.1f} ms", flush=True)  # fmt: skip
    finally:
        for _, server in servers.values():
            server.terminate()
            server.wait(10)
    print(f"\njobs(first: 20), {args.rows:,} rows; median of {args.reps} interleaved reps; "
          f"{args.concurrency} connections; ratios against 700,10,10 without freeze")  # fmt: skip
    print(f"{'path':11} {'gc policy':20} {'p50@1':>7} {'p99@1':>7} {'req/s':>7} "
          f"{'p50@N':>7} {'p99@N':>7} {'cpu/req':>7} {'gc/req':>7} {'gen2/1k':>7} "
          f"{'pause':>6} {'req/s x':>8} {'p99@N x':>8}")  # fmt: skip
    for (path, name), r in results.items():
        m = {k: med(v) for k, v in r.items()}
        base = {k: med(v) for k, v in results[(path, "700,10,10")].items()}
        print(f"{path:11} {name:20} {m['p50@1']:7.2f} {m['p99@1']:7.2f} {m['rps']:7,.0f} "
              f"{m['p50']:7.2f} {m['p99']:7.2f} {m['cpu']:7.2f} {m['gc_ms']:7.3f} "
              f"{m['gen2']:7.2f} {m['pause']:6.1f} {m['rps'] / base['rps']:7.2f}x "
              f"{m['p99'] / base['p99']:7.2f}x")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
