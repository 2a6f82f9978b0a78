"""WS /ws?clientId=...: the handshake, feature_flags negotiation and the send loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket, WebSocketDisconnect

from comfygraph.emulator.hub import Connection

if TYPE_CHECKING:
    from comfygraph.emulator.state import EmulatorState

SERVER_FEATURES = {
    "supports_preview_metadata": True,
    "max_upload_size": 104857600,
    "extension": {"manager": {"supports_v4": True}},
}


async def websocket_endpoint(websocket: WebSocket) -> None:
    state: EmulatorState = websocket.app.state.emulator
    await websocket.accept()
    sid = websocket.query_params.get("clientId") or uuid.uuid4().hex
    greeting = {"type": "status", "data": {"status": state.queue.info(), "sid": sid}}
    connection = state.hub.register(sid, greeting)
    running_node = state.reconnect_node(sid)
    if running_node is not None:
        # ComfyUI tells a reconnecting owner which node runs: no prompt_id, no display_node.
        state.hub.send("executing", {"node": running_node}, sid)
    sender = asyncio.create_task(_send_loop(websocket, connection))
    try:
        await _receive_loop(websocket, connection, state)
    finally:
        state.hub.unregister(connection)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


async def _receive_loop(websocket: WebSocket, connection: Connection, state: EmulatorState) -> None:
    first = True
    while True:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            continue  # ComfyUI logs and ignores it; the first-frame window stays open
        if first and isinstance(data, dict) and data.get("type") == "feature_flags":
            flags = data.get("data")
            connection.flags = flags if isinstance(flags, dict) else {}
            reply = {"type": "feature_flags", "data": SERVER_FEATURES}
            connection.outbox.put_nowait(json.dumps(reply))
        first = False


async def _send_loop(websocket: WebSocket, connection: Connection) -> None:
    try:
        while True:
            frame = await connection.outbox.get()
            if isinstance(frame, int):
                await websocket.close(code=frame)
                return
            if isinstance(frame, bytes):
                await websocket.send_bytes(frame)
            else:
                await websocket.send_text(frame)
    except (WebSocketDisconnect, RuntimeError, OSError):
        return
