"""The client's websocket handshake, seen from a real websocket server."""

from __future__ import annotations

import asyncio

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from comfygraph.comfy.client import ComfyClient


async def test_the_client_does_not_offer_compression() -> None:
    """ComfyUI (aiohttp) compresses whatever a client accepts; previews are JPEG or PNG
    that do not shrink, so deflate would only spend CPU on the GPU host and here."""
    offered: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    def record(connection: ServerConnection, request: Request) -> None:
        if not offered.done():
            offered.set_result(request.headers.get("Sec-WebSocket-Extensions"))

    async def hold(connection: ServerConnection) -> None:
        await connection.wait_closed()

    async with serve(hold, "127.0.0.1", 0, process_request=record) as server:
        port = server.sockets[0].getsockname()[1]
        async with ComfyClient(f"http://127.0.0.1:{port}") as client, client.events():
            extensions = await asyncio.wait_for(offered, 10)
    assert extensions is None
