from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings
from comfygraph.studio.auth import issue_token
from tests.graphql.client import GraphQLClient
from tests.graphql.world import World, build_world
from tests.servers import serve_in_thread

SECRET = "test-secret-0123456789-abcdefghij"


@pytest.fixture(scope="module")
async def world(pool: asyncpg.Pool) -> World:
    async with pool.acquire() as conn:
        return await build_world(conn)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, dsn: str) -> Settings:
    data = Path(tmp_path_factory.mktemp("data"))
    return Settings(database_url=dsn, data_dir=data, jwt_secret=SECRET)


@pytest.fixture(scope="module")
def base_url(settings: Settings, dsn: str) -> Iterator[str]:
    with serve_in_thread(create_app(settings, dsn=dsn)) as url:
        yield url


@pytest.fixture(scope="module")
def clients(base_url: str, world: World) -> Iterator[dict[str, GraphQLClient]]:
    """A client per viewer: alice, bob, admin, and anonymous (None)."""
    made: dict[str, GraphQLClient] = {"anonymous": GraphQLClient(base_url)}
    for name, row in world.users.items():
        made[name] = GraphQLClient(base_url, issue_token(SECRET, row["id"], role=row["role"]))
    yield made
    for client in made.values():
        client.close()
