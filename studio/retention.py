"""The retention sweeper: jobs past their retention lose their stored files and become
EXPIRED (the row, its costs and its parameters stay).

    supervisor.start("retention", Retention(pool, storage, days, interval).loop)

Any number of replicas may run it: a sweep locks the jobs it takes (SKIP LOCKED), so
each job is swept by one replica. Files are deleted before the job is marked, inside
the job's lock: a sweep that dies half way leaves the job to the next one (deleting a
missing file again is harmless), never an EXPIRED job whose files remain.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

from comfygraph.db.kinds import OutputType
from comfygraph.db.retention import OUTPUT_URL_COLUMNS, claim_expired, mark_expired
from comfygraph.storage import Storage
from comfygraph.studio.channels import JobEvents

log = logging.getLogger(__name__)

BATCH = 100


@dataclass(frozen=True)
class Retention:
    pool: asyncpg.Pool
    storage: Storage
    #: RETENTION_DAYS (None: jobs without a template retention are kept)
    days: int | None
    interval: float = 60.0
    events: JobEvents | None = None

    async def loop(self) -> None:
        await sweep_loop(self)


def _keys(storage: Storage, kind: OutputType, row: Any) -> set[str]:
    urls = [o.get("url") for o in row["outputs"] or [] if isinstance(o, dict)]
    for column in OUTPUT_URL_COLUMNS[kind]:
        urls += list(row[column] or [])
    keys = {k for u in urls if isinstance(u, str) and (k := storage.key_for_url(u))}
    # the live previews the runner stored while it ran (studio/runner.py), if any
    return keys | {f"previews/{row['id']}.{suffix}" for suffix in ("png", "jpg")}


async def sweep_once(retention: Retention) -> int:
    """Expire what is due now; the number of jobs marked EXPIRED."""
    total = 0
    for kind in OutputType:
        while True:
            async with retention.pool.acquire() as conn, conn.transaction():
                rows = await claim_expired(conn, kind, retention.days, BATCH)
                done = []
                for row in rows:
                    try:
                        for key in _keys(retention.storage, kind, row):
                            await retention.storage.delete(key)
                    except Exception:  # the storage is down: this job waits for the next sweep
                        log.warning(
                            "retention: files of job %s not deleted", row["id"], exc_info=True
                        )
                        continue
                    done.append(row["id"])
                expired = await mark_expired(conn, kind, done) if done else []
            total += len(expired)
            if retention.events is not None:  # committed: live feeds show EXPIRED
                for row in expired:
                    await retention.events.status(kind.value, row)
            if len(rows) < BATCH or not done:
                break
    return total


async def sweep_loop(retention: Retention) -> None:
    while True:
        expired = await sweep_once(retention)
        if expired:
            log.info("retention: %d jobs expired", expired)
        await asyncio.sleep(retention.interval)
