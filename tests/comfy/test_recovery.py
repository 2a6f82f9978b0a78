"""The server killed with SIGKILL while jobs are in flight, then restarted: every job
still reaches a terminal state, and every completed one has its outputs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from comfygraph.comfy.templates import load_templates, validate
from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.emulator import create_emulator_app
from tests.db.factories import make_user
from tests.servers import free_port, serve_in_thread


def start_server(dsn: str, workers: str, data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if k != "BROADCAST_URL"},
        "DATABASE_URL": dsn, "COMFY_WORKERS": workers, "COMFYGRAPH_DATA_DIR": str(data),
        "LEASE_SECONDS": "2", "JWT_SECRET": "x" * 32,
    }  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "comfygraph.server.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def counts(pool: asyncpg.Pool, ids: list) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT status, count(*) FROM image_jobs WHERE id = ANY($1::uuid[]) GROUP BY status", ids
    )
    return {r["status"]: r["count"] for r in rows}


async def wait_until(
    pool: asyncpg.Pool, ids: list[Any], done: Callable[[dict[str, int]], bool], deadline: float
) -> dict[str, int]:
    """Poll another process's rows until `done`, failing after `deadline` seconds."""
    async with asyncio.timeout(deadline):
        while not done(state := await counts(pool, ids)):  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.1)
    return state


@pytest.mark.timeout(180)
async def test_sigkill_with_twenty_jobs_in_flight_then_restart(
    pool: asyncpg.Pool, dsn: str, tmp_path: Path
) -> None:
    template = load_templates().get("product-image")
    assert template is not None
    with (
        serve_in_thread(create_emulator_app(speed=20, output_dir=tmp_path / "a")) as a,
        serve_in_thread(create_emulator_app(speed=20, output_dir=tmp_path / "b")) as b,
    ):
        async with pool.acquire() as conn:
            user = await make_user(conn)
            ids = []
            for i in range(20):
                clean, errors = validate(template, {"prompt": f"pink shoe #{i}"})
                assert not errors
                row, _ = await create_job(
                    conn,
                    OutputType.IMAGE,
                    user_id=user["id"],
                    workflow_name=template.name,
                    parameters=clean,
                )
                ids.append(row["id"])
        data = tmp_path / "data"
        server = start_server(dsn, f"{a},{b}", data, free_port())
        try:  # kill it once jobs are running and some have finished
            await wait_until(pool, ids, lambda s: s.get("completed", 0) >= 3
                             and s.get("processing", 0) >= 1, deadline=60)  # fmt: skip
        finally:
            server.send_signal(signal.SIGKILL)
            server.wait()
        before = await counts(pool, ids)
        assert before.get("processing", 0) + before.get("pending", 0) > 0, before

        server = start_server(dsn, f"{a},{b}", data, free_port())
        try:
            final = await wait_until(
                pool, ids, lambda s: s.get("completed", 0) + s.get("failed", 0) == 20, deadline=90
            )
        finally:
            server.terminate()
            server.wait()
    assert final == {"completed": 20}, final
    rows = await pool.fetch("SELECT * FROM image_jobs WHERE id = ANY($1::uuid[])", ids)
    for row in rows:
        assert row["output_image_urls"] and row["outputs"]
        for output in row["outputs"]:
            key = output["url"].split("/files/", 1)[1]
            assert (data / "files" / key).stat().st_size == output["sizeBytes"]
