"""Document -> plan. A plan is a list of root steps; each step knows the columns its
selection reads and turns rows into the response without resolvers or awaitables per
field. The SQL, the visibility rules and the argument checks are the interpreted
path's own functions (db.feed, db.visibility, resolvers.args, schema.pagination).

Compile units: connection.py (JobConnection), jobs.py, sessions.py, users.py (object
selections), roots.py (objects by id, `me`); this module dispatches the roots."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLSchema,
    OperationDefinitionNode,
    get_named_type,
)
from graphql.execution.values import VariableValues

from comfygraph.db.kinds import OutputType as Kind
from comfygraph.resolvers.args import given, job_query
from comfygraph.resolvers.compiled import roots
from comfygraph.resolvers.compiled.collect import Unsupported, collect
from comfygraph.resolvers.compiled.connection import job_connection
from comfygraph.resolvers.compiled.doc import Doc
from comfygraph.resolvers.compiled.fields import Env
from comfygraph.resolvers.compiled.roots import Step

if TYPE_CHECKING:
    import strawberry

    from comfygraph.resolvers.context import Context

FEEDS: dict[str, frozenset[Kind]] = {
    "jobs": frozenset(Kind),
    "videoJobs": frozenset({Kind.VIDEO}),
    "imageJobs": frozenset({Kind.IMAGE}),
    "textJobs": frozenset({Kind.TEXT}),
    "audioJobs": frozenset({Kind.AUDIO}),
}


def _feed_step(doc: Doc, name: str, nodes: list[FieldNode]) -> Step:
    kinds = FEEDS[name]
    query_type = doc.schema.query_type
    assert query_type is not None
    connection_type = get_named_type(query_type.fields[name].type).name
    args = doc.args("Query", name, nodes[0])
    connection = job_connection(doc, connection_type, nodes, kinds)

    async def run(env: Env) -> Any:
        values = args.values(env.variables)
        query = job_query(env.viewer, given(values.get("filter")), kinds=kinds)
        async with env.ctx.db.acquire() as conn:
            env.conn = conn
            first, after = values.get("first"), given(values.get("after"))
            page = await connection.fetch(env, query, first, after)
            await connection.load([page], env)
        return connection.render(page, env)

    return run


def _const_step(value: Any) -> Step:
    async def run(env: Env) -> Any:
        return value

    return run


ROOTS: dict[str, Callable[[Doc, list[FieldNode]], Step]] = {
    "job": roots.job_step,
    "node": roots.node_step,
    "nodes": roots.nodes_step,
    "session": roots.session_step,
    "me": roots.me_step,
}


@dataclass
class Plan:
    steps: list[tuple[str, Step]]

    async def run(self, ctx: Context, variables: VariableValues) -> dict[str, Any]:
        # Root fields in document order on the request's one connection; what a step
        # loaded (users, sessions...) serves the later ones, as request DataLoaders do.
        env = Env(ctx.viewer, ctx.signed_job_row, ctx, variables)
        return {key: await step(env) for key, step in self.steps}


def compile_operation(
    schema: GraphQLSchema,
    strawberry_schema: strawberry.Schema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    directive_values: Mapping[str, Any],
) -> Plan:
    """The plan of a query operation; Unsupported if it asks for anything unknown."""
    if operation.operation.value != "query":
        raise Unsupported(operation.operation.value)
    doc = Doc(schema, strawberry_schema, fragments, directive_values)
    query_type = schema.query_type
    assert query_type is not None
    fields = collect(schema, fragments, directive_values, query_type, [operation.selection_set])
    steps: list[tuple[str, Step]] = []
    for key, nodes in fields.items():
        name = nodes[0].name.value
        if name == "__typename":
            steps.append((key, _const_step(query_type.name)))
        elif name in FEEDS:
            steps.append((key, _feed_step(doc, name, nodes)))
        elif name in ROOTS:
            steps.append((key, ROOTS[name](doc, nodes)))
        else:
            raise Unsupported(f"Query.{name}")
    return Plan(steps)
