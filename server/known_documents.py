"""Known documents answered without Strawberry's request machinery.

A document whose compiled plan has answered once has passed every rule that reads only
its text: the token limit, parsing, the depth/alias/repeat limits, every validation rule
(resolvers/compiled records it then). A later request for the same text and operation
name runs here: the checks that read the variables (NULs, the cost budget), the
authentication gate, then the plan, and the latency metric the OperationTimer would
record. Anything else (a refusal, a variable error, a plan that meets something it cannot
answer, a fault) goes through Strawberry as before, which then answers it: errors keep
one source. Strawberry's execute costs ~1 ms a request in extension hooks around a plan
of ~0.3 ms (issue 14's profile); this is what is left of them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from comfygraph.resolvers.compiled import Compiler
from comfygraph.resolvers.context import Context
from comfygraph.schema.limits import Limits, request_error
from comfygraph.server.metrics_graphql import GraphQLTiming

if TYPE_CHECKING:
    from strawberry.schema.base import BaseSchema


class KnownDocuments:
    def __init__(
        self,
        compiler: Compiler,
        schema: BaseSchema,
        limits: Limits,
        refusal: Any,
    ) -> None:
        self.compiler = compiler
        self.schema = schema
        self.limits = limits
        self.refusal = refusal  # the authentication gate's verdict for a context
        self.answered = 0

    async def answer(
        self,
        context: Context,
        query: str | None,
        name: str | None,
        variables: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """The response's data, or None when Strawberry must run the request."""
        if query is None:
            return None
        known = self.compiler.known_document(query, name)
        if known is None:
            return None
        document, name = known  # the operation's own name when the client gave none
        if self.refusal(context) is not None:
            return None
        core = self.schema._schema  # type: ignore[attr-defined]
        if request_error(core, document, variables, name, self.limits) is not None:
            return None
        start = time.perf_counter()
        data = await self.compiler.answer(self.schema, context, query, name, document, variables)
        if data is None:
            return None
        self.answered += 1
        timing = getattr(context.request.app.state, "graphql_timing", None)
        if isinstance(timing, GraphQLTiming):
            timing.observe(name, "query", time.perf_counter() - start)
        return data
