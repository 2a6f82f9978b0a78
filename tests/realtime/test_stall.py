"""Stall watchdog: a job whose worker holds it (socket open, no progress, /queue
unchanged) for STALL_SECONDS is interrupted on that worker and re-queued once, then
failed with a clear message; not left PROCESSING until JOB_TIMEOUT_SECONDS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from comfygraph.server.settings import WorkerSpec
from tests.realtime.conftest import User
from tests.realtime.harness import Running, faults, graphql, make_settings, running, submit, until

READ = """query($id: ID!) { job(id: $id) { ... on GenerationJob { status errorMessage } } }"""


@pytest.fixture(scope="module")
def stalling(
    dsn: str, emulator: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    settings = make_settings(
        dsn, Path(tmp_path_factory.mktemp("stall")), comfy_workers=(WorkerSpec(emulator),),
        stall_seconds=1.5,
    )  # fmt: skip
    with running(settings, dsn) as app:
        yield app


async def ended(app: Running, user: User, job: str) -> dict:
    async def done() -> dict | None:
        found = (await graphql(app.url, user.token, READ, {"id": job}))["data"]["job"]
        return found if found["status"] not in ("PENDING", "PROCESSING") else None

    return await until(done, within=60)


async def emulator_holds_nothing(emulator: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        state = (await http.get(f"{emulator}/emulator/faults")).json()
    assert state["stalled"] == [], "the stalled prompt was not interrupted on the worker"


async def test_a_stalled_job_is_interrupted_and_requeued_once(
    stalling: Running, emulator: str, users: dict[str, User]
) -> None:
    await faults(emulator, action="stall", class_type="KSampler", times=1)
    job = await submit(stalling.url, users["alice"].token)
    found = await ended(stalling, users["alice"], job)
    assert found["status"] == "COMPLETED", found  # the second run went through
    await emulator_holds_nothing(emulator)


async def test_a_job_that_stalls_twice_fails_saying_so(
    stalling: Running, emulator: str, users: dict[str, User]
) -> None:
    await faults(emulator, action="stall", class_type="KSampler", times=2)
    try:
        job = await submit(stalling.url, users["bob"].token)
        found = await ended(stalling, users["bob"], job)
    finally:
        await faults(emulator, action="clear")
    assert found["status"] == "FAILED", found
    assert "stalled on worker" in found["errorMessage"], found
    assert "no progress for 1.5 s" in found["errorMessage"]
    await emulator_holds_nothing(emulator)
