"""Fault drills: two replicas (real `serve` processes), emulator workers in their own
processes and a Redis of the drill's own; each fault hits while jobs are in flight.

    python bench/drill.py [--dsn DSN] [--jobs 20] [--faults replica,redis,worker,stall]
                          [--soak-minutes 0]

Prints one table. Columns: jobs in flight when the fault hit (accepted, not terminal),
accepted submissions, completed, failed with a reason (error message set), lost
(accepted but not terminal at the deadline), duplicated (a job whose prompt succeeded
more than once on the live workers' /history), terminal events missed by a jobUpdates
subscriber on the replica that was not hit, recovery seconds (from the fault until
every accepted job is terminal). Submissions go to replica A; the subscriber is on B.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from comfygraph.db.kinds import OutputType
from comfygraph.db.migrate import apply_migrations
from comfygraph.schema.node import from_global_id
from comfygraph.studio.auth import issue_token
from comfygraph.studio.stall import prompt_id_for
from tests.db.factories import make_user
from tests.dbutil import create_database, drop_database
from tests.realtime.client import JOB_UPDATES, Client
from tests.realtime.harness import (
    SECRET,
    Process,
    faults,
    ready,
    start_process,
    stop_process,
    submit,
)
from tests.realtime.test_outage import Redis
from tests.servers import free_port

TERMINAL = ("completed", "failed", "cancelled")


@dataclass
class Row:
    fault: str
    in_flight: int = 0
    accepted: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    duplicated: int = 0
    missed: int = 0
    recovery: float = 0.0
    notes: list[str] = field(default_factory=list)


class Emulator:
    def __init__(self, speed: float) -> None:
        self.port, self.speed = free_port(), speed
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "comfygraph.server.cli", "emulator",
             "--port", str(self.port), "--speed", str(self.speed)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    async def listening(self) -> None:
        async with httpx.AsyncClient(timeout=2) as http, asyncio.timeout(30):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    await http.get(f"{self.url}/system_stats")
                    return
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        assert self.popen is not None
        self.popen.kill()
        self.popen.wait(10)


class Fleet:
    def __init__(self, dsn: str, tmp: Path, speed: float, workers: int) -> None:
        self.dsn, self.tmp = dsn, tmp
        self.redis = Redis(tmp)
        self.emulators = [Emulator(speed) for _ in range(workers)]
        self.replicas: list[Process] = []
        self.token = ""

    def env(self) -> dict[str, str]:
        return {
            "COMFY_WORKERS": ",".join(e.url for e in self.emulators),
            "BROADCAST_URL": self.redis.url,
            "LEASE_SECONDS": "5",
            "STALL_SECONDS": "4",
            "WORKER_HEALTH_INTERVAL": "1",
            "WORKER_UNAVAILABLE_AFTER": "3",
            "DISPATCH_POLL_INTERVAL": "0.5",
            "RATE_SUBMISSIONS_PER_MINUTE": "100000",
            "RATE_ACTIVE_JOBS": "100000",
        }

    async def replica(self, index: int) -> Process:
        data = self.tmp / f"replica-{index}-{uuid.uuid4().hex[:6]}"
        data.mkdir()
        process = start_process(self.dsn, data, **self.env())
        await ready(process, within=60)
        return process

    async def start(self) -> None:
        self.redis.start()
        for e in self.emulators:
            e.start()
        for e in self.emulators:
            await e.listening()
        conn = await asyncpg.connect(self.dsn)
        try:
            await apply_migrations(conn)
            user = await make_user(conn, role="admin")  # admins skip the per-user limits
        finally:
            await conn.close()
        self.token = issue_token(SECRET, user["id"], role="admin")
        self.replicas = [await self.replica(0), await self.replica(1)]

    def stop(self) -> None:
        for r in self.replicas:
            if r.popen.poll() is None:
                stop_process(r)
        for e in self.emulators:
            if e.popen and e.popen.poll() is None:
                e.kill()
        if self.redis.popen and self.redis.popen.poll() is None:
            self.redis.kill()


def raw_id(global_id: str) -> uuid.UUID:
    return from_global_id(global_id)[1]


async def statuses(dsn: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str | None]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            " UNION ALL ".join(
                f"SELECT id, status::text, error_message FROM {kind.value}_jobs"
                " WHERE id = ANY($1::uuid[])"
                for kind in OutputType
            ),
            ids,
        )
    finally:
        await conn.close()
    return {r["id"]: (r["status"], r["error_message"]) for r in rows}


async def successes(fleet: Fleet) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for e in fleet.emulators:
            with contextlib.suppress(httpx.HTTPError):
                history = (await http.get(f"{e.url}/history")).json()
                for prompt_id, item in history.items():
                    if (item.get("status") or {}).get("status_str") == "success":
                        counts[prompt_id] = counts.get(prompt_id, 0) + 1
    return counts


async def drill(
    fleet: Fleet,
    name: str,
    jobs: int,
    fault: Callable[[], Awaitable[None]],
    deadline: float,
    pace: float = 0.0,
) -> Row:
    """Submit `jobs` (all at once, or one every `pace` s while `fault` runs), then the
    fault, then wait for every accepted job to be terminal."""
    row = Row(name)
    a, b = fleet.replicas
    seen: dict[str, int] = {}
    wanted: set[str] = set()
    all_seen = asyncio.Event()
    async with await Client.connect(b.ws_url, token=fleet.token) as client:
        feed = await client.subscribe(JOB_UPDATES, {"filter": {"scope": "MINE"}})

        async def follow() -> None:
            while True:
                job = await feed.data(within=3600)
                if job["status"].lower() in TERMINAL:
                    seen[job["id"]] = seen.get(job["id"], 0) + 1
                    if wanted and wanted <= seen.keys():
                        all_seen.set()

        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.3)  # the subscription is registered before the first job
        ids: dict[uuid.UUID, str] = {}
        during = asyncio.create_task(fault()) if pace else None
        for i in range(jobs):
            if pace:
                await asyncio.sleep(pace)
            try:
                gid = await submit(a.url, fleet.token, prompt=f"{name} {i}")
            except (AssertionError, httpx.HTTPError, KeyError) as exc:
                row.notes.append(f"submit refused: {exc}")
                continue
            ids[raw_id(gid)] = gid
        row.accepted = len(ids)
        wanted.update(ids.values())
        await asyncio.sleep(0.5)  # jobs reach the workers
        now = await statuses(fleet.dsn, list(ids))
        row.in_flight = sum(1 for s, _ in now.values() if s not in TERMINAL)
        started = time.monotonic()
        if during is None:
            await fault()
        else:
            await during
        while time.monotonic() - started < deadline:
            now = await statuses(fleet.dsn, list(ids))
            if all(s in TERMINAL for s, _ in now.values()) and len(now) == len(ids):
                break
            await asyncio.sleep(0.2)
        row.recovery = time.monotonic() - started
        with contextlib.suppress(TimeoutError):  # the last events in transit
            async with asyncio.timeout(10):
                if not wanted <= seen.keys():
                    await all_seen.wait()
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await follower
    row.completed = sum(1 for s, _ in now.values() if s == "completed")
    row.failed = sum(1 for s, m in now.values() if s == "failed" and m)
    row.lost = len(ids) - sum(1 for s, _ in now.values() if s in TERMINAL)
    row.missed = sum(1 for gid in ids.values() if gid not in seen)
    runs = await successes(fleet)
    row.duplicated = sum(
        1
        for job in ids
        if sum(runs.get(p, 0) for p in {prompt_id_for(job, n) for n in range(1, 4)}) > 1
    )
    row.notes += sorted({m for s, m in now.values() if s == "failed" and m})[:2]
    return row


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--dsn",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--speed", type=float, default=4.0)
    parser.add_argument("--faults", default="replica,redis,worker,stall")
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--soak-minutes", type=float, default=0.0)
    args = parser.parse_args()

    dsn = await create_database(args.dsn, "bench_drill")
    tmp = Path(tempfile.mkdtemp(prefix="bench-drill-"))
    fleet = Fleet(dsn, tmp, args.speed, args.workers)
    rows: list[Row] = []
    try:
        await fleet.start()

        async def sigkill_replica() -> None:
            fleet.replicas[0].popen.kill()  # A: it took the submissions
            fleet.replicas[0].popen.wait(10)

        async def redis_10s() -> None:
            fleet.redis.kill()
            await asyncio.sleep(10)
            fleet.redis.start()

        async def kill_worker() -> None:
            fleet.emulators[0].kill()

        async def stall_worker() -> None:
            for e in fleet.emulators:
                await faults(e.url, action="stall", class_type="KSampler", times=1)

        plan: dict[str, tuple[str, Callable[[], Awaitable[None]]]] = {
            "replica": ("SIGKILL one replica", sigkill_replica),
            "redis": ("kill Redis 10 s", redis_10s),
            "worker": ("kill a worker", kill_worker),
            "stall": ("stall a worker", stall_worker),
        }
        for key in args.faults.split(","):
            label, fault = plan[key]
            rows.append(await drill(fleet, label, args.jobs, fault, args.deadline))
            # Back to a whole fleet for the next row.
            if key == "replica":
                fleet.replicas[0] = await fleet.replica(2)
            if key == "worker":
                fleet.emulators[0].start()
                await fleet.emulators[0].listening()
            if key == "stall":
                for e in fleet.emulators:
                    await faults(e.url, action="clear")
        if args.soak_minutes > 0:
            rows.append(await soak(fleet, args.soak_minutes))
    finally:
        fleet.stop()
        await drop_database(args.dsn, dsn)
    print_table(rows)


async def soak(fleet: Fleet, minutes: float) -> Row:
    """Mixed traffic (submissions, feed reads, a subscriber) for `minutes`, sampling
    each replica's RSS and open fds once a minute; notes say how they moved."""
    import psutil

    samples: list[tuple[int, int]] = []
    stop = time.monotonic() + minutes * 60

    async def traffic() -> None:
        async with httpx.AsyncClient(base_url=fleet.replicas[1].url, timeout=30) as http:
            while time.monotonic() < stop:
                await http.post(
                    "/graphql",
                    json={"query": "{ jobs(first: 20) { edges { node { id } } } }"},
                    headers={"authorization": f"Bearer {fleet.token}"},
                )
                await asyncio.sleep(0.2)

    def take() -> None:
        procs = [psutil.Process(r.pid) for r in fleet.replicas]
        samples.append((sum(p.memory_info().rss for p in procs), sum(p.num_fds() for p in procs)))

    async def sample() -> None:  # at the start, every minute, and at the end
        take()
        while (left := stop - time.monotonic()) > 0:
            await asyncio.sleep(min(60.0, left))
            take()

    async def nothing() -> None:
        await asyncio.gather(traffic(), sample())

    jobs = max(1, int(minutes * 60 / 2) - 1)  # one submission every 2 s over the soak
    row = await drill(fleet, f"soak {minutes:g} min", jobs, nothing, 120, pace=2.0)
    if samples:
        (rss0, fd0), (rss1, fd1) = samples[0], samples[-1]
        row.notes.append(
            f"RSS {rss0 / 2**20:.0f}->{rss1 / 2**20:.0f} MiB, fds {fd0}->{fd1}"
            f" ({len(samples)} samples)"
        )
    return row


def print_table(rows: list[Row]) -> None:
    head = ("fault", "in flight", "accepted", "completed", "failed (reason)", "lost",
            "duplicated", "events missed", "recovery s")  # fmt: skip
    body = [
        (r.fault, r.in_flight, r.accepted, r.completed, r.failed, r.lost, r.duplicated,
         r.missed, f"{r.recovery:.1f}")
        for r in rows
    ]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for line in body:
        print("| " + " | ".join(str(c) for c in line) + " |")
    for r in rows:
        for note in r.notes:
            print(f"- {r.fault}: {note}")


if __name__ == "__main__":
    asyncio.run(main())
