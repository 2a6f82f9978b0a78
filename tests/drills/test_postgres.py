"""PostgreSQL restarted under a running server (a server of the test's own, fast
shutdown): while it is down, a signed-in submitJob is answered SERVICE_UNAVAILABLE (the
token's user cannot be checked: that was an HTTP 500), and once it is back the same
request succeeds without restarting anything."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from comfygraph.db.migrate import apply_migrations
from comfygraph.studio.auth import issue_token
from tests.db.factories import make_user
from tests.drills.fleet import Postgres
from tests.realtime.harness import SECRET, SUBMIT, make_settings, running

VARIABLES = {"input": {"workflowName": "product-image", "parameters": {"prompt": "a shoe"}}}


async def post(url: str, token: str) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post(
            "/graphql",
            json={"query": SUBMIT, "variables": VARIABLES},
            headers={"authorization": f"Bearer {token}"},
        )
    return response.status_code, response.json() if response.content else {}


def code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or [{}]
    return (errors[0].get("extensions") or {}).get("code")


async def test_restart_is_service_unavailable_then_recovered(
    postgres: Postgres, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(postgres.dsn)
    try:
        await apply_migrations(conn)
        user = await make_user(conn, role="admin")
    finally:
        await conn.close()
    token = issue_token(SECRET, user["id"], role="admin")
    # No viewer cache: every request reads the user, as one does once the cache expires.
    settings = make_settings(postgres.dsn, tmp_path, comfy_workers=(), auth_cache_seconds=0)
    with running(settings, postgres.dsn) as server:
        status, body = await post(server.url, token)
        assert status == 200 and body["data"]["submitJob"]["job"], body

        postgres.stop()
        status, body = await post(server.url, token)
        assert status == 200, (status, body)
        assert code(body) == "SERVICE_UNAVAILABLE", body
        assert not body.get("data"), body

        await postgres.start()
        async with asyncio.timeout(30):  # the pool reconnects by itself
            while True:
                status, body = await post(server.url, token)
                if (body.get("data") or {}).get("submitJob"):
                    break
                assert code(body) == "SERVICE_UNAVAILABLE", body
                await asyncio.sleep(0.2)
        assert body["data"]["submitJob"]["job"]["status"] == "PENDING", body
