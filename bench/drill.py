"""Fault drills: two replicas (real `serve` processes), emulator workers in their own
processes, and a PostgreSQL and a Redis of the drill's own (free ports); each fault hits
while jobs are in flight. The fleet machinery is tests/drills/fleet.py (the fast faults
run as tests there too).

    python bench/drill.py [--jobs 20] [--workers 4] [--soak-minutes 0]
        [--faults replica,postgres,redis,worker,stall,rate,nginx | none]
        [--rate 200] [--rate-seconds 60] [--pg-down 5] [--pg-kill] [--dsn DSN]

Prints one table and exits 1 if any row lost, duplicated or missed anything (or the rate
or soak row had a submission refused). Columns:
jobs in flight when the fault hit (accepted, not terminal), accepted submissions,
completed, failed with a reason (error message set), lost (accepted but not terminal at
the deadline), duplicated (a job whose prompt succeeded more than once on the live
workers' /history), terminal events missed by a jobUpdates subscriber on the replica
that was not hit, recovery seconds (from the fault, or the end of the load, until every
accepted job is terminal). Submissions go to replica A; the subscriber is on B.

Rows: `replica` SIGKILL of A; `postgres` the drill's PostgreSQL stopped (fast shutdown,
or SIGKILL of the postmaster with --pg-kill) for --pg-down s while one job a second is
submitted, the replicas recover by themselves; `redis` its Redis killed 10 s; `worker`
one emulator killed; `stall` every emulator stalls one node; `rate` an open-loop
submitter at --rate/s for --rate-seconds split over both replicas (latency p50/p99 from
each submission's scheduled time, so a slow server cannot slow the load down);
`nginx` a fleet of its own behind a real nginx with S3 storage (see nginx_row).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.dbutil import create_database, drop_database
from tests.drills.fleet import (
    Fleet,
    Nginx,
    Postgres,
    Refused,
    Row,
    Submitter,
    drill,
    nginx_drill,
    nginx_installed,
    raw_id,
)
from tests.realtime.harness import faults
from tests.s3server import CREDENTIALS, create_bucket, moto_server


def scratch() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="bench-drill-"))
    tmp.chmod(0o755)  # its PostgreSQL runs as a user of its own when we are root
    return tmp


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", help="an existing server to run on (no `postgres` row)")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--speed", type=float, default=4.0)
    parser.add_argument("--faults", default="replica,postgres,redis,worker,stall,rate,nginx")
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--soak-minutes", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=200.0, help="submissions per second")
    parser.add_argument("--rate-seconds", type=float, default=60.0)
    parser.add_argument("--rate-speed", type=float, default=1000.0, help="emulator speed then")
    parser.add_argument("--pg-down", type=float, default=5.0, help="seconds PostgreSQL is down")
    parser.add_argument("--pg-kill", action="store_true", help="SIGKILL the postmaster")
    args = parser.parse_args()
    keys = [k for k in args.faults.split(",") if k and k != "none"]
    if args.dsn and "postgres" in keys:
        parser.error("the postgres row restarts the drill's own server: drop --dsn")

    tmp = scratch()
    pg: Postgres | None = None
    if args.dsn:
        admin = args.dsn
    else:
        pg = Postgres(tmp)
        pg.init()
        await pg.start()
        admin = pg.dsn
    dsn = await create_database(admin, "bench_drill")
    rows: list[Row] = []
    fleet_keys = [k for k in keys if k != "nginx"]
    try:
        if fleet_keys or args.soak_minutes > 0:
            fleet = Fleet(dsn, tmp, speed=args.speed, workers=args.workers)
            try:
                await fleet.start()
                rows += await fleet_rows(fleet, fleet_keys, args, pg)
            finally:
                fleet.stop()
        if "nginx" in keys:
            rows.append(await nginx_row(admin, tmp, args))
    finally:
        with contextlib.suppress(Exception):
            await drop_database(admin, dsn)
        if pg is not None:
            pg.stop()
    print_table(rows)
    return 0 if all(r.clean for r in rows) else 1


async def fleet_rows(
    fleet: Fleet, keys: list[str], args: argparse.Namespace, pg: Postgres | None
) -> list[Row]:
    rows: list[Row] = []

    async def sigkill_replica() -> None:
        fleet.replicas[0].popen.kill()  # A: it took the submissions
        fleet.replicas[0].popen.wait(10)

    async def restart_postgres() -> None:
        assert pg is not None
        await asyncio.sleep(2)  # a few submissions before the outage
        pg.stop(kill=args.pg_kill)
        await asyncio.sleep(args.pg_down)
        await pg.start()

    async def redis_10s() -> None:
        assert fleet.redis is not None
        fleet.redis.kill()
        await asyncio.sleep(10)
        fleet.redis.start()

    async def kill_worker() -> None:
        fleet.emulators[0].kill()

    async def stall_worker() -> None:
        for e in fleet.emulators:
            await faults(e.url, action="stall", class_type="KSampler", times=1)

    plan: dict[str, tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = {
        "replica": ("SIGKILL one replica", sigkill_replica),
        "postgres": ("restart PostgreSQL", restart_postgres),
        "redis": ("kill Redis 10 s", redis_10s),
        "worker": ("kill a worker", kill_worker),
        "stall": ("stall a worker", stall_worker),
    }
    for key in keys:
        if key == "rate":
            rows.append(await rate_row(fleet, args))
            continue
        label, fault = plan[key]
        if key == "postgres":
            # One submission a second through the outage: some are refused
            # (SERVICE_UNAVAILABLE), none accepted is lost.
            label += " (SIGKILL)" if args.pg_kill else " (fast stop)"
            label += f" {args.pg_down:g} s"
            jobs = int(args.pg_down + 8)
            rows.append(await drill(fleet, label, jobs, fault, args.deadline, pace=1.0))
        else:
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
    return rows


async def rate_row(fleet: Fleet, args: argparse.Namespace) -> Row:
    """Open loop: submission i is sent at t0 + i/rate whatever the earlier ones are doing,
    alternately to A and B; its latency counts from that scheduled time."""
    for e in fleet.emulators:
        await faults(e.url, action="speed", speed=args.rate_speed)
    total = int(args.rate * args.rate_seconds)
    latencies: list[float] = []
    served: list[float] = []  # from the actual send: the server's (and the client's) part
    last_answer = [0.0]

    async def load(sub: Submitter, row: Row) -> dict[uuid.UUID, str]:
        ids: dict[uuid.UUID, str] = {}
        t0 = time.monotonic()

        async def one(i: int, due: float) -> None:
            url = fleet.replicas[i % 2].url
            sent = time.monotonic()
            try:
                # The smallest image: the emulators' PNG encoding (a GPU host's work)
                # shares this machine's two cores with the replicas being measured.
                gid = await sub.submit(url, f"rate {i}", width=256, height=256)
            except Refused as exc:
                row.refused[exc.code] += 1
                return
            finally:
                last_answer[0] = time.monotonic()
            latencies.append(time.monotonic() - due)
            served.append(time.monotonic() - sent)
            ids[raw_id(gid)] = gid

        tasks = []
        for i in range(total):
            due = t0 + i / args.rate
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)  # the schedule, not synchronisation
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        span = last_answer[0] - t0
        if latencies:
            (p50, p99), (s50, s99) = percentiles(latencies), percentiles(served)
            row.notes.append(
                f"asked {args.rate:g}/s for {args.rate_seconds:g} s ({total}): accepted"
                f" {len(ids) / span:.1f}/s over {span:.1f} s; submission latency"
                f" p50 {p50:.0f} ms, p99 {p99:.0f} ms from the scheduled send"
                f" (p50 {s50:.0f} ms, p99 {s99:.0f} ms from the actual send)"
            )
        return ids

    async def nothing() -> None:
        return None

    label = f"{args.rate:g} submissions/s for {args.rate_seconds:g} s, 2 replicas, "
    label += f"{len(fleet.emulators)} workers"
    try:
        row = await drill(fleet, label, 0, nothing, max(args.deadline, 600.0), load=load)
        row.broken += sum(row.refused.values())  # the load asked, the fleet did not take it
        return row
    finally:
        for e in fleet.emulators:
            await faults(e.url, action="speed", speed=args.speed)


def percentiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000  # noqa: E731
    return at(0.50), at(0.99)


async def nginx_row(admin: str, tmp: Path, args: argparse.Namespace) -> Row:
    """Two replicas behind a real nginx, each with its own data directory, sharing one S3
    store (moto's server). nginx balances one port over both (PUBLIC_BASE_URL: every
    replica must name the same one, stored file URLs carry it) and has one port per
    replica, so the drill can choose the replica (a balanced port cannot promise "the
    other one"). Only A has workers, so A stores every output; each job is submitted
    through A, followed over a websocket through B and its files downloaded through B
    (a redirect to a presigned S3 URL)."""
    if not nginx_installed():
        row = Row("nginx + S3: via A, followed and downloaded via B")
        row.notes.append("skipped: nginx is not installed (Debian package nginx-light)")
        return row
    dsn = await create_database(admin, "bench_drill_nginx")
    root = tmp / f"nginx-{uuid.uuid4().hex[:6]}"
    root.mkdir()
    with moto_server() as endpoint:
        storage = {
            "STORAGE_URL": f"s3://{create_bucket(endpoint)}/drill",
            "S3_ENDPOINT_URL": endpoint,
            **CREDENTIALS,
        }
        nginx = Nginx(root, 2)
        fleet = Fleet(dsn, root, speed=args.speed, workers=2, redis=False, env=storage)
        storage["PUBLIC_BASE_URL"] = nginx.shared_url
        fleet.per_replica = {1: {"COMFY_WORKERS": ""}}
        try:
            await fleet.start()
            await nginx.start([r.url for r in fleet.replicas])
            row = await nginx_drill(fleet, nginx, jobs=args.jobs, deadline=args.deadline)
        finally:
            nginx.stop()
            fleet.stop()
            with contextlib.suppress(Exception):
                await drop_database(admin, dsn)
    return row


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
                await asyncio.sleep(0.2)  # the traffic's pacing

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
    # Nothing is down during a soak: any refusal is a fault of the server (or of the
    # drill's client, which is as much worth knowing).
    row.broken += sum(row.refused.values())
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
    sys.exit(asyncio.run(main()))
