"""Ad-video sessions end to end: many concurrent sessions through the real server.

    python bench/sessions.py [--dsn DSN] [--sessions 20] [--workers 4] [--speed 20]
                             [--images 4] [--clip-seconds 2]

The API server runs in its own process (`python -m server.cli serve`), with WORKERS
emulator workers in theirs (`python -m server.cli emulator --speed S`). Each of SESSIONS
clients, all at once, over HTTP: createSession -> generateSessionImages -> (wait) ->
selectAssets(every image) -> generateSessionClips -> (wait) -> selectAssets(every clip)
-> composeSessionVideo -> (wait) COMPLETED. Waiting is a poll of `session { status }`
every --poll seconds (sessionProgress is another module's).

Prints: wall time per session from createSession to COMPLETED (p50/p90/max) and per
stage; the server's CPU time (user+system, from psutil) per session, with the share the
status polls account for measured separately afterwards and subtracted.
Without --dsn or DATABASE_URL an embedded PostgreSQL is started in a temp folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile
from comfygraph.db.migrate import apply_migrations
from comfygraph.db.pool import connect
from comfygraph.db.users import create_user
from comfygraph.studio.auth import issue_token
from tests.dbutil import create_database, drop_database
from tests.servers import free_port

SECRET = "bench-sessions-secret-0123456789-abcdef"
STATUS = "query($id: ID!) { session(id: $id) { status progressPercentage } }"
ASSETS = "query($id: ID!) { session(id: $id) { assets { id type status } } }"
PAYLOAD = "session { id status } userErrors { code message }"


@dataclass
class Timeline:
    started: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)
    polls: int = 0
    status: str = ""


class Client:
    def __init__(self, http: httpx.AsyncClient, poll: float) -> None:
        self.http, self.poll = http, poll

    async def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        r = await self.http.post("/graphql", json={"query": query, "variables": variables})
        r.raise_for_status()
        body = r.json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        data: dict[str, Any] = body["data"]
        return data

    async def mutate(self, field_call: str, **variables: Any) -> dict[str, Any]:
        signature = ", ".join(f"${k}: {t}" for k, t in _TYPES.items() if k in variables)
        data = await self.gql(f"mutation({signature}) {{ {field_call} {{ {PAYLOAD} }} }}",
                              **variables)  # fmt: skip
        payload: dict[str, Any] = next(iter(data.values()))
        if payload["userErrors"]:
            raise RuntimeError(payload["userErrors"])
        return payload

    async def wait(self, sid: str, wanted: str, timeline: Timeline, deadline: float) -> None:
        while True:
            timeline.polls += 1
            status = (await self.gql(STATUS, id=sid))["session"]["status"]
            timeline.status = status
            if status == wanted:
                return
            if status in ("FAILED", "CANCELLED") or time.monotonic() > deadline:
                raise RuntimeError(f"session {sid} ended {status} waiting for {wanted}")
            await asyncio.sleep(self.poll)

    async def approve_all(self, sid: str, asset_type: str) -> None:
        assets = (await self.gql(ASSETS, id=sid))["session"]["assets"]
        ids = [a["id"] for a in assets if a["type"] == asset_type and a["status"] == "COMPLETED"]
        await self.mutate("selectAssets(sessionId: $id, assetIds: $assets)", id=sid, assets=ids)


_TYPES = {"id": "ID!", "assets": "[ID!]!", "input": "CreateSessionInput!"}


async def one_session(client: Client, n: int, args: argparse.Namespace) -> Timeline:
    timeline = Timeline(started=time.monotonic())
    deadline = timeline.started + args.timeout
    created = await client.mutate(
        "createSession(input: $input)",
        input={"userProductPrompt": f"product #{n}, a ceramic mug", "productName": f"Mug {n}",
               "numImagesRequested": args.images, "clipDurationSeconds": args.clip_seconds},
    )  # fmt: skip
    sid = created["session"]["id"]
    await client.mutate("generateSessionImages(sessionId: $id)", id=sid)
    await client.wait(sid, "REVIEWING_IMAGES", timeline, deadline)
    timeline.marks["images"] = time.monotonic()
    await client.approve_all(sid, "IMAGE")
    await client.mutate("generateSessionClips(sessionId: $id)", id=sid)
    await client.wait(sid, "REVIEWING_VIDEOS", timeline, deadline)
    timeline.marks["clips"] = time.monotonic()
    await client.approve_all(sid, "VIDEO_CLIP")
    await client.mutate("composeSessionVideo(sessionId: $id)", id=sid)
    await client.wait(sid, "COMPLETED", timeline, deadline)
    timeline.marks["compose"] = time.monotonic()
    return timeline


def start(
    command: list[str],
    env: dict[str, str] | None = None,
    log: Path | None = None,
    python: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, *python, "-m", "comfygraph.server.cli", *command],
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
    )


async def wait_up(url: str, path: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            try:
                if (await http.get(f"{url}{path}")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url}{path} did not come up")
            await asyncio.sleep(0.1)


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def admin_dsn(args: argparse.Namespace, tmp: Path) -> str:
    if args.dsn:
        return str(args.dsn)
    from comfygraph.db.embedded import start_embedded

    root = tmp / "pg-root"
    root.mkdir(mode=0o755)
    return start_embedded(root, cleanup="delete")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--speed", type=float, default=20.0)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--clip-seconds", type=float, default=2.0)
    parser.add_argument("--price", type=float, default=1.2, help="worker price, $/hour")
    parser.add_argument("--poll", type=float, default=0.25)
    parser.add_argument("--timeout", type=float, default=1200.0)
    parser.add_argument("--profile", help="write the server's cProfile stats to this file")
    return parser.parse_args()


async def main(args: argparse.Namespace, tmp: Path, server_dsn: str) -> None:
    dsn = await create_database(server_dsn, "bench_sessions")
    conn = await connect(dsn)
    try:
        await apply_migrations(conn)
        user = await create_user(conn, email="bench@example.com", password="x" * 8, rounds=4)
    finally:
        await conn.close()
    token = issue_token(SECRET, user["id"], role="user", ttl=24 * 3600)

    emulators, urls = [], []
    for _ in range(args.workers):
        port = free_port()
        emulators.append(start(["emulator", "--port", str(port), "--speed", str(args.speed)]))
        urls.append(f"http://127.0.0.1:{port}")
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    server = start(
        ["serve", "--port", str(port)],
        env={
            "DATABASE_URL": dsn,
            "COMFY_WORKERS": ",".join(f"{u}@{args.price}" for u in urls),
            "JWT_SECRET": SECRET,
            "COMFYGRAPH_DATA_DIR": str(tmp / "data"),
            "PUBLIC_BASE_URL": api,
            "DB_POOL_MAX": "20",
        },
        log=tmp / "server.log",
        python=("-m", "cProfile", "-o", args.profile) if args.profile else (),
    )
    print(f"server log: {tmp / 'server.log'}", flush=True)
    try:
        for url in urls:
            await wait_up(url, "/system_stats")
        await wait_up(api, "/readyz")
        proc = psutil.Process(server.pid)
        headers = {"authorization": f"Bearer {token}"}
        # Idle connections expire before uvicorn's 5 s keep-alive closes them server-side.
        limits = httpx.Limits(max_connections=args.sessions + 5, keepalive_expiry=2.0)
        async with httpx.AsyncClient(
            base_url=api, headers=headers, timeout=60, limits=limits
        ) as http:
            client = Client(http, args.poll)
            cpu_before, wall_before = cpu_seconds(proc), time.monotonic()
            timelines = await asyncio.gather(
                *(one_session(client, n, args) for n in range(args.sessions))
            )
            cpu_run, wall = cpu_seconds(proc) - cpu_before, time.monotonic() - wall_before
            # What one status poll costs the server, to take the polling out of the figure.
            polls = sum(t.polls for t in timelines)
            sid = (await client.gql("{ sessions(first: 1) { edges { node { id } } } }"))[
                "sessions"
            ]["edges"][0]["node"]["id"]
            probe = 500
            cpu_probe = cpu_seconds(proc)
            for _ in range(probe):
                await client.gql(STATUS, id=sid)
            per_poll = (cpu_seconds(proc) - cpu_probe) / probe
        report(args, timelines, wall, cpu_run, polls, per_poll)
    finally:
        # SIGINT: uvicorn shuts down and re-raises it as KeyboardInterrupt, so cProfile
        # still writes its stats (a re-raised SIGTERM would kill the process first).
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        for emulator in emulators:
            emulator.terminate()
            emulator.wait(timeout=30)
        await drop_database(server_dsn, dsn)


def report(
    args: argparse.Namespace,
    timelines: list[Timeline],
    wall: float,
    cpu: float,
    polls: int,
    per_poll: float,
) -> None:
    totals = [t.marks["compose"] - t.started for t in timelines]
    stages = {
        "images (create -> REVIEWING_IMAGES)": [t.marks["images"] - t.started for t in timelines],
        "clips (select -> REVIEWING_VIDEOS)": [t.marks["clips"] - t.marks["images"]
                                               for t in timelines],
        "compose (select -> COMPLETED)": [t.marks["compose"] - t.marks["clips"]
                                          for t in timelines],
    }  # fmt: skip
    jobs = args.sessions * (2 * args.images + 1)
    print(
        f"{args.sessions} concurrent sessions x ({args.images} images + {args.images} clips of "
        f"{args.clip_seconds:g} s + 1 compose) = {jobs} jobs on {args.workers} emulator "
        f"processes (speed {args.speed:g}), {os.cpu_count()} CPUs"
    )
    print(
        f"wall, createSession -> COMPLETED: p50 {percentile(totals, 50):.1f} s  "
        f"p90 {percentile(totals, 90):.1f} s  max {max(totals):.1f} s  "
        f"(all done in {wall:.1f} s; {jobs / wall:.2f} jobs/s)"
    )
    for name, values in stages.items():
        print(f"  {name}: mean {statistics.fmean(values):.1f} s  max {max(values):.1f} s")
    pipeline_cpu = cpu - polls * per_poll
    print(
        f"server CPU: {cpu:.2f} s in all = {cpu / args.sessions * 1000:.0f} ms per session; "
        f"of which {polls} status polls x {per_poll * 1000:.2f} ms; without them "
        f"{pipeline_cpu / args.sessions * 1000:.0f} ms per session "
        f"({pipeline_cpu / jobs * 1000:.1f} ms per job)"
    )


if __name__ == "__main__":
    arguments_ = arguments()
    scratch = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    scratch.chmod(0o755)  # the embedded server may run as its own user
    asyncio.run(main(arguments_, scratch, admin_dsn(arguments_, scratch)))
