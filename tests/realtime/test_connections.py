"""The websocket itself: keep-alives, the websocket_connections record, and a client
that stops reading (it delays nobody, and what waits for it stays bounded)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import websockets
from websockets.typing import Subprotocol

from comfygraph.bus import EventBus
from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.sessions import create_session
from comfygraph.db.ws_connections import open_connections
from comfygraph.studio.channels import JobEvents
from comfygraph.studio.publish import bus_publisher
from tests.graphql.client import gid
from tests.realtime.client import LEGACY_WS, TRANSPORT_WS, Client, codes
from tests.realtime.conftest import User
from tests.realtime.harness import Running, make_settings, running, until

QUEUE = 8
BIG = """subscription($id: ID!) { jobProgress(id: $id) {
  status progress job { ... on GenerationJob { id parameters } } } }"""


@pytest.fixture(scope="module")
def busy(dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A server with fast keep-alives and heartbeats and a small send queue."""
    settings = make_settings(
        dsn,
        Path(tmp_path_factory.mktemp("busy")),
        ws_keepalive_interval=0.3,
        ws_heartbeat_interval=0.3,
        ws_send_queue=QUEUE,
    )
    with running(settings, dsn) as app:
        yield app


async def test_keepalives_on_both_protocols(busy: Running, users: dict[str, User]) -> None:
    async with (
        await Client.connect(busy.ws_url, TRANSPORT_WS, users["alice"].token) as modern,
        await Client.connect(busy.ws_url, LEGACY_WS, users["alice"].token) as legacy,
    ):

        async def pinged() -> bool:
            pings = [m for m in modern.control if m["type"] == "ping"]
            kas = [m for m in legacy.control if m["type"] == "ka"]
            return len(pings) >= 2 and len(kas) >= 3  # graphql-ws: one right after the ack

        await until(pinged, within=10)
        assert not modern.closed.is_set() and not legacy.closed.is_set()


async def test_connections_are_recorded_heartbeat_and_close(
    busy: Running, users: dict[str, User], pool: asyncpg.Pool
) -> None:
    alice = users["alice"]
    async with pool.acquire() as conn:
        session = await create_session(conn, user_id=alice.id, user_product_prompt="mug")
    replica = busy.state.comfy.replica if busy.state.comfy else None

    async def rows() -> list[asyncpg.Record]:
        async with pool.acquire() as conn:
            return [r for r in await open_connections(conn, replica=replica)]

    before = {r["connection_id"] for r in await rows()}
    silent = await Client.connect(busy.ws_url, init=False)  # never initialised: not counted
    client = await Client.connect(busy.ws_url, LEGACY_WS, alice.token,
                                  user_agent_header="realtime-test/1.0")  # fmt: skip
    op = await client.subscribe(
        "subscription($id: ID!) { sessionProgress(id: $id) { __typename } }",
        {"id": gid("Session", session["id"])},
    )
    await op.data()

    async def recorded() -> list[asyncpg.Record]:
        return [r for r in await rows()
                if r["connection_id"] not in before and r["session_id"] is not None]  # fmt: skip

    [row] = await until(recorded)
    assert row["user_id"] == alice.id and row["session_id"] == session["id"]
    assert row["client_ip"] == "127.0.0.1" and row["user_agent"] == "realtime-test/1.0"
    assert row["metadata"] == {"protocol": "graphql-ws"} and row["disconnected_at"] is None

    async def beat() -> bool:
        async with pool.acquire() as conn:
            at = await conn.fetchval(
                "SELECT last_heartbeat_at FROM websocket_connections WHERE connection_id = $1",
                row["connection_id"],
            )
        return bool(at > row["last_heartbeat_at"])

    await until(beat)
    await client.close()
    await silent.close()

    async def closed() -> Any:
        async with pool.acquire() as conn:
            return await conn.fetchval(
                "SELECT disconnected_at FROM websocket_connections WHERE connection_id = $1",
                row["connection_id"],
            )

    assert await until(closed) >= row["connected_at"]
    assert {r["connection_id"] for r in await rows()} <= before


def _stalled_socket(url: str) -> socket.socket:
    """A socket with a tiny receive buffer, so a client that stops reading stalls fast."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock


async def _read_to_the_end(connection: Any) -> None:
    """Keep reading (keep-alive pings) while the close handshake runs."""
    with contextlib.suppress(websockets.ConnectionClosed):
        async for _ in connection:
            pass


async def test_a_client_that_stops_reading_delays_nobody_and_stays_bounded(
    busy: Running, users: dict[str, User], pool: asyncpg.Pool, dsn: str
) -> None:
    alice = users["alice"]
    async with pool.acquire() as conn:
        row, _ = await create_job(
            conn, OutputType.IMAGE, user_id=alice.id, workflow_name="product-image",
            parameters={"padding": "x" * 60_000}, public=True, status="processing",
        )  # fmt: skip
    job = gid("ImageJob", row["id"])
    stalled = await websockets.connect(
        busy.ws_url, sock=_stalled_socket(busy.url), subprotocols=[Subprotocol(TRANSPORT_WS)],
        max_queue=1,
    )  # fmt: skip
    await stalled.send(json.dumps({"type": "connection_init", "payload": {}}))
    await stalled.recv()  # ack; from now on it reads nothing
    subscribe = {
        "id": "1",
        "type": "subscribe",
        "payload": {"query": BIG, "variables": {"id": job}},
    }
    await stalled.send(json.dumps(subscribe))
    async with (
        await Client.connect(busy.ws_url, token=alice.token) as reader,
        EventBus.from_url(busy.broadcast_url) as bus,
    ):
        op = await reader.subscribe(BIG, {"id": job})
        await op.data()
        events = JobEvents(bus_publisher(bus))
        worst, ended_at = 0, None
        for batch in range(40):
            # Status changes are never dropped: each is a frame of ~60 KB for each client.
            for _ in range(10):
                await events.status("image", row)
            for _ in range(10):
                await op.data(within=10)  # the reader keeps up, whatever the stalled one does
            stats, _, _ = await busy.stats()
            worst = max(worst, stats.queued_frames)
            if ended_at is None and stats.subscriptions == 1:
                ended_at = batch  # the stalled client's subscription overflowed
            if ended_at is not None and batch > ended_at:
                break
        assert ended_at is not None, "the stalled client's subscription was ended"
        assert worst <= QUEUE + 2, "what waits for a socket is bounded"
    # Once it reads again, it learns why its subscription ended.
    last: dict[str, Any] = {}
    async with asyncio.timeout(15):
        while last.get("type") != "error":
            last = json.loads(await stalled.recv())
    assert codes(last["payload"]) == ["SUBSCRIBER_OVERFLOW"]
    await asyncio.gather(stalled.close(), _read_to_the_end(stalled))
