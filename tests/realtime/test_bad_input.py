"""Garbage on the socket gets a clear answer (an error or a close code), and the server
keeps serving everyone else."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.realtime.client import JOB_PROGRESS, LEGACY_WS, TRANSPORT_WS, Client, codes
from tests.realtime.conftest import User
from tests.realtime.harness import Running


async def assert_still_serving(server: Running, user: User) -> None:
    async with await Client.connect(server.ws_url, token=user.token) as client:
        op = await client.subscribe("subscription { jobUpdates { __typename } }")
        await op.quiet(0.05)
        assert not client.closed.is_set()


@pytest.mark.parametrize(
    "frame",
    [
        "this is not json",
        "[1, 2]",
        "42",
        json.dumps({"type": "no-such-type"}),
        json.dumps({"id": "1", "type": "subscribe"}),
        json.dumps({"id": 7, "type": "subscribe", "payload": {"query": "subscription {x}"}}),
        json.dumps({"id": "1", "type": "subscribe", "payload": {"query": 3}}),
        json.dumps({"type": "complete"}),
        b"\x00\x01binary",
    ],
)
async def test_transport_ws_closes_4400_on_garbage(
    server: Running, users: dict[str, User], frame: Any
) -> None:
    async with await Client.connect(server.ws_url, TRANSPORT_WS, users["alice"].token) as client:
        await client.send(frame)
        assert await client.wait_closed() == 4400
    await assert_still_serving(server, users["alice"])


async def test_legacy_ws_answers_garbage_with_errors_and_stays_open(
    server: Running, users: dict[str, User]
) -> None:
    async with await Client.connect(server.ws_url, LEGACY_WS, users["alice"].token) as client:
        garbage = ["this is not json", "[1]"] + [
            json.dumps(m)
            for m in ({"type": "nope"}, {"id": "1", "type": "start"}, {"type": "stop"})
        ]
        for frame in garbage:
            await client.send(frame)
        op = await client.subscribe(JOB_PROGRESS, {"id": "malformed"}, id="next")
        assert codes(await op.error()) == ["INVALID_ID"]
        errors = [m for m in client.control if m.get("type") == "error"]
        assert len(errors) == 5 and all(e["payload"]["message"] for e in errors)
        await client.send(b"binary")
        assert await client.wait_closed() == 1002
    await assert_still_serving(server, users["alice"])


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_no_connection_init_in_time_closes_4408(
    server: Running, users: dict[str, User], protocol: str
) -> None:
    async with await Client.connect(server.ws_url, protocol, init=False) as client:
        assert await client.wait_closed(within=5) == 4408
        assert client.close_reason == "Connection initialisation timeout"
    await assert_still_serving(server, users["alice"])


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_subscribing_before_connection_init_closes_4401(
    server: Running, protocol: str
) -> None:
    async with await Client.connect(server.ws_url, protocol, init=False) as client:
        await client.subscribe("subscription { jobUpdates { __typename } }")
        assert await client.wait_closed() == 4401


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_bad_token_is_refused(server: Running, protocol: str) -> None:
    async with await Client.connect(server.ws_url, protocol, init=False) as client:
        await client.send({"type": "connection_init", "payload": {"Authorization": "Bearer x"}})
        code = await client.wait_closed()
    assert code == (4403 if protocol == TRANSPORT_WS else 1011)
    if protocol == LEGACY_WS:
        assert client.control[0]["type"] == "connection_error"
        assert client.control[0]["payload"]["code"] == "UNAUTHENTICATED"


async def test_transport_ws_protocol_errors(server: Running, users: dict[str, User]) -> None:
    token = users["alice"].token
    async with await Client.connect(server.ws_url, TRANSPORT_WS, token) as client:
        invalid = await client.subscribe("subscription { jobProgress(id: 1) { nope } }")
        errors = await invalid.error()
        assert set(codes(errors)) == {"GRAPHQL_VALIDATION_FAILED"}
        variables = await client.subscribe(JOB_PROGRESS, {"id": {"an": "object"}})
        assert codes(await variables.error()) == ["BAD_USER_INPUT"]
        await client.subscribe("subscription { jobUpdates { __typename } }", id="same")
        await client.subscribe("subscription { jobUpdates { __typename } }", id="same")
        assert await client.wait_closed() == 4409
    async with await Client.connect(server.ws_url, TRANSPORT_WS, token) as client:
        await client.subscribe("subscription { jobUpdates {")
        assert await client.wait_closed() == 4400  # a syntax error, as strawberry answers it
    async with await Client.connect(server.ws_url, TRANSPORT_WS, token) as client:
        await client.send({"type": "connection_init", "payload": {}})
        assert await client.wait_closed() == 4429  # initialised twice
    await assert_still_serving(server, users["alice"])


async def test_queries_still_run_over_the_socket(server: Running, users: dict[str, User]) -> None:
    async with await Client.connect(server.ws_url, TRANSPORT_WS, users["alice"].token) as client:
        op = await client.subscribe("{ me { email } }")
        assert (await op.data())["email"] == users["alice"].row["email"]
        await op.completed()


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_queries_and_mutations_run_over_either_websocket_protocol(
    server: Running, users: dict[str, User], protocol: str
) -> None:
    """graphql-ws's old servers ran queries and mutations too: data, then complete."""
    async with await Client.connect(server.ws_url, protocol, users["alice"].token) as client:
        op = await client.subscribe("{ me { email } }")
        assert await op.data() == {"email": users["alice"].row["email"]}
        await op.completed()
        mutation = await client.subscribe(
            'mutation { setJobPublic(id: "nope", public: true) { userErrors { code } } }'
        )
        assert await mutation.data() == {"userErrors": [{"code": "INVALID_ID"}]}
        await mutation.completed()
        bad = await client.subscribe("{ me { nosuchfield } }")
        assert codes(await bad.error()) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_a_subscription_over_http_says_to_use_a_websocket(
    server: Running, users: dict[str, User]
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            "/graphql",
            json={"query": 'subscription { jobProgress(id: "x") { status } }'},
            headers={"Authorization": f"Bearer {users['alice'].token}"},
        )
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["SUBSCRIPTION_NEEDS_WEBSOCKET"]
    assert body["errors"][0]["message"] == (
        "subscriptions stream: use a websocket at /graphql with graphql-transport-ws "
        "(or graphql-ws), or Server-Sent Events at /graphql/stream (graphql-sse)"
    )
