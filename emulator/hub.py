"""Who gets which websocket message: ComfyUI's `sockets` table and `send_sync` routing.

A message addressed to a sid goes only to the socket currently registered under it (and is
dropped when none is); `sid=None` goes to every registered socket. Each connection has its
own FIFO so one slow client cannot reorder or stall another's stream.
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass, field
from typing import Any

PREVIEW_IMAGE = 1
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4
JPEG = 1

Frame = str | bytes | int  # text, binary, or a close code


@dataclass(eq=False)
class Connection:
    sid: str
    outbox: asyncio.Queue[Frame] = field(default_factory=asyncio.Queue)
    flags: dict[str, Any] = field(default_factory=dict)


class Hub:
    def __init__(self) -> None:
        self._sockets: dict[str, Connection] = {}

    def register(self, sid: str, first_message: dict[str, Any]) -> Connection:
        """Register (replacing, not closing, an older socket with this sid) and greet."""
        connection = Connection(sid)
        connection.outbox.put_nowait(json.dumps(first_message))
        self._sockets[sid] = connection
        return connection

    def unregister(self, connection: Connection) -> None:
        # Only if still ours: a reconnect under the same sid must keep its registration.
        if self._sockets.get(connection.sid) is connection:
            del self._sockets[connection.sid]

    def connected(self, sid: str | None) -> bool:
        return sid is not None and sid in self._sockets

    def supports_preview_metadata(self, sid: str | None) -> bool:
        connection = self._sockets.get(sid) if sid else None
        return bool(connection and connection.flags.get("supports_preview_metadata"))

    def send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        self._deliver(json.dumps({"type": event, "data": data}), sid)

    def send_binary(self, event: int, payload: bytes, sid: str | None) -> None:
        self._deliver(struct.pack(">I", event) + payload, sid)

    def send_text_frame(self, node_id: str, text: str) -> None:
        """`send_progress_text`: always broadcast, whoever owns the prompt."""
        node = node_id.encode()
        self.send_binary(TEXT, struct.pack(">I", len(node)) + node + text.encode(), None)

    def drop_all(self, code: int = 1001) -> int:
        """Close every socket (a crash or restart as clients see it); returns how many."""
        connections = list(self._sockets.values())
        self._sockets.clear()
        for connection in connections:
            connection.outbox.put_nowait(code)
        return len(connections)

    def _deliver(self, frame: Frame, sid: str | None) -> None:
        if sid is None:
            targets = list(self._sockets.values())
        else:
            target = self._sockets.get(sid)
            targets = [target] if target else []
        for connection in targets:
            connection.outbox.put_nowait(frame)


def preview_frame(jpeg: bytes) -> bytes:
    """Payload of a legacy PREVIEW_IMAGE frame: format (1 = JPEG) then the image."""
    return struct.pack(">I", JPEG) + jpeg


def preview_with_metadata(jpeg: bytes, metadata: dict[str, Any]) -> bytes:
    """Payload of PREVIEW_IMAGE_WITH_METADATA: metadata length, metadata JSON, image."""
    meta = json.dumps(metadata).encode()
    return struct.pack(">I", len(meta)) + meta + jpeg
