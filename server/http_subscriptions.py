"""A subscription sent as a plain HTTP request gets a clear error with a code, instead
of strawberry running it as a query (which ends in "Cannot return null")."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult, OperationType, get_operation_ast
from starlette.requests import Request
from strawberry.extensions import SchemaExtension

from comfygraph.resolvers.context import Context
from comfygraph.schema.errors import ApiError
from comfygraph.server.realtime.live import StreamContext

SUBSCRIPTION_NEEDS_WEBSOCKET = "SUBSCRIPTION_NEEDS_WEBSOCKET"
MESSAGE = (
    "subscriptions stream: use a websocket at /graphql with graphql-transport-ws (or graphql-ws),"
    " or Server-Sent Events at /graphql/stream (graphql-sse)"
)


class HttpSubscriptionGate(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        document = self.execution_context.graphql_document
        if (
            isinstance(context, Context)
            and not isinstance(context, StreamContext)  # a shared stream (SSE too)
            and isinstance(context.request, Request)
            and document is not None
        ):
            operation = get_operation_ast(document, self.execution_context.operation_name)
            if operation is not None and operation.operation is OperationType.SUBSCRIPTION:
                error = ApiError(SUBSCRIPTION_NEEDS_WEBSOCKET, MESSAGE)
                self.execution_context.result = ExecutionResult(data=None, errors=[error])
        yield
