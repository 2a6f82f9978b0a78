"""A comfygraph app under real uvicorn in a thread (its loop reachable for inspection),
the emulator on a real port, jobs submitted the way clients submit them, and our own
broadcast connections found and cut the way an outage cuts them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import psutil
import uvicorn
from starlette.applications import Starlette

from comfygraph.server.app import create_app
from comfygraph.server.graphql import GraphQLView
from comfygraph.server.realtime import RealtimeStats
from comfygraph.server.settings import Settings
from comfygraph.server.state import AppState
from tests.servers import free_port

T = TypeVar("T")
SECRET = "realtime-test-secret-0123456789abcdef"
SUBMIT = """mutation($input: SubmitJobInput!) { submitJob(input: $input) {
  job { ... on GenerationJob { id status } } userErrors { code message } } }"""
SET_PUBLIC = """mutation($id: ID!, $public: Boolean!) { setJobPublic(id: $id, public: $public) {
  userErrors { code } } }"""


class _Server(uvicorn.Server):
    loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)


@dataclass
class Running:
    url: str
    app: Starlette
    loop: asyncio.AbstractEventLoop

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/graphql"

    @property
    def broadcast_url(self) -> str:
        """Where this server publishes: BROADCAST_URL when set, else its database."""
        state: AppState = self.app.state.comfygraph
        return state.settings.effective_broadcast_url()

    @property
    def view(self) -> GraphQLView:
        return next(
            route.endpoint  # type: ignore[attr-defined]
            for route in self.app.routes
            if isinstance(getattr(route, "endpoint", None), GraphQLView)
        )

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.comfygraph
        return state

    async def call(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine on the server's loop (its pool, its bus) and await it here."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(fn(), self.loop))

    async def stats(self) -> tuple[RealtimeStats, int, int]:
        """(realtime stats, bus subscribers, tasks alive on the server's loop)."""

        async def read() -> tuple[RealtimeStats, int, int]:
            bus = self.state.bus
            assert bus is not None
            return self.view.realtime.stats(), bus.stats().subscribers, len(asyncio.all_tasks())

        return await self.call(read)


@contextlib.contextmanager
def running(settings: Settings, dsn: str) -> Iterator[Running]:
    app = create_app(settings, dsn=dsn)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            ws_per_message_deflate=False)  # fmt: skip
    server = _Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    assert server.loop is not None
    try:
        yield Running(f"http://127.0.0.1:{port}", app, server.loop)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def make_settings(dsn: str, data: Path, **overrides: Any) -> Settings:
    return Settings(database_url=dsn, data_dir=data, jwt_secret=SECRET, **overrides)


async def submit(
    url: str, token: str, *, public: bool = False, session: str | None = None,
    prompt: str = "a pink tennis shoe",
) -> str:  # fmt: skip
    """submitJob, as a client calls it; returns the job's global id."""
    variables: dict[str, Any] = {"input": {
        "workflowName": "product-image", "parameters": {"prompt": prompt}, "public": public,
        **({"sessionId": session} if session else {}),
    }}  # fmt: skip
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post("/graphql", json={"query": SUBMIT, "variables": variables},
                                   headers={"authorization": f"Bearer {token}"})  # fmt: skip
    body = response.json()
    payload = body["data"]["submitJob"]
    assert not payload["userErrors"], payload
    job_id: str = payload["job"]["id"]
    return job_id


async def graphql(url: str, token: str, query: str, variables: dict[str, Any]) -> Any:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post("/graphql", json={"query": query, "variables": variables},
                                   headers={"authorization": f"Bearer {token}"})  # fmt: skip
    return response.json()


async def faults(emulator: str, **body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{emulator}/emulator/faults", json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


async def stalled(emulator: str) -> None:
    """Wait until the emulator holds a node stalled (a job is mid-run on the worker)."""

    async def holding() -> bool:
        async with httpx.AsyncClient(timeout=10) as http:
            state = (await http.get(f"{emulator}/emulator/faults")).json()
        return bool(state["stalled"])

    await until(holding)


async def until(check: Callable[[], Awaitable[T | None]], within: float = 15.0) -> T:
    """Re-check a condition on the database (or the server) until it holds."""
    async with asyncio.timeout(within):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.05)


# ---------------------------------------------------------------- cutting the broadcast


def _local_ports(pid: int, remote_port: int) -> set[int]:
    return {
        c.laddr.port
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == remote_port
    }


async def kill_pg_listeners(admin_dsn: str, database: str) -> int:
    """pg_terminate_backend of every event bus LISTEN connection to `database` (each test
    module has a database of its own, so these are its servers' only)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        killed = await conn.fetch(
            """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
               WHERE datname = $1 AND application_name LIKE '%/listen'""",
            database,
        )
        return len(killed)
    finally:
        await conn.close()


async def kill_redis_listener(redis_url: str, pid: int, port: int = 6379) -> int:
    """CLIENT KILL ID of the event bus's SUBSCRIBE connection(s) of process `pid`."""
    from redis import asyncio as aioredis

    ours = _local_ports(pid, port)
    client = aioredis.Redis.from_url(redis_url)
    try:
        killed = 0
        for entry in await client.client_list():
            name, addr = entry.get("name", ""), entry.get("addr", "")
            if name.endswith("/listen") and int(addr.rsplit(":", 1)[1]) in ours:
                await client.client_kill_filter(_id=entry["id"])
                killed += 1
        return killed
    finally:
        await client.aclose()


# ---------------------------------------------------------------- servers in processes


@dataclass
class Process:
    url: str
    popen: subprocess.Popen[bytes]

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/graphql"

    @property
    def broadcast_url(self) -> str:
        """Where this server publishes: BROADCAST_URL when set, else its database."""
        state: AppState = self.app.state.comfygraph
        return state.settings.effective_broadcast_url()

    @property
    def pid(self) -> int:
        return self.popen.pid


def start_process(dsn: str, data: Path, **env: str) -> Process:
    """`python -m server.cli serve` on a free port (call `ready` before use)."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": dsn,
        "JWT_SECRET": SECRET,
        "COMFYGRAPH_DATA_DIR": str(data),
        "COMFY_WORKERS": "",
        **env,
    }
    log = open(data / f"server-{port}.log", "wb")
    popen = subprocess.Popen(
        [sys.executable, "-m", "comfygraph.server.cli", "serve", "--port", str(port)],
        env=environment, stdout=log, stderr=subprocess.STDOUT,
        cwd=str(Path(__file__).resolve().parents[2]),
    )  # fmt: skip
    return Process(f"http://127.0.0.1:{port}", popen)


async def ready(process: Process, within: float = 30.0) -> None:
    async with httpx.AsyncClient(timeout=5) as http, asyncio.timeout(within):
        while True:
            if process.popen.poll() is not None:
                raise RuntimeError(f"server exited with {process.popen.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{process.url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)


def stop_process(process: Process) -> None:
    process.popen.terminate()
    try:
        process.popen.wait(15)
    except subprocess.TimeoutExpired:
        process.popen.kill()
        process.popen.wait(5)


def new_id() -> str:
    return uuid.uuid4().hex[:8]
