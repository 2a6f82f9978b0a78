"""The app under uvicorn on a real port, with an emulator worker (also under uvicorn)
priced so that jobs cost money, a fresh database per module, and a client per user."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from comfygraph.emulator import create_emulator_app
from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings, WorkerSpec
from comfygraph.studio.auth import issue_token
from tests.db.factories import make_user
from tests.graphql.client import GraphQLClient
from tests.servers import free_port, serve_in_thread

SECRET = "sessions-test-secret-0123456789-abcdef"
PRICE_PER_HOUR = 36.0  # $0.01 per GPU second: every job costs something measurable


@dataclass
class Stack:
    url: str  # the API
    emulator: str  # its worker
    clients: dict[str, GraphQLClient]  # alice, bob, admin, anonymous
    users: dict[str, asyncpg.Record]
    files: Path  # the app's file storage (served at {url}/files/)

    def fault(self, **body: object) -> None:
        r = httpx.post(f"{self.emulator}/emulator/faults", json=body, timeout=10)
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    out = Path(tmp_path_factory.mktemp("emulator"))
    with serve_in_thread(create_emulator_app(speed=1000, seed=0, output_dir=out)) as url:
        yield url


@pytest.fixture(scope="module")
async def users(pool: asyncpg.Pool) -> dict[str, asyncpg.Record]:
    async with pool.acquire() as conn:
        return {name: await make_user(conn, role="admin" if name == "admin" else "user")
                for name in ("alice", "bob", "admin")}  # fmt: skip


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    dsn: str,
    emulator: str,
    users: dict[str, asyncpg.Record],
) -> Iterator[Stack]:
    port = free_port()
    data = Path(tmp_path_factory.mktemp("data"))
    settings = Settings(
        database_url=dsn,
        data_dir=data,
        jwt_secret=SECRET,
        public_base_url=f"http://127.0.0.1:{port}",
        comfy_workers=(WorkerSpec(emulator, PRICE_PER_HOUR),),
    )
    with serve_in_thread(create_app(settings, dsn=dsn), port=port) as url:
        clients = {"anonymous": GraphQLClient(url)}
        for name, row in users.items():
            clients[name] = GraphQLClient(url, issue_token(SECRET, row["id"], role=row["role"]))
        try:
            yield Stack(url, emulator, clients, users, data / "files")
        finally:
            for client in clients.values():
                client.close()
