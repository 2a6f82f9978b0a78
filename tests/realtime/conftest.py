from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from comfygraph.emulator import create_emulator_app
from comfygraph.server.settings import WorkerSpec
from comfygraph.studio.auth import issue_token
from tests.db.factories import make_user
from tests.realtime.harness import SECRET, Running, make_settings, running
from tests.servers import serve_in_thread


@dataclass
class User:
    row: asyncpg.Record
    token: str

    @property
    def id(self) -> uuid.UUID:
        uid: uuid.UUID = self.row["id"]
        return uid


@pytest.fixture(scope="module")
async def users(pool: asyncpg.Pool) -> dict[str, User]:
    made = {}
    async with pool.acquire() as conn:
        for name, role in (("alice", "user"), ("bob", "user"), ("admin", "admin")):
            row = await make_user(conn, role=role)
            made[name] = User(row, issue_token(SECRET, row["id"], role=role))
    return made


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ComfyUI emulator fast enough for tests, slow enough to report progress."""
    out = tmp_path_factory.mktemp("emulator")
    with serve_in_thread(create_emulator_app(speed=20.0, seed=1, output_dir=out)) as url:
        yield url


@pytest.fixture(scope="module")
def server(dsn: str, emulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The app with the emulator as its worker; broadcast: PostgreSQL LISTEN/NOTIFY."""
    settings = make_settings(
        dsn,
        Path(tmp_path_factory.mktemp("data")),
        comfy_workers=(WorkerSpec(emulator),),
        ws_heartbeat_interval=0.5,
        ws_queue_poll_interval=0.3,
        ws_connection_init_timeout=1.0,
    )
    with running(settings, dsn) as app:
        yield app
