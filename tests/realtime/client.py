"""A GraphQL websocket client for the tests, speaking graphql-transport-ws or graphql-ws.

Frames are read in the background and sorted per operation, so a test waits for what
it expects with a deadline (`Operation.next`, `Operation.until`) and proves absence with
a short quiet window (`Operation.quiet`); nothing sleeps. Server pings are answered.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
PROTOCOLS = (TRANSPORT_WS, LEGACY_WS)
WAIT = 15.0

JOB_PROGRESS = """subscription($id: ID!) { jobProgress(id: $id) {
  status progress node nodeProgress { node classType value max } queuePosition etaSeconds
  previewUrl
  job { __typename ... on GenerationJob { id status progress outputs { url kind } }
        ... on ImageJob { outputImageUrls } } } }"""
JOB_UPDATES = """subscription($filter: JobFilter) { jobUpdates(filter: $filter) {
  __typename ... on GenerationJob { id status workflowName public } } }"""
SESSION_PROGRESS = """subscription($id: ID!) { sessionProgress(id: $id) {
  __typename ... on Session { id status sessionStatus progressPercentage }
  ... on Asset { id assetStatus url } } }"""


class Ended(AssertionError):
    """The operation ended (error or complete) while a test waited for data."""


@dataclass
class Operation:
    client: Client
    id: str
    items: list[tuple[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    read: int = 0

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [payload for kind, payload in self.items if kind == "next"]

    def _push(self, kind: str, payload: Any) -> None:
        self.items.append((kind, payload))
        self.changed.set()

    async def _item(self, within: float) -> tuple[str, Any]:
        async with asyncio.timeout(within):
            while self.read >= len(self.items):
                if self.client.closed.is_set():
                    raise Ended(f"socket closed ({self.client.close_code}) before a frame")
                self.changed.clear()
                await asyncio.wait(
                    [asyncio.ensure_future(self.changed.wait()),
                     asyncio.ensure_future(self.client.closed.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )  # fmt: skip
        item = self.items[self.read]
        self.read += 1
        return item

    async def next(self, within: float = WAIT) -> dict[str, Any]:
        """The next data payload ({"data": ..., "errors"?: ...})."""
        kind, payload = await self._item(within)
        if kind != "next":
            raise Ended(f"expected data, got {kind}: {payload}")
        result: dict[str, Any] = payload
        return result

    async def data(self, within: float = WAIT) -> Any:
        """The next payload's root field value (it must have no errors)."""
        payload = await self.next(within)
        assert "errors" not in payload, payload["errors"]
        return next(iter(payload["data"].values()))

    async def until(self, predicate: Callable[[Any], bool], within: float = WAIT) -> list[Any]:
        """Root values up to and including the first that satisfies `predicate`."""
        seen = []
        async with asyncio.timeout(within):
            while True:
                value = await self.data(within)
                seen.append(value)
                if predicate(value):
                    return seen

    async def error(self, within: float = WAIT) -> list[dict[str, Any]]:
        """The errors the operation ended with (an error message)."""
        kind, payload = await self._item(within)
        assert kind == "error", (kind, payload)
        return payload if isinstance(payload, list) else [payload]

    async def completed(self, within: float = WAIT) -> None:
        kind, payload = await self._item(within)
        assert kind == "complete", (kind, payload)

    async def quiet(self, within: float = 0.3) -> None:
        """Prove nothing more arrives for a short while."""
        try:
            await self._item(within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame: {self.items[self.read - 1]}")

    async def stop(self) -> None:
        kind = "complete" if self.client.protocol == TRANSPORT_WS else "stop"
        await self.client.send({"id": self.id, "type": kind})


class Client:
    def __init__(self, connection: ClientConnection, protocol: str) -> None:
        self.connection = connection
        self.protocol = protocol
        self.operations: dict[str, Operation] = {}
        self.control: list[dict[str, Any]] = []
        self.acked = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._ids = itertools.count(1)
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls, ws_url: str, protocol: str = TRANSPORT_WS, token: str | None = None,
        *, init: bool = True, **options: Any,
    ) -> Client:  # fmt: skip
        connection = await websockets.connect(
            ws_url,
            subprotocols=[Subprotocol(protocol)],
            open_timeout=WAIT,
            **options,
        )
        client = cls(connection, protocol)
        if init:
            await client.init(token)
        return client

    async def init(self, token: str | None = None, within: float = WAIT) -> None:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await self.send({"type": "connection_init", "payload": payload})
        async with asyncio.timeout(within):
            done = asyncio.ensure_future(self.closed.wait())
            acked = asyncio.ensure_future(self.acked.wait())
            await asyncio.wait([done, acked], return_when=asyncio.FIRST_COMPLETED)
            done.cancel(), acked.cancel()
        if not self.acked.is_set():
            raise Ended(f"not acknowledged: closed {self.close_code} {self.close_reason}")

    async def send(self, message: Any) -> None:
        await self.connection.send(message if isinstance(message, str | bytes)
                                   else json.dumps(message))  # fmt: skip

    async def subscribe(
        self, query: str | None, variables: dict[str, Any] | None = None, *,
        id: str | None = None, extensions: dict[str, Any] | None = None,
    ) -> Operation:  # fmt: skip
        """Start an operation; `query` None sends only `extensions` (a persisted query)."""
        op = Operation(self, id or str(next(self._ids)))
        self.operations[op.id] = op
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        payload: dict[str, Any] = {} if query is None else {"query": query}
        if variables is not None:
            payload["variables"] = variables
        if extensions is not None:
            payload["extensions"] = extensions
        await self.send({"id": op.id, "type": kind, "payload": payload})
        return op

    async def wait_closed(self, within: float = WAIT) -> int | None:
        async with asyncio.timeout(within):
            await self.closed.wait()
        return self.close_code

    async def close(self) -> None:
        await self.connection.close()
        await self._reader

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _read(self) -> None:
        try:
            async for frame in self.connection:
                message = json.loads(frame)
                await self._dispatch(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.connection.close_code
            self.close_reason = self.connection.close_reason
            self.closed.set()
            for op in self.operations.values():
                op.changed.set()

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "connection_ack":
            self.acked.set()
        elif kind == "ping":
            await self.send({"type": "pong"})
            self.control.append(message)
        elif kind in ("next", "data", "error", "complete") and message.get("id") in self.operations:
            self.operations[message["id"]]._push(
                "next" if kind in ("next", "data") else kind, message.get("payload")
            )
        else:
            self.control.append(message)


def codes(errors: list[dict[str, Any]]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in errors]
