"""PostgreSQL restarting under a running server (its own, on its own port).

A running job (fast shutdown, or SIGKILL of the postmaster) completes on its first
attempt, on the runner that had it: the writes that meet the outage are retried until
the database is back. Before, the runner's task died ("Task exception was never
retrieved") and the job waited for its lease to expire. And a request that meets the
outage is logged as one warning line, not as an "unexpected error" with a traceback."""

from __future__ import annotations

import gc
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import pytest

from comfygraph.db.migrate import apply_migrations
from comfygraph.emulator import create_emulator_app
from comfygraph.schema.node import from_global_id
from comfygraph.server.settings import WorkerSpec
from comfygraph.studio.auth import issue_token
from tests.db.factories import make_user
from tests.drills.fleet import Postgres
from tests.drills.test_postgres import code, post
from tests.realtime.harness import SECRET, faults, make_settings, running, stalled, submit, until
from tests.servers import serve_in_thread

LEASE = 60.0  # far longer than the test waits: a lease recovery would fail it


class Records(logging.Handler):
    """Every log record of the process (the server runs in a thread of this one)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def saying(self, text: str) -> list[str]:
        return [m for r in list(self.records) if text in (m := r.getMessage())]


@contextmanager
def recording() -> Iterator[Records]:
    handler, root, ours = Records(), logging.getLogger(), logging.getLogger("comfygraph")
    level = ours.level
    ours.setLevel(logging.INFO)  # "adopting job ..." included
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        ours.setLevel(level)


async def signed_in(postgres: Postgres) -> str:
    """Migrations applied and a user made on the test's own PostgreSQL; its token."""
    conn = await asyncpg.connect(postgres.dsn)
    try:
        await apply_migrations(conn)
        user = await make_user(conn, role="user")
    finally:
        await conn.close()
    return issue_token(SECRET, user["id"], role="user")


@asynccontextmanager
async def finishing_while_down(
    postgres: Postgres, tmp_path: Path, *, lease: float, kill: bool = False
) -> AsyncIterator[tuple[uuid.UUID, Records]]:
    """A job whose prompt finishes on the worker while PostgreSQL is down: yields (job
    id, the log) with the database still down; the block starts it again."""
    token = await signed_in(postgres)
    emulator_app = create_emulator_app(speed=20.0, seed=1, output_dir=tmp_path / "emulator")
    with serve_in_thread(emulator_app) as emulator, recording() as logs:
        settings = make_settings(
            postgres.dsn, tmp_path / "data", comfy_workers=(WorkerSpec(emulator),),
            lease_seconds=lease,
        )  # fmt: skip
        with running(settings, postgres.dsn) as server:
            # The sampler is held on the worker until the database is down.
            await faults(emulator, action="stall", class_type="KSampler", times=1)
            job_id = from_global_id(await submit(server.url, token))[1]
            await stalled(emulator)
            postgres.stop(kill=kill)
            await faults(emulator, action="release")  # progress, then done, while it is down
            yield job_id, logs
        gc.collect()  # an unretrieved task exception is reported when the task is collected


async def said(logs: Records, text: str, what: str) -> None:
    async def seen() -> bool:
        return bool(logs.saying(text))

    try:
        await until(seen)
    except TimeoutError:
        warnings = [r.getMessage() for r in logs.records if r.levelno >= logging.WARNING]
        raise AssertionError(f"{what}: {warnings}") from None


async def ended(postgres: Postgres, job_id: uuid.UUID, within: float) -> asyncpg.Record:
    async def row() -> asyncpg.Record | None:
        conn = await asyncpg.connect(postgres.dsn)
        try:
            found = await conn.fetchrow(
                "SELECT status::text, attempts, outputs FROM image_jobs WHERE id = $1", job_id
            )
        finally:
            await conn.close()
        return found if found is not None and found["status"] != "processing" else None

    return await until(row, within=within)


@pytest.mark.parametrize("kill", [False, True], ids=["fast-stop", "sigkill"])
async def test_a_running_job_rides_out_a_postgres_restart(
    postgres: Postgres, tmp_path: Path, kill: bool
) -> None:
    async with finishing_while_down(postgres, tmp_path, lease=LEASE, kill=kill) as (job_id, logs):
        await said(logs, f"while moving to completed of job {job_id}",
                   "the runner did not retry its completion through the outage")  # fmt: skip
        await postgres.start()
        row = await ended(postgres, job_id, within=LEASE / 3)  # long before the lease expires
    assert row["status"] == "completed", row
    assert row["attempts"] == 1, row
    assert row["outputs"], row
    assert not logs.saying("never retrieved"), logs.saying("never retrieved")
    assert not logs.saying(f"adopting job {job_id}"), "it waited for lease recovery"
    assert not logs.saying("unexpected error"), logs.saying("unexpected error")


async def test_past_the_lease_the_runner_gives_up_once_and_lease_recovery_completes_it(
    postgres: Postgres, tmp_path: Path
) -> None:
    lease = 2.0  # the bound of the runner's retries, too
    async with finishing_while_down(postgres, tmp_path, lease=lease) as (job_id, logs):
        await said(logs, "left for lease recovery", "the runner did not give up")
        await postgres.start()
        row = await ended(postgres, job_id, within=30)
    assert row["status"] == "completed", row
    assert row["attempts"] == 1, row  # adopted and followed on its worker, not run again
    [gave_up] = logs.saying("left for lease recovery")
    assert gave_up.startswith("database unreachable for "), gave_up
    assert f"while moving to completed of job {job_id}; giving up" in gave_up, gave_up
    assert logs.saying(f"adopting job {job_id}")
    assert not logs.saying("never retrieved"), logs.saying("never retrieved")


async def test_a_request_that_meets_the_outage_is_logged_as_one_warning_line(
    postgres: Postgres, tmp_path: Path
) -> None:
    token = await signed_in(postgres)
    settings = make_settings(postgres.dsn, tmp_path, comfy_workers=(), auth_cache_seconds=60)
    with running(settings, postgres.dsn) as server, recording() as logs:
        status, body = await post(server.url, token)  # the viewer is cached from here on
        assert status == 200 and body["data"]["submitJob"]["job"], body
        postgres.stop()
        status, body = await post(server.url, token)  # so the resolver meets the outage
        assert code(body) == "SERVICE_UNAVAILABLE", body
    assert not logs.saying("unexpected error"), logs.saying("unexpected error")
    [line] = logs.saying("database unavailable at")
    assert line.startswith("database unavailable at submitJob: "), line
    warned = [r for r in logs.records if r.getMessage() == line]
    assert warned[0].levelno == logging.WARNING and warned[0].exc_info is None, warned
