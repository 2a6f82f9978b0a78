"""GraphQL over Server-Sent Events (the graphql-sse protocol, distinct-connections mode).

A POST (or a GET with query parameters) with `Accept: text/event-stream` gets a stream of
`next` events, then one `complete`. A subscription joins the same shared streams as the
websockets (streams.py): the same plan, the same per-client audience check, the same
key, so an SSE client and a websocket client asking the same thing share one execution.
Queries and mutations run once through the schema: one `next`, then `complete`.
Sign-in is the request's `Authorization: Bearer …` header, as for plain HTTP.
Persisted queries too: `extensions.persistedQuery` may name the document, and with
PERSISTED_QUERIES_ONLY only registered ones run (a refusal is a `next` with the code).

Frames wait in a small bounded queue per response; a progress tick replaces a waiting
one, and a client too far behind ends with SUBSCRIBER_OVERFLOW, as on a websocket.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from comfygraph.resolvers.context import Context
from comfygraph.resolvers.subscriptions import audience
from comfygraph.schema.error_policy import finalize
from comfygraph.schema.errors import RATE_LIMITED, UNAUTHENTICATED, ApiError
from comfygraph.server.realtime.frames import Frame, Kind, Spelling
from comfygraph.server.realtime.live import StreamContext
from comfygraph.server.realtime.outbox import OVERFLOW, Member, Outbox, State
from comfygraph.server.realtime.plans import Plan

if TYPE_CHECKING:
    from comfygraph.server.graphql import GraphQLView

SSE_PATH = "/graphql/stream"
TOKEN_EXPIRED = "TOKEN_EXPIRED"
# Like a websocket's close 4403: the client subscribes again with a fresh token.
EXPIRED = Frame.error([GraphQLError("token expired", extensions={"code": TOKEN_EXPIRED})])
BAD_REQUEST = "BAD_REQUEST"
_COMPLETE = "event: complete\ndata:\n\n"
_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _next(payload: str) -> str:
    return f"event: next\ndata: {payload}\n\n"


def _errors(errors: list[GraphQLError]) -> str:
    return orjson.dumps({"errors": [e.formatted for e in finalize(errors)]}).decode()


class SseOutbox:
    """What a Member writes to (Outbox's put/put_last/forget), read by one response."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._frames: deque[Frame] = deque()
        self._wake = asyncio.Event()
        self.last: Frame | None = None

    def put(self, member: Member, frame: Frame) -> bool:
        if frame.transient and self._frames and self._frames[-1].transient:
            self._frames[-1] = frame  # progress ticks coalesce
        elif len(self._frames) >= self._limit:
            return False
        else:
            self._frames.append(frame)
        self._wake.set()
        return True

    def put_last(self, member: Member, frame: Frame) -> None:
        if frame is OVERFLOW:
            self._frames.clear()
        self.last = frame
        self._wake.set()

    def forget(self, member: Member) -> None:
        self._frames.clear()
        self._wake.set()

    async def frames(self, keepalive: float, until: float | None) -> AsyncIterator[Frame | None]:
        """Queued frames, then the last one; None when `keepalive` passed in silence.
        At `until` (a time.time(): the token's expiry) it ends with TOKEN_EXPIRED."""
        while True:
            while self._frames:
                yield self._frames.popleft()
            if self.last is not None:
                yield self.last
                return
            left = keepalive if until is None else min(keepalive, until - time.time())
            if left <= 0:
                yield EXPIRED
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                if until is None or time.time() < until:
                    yield None


def _render(frame: Frame) -> str:
    if frame.kind is Kind.NEXT:
        return _next(frame.payload)
    if frame.kind is Kind.ERROR:  # graphql-sse has no error event: errors ride on next
        return _next(orjson.dumps({"errors": list(frame.errors)}).decode()) + _COMPLETE
    return _COMPLETE


async def _params(request: Request) -> dict[str, Any] | None:
    if request.method == "GET":
        query = dict(request.query_params)
        for name in ("variables", "extensions"):
            if name in query:
                try:
                    query[name] = orjson.loads(query[name])
                except orjson.JSONDecodeError:
                    return None
        return query
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _refused(status: int, code: str, message: str, **extensions: Any) -> Response:
    error = {"message": message, "extensions": {"code": code, **extensions}}
    return JSONResponse({"errors": [error]}, status_code=status)


class SseEndpoint:
    def __init__(self, view: GraphQLView) -> None:
        self.view = view

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        if "text/event-stream" not in request.headers.get("accept", ""):
            return _refused(406, BAD_REQUEST, "send Accept: text/event-stream (graphql-sse)")
        params = await _params(request)
        query = params.get("query") if params else None
        extensions = params.get("extensions") if params else None
        named = isinstance(query, str) or (query is None and isinstance(extensions, dict))
        if params is None or not named:
            return _refused(400, BAD_REQUEST, 'expected {"query": "...", "variables": {...}}')
        context = await self.view.get_context(request, Response())
        if context.auth_error is not None:
            return _refused(401, context.auth_error.code, str(context.auth_error))
        if context.viewer.anonymous and not context.limits.allow_anonymous:
            return _refused(401, UNAUTHENTICATED, "sign in required")
        if context.viewer.anonymous:  # the same per-address budget as POST /graphql
            retry = await self.view.rates.anonymous(context.pool, context.client_address)
            if retry is not None:
                message = "too many anonymous requests from this address"
                refused = _refused(429, RATE_LIMITED, message, retryAfterSeconds=retry)
                refused.headers["retry-after"] = str(int(retry))
                return refused
        try:  # a hash stands for its document; the allow-list applies (server/persisted.py)
            query = await self.view.persisted.resolve_allowed(context.pool, query, extensions)
        except ApiError as exc:
            body: AsyncIterator[str] = _once(_next(_errors([exc])))
            return StreamingResponse(body, media_type="text/event-stream", headers=_HEADERS)
        if query is None:
            return _refused(400, BAD_REQUEST, 'expected {"query": "...", "variables": {...}}')
        variables, name = params.get("variables"), params.get("operationName")
        plan = self.view.realtime.plans.plan(query, variables, name)
        if isinstance(plan, list):
            body = _once(_next(_errors(plan)))
        elif plan is None:
            body = self._execute(context, query, variables, name)
        else:
            body = self._subscribe(context, plan)
        return StreamingResponse(body, media_type="text/event-stream", headers=_HEADERS)

    async def _execute(
        self, context: Context, query: str, variables: Any, name: Any
    ) -> AsyncIterator[str]:
        """A query or mutation (or a document strawberry answers with errors)."""
        context.db.hold()  # one connection, committed before the client hears of it
        try:
            result = await self.view.schema.execute(
                query,
                variable_values=variables if isinstance(variables, dict) else None,
                context_value=context,
                operation_name=name if isinstance(name, str) else None,
            )
            await context.db.finish()
        finally:
            await context.db.release()
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [e.formatted for e in finalize(list(result.errors))]
        yield _next(orjson.dumps(payload).decode())
        yield _COMPLETE

    async def _subscribe(self, context: Context, plan: Plan) -> AsyncIterator[str]:
        realtime = self.view.realtime
        settings = realtime.settings
        outbox = SseOutbox(settings.ws_send_queue)
        # The Member only calls put/put_last/forget, which SseOutbox has.
        member = Member(cast(Outbox, outbox), Spelling("sse", "sse"), "sse", lambda _: None)
        try:
            try:
                seen_as = await audience(context, plan.field, plan.args)
            except GraphQLError as exc:
                yield _next(_errors([exc])) + _COMPLETE
                return
            if member.state is State.ACTIVE:
                key: tuple[object, ...] = (plan.key, seen_as.key)
                if not settings.ws_share_streams:
                    key = (*key, id(member))
                realtime.streams.join(key, member, plan, lambda: _stream_context(context, realtime))
            async for frame in outbox.frames(
                settings.ws_keepalive_interval, context.token_expires_at
            ):
                yield ":\n\n" if frame is None else _render(frame)
        finally:
            member.leave()  # the client went away, or the stream ended


async def _once(text: str) -> AsyncIterator[str]:
    yield text
    yield _COMPLETE


def _stream_context(ctx: Context, realtime: Any) -> StreamContext:
    return StreamContext.of(ctx, realtime.queue_watch_of(ctx.services))
