"""GraphQL over HTTP and websockets: the strawberry view (orjson, GraphiQL, the
context with the viewer from the bearer token) and the gate that refuses requests
whose token is bad, or that are anonymous when ALLOW_ANONYMOUS is off.

A request carrying a bad token is refused as a whole with UNAUTHENTICATED, unless it
asks only for `login` or introspection (so a client with a stale token can sign in).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from functools import partial
from typing import Any

import orjson
import structlog
from graphql import ExecutionResult, FieldNode, get_operation_ast
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.async_base_view import AsyncHTTPRequestAdapter
from strawberry.types import ExecutionResult as StrawberryResult

from comfygraph.db.visibility import Viewer
from comfygraph.resolvers.compiled import CompiledExecution, Compiler
from comfygraph.resolvers.context import ApiLimits, Context, Keys, claims_from_header
from comfygraph.resolvers.request_db import FairGate
from comfygraph.resolvers.schema import build_schema
from comfygraph.schema.error_policy import finalize
from comfygraph.schema.errors import RATE_LIMITED, UNAUTHENTICATED, ApiError
from comfygraph.schema.limits import document_too_large
from comfygraph.server.db_unavailable import (
    SERVICE_UNAVAILABLE,
    DatabaseUnavailable,
    database_down,
    not_committed,
    unavailable,
)
from comfygraph.server.graphiql import graphiql_page
from comfygraph.server.http_subscriptions import HttpSubscriptionGate
from comfygraph.server.known_documents import KnownDocuments
from comfygraph.server.limits import limits_from, rate_limits_from
from comfygraph.server.metrics_graphql import OperationTimer
from comfygraph.server.persisted import PersistedQueries
from comfygraph.server.realtime import LegacyWSHandler, Realtime, TransportWSHandler
from comfygraph.server.settings import Settings
from comfygraph.server.state import AppState
from comfygraph.studio.auth import AuthError
from comfygraph.studio.viewers import ViewerCheck

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

    def __init__(self, settings: Settings, tracing: Sequence[Any] = ()) -> None:
        self.schema_limits = schema_limits = limits_from(settings)
        # Compiled plans run after the gate, i.e. after every parse/validation rule.
        self.compiler = Compiler()
        compiled = [partial(CompiledExecution, self.compiler)] if settings.compiled_queries else []
        super().__init__(
            build_schema(
                extensions=[
                    *tracing,  # first: its span holds every other extension's work
                    AuthGate,
                    DatabaseUnavailable,
                    OperationTimer,
                    HttpSubscriptionGate,
                    *compiled,  # last: it answers instead of executing
                ],
                limits=schema_limits,
            ),
            graphql_ide="graphiql",
            # A websocket must send connection_init within this (strawberry's default: 60 s).
            connection_init_wait_timeout=timedelta(seconds=settings.ws_connection_init_timeout),
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
            # The GraphQL multipart request spec (uploadFile); sizes are checked there.
            multipart_uploads_enabled=True,
        )
        # A document a plan has answered skips Strawberry's execute next time; not with
        # tracing, whose spans come from the extension hooks.
        self.known = (
            KnownDocuments(self.compiler, self.schema, schema_limits, _refusal)
            if settings.compiled_queries and not tracing
            else None
        )
        # effective_jwt_secret() may read (or create) a file: once per app, not per request.
        self.keys = Keys.from_secret(settings.effective_jwt_secret())
        self.limits = ApiLimits(
            allow_anonymous=settings.allow_anonymous,
            token_ttl_seconds=settings.jwt_ttl_seconds,
            max_upload_bytes=settings.max_upload_bytes,
            resync_jobs=settings.ws_resync_jobs,
            max_batch_count=settings.max_batch_count,
            retention_days=settings.retention_days,
            storage_quota_bytes=settings.storage_quota_bytes,
        )
        self.realtime = Realtime(settings, self.schema)
        self.persisted = PersistedQueries(only=settings.persisted_queries_only)
        self.viewers = ViewerCheck(ttl=settings.auth_cache_seconds)
        self.rates = rate_limits_from(settings)
        self.ide_page = graphiql_page(
            token=settings.graphiql_token, local_assets=settings.graphiql_assets_dir is not None
        )

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET naming a persisted query by its hash alone is an operation (APQ over GET).
        if "extensions" in request.query_params:
            return False
        return super().should_render_graphql_ide(request)

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(self.ide_page)

    def _gate(self, pool: Any) -> FairGate:
        """Requests take the pool's connections in arrival order (resolvers/request_db)."""
        gate = getattr(self, "_pool_gate", None)
        if gate is None or gate[0] is not pool:
            gate = self._pool_gate = (pool, FairGate(pool.get_max_size()))
        return gate[1]

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
            gate=self._gate(state.services.pool),
            rates=self.rates,
        )
        if not isinstance(request, WebSocket):
            try:
                context.viewer = await self._viewer(context, request.headers.get("authorization"))
            except AuthError as exc:
                context.auth_error = exc
            except Exception as exc:
                # The users table is out of reach (a restarting database): the request is
                # answered SERVICE_UNAVAILABLE in execute_single, not with an HTTP 500.
                if not database_down(exc):
                    raise
                context.database_down = True
            if context.viewer.user_id is not None:  # on every log line of this request
                structlog.contextvars.bind_contextvars(user_id=str(context.viewer.user_id))
        return context

    async def _viewer(self, context: Context, authorization: object) -> Viewer:
        """The viewer of a token, checked against the users table (cached briefly)."""
        claims = claims_from_header(self.keys.tokens, authorization)
        viewer = await self.viewers.viewer(context.pool, claims)
        context.token_expires_at = claims.expires_at if claims else None
        return viewer

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> StrawberryResult:
        # A document over the byte limit is refused before anything parses or caches it.
        too_large = document_too_large(request_data.query, self.schema_limits)
        if too_large is not None:
            sub_response.status_code = 413
            return StrawberryResult(data=None, errors=[too_large])
        if context.database_down:
            return StrawberryResult(data=None, errors=[unavailable()])
        try:  # automatic persisted queries (checked for size above): a hash stands for its query
            request_data.query = await self.persisted.resolve_allowed(
                context.pool, request_data.query, request_data.extensions
            )
        except ApiError as exc:
            return StrawberryResult(data=None, errors=[exc])
        if context.viewer.anonymous and context.auth_error is None:
            retry = await self.rates.anonymous(context.pool, context.client_address)
            if retry is not None:
                sub_response.status_code = 429
                sub_response.headers["retry-after"] = str(int(retry))
                message = "too many anonymous requests from this address"
                error = ApiError(RATE_LIMITED, message, retryAfterSeconds=retry)
                return StrawberryResult(data=None, errors=[error])
        # One database connection serves the whole operation (see RequestConnection). It
        # goes back to the pool (a reset round trip) after the response is sent.
        context.db.hold()
        try:
            result = await self._known(context, request_data)
            if result is None:
                result = await super().execute_single(
                    request, request_adapter, sub_response, context, root_value, request_data
                )
            if not await context.db.finish():  # committed before the client hears of it
                result = StrawberryResult(data=None, errors=[not_committed()])
        except BaseException:
            await context.db.release()
            raise
        if sub_response.background is None:
            sub_response.background = BackgroundTasks()
        assert isinstance(sub_response.background, BackgroundTasks)
        sub_response.background.add_task(context.db.release)
        return result

    async def _known(
        self, context: Context, request_data: GraphQLRequestData
    ) -> StrawberryResult | None:
        if self.known is None:
            return None
        data = await self.known.answer(
            context, request_data.query, request_data.operation_name, request_data.variables
        )
        return None if data is None else StrawberryResult(data=data, errors=None)

    async def on_ws_connect(self, context: Context) -> Any:
        """A websocket signs in once, with connection_init's {"Authorization": "Bearer …"}."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        header = params.get("Authorization") or params.get("authorization")
        try:
            viewer = await self._viewer(context, header if header else None)
        except AuthError as exc:
            raise ConnectionRejectionError({"code": exc.code, "message": str(exc)}) from None
        except Exception as exc:
            if not database_down(exc):
                raise
            refusal: dict[str, object] = {
                "code": SERVICE_UNAVAILABLE,
                "message": unavailable().message,
            }
            raise ConnectionRejectionError(refusal) from None
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


def graphql_app(settings: Settings, tracing: Sequence[Any] = ()) -> GraphQLView:
    return GraphQLView(settings, tracing)
