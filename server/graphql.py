"""GraphQL over HTTP and websockets: the strawberry view (orjson, GraphiQL, the
context with the viewer from the bearer token) and the gate that refuses requests
whose token is bad, or that are anonymous when ALLOW_ANONYMOUS is off.

A request carrying a bad token is refused as a whole with UNAUTHENTICATED, unless it
asks only for `login` or introspection (so a client with a stale token can sign in).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import structlog
from graphql import ExecutionResult, FieldNode, get_operation_ast
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.async_base_view import AsyncHTTPRequestAdapter
from strawberry.types import ExecutionResult as StrawberryResult

from comfygraph.resolvers.context import ApiLimits, Context, Keys, viewer_from_header
from comfygraph.resolvers.schema import build_schema
from comfygraph.schema.error_policy import finalize
from comfygraph.schema.errors import UNAUTHENTICATED, ApiError
from comfygraph.server.db_unavailable import DatabaseUnavailable
from comfygraph.server.metrics_graphql import OperationTimer
from comfygraph.server.realtime import LegacyWSHandler, Realtime, TransportWSHandler
from comfygraph.server.settings import Settings
from comfygraph.server.state import AppState
from comfygraph.studio.auth import AuthError

# Root fields a request may ask for without a valid sign-in.
OPEN_FIELDS = frozenset({"login", "__typename", "__schema", "__type"})


class AuthGate(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context):
            error = _refusal(context)
            if error is not None and not self._only_open_fields():
                self.execution_context.result = ExecutionResult(data=None, errors=[error])
        yield

    def _only_open_fields(self) -> bool:
        document = self.execution_context.graphql_document
        if document is None:
            return False
        operation = get_operation_ast(document, self.execution_context.operation_name)
        if operation is None:
            return False
        return all(
            isinstance(s, FieldNode) and s.name.value in OPEN_FIELDS
            for s in operation.selection_set.selections
        )


def _refusal(context: Context) -> ApiError | None:
    if context.auth_error is not None:
        return ApiError(context.auth_error.code, str(context.auth_error))
    if context.viewer.anonymous and not context.limits.allow_anonymous:
        return ApiError(UNAUTHENTICATED, "sign in required")
    return None


class GraphQLView(GraphQL[Context, None]):
    # Websockets: subscriptions run as shared streams (server/realtime).
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            build_schema(extensions=[AuthGate, DatabaseUnavailable, OperationTimer]),
            graphql_ide="graphiql",
            # A websocket must send connection_init within this (strawberry's default: 60 s).
            connection_init_wait_timeout=timedelta(seconds=settings.ws_connection_init_timeout),
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
            # The GraphQL multipart request spec (uploadFile); sizes are checked there.
            multipart_uploads_enabled=True,
        )
        # effective_jwt_secret() may read (or create) a file: once per app, not per request.
        self.keys = Keys.from_secret(settings.effective_jwt_secret())
        self.limits = ApiLimits(
            allow_anonymous=settings.allow_anonymous,
            token_ttl_seconds=settings.jwt_ttl_seconds,
            max_upload_bytes=settings.max_upload_bytes,
            resync_jobs=settings.ws_resync_jobs,
        )
        self.realtime = Realtime(settings, self.schema)

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        state: AppState = request.app.state.comfygraph
        context = Context(
            request=request,
            response=response,
            services=state.services,
            keys=self.keys,
            limits=self.limits,
        )
        if not isinstance(request, WebSocket):
            try:
                context.viewer = viewer_from_header(
                    self.keys.jwt_secret, request.headers.get("authorization")
                )
            except AuthError as exc:
                context.auth_error = exc
            if context.viewer.user_id is not None:  # on every log line of this request
                structlog.contextvars.bind_contextvars(user_id=str(context.viewer.user_id))
        return context

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> StrawberryResult:
        # One database connection serves the whole operation (see RequestConnection). It
        # goes back to the pool (a reset round trip) after the response is sent.
        context.db.hold()
        try:
            result = await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except BaseException:
            await context.db.release()
            raise
        if sub_response.background is None:
            sub_response.background = BackgroundTasks()
        assert isinstance(sub_response.background, BackgroundTasks)
        sub_response.background.add_task(context.db.release)
        return result

    async def on_ws_connect(self, context: Context) -> Any:
        """A websocket signs in once, with connection_init's {"Authorization": "Bearer …"}."""
        params = context.connection_params or {}
        header = params.get("Authorization") or params.get("authorization")
        try:
            viewer = viewer_from_header(self.keys.jwt_secret, header if header else None)
        except AuthError as exc:
            raise ConnectionRejectionError({"code": exc.code, "message": str(exc)}) from None
        if viewer.anonymous and not context.limits.allow_anonymous:
            raise ConnectionRejectionError({"code": UNAUTHENTICATED, "message": "sign in required"})
        context.sign_in(viewer)
        return await super().on_ws_connect(context)

    async def process_result(
        self, request: Request, result: StrawberryResult
    ) -> GraphQLHTTPResponse:
        # A safety net: an error that escaped the schema's error policy (an exception out
        # of an extension hook) still gets its code, or is masked, before it leaves.
        if result.errors:
            result.errors = finalize(result.errors)
        return process_result(result)


def graphql_app(settings: Settings) -> GraphQLView:
    return GraphQLView(settings)
