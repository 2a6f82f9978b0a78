"""Job selections (the Job union, the GenerationJob interface, the four job types):
a builder per kind of row, the columns they read, and the loads of nested fields
(owners, queue positions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import FieldNode

from comfygraph.db.kinds import OutputType as Kind
from comfygraph.db.queue import queue_positions
from comfygraph.domain.statuses import JobStatus
from comfygraph.resolvers.compiled.collect import Unsupported
from comfygraph.resolvers.compiled.doc import Doc
from comfygraph.resolvers.compiled.fields import (
    JOB_FIELDS,
    OUTPUT_FIELDS,
    SIGN_COLUMNS,
    Env,
    Getter,
    Row,
    queue_position,
)
from comfygraph.resolvers.compiled.shape import Builder, Load, Shape, builder, typename
from comfygraph.resolvers.compiled.users import owner
from comfygraph.resolvers.mapping import JOB_TYPE_NAMES
from comfygraph.schema.jobs import job_output


def SIGNED_URL(out: Any) -> Any:  # a marker: the url, signed for the viewer
    return out.url


def _outputs_getter(doc: Doc, nodes: list[FieldNode]) -> Getter:
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


async def _load_queue(rows: list[Row], env: Env) -> None:
    pending = [
        r["id"] for r in rows if r["status"] == JobStatus.PENDING.value and r["id"] not in env.queue
    ]
    if pending:
        env.queue.update(await queue_positions(env.conn, pending))


def job_shape(doc: Doc, nodes: list[FieldNode], kinds: frozenset[Kind] = frozenset(Kind)) -> Shape:
    """`build` answers a row of any of `kinds` (by its `kind` column)."""
    columns: set[str] = set()
    loads: list[Load] = []
    builders: dict[str, Builder] = {}
    owner_loads: list[Load] = []
    queue = False
    for kind in sorted(kinds):
        type_name = JOB_TYPE_NAMES[kind]
        getters: list[tuple[str, Getter]] = []
        for key, fnodes in doc.fields_of(type_name, nodes).items():
            name = fnodes[0].name.value
            if name == "__typename":
                getters.append((key, typename(type_name)))
            elif name == "owner":
                columns.add("user_id")
                get, load = owner(doc, fnodes)
                owner_loads.append(load)  # each kind's selection may differ
                getters.append((key, get))
            elif name == "queuePosition":
                columns.add("status")
                queue = True
                getters.append((key, queue_position))
            elif name == "outputs":
                columns.update(("outputs", *SIGN_COLUMNS))
                getters.append((key, _outputs_getter(doc, fnodes)))
            elif name in JOB_FIELDS:
                field_columns, factory = JOB_FIELDS[name]
                columns.update(field_columns)
                getters.append((key, factory(kind)))
            else:
                raise Unsupported(f"{type_name}.{name}")
        builders[kind.value] = builder(getters)
    loads.extend(owner_loads)
    if queue:
        loads.append(_load_queue)

    def build(row: Row, env: Env) -> dict[str, Any]:
        return builders[row["kind"]](row, env)

    return Shape(build, columns, loads)
