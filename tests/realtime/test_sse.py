"""graphql-sse (distinct connections mode) at /graphql/stream: a subscription streams
`next` events then `complete`, sharing one execution with a websocket client asking the
same thing; queries run once; refusals carry codes. Read with plain httpx streaming, and
with the npm `graphql-sse` client run by Node (tests/browser, installed by .ci/run)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from comfygraph.studio.auth import issue_token
from tests.realtime.client import JOB_PROGRESS, TRANSPORT_WS, Client
from tests.realtime.conftest import User
from tests.realtime.harness import SECRET, Running, faults, stalled, submit, until

BROWSER = Path(__file__).parents[1] / "browser"
STREAM = "/graphql/stream"
SSE = {"accept": "text/event-stream"}


async def events(response: httpx.Response) -> list[tuple[str, Any]]:
    """(event, data) of an SSE response, up to `complete` (comments skipped)."""
    seen: list[tuple[str, Any]] = []
    event, data = "", ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line == "" and event:
            seen.append((event, orjson.loads(data) if data else None))
            if event == "complete":
                return seen
            event, data = "", ""
    return seen


def auth(user: User) -> dict[str, str]:
    return {**SSE, "authorization": f"Bearer {user.token}"}


async def test_a_subscription_streams_over_sse_sharing_the_websockets_stream(
    server: Running, users: dict[str, User], emulator: str
) -> None:
    alice = users["alice"]
    await faults(emulator, action="stall", class_type="KSampler")
    job = await submit(server.url, alice.token)
    body = {"query": JOB_PROGRESS, "variables": {"id": job}}
    before = (await server.stats())[0].executions
    async with (
        await Client.connect(server.ws_url, TRANSPORT_WS, alice.token) as ws,
        httpx.AsyncClient(base_url=server.url, timeout=60) as http,
        http.stream("POST", STREAM, json=body, headers=auth(alice)) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        op = await ws.subscribe(JOB_PROGRESS, {"id": job})
        await op.data()

        async def both_joined() -> bool | None:
            stats = (await server.stats())[0]
            return (stats.streams == 1 and stats.executions == before + 1) or None

        await until(both_joined)  # one execution serves the websocket and the SSE client
        await stalled(emulator)
        await faults(emulator, action="release")
        seen = await asyncio.wait_for(events(response), 60)
        await op.until(lambda v: v["status"] == "COMPLETED", within=30)
    assert seen[-1] == ("complete", None)
    results = [data["data"]["jobProgress"] for kind, data in seen if kind == "next"]
    assert results[0]["job"]["id"] == job
    assert results[-1]["status"] == "COMPLETED" and results[-1]["progress"] == 100.0
    stats = (await server.stats())[0]
    assert stats.executions == before + 1


async def test_queries_and_refusals_over_sse(server: Running, users: dict[str, User]) -> None:
    alice = users["alice"]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        me = {"query": "{ me { email } }"}
        async with http.stream("POST", STREAM, json=me, headers=auth(alice)) as response:
            seen = await events(response)
        assert seen == [("next", {"data": {"me": {"email": alice.row["email"]}}}),
                        ("complete", None)]  # fmt: skip
        bad = {"query": "subscription { jobProgress(id: 1) { nosuch } }"}
        async with http.stream("POST", STREAM, json=bad, headers=auth(alice)) as response:
            (kind, data), end = await events(response)
        assert kind == "next" and end == ("complete", None)
        assert {e["extensions"]["code"] for e in data["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
        nobody = {"query": 'subscription { jobProgress(id: "x") { status } }'}
        refused = await http.post(STREAM, json=nobody, headers={**SSE, "authorization": "x"})
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["extensions"]["code"]
        garbage = await http.post(STREAM, content=b"{", headers=auth(alice))
        assert garbage.status_code == 400
        assert garbage.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.skipif(
    not (BROWSER / "node_modules" / "graphql-sse").exists() or shutil.which("node") is None,
    reason="needs node and `npm install` in tests/browser (.ci/run does it)",
)
async def test_the_npm_graphql_sse_client_streams_a_job(
    server: Running, users: dict[str, User]
) -> None:
    alice = users["alice"]
    job = await submit(server.url, alice.token)
    query = "subscription($id: ID!) { jobProgress(id: $id) { status progress } }"
    node = await asyncio.create_subprocess_exec(
        "node", str(BROWSER / "sse.mjs"), server.url + STREAM, alice.token, query,
        json.dumps({"id": job}),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(node.communicate(), 90)
    assert node.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[-1] == "complete"
    results = [json.loads(line)["data"]["jobProgress"] for line in lines[:-1]]
    assert results[-1] == {"status": "COMPLETED", "progress": 100.0}


async def test_a_client_that_goes_away_leaves_the_stream(
    server: Running, users: dict[str, User], emulator: str
) -> None:
    alice = users["alice"]
    await faults(emulator, action="stall", class_type="KSampler")
    job = await submit(server.url, alice.token)
    body = {"query": JOB_PROGRESS, "variables": {"id": job}}
    try:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=60) as http,
            http.stream("POST", STREAM, json=body, headers=auth(alice)) as response,
        ):
            lines = response.aiter_lines()
            while not (await anext(lines)).startswith("data:"):
                pass  # the job's current state arrived: the stream runs

        async def gone() -> bool | None:
            return (await server.stats())[0].streams == 0 or None

        await until(gone)  # the stream (and its bus subscription) ended with the client
    finally:
        await faults(emulator, action="release")


async def test_a_stream_ends_when_its_token_expires(
    server: Running, users: dict[str, User], emulator: str
) -> None:
    alice = users["alice"]
    await faults(emulator, action="stall", class_type="KSampler")
    try:
        job = await submit(server.url, alice.token)
        short = issue_token(SECRET, alice.id, ttl=2)
        body = {"query": JOB_PROGRESS, "variables": {"id": job}}
        headers = {**SSE, "authorization": f"Bearer {short}"}
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=60) as http,
            http.stream("POST", STREAM, json=body, headers=headers) as response,
        ):
            seen = await asyncio.wait_for(events(response), 30)
    finally:
        await faults(emulator, action="release")
    (kind, last), end = seen[-2:]
    assert kind == "next" and end == ("complete", None)
    assert [e["extensions"]["code"] for e in last["errors"]] == ["TOKEN_EXPIRED"]
