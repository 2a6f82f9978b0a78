"""Tokens are checked against their user (issue 11, finding 3): a deleted, disabled or
demoted user's old token is refused, `revoke-tokens` ends every token of a user, and a
websocket ends when its token expires. Also: the token error wording PyJWT would give
is never shown (finding 6)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from comfygraph.db.ws_connections import Connected, record_connected
from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings
from comfygraph.studio.auth import issue_token
from tests.db.factories import make_user
from tests.graphql.client import GraphQLClient, codes
from tests.graphql.conftest import SECRET
from tests.realtime.client import LEGACY_WS, TRANSPORT_WS, Client
from tests.servers import serve_in_thread
from tests.test_cli import comfygraph

ME = "{ me { id role } }"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, dsn: str) -> Iterator[str]:
    settings = Settings(
        database_url=dsn,
        data_dir=Path(tmp_path_factory.mktemp("data")),
        jwt_secret=SECRET,
        auth_cache_seconds=0,  # every request reads the user: the test sees changes at once
    )
    with serve_in_thread(create_app(settings, dsn=dsn)) as url:
        yield url


async def _client(pool: asyncpg.Pool, base_url: str, role: str = "user") -> tuple:
    async with pool.acquire() as conn:
        row = await make_user(conn, role=role)
    return row, GraphQLClient(base_url, issue_token(SECRET, row["id"], role=role))


async def test_a_deleted_users_token_is_refused(pool: asyncpg.Pool, base_url: str) -> None:
    row, client = await _client(pool, base_url)
    assert client.data(ME)["me"]["role"] == "USER"
    async with pool.acquire() as conn:
        await conn.execute("UPDATE users SET deleted_at = now() WHERE id = $1", row["id"])
    assert codes(client.post(ME)) == ["UNAUTHENTICATED"]
    body = client.post(
        'mutation { createSession(input: {userProductPrompt: "shoe"}) { userErrors { code } } }'
    )
    assert codes(body) == ["UNAUTHENTICATED"]


async def test_a_disabled_users_token_is_refused(pool: asyncpg.Pool, base_url: str) -> None:
    row, client = await _client(pool, base_url)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE users SET disabled_at = now() WHERE id = $1", row["id"])
    assert codes(client.post(ME)) == ["UNAUTHENTICATED"]


async def test_a_demoted_admins_old_token_is_refused(pool: asyncpg.Pool, base_url: str) -> None:
    row, client = await _client(pool, base_url, role="admin")
    assert client.data(ME)["me"]["role"] == "ADMIN"
    async with pool.acquire() as conn:
        await conn.execute("UPDATE users SET role = 'user' WHERE id = $1", row["id"])
    body = client.post(ME)
    assert codes(body) == ["UNAUTHENTICATED"] and "revoked" in body["errors"][0]["message"]


async def test_a_token_claiming_admin_gets_the_role_of_the_table(
    pool: asyncpg.Pool, base_url: str
) -> None:
    async with pool.acquire() as conn:
        row = await make_user(conn)
    forged_role = GraphQLClient(base_url, issue_token(SECRET, row["id"], role="admin"))
    assert forged_role.data(ME)["me"]["role"] == "USER"


async def test_login_token_and_revoke_tokens_command(
    pool: asyncpg.Pool, base_url: str, dsn: str, tmp_path: Path
) -> None:
    async with pool.acquire() as conn:
        row = await make_user(conn)
    anonymous = GraphQLClient(base_url)
    login = anonymous.data(
        'mutation($e: String!) { login(email: $e, password: "correct horse") { token } }',
        {"e": row["email"]},
    )["login"]["token"]
    client = GraphQLClient(base_url, login)
    assert client.data(ME)["me"]["id"]
    env = {"DATABASE_URL": dsn, "COMFYGRAPH_DATA_DIR": str(tmp_path), "JWT_SECRET": SECRET}
    done = await asyncio.to_thread(comfygraph, "revoke-tokens", "--email", row["email"], env=env)
    assert done.returncode == 0, done.stderr
    assert codes(client.post(ME)) == ["UNAUTHENTICATED"]
    unknown = await asyncio.to_thread(
        comfygraph, "revoke-tokens", "--email", "nobody@example.com", env=env
    )
    assert unknown.returncode != 0 and "no user" in unknown.stderr


def test_pyjwt_wording_is_not_shown(base_url: str) -> None:
    for token in ("a.b.c", "__8.e30.x", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.sig"):
        body = GraphQLClient(base_url, token).post(ME)
        assert codes(body) == ["UNAUTHENTICATED"]
        assert body["errors"][0]["message"] == "invalid token", body


def _ws(base_url: str) -> str:
    return base_url.replace("http", "ws", 1) + "/graphql"


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_websocket_ends_when_its_token_expires(
    pool: asyncpg.Pool, base_url: str, protocol: str
) -> None:
    async with pool.acquire() as conn:
        row = await make_user(conn)
    token = issue_token(SECRET, row["id"], ttl=2)
    client = await Client.connect(_ws(base_url), protocol, token)
    await client.subscribe("subscription { jobUpdates { __typename } }")
    assert await client.wait_closed(within=15) == 4403


async def test_a_non_string_authorization_is_refused_cleanly(base_url: str) -> None:
    client = await Client.connect(_ws(base_url), TRANSPORT_WS, init=False)
    await client.send({"type": "connection_init", "payload": {"Authorization": 5}})
    assert await client.wait_closed() == 4403


async def test_a_deleted_users_websocket_is_refused(pool: asyncpg.Pool, base_url: str) -> None:
    async with pool.acquire() as conn:
        row = await make_user(conn)
        await conn.execute("UPDATE users SET deleted_at = now() WHERE id = $1", row["id"])
    client = await Client.connect(_ws(base_url), TRANSPORT_WS, init=False)
    await client.send(
        {"type": "connection_init",
         "payload": {"Authorization": f"Bearer {issue_token(SECRET, row['id'])}"}}
    )  # fmt: skip
    assert await client.wait_closed() == 4403


async def test_a_vanished_users_connection_does_not_block_the_others(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        row = await make_user(conn)
        now = datetime.now(UTC)
        rows = [
            Connected(uuid.uuid4().hex, uid, "r1", None, None, now)
            for uid in (row["id"], uuid.uuid4())  # the second user was deleted meanwhile
        ]
        assert await record_connected(conn, rows) == 1
