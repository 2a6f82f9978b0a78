"""The app under uvicorn on a real port, with a ComfyUI emulator worker on another, a
real PostgreSQL (a database per module), and a second event bus on that database so
tests wait on the app's own status events instead of polling."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from comfygraph.bus import EventBus, Message, Subscription
from comfygraph.db.kinds import OutputType
from comfygraph.emulator import create_emulator_app
from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings, WorkerSpec
from comfygraph.studio.auth import issue_token
from tests.db.factories import make_user
from tests.servers import free_port, serve_in_thread

SECRET = "test-secret-0123456789-abcdefghij"
LIMIT = 200_000  # the app's max_upload_bytes here
WAIT = 20.0
TERMINAL = {"completed", "failed", "cancelled"}


class Api:
    """GraphQL over real HTTP, as one viewer (anonymous without a token)."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30)

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        r = await self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.post(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def upload(
        self, query: str, name: str, content: bytes, content_type: str = "application/octet-stream"
    ) -> dict[str, Any]:
        """A GraphQL multipart request with one file bound to the `$file` variable."""
        operations = json.dumps({"query": query, "variables": {"file": None}})
        files_map = json.dumps({"0": ["variables.file"]})
        r = await self.http.post(
            "/graphql",
            data={"operations": operations, "map": files_map},
            files={"0": (name, content, content_type)},
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass
class App:
    url: str
    settings: Settings
    users: dict[str, asyncpg.Record]
    clients: dict[str, Api]

    @property
    def files(self) -> Path:
        return self.settings.data_dir / "files"

    def uid(self, name: str) -> uuid.UUID:
        return self.users[name]["id"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    out = tmp_path_factory.mktemp("emulator")
    with serve_in_thread(create_emulator_app(speed=1000, output_dir=out)) as url:
        yield url


@pytest.fixture(scope="module")
def app_options() -> dict[str, Any]:
    """More Settings for this module's app (a module overrides this fixture)."""
    return {}


@pytest.fixture(scope="module")
async def app(
    tmp_path_factory: pytest.TempPathFactory,
    dsn: str,
    pool: asyncpg.Pool,
    emulator_url: str,
    app_options: dict[str, Any],
) -> AsyncIterator[App]:
    port = free_port()
    settings = Settings(
        database_url=dsn,
        data_dir=tmp_path_factory.mktemp("data"),
        jwt_secret=SECRET,
        public_base_url=f"http://127.0.0.1:{port}",
        comfy_workers=(WorkerSpec(emulator_url),),
        max_upload_bytes=LIMIT,
        **app_options,
    )
    users = {}
    async with pool.acquire() as conn:
        for name, role in (("alice", "user"), ("bob", "user"), ("admin", "admin")):
            users[name] = await make_user(conn, role=role)
    with serve_in_thread(create_app(settings, dsn=dsn), port=port) as url:
        clients = {"anonymous": Api(url)}
        for name, row in users.items():
            clients[name] = Api(url, issue_token(SECRET, row["id"], role=row["role"]))
        yield App(url, settings, users, clients)
        for client in clients.values():
            await client.aclose()


@pytest.fixture(scope="module")
async def bus(app: App) -> AsyncIterator[EventBus]:
    """Listens on the app's broadcast, whichever it is (BROADCAST_URL, else LISTEN/NOTIFY)."""
    async with EventBus.from_url(app.settings.effective_broadcast_url()) as b:
        yield b


async def next_event(
    sub: Subscription, predicate: Callable[[dict[str, Any]], bool], within: float = WAIT
) -> dict[str, Any]:
    """The first event on `sub` matching `predicate`, within a deadline."""
    async with asyncio.timeout(within):
        async for item in sub:
            if isinstance(item, Message) and predicate(dict(item.data)):
                return dict(item.data)
    raise AssertionError("the subscription ended")


async def quiet(
    sub: Subscription, predicate: Callable[[dict[str, Any]], bool], within: float = 0.3
) -> None:
    """Prove that no event matching `predicate` arrives in a short window."""
    try:
        event = await next_event(sub, predicate, within)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected event: {event}")


async def job_count(pool: asyncpg.Pool) -> int:
    """Rows over the four job tables plus idempotency claims: what a refused submit must
    not add to."""
    parts = [f"(SELECT count(*) FROM {k.table})" for k in OutputType]
    parts.append("(SELECT count(*) FROM job_idempotency)")
    async with pool.acquire() as conn:
        return int(await conn.fetchval(f"SELECT {' + '.join(parts)}"))


def tree(root: Path) -> set[str]:
    """Every file and folder under `root`, relative."""
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()
