"""The hook: after Strawberry has parsed and validated a request (every rule and limit
of the schema has run, and the authentication gate has had its say), a query the
compiler accepts is answered by its cached plan; the interpreter runs everything else.

A plan that meets anything it cannot answer exactly as the interpreter would (an
argument error, BAD_CURSOR, an id of another type, a value a scalar refuses) gives
the request to the interpreter, which then reports it: errors have one source."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    get_operation_ast,
)
from graphql.execution.values import VariableValues, get_variable_values
from strawberry.extensions import SchemaExtension

from comfygraph.resolvers.compiled.collect import Unsupported, directive_variables
from comfygraph.resolvers.compiled.fields import Fallback
from comfygraph.resolvers.compiled.plan import Plan, compile_operation
from comfygraph.resolvers.context import Context

logger = logging.getLogger(__name__)


@dataclass
class _Operation:
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    directive_variables: tuple[str, ...]
    plans: dict[tuple[Any, ...], Plan | None]


@dataclass
class Stats:
    compiled: int = 0  # requests answered by a plan
    fallbacks: int = 0  # plans that gave the request to the interpreter
    interpreted: int = 0  # documents the compiler does not accept


class Compiler:
    """Plans by (query text, operation name), and by the values of the variables that
    @skip/@include read; bounded like the parse and validation caches."""

    def __init__(self, maxsize: int = 512) -> None:
        self.maxsize = maxsize
        self.operations: OrderedDict[tuple[str, str | None], _Operation | None] = OrderedDict()
        # Documents a plan has answered once, after every parse and validation rule.
        self.known: OrderedDict[tuple[str, str | None], tuple[DocumentNode, str | None]] = (
            OrderedDict()
        )
        self.stats = Stats()

    def _operation(self, query: str, name: str | None, document: DocumentNode) -> _Operation | None:
        key = (query, name)
        if key in self.operations:
            self.operations.move_to_end(key)
            return self.operations[key]
        found: _Operation | None = None
        operation = get_operation_ast(document, name)
        if operation is not None:
            fragments = {
                d.name.value: d for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }  # fmt: skip
            try:
                names = directive_variables([operation, *fragments.values()])
                found = _Operation(operation, fragments, tuple(sorted(names)), {})
            except Unsupported:
                found = None
        self.operations[key] = found
        if len(self.operations) > self.maxsize:
            self.operations.popitem(last=False)
        return found

    def plan(
        self, schema: Any, query: str, name: str | None, document: DocumentNode, raw: Any
    ) -> tuple[Plan, VariableValues] | None:
        """The plan for a document (`schema` is the strawberry schema) and the coerced
        variables, or None: the interpreter answers."""
        op = self._operation(query, name, document)
        if op is None:
            return None
        core = schema._schema
        coerced = get_variable_values(core, op.operation.variable_definitions or (), raw or {})
        if isinstance(coerced, list):
            return None  # the interpreter reports variable errors
        values = tuple(coerced.coerced.get(v) for v in op.directive_variables)
        if values not in op.plans:
            directive_values = dict(zip(op.directive_variables, values, strict=True))
            try:
                op.plans[values] = compile_operation(
                    core, schema, op.operation, op.fragments, directive_values
                )
            except Unsupported as exc:
                logger.debug("not compiled: %s", exc)
                op.plans[values] = None
        plan = op.plans[values]
        return None if plan is None else (plan, coerced)

    async def execute(self, execution_context: Any) -> ExecutionResult | None:
        ctx = execution_context
        context = ctx.context
        if not isinstance(context, Context) or ctx.graphql_document is None or not ctx.query:
            return None
        query, name, document = ctx.query, ctx.operation_name, ctx.graphql_document
        data = await self.answer(ctx.schema, context, query, name, document, ctx.variables)
        if data is not None:
            # Every rule that reads only the text has passed for this document: later
            # requests for it may come straight to answer() (server/known_documents),
            # keyed by the name the client sent (none: the document's only operation).
            given = getattr(ctx, "_provided_operation_name", name)
            self.known[(query, given)] = (document, name)
            self.known.move_to_end((query, given))
            if len(self.known) > self.maxsize:
                self.known.popitem(last=False)
        return None if data is None else ExecutionResult(data=data)

    def known_document(
        self, query: str, name: str | None
    ) -> tuple[DocumentNode, str | None] | None:
        """The parsed document and its operation's name if a plan has answered this text
        and name before. Least recently used first out, like the parse cache: a hot
        document stays however many new ones come after it."""
        key = (query, name)
        found = self.known.get(key)
        if found is not None:
            self.known.move_to_end(key)
        return found

    async def answer(
        self,
        schema: Any,
        context: Context,
        query: str,
        name: str | None,
        document: DocumentNode,
        raw: Any,
    ) -> dict[str, Any] | None:
        """The response's data by the document's plan, or None: the interpreter answers."""
        found = self.plan(schema, query, name, document, raw)
        if found is None:
            self.stats.interpreted += 1
            return None
        plan, variables = found
        try:
            data = await plan.run(context, variables)
        except (Fallback, GraphQLError):
            self.stats.fallbacks += 1
            return None
        except Exception:
            # A fault (the database gone): the interpreter meets it too and answers it
            # the way it always does; logged here so that a plan's own bug shows.
            logger.warning("compiled plan failed; running interpreted", exc_info=True)
            self.stats.fallbacks += 1
            return None
        self.stats.compiled += 1
        return data  # type: ignore[no-any-return]


class CompiledExecution(SchemaExtension):
    """Place it after the authentication gate: a request it refused has a result."""

    def __init__(self, compiler: Compiler) -> None:
        self.compiler = compiler

    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        ctx = self.execution_context
        if ctx.result is None:
            result = await self.compiler.execute(ctx)
            if result is not None:
                ctx.result = result
        yield
