"""No terminal event lost in a broker outage: a Redis of our own killed (SIGKILL) and
restarted during 30 jobs, and PostgreSQL LISTEN/NOTIFY with its listener connection
terminated; a jobUpdates subscriber sees every job end either way."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis import asyncio as aioredis

from comfygraph.server.settings import WorkerSpec
from tests.realtime.client import JOB_UPDATES, Client, Operation
from tests.realtime.conftest import User
from tests.realtime.harness import kill_pg_listeners, make_settings, running, submit
from tests.servers import free_port

JOBS = 30
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


class Redis:
    """A redis-server of the test's own, on a free port, that can be killed."""

    def __init__(self, data: Path) -> None:
        self.port = free_port()
        self.data = data
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (.ci/run installs it)"
        self.popen = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.data)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                subprocess.run(["redis-cli", "-p", str(self.port), "ping"], check=True,
                               capture_output=True, timeout=2)  # fmt: skip
                return
            except (subprocess.SubprocessError, FileNotFoundError):
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        assert self.popen is not None
        self.popen.kill()
        self.popen.wait(10)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = Redis(tmp_path)
    server.start()
    yield server
    if server.popen and server.popen.poll() is None:
        server.kill()


async def terminal_events(op: Operation, jobs: set[str], within: float) -> dict[str, str]:
    ended: dict[str, str] = {}
    async with asyncio.timeout(within):
        while not jobs <= ended.keys():
            job = await op.data(within=within)
            if job["status"] in TERMINAL:
                ended[job["id"]] = job["status"]
    return ended


async def run_through_outage(url: str, ws_url: str, user: User, outage) -> None:  # type: ignore[no-untyped-def]
    async with await Client.connect(ws_url, token=user.token) as client:
        feed = await client.subscribe(JOB_UPDATES, {"filter": {"scope": "MINE"}})
        await asyncio.sleep(0)  # the subscription is registered before the first job
        first = await submit(url, user.token)
        await terminal_events(feed, {first}, within=60)
        jobs = {first}
        for _ in range(JOBS - 1):
            jobs.add(await submit(url, user.token))
        await outage()
        ended = await terminal_events(feed, jobs, within=90)
        assert set(ended) >= jobs, f"{len(jobs - set(ended))}/{JOBS} terminal events missed"
        assert set(ended.values()) == {"COMPLETED"}


async def test_redis_killed_during_30_jobs_loses_no_terminal_event(
    redis: Redis, dsn: str, emulator: str, users: dict[str, User], tmp_path: Path
) -> None:
    settings = make_settings(
        dsn, tmp_path / "data", comfy_workers=(WorkerSpec(emulator),), broadcast_url=redis.url
    )

    async def outage() -> None:
        redis.kill()
        await asyncio.sleep(4)  # the outage itself: jobs keep finishing meanwhile
        redis.start()
        client = aioredis.Redis.from_url(redis.url)
        try:
            assert await client.ping()
        finally:
            await client.aclose()

    with running(settings, dsn) as app:
        await run_through_outage(app.url, app.ws_url, users["alice"], outage)


async def test_a_killed_listen_connection_loses_no_terminal_event(
    dsn: str, admin_dsn: str, emulator: str, users: dict[str, User], tmp_path: Path
) -> None:
    settings = make_settings(
        dsn, tmp_path / "data", comfy_workers=(WorkerSpec(emulator),), broadcast_url=dsn
    )
    database = urlsplit(dsn).path.lstrip("/")

    async def outage() -> None:
        for _ in range(6):  # again and again while the jobs end
            await kill_pg_listeners(admin_dsn, database)
            await asyncio.sleep(0.3)

    with running(settings, dsn) as app:
        await run_through_outage(app.url, app.ws_url, users["bob"], outage)
