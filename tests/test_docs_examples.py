"""Every GraphQL document in README.md and docs/ runs against a live server (the app with
an emulator worker, a signed-in user): queries and mutations over HTTP without errors,
subscriptions over a websocket until they complete. A stale example fails here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.sync.client import connect

from comfygraph.db.sessions import create_session
from comfygraph.db.users import create_user
from comfygraph.emulator import create_emulator_app
from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings, WorkerSpec
from comfygraph.studio.auth import issue_token
from tests.servers import serve_in_thread

ROOT = Path(__file__).resolve().parents[1]
SECRET = "docs-examples-secret-0123456789abcdef"
FENCED = re.compile(r"```graphql\n(.*?)```", re.S)
# An indented block that starts like GraphQL (the README's older style): caught too.
INDENTED = re.compile(r"(?:^|\n\n)((?: {4}(?:\{|query|mutation|subscription).*\n)(?: {4}.*\n)*)")


def documents() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text()
        blocks = FENCED.findall(text)
        blocks += [re.sub(r"^ {4}", "", b, flags=re.M) for b in INDENTED.findall(text)]
        found += [(f"{path.name}#{i}", block.strip()) for i, block in enumerate(blocks)]
    return found


DOCUMENTS = documents()


def test_the_readme_has_examples() -> None:
    assert len(DOCUMENTS) >= 5 and any("subscription" in d for _, d in DOCUMENTS)


@pytest.fixture(scope="module")
def live(
    dsn: str, pool: asyncpg.Pool, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    out = tmp_path_factory.mktemp("emulator")
    with serve_in_thread(create_emulator_app(speed=50.0, seed=1, output_dir=out)) as worker:
        data = Path(tmp_path_factory.mktemp("data"))
        workers = (WorkerSpec(worker, 0.5),)
        settings = Settings(
            database_url=dsn, data_dir=data, jwt_secret=SECRET, comfy_workers=workers
        )
        with serve_in_thread(create_app(settings, dsn=dsn)) as url:
            yield {"url": url}


@pytest.fixture(scope="module")
async def viewer(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        user = await create_user(conn, email="docs@example.com", password="docs-pass-1")
        session = await create_session(conn, user_id=user["id"], user_product_prompt="shoes")
    from comfygraph.schema.node import to_global_id

    return {"token": issue_token(SECRET, user["id"], role="user"),
            "session": to_global_id("Session", session["id"])}  # fmt: skip


def _submit(url: str, token: str) -> str:
    r = httpx.post(f"{url}/graphql", headers={"Authorization": f"Bearer {token}"}, json={
        "query": 'mutation { submitJob(input: {workflowName: "product-image", parameters: '
                 '{prompt: "docs"}}) { job { id } userErrors { code } } }'})  # fmt: skip
    job_id: str = r.json()["data"]["submitJob"]["job"]["id"]
    return job_id


def _subscribe(url: str, token: str, query: str, ends: bool) -> list[dict[str, Any]]:
    ws_url = url.replace("http://", "ws://") + "/graphql"
    with connect(ws_url, subprotocols=["graphql-transport-ws"], open_timeout=15) as ws:  # type: ignore[list-item]
        ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(ws.recv(timeout=15))["type"] == "connection_ack"
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        payloads = []
        while True:
            message = json.loads(ws.recv(timeout=60))
            if message["type"] == "ping":
                ws.send(json.dumps({"type": "pong"}))
                continue
            assert message["type"] in ("next", "complete"), message
            if message["type"] == "complete":
                return payloads
            assert "errors" not in message["payload"], message["payload"]
            payloads.append(message["payload"])
            if not ends:  # a stream that lasts as long as its session: its first event
                return payloads


@pytest.mark.parametrize(("where", "document"), DOCUMENTS, ids=[w for w, _ in DOCUMENTS])
def test_example_runs(
    live: dict[str, Any], viewer: dict[str, Any], where: str, document: str
) -> None:
    url, token = live["url"], viewer["token"]
    query = document.replace("<session id>", viewer["session"])
    if "<job id>" in query:
        query = query.replace("<job id>", _submit(url, token))
    if query.startswith("subscription"):
        ends = "jobProgress" in query  # completes after the job's final status
        payloads = _subscribe(url, token, query, ends)
        assert payloads, where
        return
    r = httpx.post(f"{url}/graphql", headers={"Authorization": f"Bearer {token}"},
                   json={"query": query}, timeout=30)  # fmt: skip
    body = r.json()
    assert "errors" not in body, (where, body["errors"])
    for value in body["data"].values():
        if isinstance(value, dict) and "userErrors" in value:
            assert value["userErrors"] == [], (where, value)
