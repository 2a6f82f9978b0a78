"""Deliveries written as ready-made websocket frames (server/realtime/wire.py): every
subscriber of an event gets the same frame, built once, written straight to its socket,
and the client reads exactly what the ASGI send would have sent. A connection that
negotiated permessage-deflate takes the ASGI send (the frame would need compressing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from comfygraph.server.app import create_app
from comfygraph.server.graphql import GraphQLView
from comfygraph.server.settings import WorkerSpec
from tests.realtime.client import JOB_UPDATES, LEGACY_WS, TRANSPORT_WS, Client
from tests.realtime.conftest import User
from tests.realtime.harness import Running, make_settings, submit
from tests.servers import serve_in_thread


async def _written(server: Running) -> int:
    async def read() -> int:
        return sum(c.outbox.wire.written for c in server.view.realtime.connections
                   if c.outbox.wire is not None)  # fmt: skip

    return await server.call(read)


async def test_subscribers_get_one_frame_written_straight_to_the_socket(
    server: Running, users: dict[str, User]
) -> None:
    alice = users["alice"]
    async with (
        await Client.connect(server.ws_url, TRANSPORT_WS, alice.token) as one,
        await Client.connect(server.ws_url, TRANSPORT_WS, alice.token) as two,
        await Client.connect(server.ws_url, LEGACY_WS, alice.token) as legacy,
    ):
        ops = [await c.subscribe(JOB_UPDATES, id="1") for c in (one, two, legacy)]
        for op in ops:
            await op.quiet(0.05)
        before = await _written(server)
        job = await submit(server.url, alice.token)
        seen = [await op.until(lambda v: v["id"] == job and v["status"] == "COMPLETED",
                               within=30) for op in ops]  # fmt: skip
        # The same updates, in the same order, on both protocols.
        assert seen[0] == seen[1] == seen[2] and seen[0][0]["status"] == "PENDING"
        assert await _written(server) - before >= 3 * len(seen[0])


@pytest.fixture(scope="module")
def deflating(dsn: str, emulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app under uvicorn's defaults: permessage-deflate offered and accepted."""
    settings = make_settings(dsn, Path(tmp_path_factory.mktemp("data")),
                             comfy_workers=(WorkerSpec(emulator),))  # fmt: skip
    app = create_app(settings, dsn=dsn)
    with serve_in_thread(app) as url:
        yield url, app


async def test_a_compressed_connection_takes_the_asgi_send(
    deflating: Any, users: dict[str, User]
) -> None:
    url, app = deflating
    view = next(r.endpoint for r in app.routes
                if isinstance(getattr(r, "endpoint", None), GraphQLView))  # fmt: skip
    alice = users["alice"]
    ws_url = url.replace("http://", "ws://") + "/graphql"
    async with await Client.connect(ws_url, TRANSPORT_WS, alice.token) as client:
        assert client.connection.protocol.extensions  # deflate was negotiated
        op = await client.subscribe(JOB_UPDATES)
        await op.quiet(0.05)
        job = await submit(url, alice.token)
        await op.until(lambda v: v["id"] == job and v["status"] == "COMPLETED", within=30)
        # (read from this thread: a plain int, no loop needed)
        (connection,) = view.realtime.connections
        assert connection.outbox.wire is not None and connection.outbox.wire.written == 0
