"""Webhook delivery: 1,000 job completions to a loopback receiver that fails 30% of
first attempts.

    python bench/webhooks.py [--dsn DSN] [--jobs 1000] [--fail 0.3] [--rate 200]
                             [--senders 2] [--backoff 1.0]

JOBS image jobs are completed at RATE per second (the guarded transition, so the outbox
trigger writes each delivery in the completion's transaction). SENDERS WebhookSenders
(two replicas' worth) deliver them. The receiver verifies every request with the
`standardwebhooks` verifier, answers 500 to a random FAIL share of first attempts and
200 otherwise. Reported: every job delivered exactly once successfully (counted by
webhook-id), duplicates, and p50/p99 delay from the job's completed_at to its first 2xx.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from standardwebhooks.webhooks import Webhook

from bench.common import percentile
from comfygraph.db import webhooks as db
from comfygraph.db.jobs import create_job, transition
from comfygraph.db.kinds import OutputType
from comfygraph.db.migrate import apply_migrations
from comfygraph.db.pool import create_pool
from comfygraph.db.users import create_user
from comfygraph.schema.node import from_global_id
from comfygraph.studio.webhooks import WebhookPolicy, WebhookSender, new_secret
from comfygraph.studio.webhooks.sender import SenderConfig
from tests.dbutil import create_database, drop_database
from tests.webhooks.receiver import Received, Receiver, serve_receiver


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--dsn",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--fail", type=float, default=0.3)
    parser.add_argument("--rate", type=float, default=200.0, help="completions per second")
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--backoff", type=float, default=1.0, help="first retry delay (s)")
    args = parser.parse_args()

    dsn = await create_database(args.dsn, "bench_webhooks")
    pool = await create_pool(dsn, min_size=4, max_size=24)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
            user = await create_user(conn, email="bench@example.com", password="x" * 12, rounds=4)
        rng = random.Random(15)
        ok_at: dict[str, float] = {}  # webhook-id -> first 2xx
        successes: Counter[str] = Counter()
        bad_signatures = 0
        secret = new_secret()
        verifier = Webhook(secret)

        def answer(got: Received, n: int) -> int:
            nonlocal bad_signatures
            try:
                verifier.verify(got.body, got.headers)
            except Exception:
                bad_signatures += 1
                return 400
            msg = got.headers["webhook-id"]
            first = msg not in seen
            seen.add(msg)
            if first and rng.random() < args.fail:
                failed_first.add(msg)
                return 500
            successes[msg] += 1
            ok_at.setdefault(msg, got.at)
            job_of[msg] = json.loads(got.body)["data"]["id"]
            return 200

        seen: set[str] = set()
        failed_first: set[str] = set()
        job_of: dict[str, str] = {}
        async with serve_receiver(Receiver(answer=answer)) as receiver:
            async with pool.acquire() as conn:
                await db.create_endpoint(
                    conn, user_id=user["id"], url=f"{receiver.url}/hook",
                    events=["job.completed"], secret=secret,
                )  # fmt: skip
                jobs = []
                for _ in range(args.jobs):
                    row, _ = await create_job(
                        conn, OutputType.IMAGE, user_id=user["id"], workflow_name="bench",
                        parameters={},
                    )  # fmt: skip
                    await transition(conn, OutputType.IMAGE, row["id"], "processing")
                    jobs.append(row["id"])
            policy = WebhookPolicy(allow_private=True, http_hosts=frozenset({"127.0.0.1"}))
            config = SenderConfig(backoff_initial=args.backoff, poll_interval=0.2, concurrency=16)
            senders = [WebhookSender(pool, policy, config) for _ in range(args.senders)]
            tasks = [asyncio.create_task(s.loop()) for s in senders]
            ended: dict[Any, float] = {}
            started = time.time()
            for index, job in enumerate(jobs):
                async with pool.acquire() as conn:
                    row = await transition(conn, OutputType.IMAGE, job, "completed")
                ended[job] = row["completed_at"].timestamp()
                senders[index % len(senders)].wake()  # as the runner's listener does
                await asyncio.sleep(max(0.0, started + (index + 1) / args.rate - time.time()))
            with contextlib.suppress(TimeoutError):
                await receiver.wait_for(lambda: len(ok_at) >= args.jobs, within=120)
            for _ in range(300):  # the last answers are recorded just after they arrive
                async with pool.acquire() as conn:
                    left = await conn.fetchval(
                        "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"
                    )
                if not left:
                    break
                await asyncio.sleep(0.1)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        async with pool.acquire() as conn:
            states = dict(
                await conn.fetch("SELECT status, count(*) FROM webhook_deliveries GROUP BY 1")
            )
            attempts = await conn.fetchval("SELECT count(*) FROM webhook_attempts")
        delays = []
        for msg, at in ok_at.items():
            job = from_global_id(job_of[msg])[1]
            delays.append((at - ended[job]) * 1000)
        duplicates = sum(n - 1 for n in successes.values() if n > 1)
        print(f"jobs completed:          {args.jobs} at {args.rate:g}/s, {args.senders} senders")
        print(f"delivered (2xx, by id):  {len(ok_at)}   duplicates: {duplicates}")
        print(f"first attempts failed:   {len(failed_first)} (500)")
        print(f"bad signatures:          {bad_signatures}")
        print(f"attempts recorded:       {attempts}   delivery rows: {states}")
        if delays:
            print(f"delay completed->2xx ms: p50 {percentile(delays, 50):.0f}  "
                  f"p90 {percentile(delays, 90):.0f}  p99 {percentile(delays, 99):.0f}  "
                  f"max {max(delays):.0f}")  # fmt: skip
        ok = len(ok_at) == args.jobs and duplicates == 0 and bad_signatures == 0
        print("OK: every completion delivered exactly once" if ok else "FAILED")
        if not ok:
            sys.exit(1)
    finally:
        await pool.close()
        await drop_database(args.dsn, dsn)


if __name__ == "__main__":
    asyncio.run(main())
