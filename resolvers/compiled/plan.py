"""Document -> plan. A plan is a list of root steps; each step knows the columns its
selection reads and turns rows into the response without resolvers or awaitables per
field. The SQL, the visibility rules and the argument checks are the interpreted
path's own functions (db.feed, db.visibility, resolvers.args, schema.pagination)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.types.arguments import convert_arguments

from comfygraph.db.feed import Cursor, job_count, job_page, jobs_by_ids
from comfygraph.db.kinds import OutputType as Kind
from comfygraph.db.queue import queue_positions
from comfygraph.db.users import users_by_ids
from comfygraph.db.visibility import can_see_job
from comfygraph.domain.statuses import JobStatus
from comfygraph.resolvers.args import given, job_id, job_query
from comfygraph.resolvers.compiled.collect import Unsupported, collect, subselections
from comfygraph.resolvers.compiled.fields import (
    JOB_FIELDS,
    OUTPUT_FIELDS,
    SIGN_COLUMNS,
    USER_FIELDS,
    Env,
    Fallback,
    Getter,
    Row,
    queue_position,
)
from comfygraph.resolvers.mapping import JOB_TYPE_NAMES, KIND_OF_TYPE_NAME
from comfygraph.schema.jobs import job_output
from comfygraph.schema.node import from_global_id
from comfygraph.schema.pagination import CursorKind, page_size

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
Builder = Callable[[Row, Env], dict[str, Any]]


@dataclass
class _Doc:
    schema: GraphQLSchema
    strawberry_schema: strawberry.Schema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]  # only those @skip/@include read

    def object_type(self, name: str) -> GraphQLObjectType:
        t = self.schema.get_type(name)
        assert isinstance(t, GraphQLObjectType)
        return t

    def fields_of(self, type_name: str, nodes: list[FieldNode]) -> dict[str, list[FieldNode]]:
        return collect(
            self.schema, self.fragments, self.variables, self.object_type(type_name),
            subselections(nodes),
        )  # fmt: skip


def _builder(getters: list[tuple[str, Getter]]) -> Builder:
    def build(row: Row, env: Env) -> dict[str, Any]:
        return {key: get(row, env) for key, get in getters}

    return build


@dataclass
class JobShape:
    """How one job selection answers, per kind of row."""

    builders: dict[str, Builder]  # db kind value -> builder
    columns: set[str] = field(default_factory=set)
    needs_users: bool = False
    needs_queue: bool = False


def _user_getter(doc: _Doc, nodes: list[FieldNode]) -> Getter:
    getters: list[tuple[str, Getter]] = []
    for key, fnodes in doc.fields_of("User", nodes).items():
        name = fnodes[0].name.value
        if name == "__typename":
            getters.append((key, lambda row, env: "User"))
        elif name in USER_FIELDS:
            getters.append((key, USER_FIELDS[name]))
        else:
            raise Unsupported(f"User.{name}")
    build = _builder(getters)

    def owner(row: Row, env: Env) -> dict[str, Any] | None:
        user_id = row["user_id"]
        user = None if user_id is None else env.users.get(user_id)
        return None if user is None else build(user, env)

    return owner


def SIGNED_URL(out: Any) -> Any:  # a marker: the url, signed for the viewer
    return out.url


def _outputs_getter(doc: _Doc, nodes: list[FieldNode]) -> Getter:
    getters: list[tuple[str, Callable[[Any], Any]]] = []
    for key, fnodes in doc.fields_of("JobOutput", nodes).items():
        name = fnodes[0].name.value
        if name == "__typename":
            getters.append((key, lambda out: "JobOutput"))
        elif name == "url":
            getters.append((key, SIGNED_URL))
        elif name in OUTPUT_FIELDS:
            getters.append((key, OUTPUT_FIELDS[name]))
        else:
            raise Unsupported(f"JobOutput.{name}")

    def outputs(row: Row, env: Env) -> list[dict[str, Any]]:
        made = []
        for item in row["outputs"] or []:
            out = job_output(item)
            if out is None:
                continue
            made.append(
                {
                    key: env.sign(row, out.url) if get is SIGNED_URL else get(out)
                    for key, get in getters
                }
            )
        return made

    return outputs


def job_shape(doc: _Doc, nodes: list[FieldNode], kinds: frozenset[Kind]) -> JobShape:
    shape = JobShape(builders={})
    for kind in sorted(kinds):
        type_name = JOB_TYPE_NAMES[kind]
        getters: list[tuple[str, Getter]] = []
        for key, fnodes in doc.fields_of(type_name, nodes).items():
            name = fnodes[0].name.value
            if name == "__typename":
                getters.append((key, lambda row, env, t=type_name: t))  # type: ignore[misc]
            elif name == "owner":
                shape.columns.add("user_id")
                shape.needs_users = True
                getters.append((key, _user_getter(doc, fnodes)))
            elif name == "queuePosition":
                shape.columns.add("status")
                shape.needs_queue = True
                getters.append((key, queue_position))
            elif name == "outputs":
                shape.columns.update(("outputs", *SIGN_COLUMNS))
                getters.append((key, _outputs_getter(doc, fnodes)))
            elif name in JOB_FIELDS:
                columns, factory = JOB_FIELDS[name]
                shape.columns.update(columns)
                getters.append((key, factory(kind)))
            else:
                raise Unsupported(f"{type_name}.{name}")
        shape.builders[kind.value] = _builder(getters)
    return shape


async def _load_users(conn: asyncpg.Connection, shape: JobShape, rows: list[Row], env: Env) -> None:
    """What nested fields read: owners, queue positions (one statement each)."""
    if shape.needs_users:
        ids = {r["user_id"] for r in rows if r["user_id"] is not None}
        if ids:
            env.users = await users_by_ids(conn, ids)
    if shape.needs_queue:
        pending = [r["id"] for r in rows if r["status"] == JobStatus.PENDING.value]
        if pending:
            env.queue = await queue_positions(conn, pending)


Step = Callable[["Context", VariableValues], Awaitable[Any]]


@dataclass
class _Args:
    """A root field's arguments, coerced and converted as Strawberry would."""

    field_def: GraphQLField
    node: FieldNode
    convert: Callable[[dict[str, Any]], dict[str, Any]]

    def values(self, variables: VariableValues) -> dict[str, Any]:
        return self.convert(get_argument_values(self.field_def, self.node, variables))


def _args(doc: _Doc, name: str, node: FieldNode) -> _Args:
    query_type = doc.schema.query_type
    assert query_type is not None
    sfield = doc.strawberry_schema.get_field_for_type(field_name=name, type_name="Query")
    assert sfield is not None
    registry = doc.strawberry_schema.schema_converter.scalar_registry
    config = doc.strawberry_schema.config

    def convert(raw: dict[str, Any]) -> dict[str, Any]:
        return convert_arguments(raw, sfield.arguments, scalar_registry=registry, config=config)

    return _Args(query_type.fields[name], node, convert)


def _feed_step(doc: _Doc, name: str, nodes: list[FieldNode]) -> Step:
    kinds = FEEDS[name]
    query_type = doc.schema.query_type
    assert query_type is not None
    connection_type = get_named_type(query_type.fields[name].type).name
    args = _args(doc, name, nodes[0])
    parts: list[tuple[str, str, Any]] = []  # (key, what, detail)
    shape: JobShape | None = None
    edge_parts: list[tuple[str, str]] = []
    for key, fnodes in doc.fields_of(connection_type, nodes).items():
        fname = fnodes[0].name.value
        if fname == "__typename":
            parts.append((key, "const", connection_type))
        elif fname == "totalCount":
            parts.append((key, "count", None))
        elif fname == "pageInfo":
            info = []
            for ikey, inodes in doc.fields_of("PageInfo", fnodes).items():
                iname = inodes[0].name.value
                if iname not in {"__typename", "hasNextPage", "endCursor",
                                 "hasPreviousPage", "startCursor"}:  # fmt: skip
                    raise Unsupported(f"PageInfo.{iname}")
                info.append((ikey, iname))
            parts.append((key, "pageInfo", info))
        elif fname == "edges":
            if edge_parts:
                raise Unsupported("edges under two keys")
            edge_type = get_named_type(doc.object_type(connection_type).fields["edges"].type)
            edge_fields = doc.fields_of(edge_type.name, fnodes)
            node_nodes = [n for k, ns in edge_fields.items() for n in ns
                          if n.name.value == "node"]  # fmt: skip
            for ekey, enodes in edge_fields.items():
                ename = enodes[0].name.value
                if ename == "node":
                    edge_parts.append((ekey, "node"))
                elif ename == "cursor":
                    edge_parts.append((ekey, "cursor"))
                elif ename == "__typename":
                    edge_parts.append((ekey, "typename:" + edge_type.name))
                else:
                    raise Unsupported(f"{edge_type.name}.{ename}")
            # Edge fields with one response key merge; "node" under two keys is
            # unusual enough to leave to the interpreter.
            if len({k for k, w in edge_parts if w == "node"}) > 1:
                raise Unsupported("node under two keys")
            shape = job_shape(doc, node_nodes, kinds) if node_nodes else None
            parts.append((key, "edges", None))
        else:
            raise Unsupported(f"{connection_type}.{fname}")
    columns = sorted(shape.columns) if shape else []
    wants_count = any(w == "count" for _, w, _ in parts)

    async def run(ctx: Context, variables: VariableValues) -> Any:
        values = args.values(variables)
        query = job_query(ctx.viewer, given(values.get("filter")), kinds=kinds)
        size = page_size(values.get("first"))
        after = given(values.get("after"))
        codec = ctx.keys.cursors
        position = None if after is None else codec.decode(CursorKind.JOBS, after)
        env = Env(ctx.viewer, ctx.signed_job_row)
        async with ctx.db.acquire() as conn:
            page = await job_page(
                conn, ctx.viewer, query, first=size,
                after=position and Cursor(*position), columns=columns,
            )  # fmt: skip
            rows = page.rows
            if shape is not None:
                await _load_users(conn, shape, rows, env)
            count = await job_count(conn, ctx.viewer, query) if wants_count else 0
        cursors: dict[int, str] = {}

        def cursor(i: int) -> str:
            if i not in cursors:  # signed only when asked for
                r = rows[i]
                cursors[i] = codec.encode(CursorKind.JOBS, r["created_at"], r["id"])
            return cursors[i]

        out: dict[str, Any] = {}
        for key, what, detail in parts:
            if what == "const":
                out[key] = detail
            elif what == "count":
                out[key] = count
            elif what == "pageInfo":
                out[key] = _page_info(detail, rows, page.has_next, after, cursor)
            else:
                edges = []
                for i, r in enumerate(rows):
                    edge: dict[str, Any] = {}
                    for ekey, ewhat in edge_parts:
                        if ewhat == "node":
                            assert shape is not None
                            edge[ekey] = shape.builders[r["kind"]](r, env)
                        elif ewhat == "cursor":
                            edge[ekey] = cursor(i)
                        else:
                            edge[ekey] = ewhat.split(":", 1)[1]
                    edges.append(edge)
                out[key] = edges
        return out

    return run


def _page_info(
    wanted: list[tuple[str, str]],
    rows: list[Row],
    has_next: bool,
    after: str | None,
    cursor: Callable[[int], str],
) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for key, name in wanted:
        if name == "__typename":
            info[key] = "PageInfo"
        elif name == "hasNextPage":
            info[key] = has_next
        elif name == "hasPreviousPage":
            info[key] = after is not None
        elif name == "endCursor":
            info[key] = cursor(len(rows) - 1) if rows else None
        else:
            info[key] = cursor(0) if rows else None
    return info


def _single_job_step(doc: _Doc, name: str, nodes: list[FieldNode]) -> Step:
    """job(id) and node(id) for a job; node(id) of anything else is left to the
    interpreter at run time."""
    args = _args(doc, name, nodes[0])
    shape = job_shape(doc, nodes, frozenset(Kind))
    columns = sorted(shape.columns)

    async def run(ctx: Context, variables: VariableValues) -> Any:
        raw_id = args.values(variables)["id"]
        kind: Kind
        uid: uuid.UUID
        if name == "job":
            kind, uid = job_id(raw_id)
        else:
            type_name, uid = from_global_id(raw_id)
            if type_name not in KIND_OF_TYPE_NAME:
                raise Fallback
            kind = KIND_OF_TYPE_NAME[type_name]
        env = Env(ctx.viewer, ctx.signed_job_row)
        async with ctx.db.acquire() as conn:
            row = (await jobs_by_ids(conn, [uid], [kind], columns)).get(uid)
            if row is None or row["kind"] != kind.value or not can_see_job(ctx.viewer, row):
                return None
            await _load_users(conn, shape, [row], env)
        return shape.builders[kind.value](row, env)

    return run


def _const_step(value: Any) -> Step:
    async def run(ctx: Context, variables: VariableValues) -> Any:
        return value

    return run


@dataclass
class Plan:
    steps: list[tuple[str, Step]]

    async def run(self, ctx: Context, variables: VariableValues) -> dict[str, Any]:
        # Root fields in document order on the request's one connection.
        return {key: await step(ctx, variables) for key, step in self.steps}


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
    doc = _Doc(schema, strawberry_schema, fragments, directive_values)
    query_type = schema.query_type
    assert query_type is not None
    roots = collect(schema, fragments, directive_values, query_type, [operation.selection_set])
    steps: list[tuple[str, Step]] = []
    for key, nodes in roots.items():
        name = nodes[0].name.value
        if name == "__typename":
            steps.append((key, _const_step(query_type.name)))
        elif name in FEEDS:
            steps.append((key, _feed_step(doc, name, nodes)))
        elif name in {"job", "node"}:
            steps.append((key, _single_job_step(doc, name, nodes)))
        else:
            raise Unsupported(f"Query.{name}")
    return Plan(steps)
