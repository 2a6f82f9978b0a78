"""Writing a delivery as one ready-made websocket frame, straight onto the socket.

A subscription's frame reaches the wire through starlette's WebSocket.send, each ASGI
middleware's send wrapper, and uvicorn's send (an await, a str encode, a frame built
by the websockets state machine): about 30 us per subscriber per event, so the 5,000th
subscriber of one job heard of a tick ~150 ms after the first. Every subscriber of a
stream that uses the same operation id (clients number theirs from "1") gets the very
same bytes, so the frame is built once per event (frames.Spelling.wire) and written
with transport.write, a few us.

Only under uvicorn's websockets-sansio protocol (its default), only while the
connection is open, writable (not paused by flow control), uncompressed (no
permessage-deflate: the frame would need its own compression) and has not sent a
close; anything else takes the ASGI send, which remains the one path for everything
but data frames. The raw ASGI send is captured by CaptureSend, the outermost
middleware, since starlette's WebSocket only holds the wrapped one.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

RAW_SEND = "comfygraph.raw_send"


class CaptureSend:
    """Keep the server's own send callable in a websocket's scope (see Wire.of)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[RAW_SEND] = send
        await self.app(scope, receive, send)


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked (server to client) text frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 65536:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + payload


class Wire:
    """The socket under one websocket, for writing whole data frames."""

    __slots__ = ("_protocol", "written")

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol
        #: frames written this way (what the tests look at)
        self.written = 0

    @classmethod
    def of(cls, scope: Any) -> Wire | None:
        protocol = getattr(scope.get(RAW_SEND), "__self__", None)
        return cls(protocol) if isinstance(protocol, WebSocketsSansIOProtocol) else None

    def write(self, frame: bytes) -> bool:
        """Write `frame` now; False when this socket must take the ASGI send instead."""
        p = self._protocol
        if (
            p.close_sent
            or p.disconnected
            or not p.writable.is_set()
            or p.conn.state is not State.OPEN
            or p.conn.extensions
            or p.transport.is_closing()
        ):
            return False
        p.transport.write(frame)
        self.written += 1
        return True
