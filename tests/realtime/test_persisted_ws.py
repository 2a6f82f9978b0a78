"""PERSISTED_QUERIES_ONLY over websockets (graphql-transport-ws and graphql-ws) and SSE:
an unregistered document is refused with a code (that operation only: the socket stays
open), an unknown hash is PERSISTED_QUERY_NOT_FOUND, and a registered document runs by
its hash (`extensions.persistedQuery.sha256Hash` in the subscribe payload)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from comfygraph.db.persisted import register_queries
from comfygraph.server.settings import WorkerSpec
from tests.realtime.client import JOB_UPDATES, PROTOCOLS, Client, codes
from tests.realtime.conftest import User
from tests.realtime.harness import SUBMIT, Running, make_settings, running, submit
from tests.realtime.test_job_updates import streams_listening
from tests.realtime.test_sse import STREAM, auth, events

ME = "query Me { me { email } }"
UNREGISTERED = "subscription { jobUpdates { __typename } }"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _by_hash(text: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": _digest(text)}}


@pytest.fixture(scope="module")
def server(dsn: str, emulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    settings = make_settings(
        dsn,
        Path(tmp_path_factory.mktemp("data")),
        comfy_workers=(WorkerSpec(emulator),),
        persisted_queries_only=True,
    )
    with running(settings, dsn) as app:
        yield app


@pytest.fixture(scope="module")
async def registered(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:  # as `comfygraph persist` stores them
        await register_queries(conn, {_digest(q): q for q in (JOB_UPDATES, SUBMIT, ME)})


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_only_registered_subscriptions_run_over_websockets(
    server: Running, users: dict[str, User], registered: None, protocol: str
) -> None:
    alice = users["alice"]
    async with await Client.connect(server.ws_url, protocol, alice.token) as client:
        text = await client.subscribe(UNREGISTERED)
        assert codes(await text.error()) == ["PERSISTED_QUERY_NOT_ALLOWED"]
        unknown = await client.subscribe(None, extensions=_by_hash(UNREGISTERED))
        assert codes(await unknown.error()) == ["PERSISTED_QUERY_NOT_FOUND"]
        mismatch = await client.subscribe(JOB_UPDATES, extensions=_by_hash(ME))
        assert codes(await mismatch.error()) == ["PERSISTED_QUERY_HASH_MISMATCH"]
        malformed = await client.subscribe(None, extensions={"persistedQuery": "x"})
        assert codes(await malformed.error()) == ["PERSISTED_QUERY_INVALID"]
        query = await client.subscribe("{ me { email } }")  # queries over the socket too
        assert codes(await query.error()) == ["PERSISTED_QUERY_NOT_ALLOWED"]
        assert not client.closed.is_set()  # refusals end the operation, not the socket

        me = await client.subscribe(None, extensions=_by_hash(ME))
        assert (await me.next())["data"] == {"me": {"email": alice.row["email"]}}
        before = (await server.stats())[0].streams
        updates = await client.subscribe(None, extensions=_by_hash(JOB_UPDATES))
        by_text = await client.subscribe(JOB_UPDATES)  # its exact text is registered too
        await streams_listening(server, before + 1)  # joined before the job is submitted
        job = await submit(server.url, alice.token)
        # (an earlier test's job may still be moving: wait for this one's update)
        await updates.until(lambda v: v["id"] == job)
        await by_text.until(lambda v: v["id"] == job)


async def test_only_registered_documents_run_over_sse(
    server: Running, users: dict[str, User], registered: None
) -> None:
    alice = users["alice"]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        refused = {"query": "{ me { email } }"}
        async with http.stream("POST", STREAM, json=refused, headers=auth(alice)) as response:
            (kind, data), end = await events(response)
        assert kind == "next" and end == ("complete", None)
        assert codes(data["errors"]) == ["PERSISTED_QUERY_NOT_ALLOWED"]
        unknown = {"extensions": _by_hash(UNREGISTERED)}
        async with http.stream("POST", STREAM, json=unknown, headers=auth(alice)) as response:
            (kind, data), _ = await events(response)
        assert codes(data["errors"]) == ["PERSISTED_QUERY_NOT_FOUND"]
        by_hash = {"extensions": _by_hash(ME)}
        async with http.stream("POST", STREAM, json=by_hash, headers=auth(alice)) as response:
            seen = await events(response)
        assert seen == [("next", {"data": {"me": {"email": alice.row["email"]}}}),
                        ("complete", None)]  # fmt: skip
