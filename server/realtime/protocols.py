"""strawberry's two websocket protocols, with subscriptions served by shared streams.

Everything strawberry does stays (connection_init and its timeout, ack, ping/pong,
close codes, queries and mutations over the socket); a valid subscription instead joins
a shared stream through the connection's outbox. Added: server pings (graphql-transport-ws)
and "ka" (graphql-ws) from one process-wide task, a connection_init timeout for
graphql-ws too, and clear answers to garbage (a frame that is not a JSON object).

graphql-transport-ws: garbage closes with 4400 (the protocol says so).
graphql-ws (legacy): garbage gets {"type": "error"} and the socket stays open, as the
legacy servers did.

Persisted queries work as over HTTP (server/persisted.py): a payload may name its
document by `extensions.persistedQuery.sha256Hash` instead of (or besides) `query`, and
with PERSISTED_QUERIES_ONLY only registered documents run; a refusal ends just that
operation with PERSISTED_QUERY_NOT_FOUND / _NOT_ALLOWED / _HASH_MISMATCH / _INVALID.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol, cast

from graphql import GraphQLError
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.execution import ExecutionResult, PreExecutionError

from comfygraph.resolvers.context import Context
from comfygraph.schema.errors import ApiError
from comfygraph.server.persisted import PERSISTED_QUERY_INVALID, PersistedQueries
from comfygraph.server.realtime.connection import TOO_MANY_SUBSCRIPTIONS, LiveConnection
from comfygraph.server.realtime.frames import LEGACY_WS, TRANSPORT_WS
from comfygraph.server.realtime.service import Realtime

_NOT_TEXT = "WebSocket message type must be text"
_LIMIT = ApiError(TOO_MANY_SUBSCRIPTIONS, "Subscription limit reached")
_LEGACY_TYPES = frozenset({"connection_init", "connection_terminate", "start", "stop"})


class _View(Protocol):
    realtime: Realtime
    persisted: PersistedQueries


def _connection(handler: Any, protocol: str) -> LiveConnection:
    view = cast(_View, handler.view)
    return LiveConnection(view.realtime, handler.websocket.ws, handler.context, protocol)


def _subscribe_payload(message: dict[str, Any]) -> dict[str, Any] | None:
    """The payload of a subscribe/start message when it is well-formed: a query, or
    (persisted queries) extensions that may name one."""
    operation_id, payload = message.get("id"), message.get("payload")
    if not isinstance(operation_id, str) or not operation_id or len(operation_id) > 200:
        return None
    if not isinstance(payload, dict):
        return None
    query = payload.get("query")
    if isinstance(query, str):
        return payload
    if query is None and isinstance(payload.get("extensions"), dict):
        return payload
    return None


async def _resolve_document(handler: Any, payload: dict[str, Any]) -> list[GraphQLError] | None:
    """Put the document the payload names into payload["query"] (a hash stands for its
    text; the allow-list applies), or the errors that refuse it."""
    view = cast(_View, handler.view)
    try:
        query = await view.persisted.resolve_allowed(
            handler.context.pool, payload.get("query"), payload.get("extensions")
        )
    except ApiError as exc:
        return [exc]
    if query is None:
        return [ApiError(PERSISTED_QUERY_INVALID, "a subscribe payload needs a query or a hash")]
    payload["query"] = query
    return None


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.live = _connection(self, TRANSPORT_WS)

    async def handle(self) -> None:
        self.live.open()
        try:
            await super().handle()
        finally:
            await self.live.close()

    async def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.handle_invalid_message("Failed to parse message")
            return
        await super().handle_message(message)  # type: ignore[arg-type]

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged and not self.live.acknowledged:
            # The cancelled timer would keep its CancelledError and frames alive as long
            # as the connection lives.
            self.connection_init_timeout_task = None
            self.live.signed_in()

    async def handle_subscribe(self, message: Any) -> None:
        if not self.connection_acknowledged:
            await self.websocket.close(code=4401, reason="Unauthorized")
            return
        payload = _subscribe_payload(message)
        if payload is None:
            await self.handle_invalid_message("Invalid subscribe message")
            return
        operation_id: str = message["id"]
        if operation_id in self.operations or operation_id in self.live.members:
            await self.websocket.close(
                code=4409, reason=f"Subscriber for {operation_id[:80]} already exists"
            )
            return
        limit = self.max_subscriptions_per_connection
        if limit is not None and len(self.operations) + self.live.count >= limit:
            self.live.refuse(operation_id, [_LIMIT])
            return
        refused = await _resolve_document(self, payload)
        if refused is not None:
            self.live.refuse(operation_id, refused)
            return
        plan = self.live.plan(payload)
        if plan is None:  # not a subscription, or not parseable: strawberry's way
            await super().handle_subscribe(message)
        elif isinstance(plan, list):
            self.live.refuse(operation_id, plan)
        else:
            await self.live.subscribe(operation_id, plan)

    async def handle_complete(self, message: Any) -> None:
        if not self.live.unsubscribe(message["id"]):
            await super().handle_complete(message)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.live = _connection(self, LEGACY_WS)
        self._deadline: asyncio.Task[None] | None = None

    async def handle(self) -> None:
        self.live.open()
        self._deadline = asyncio.create_task(self._init_deadline(), name="ws-init-deadline")
        try:
            await self._receive()
        finally:
            if self._deadline is not None:
                self._deadline.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._deadline
            await self.cleanup()
            await self.live.close()

    async def _receive(self) -> None:
        # strawberry's loop silently skips text that is not JSON: say so instead.
        ws = self.live.websocket
        with contextlib.suppress(WebSocketDisconnect):
            while ws.application_state is not WebSocketState.DISCONNECTED:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    await self.websocket.close(code=1002, reason=_NOT_TEXT)
                    return
                try:
                    decoded = self.view.decode_json(text)
                except ValueError:
                    await self._protocol_error("a message must be JSON")
                    continue
                await self.handle_message(decoded)

    async def _init_deadline(self) -> None:
        await asyncio.sleep(self.live.realtime.settings.ws_connection_init_timeout)
        if not self.connection_acknowledged:
            await self.websocket.close(code=4408, reason="Connection initialisation timeout")

    async def _protocol_error(self, message: str, operation_id: Any = None) -> None:
        error: dict[str, Any] = {"type": "error", "payload": {"message": message}}
        if isinstance(operation_id, str):
            error["id"] = operation_id
        await self.send_message(error)  # type: ignore[arg-type]

    async def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self._protocol_error("a message must be a JSON object with a type")
        elif message["type"] not in _LEGACY_TYPES:
            await self._protocol_error(f"unknown message type {message['type'][:40]!r}")
        else:
            await super().handle_message(message)  # type: ignore[arg-type]

    async def handle_connection_init(self, message: Any) -> None:
        if self.connection_acknowledged:
            await self._protocol_error("the connection is already initialised")
            return
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None  # (a cancelled task would keep its frames alive)
            self.live.signed_in()

    async def handle_start(self, message: Any) -> None:
        if not self.connection_acknowledged:
            await self.websocket.close(code=4401, reason="Unauthorized")
            return
        payload = _subscribe_payload(message)
        operation_id = message.get("id")
        if payload is None:
            await self._protocol_error("a start message needs an id and a payload with a query",
                                       operation_id)  # fmt: skip
            return
        if operation_id in self.tasks:
            await self.cleanup_operation(operation_id)
        self.live.unsubscribe(operation_id)  # a start with a known id replaces it
        limit = self.max_subscriptions_per_connection
        if limit is not None and len(self.tasks) + self.live.count >= limit:
            self.live.refuse(operation_id, [_LIMIT])
            return
        refused = await _resolve_document(self, payload)
        if refused is not None:
            self.live.refuse(operation_id, refused)
            return
        plan = self.live.plan(payload)
        if plan is None:
            await super().handle_start(message)
        elif isinstance(plan, list):
            self.live.refuse(operation_id, plan)
        else:
            await self.live.subscribe(operation_id, plan)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        """strawberry's, with `stream` for `subscribe`: the legacy protocol's servers
        (subscriptions-transport-ws) ran queries and mutations too, a `data` then
        `complete`; strawberry refuses them ("queries are not allowed")."""
        try:
            source = await self.schema.stream(
                query, variable_values=variables, operation_name=operation_name,
                context_value=self.context, root_value=self.root_value,
            )  # fmt: skip
            self.subscriptions[operation_id] = source  # type: ignore[assignment]
            first = True
            async for result in source:
                if first and isinstance(result, PreExecutionError):
                    assert result.errors
                    await self.send_message(
                        {"type": "error", "id": operation_id, "payload": result.errors[0].formatted}  # type: ignore[typeddict-item]
                    )
                    return
                if isinstance(result, ExecutionResult):
                    await self.send_data_message(result, operation_id)
                first = False
            await self.send_message({"type": "complete", "id": operation_id})
        except asyncio.CancelledError:
            await self.send_message({"type": "complete", "id": operation_id})
        finally:
            self.subscriptions.pop(operation_id, None)
            self.tasks.pop(operation_id, None)

    async def handle_stop(self, message: Any) -> None:
        if not isinstance(message.get("id"), str):
            await self._protocol_error("a stop message needs an id")
        elif not self.live.unsubscribe(message["id"], confirm=True):
            await super().handle_stop(message)
