"""Root fields that fetch objects by id: job, node, nodes, session, me. Ids decode
through the interpreted path's functions (resolvers.args, schema.node), whose
errors hand the request to the interpreter; visibility is db.visibility's, applied
as resolvers/nodes.py and resolvers/loaders.py apply it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from graphql import FieldNode

from comfygraph.db.feed import jobs_by_ids
from comfygraph.db.kinds import OutputType as Kind
from comfygraph.db.visibility import can_see_job, can_see_session, can_see_user
from comfygraph.resolvers.args import job_id, session_id
from comfygraph.resolvers.compiled.collect import Unsupported
from comfygraph.resolvers.compiled.doc import Doc
from comfygraph.resolvers.compiled.fields import Env, Fallback, Row
from comfygraph.resolvers.compiled.jobs import job_shape
from comfygraph.resolvers.compiled.sessions import (
    asset_shape,
    load_assets,
    load_session_rows,
    session_shape,
)
from comfygraph.resolvers.compiled.shape import Shape
from comfygraph.resolvers.compiled.users import load_users, user_shape
from comfygraph.resolvers.mapping import KIND_OF_TYPE_NAME
from comfygraph.resolvers.nodes import MAX_NODES
from comfygraph.schema.node import from_global_id

Step = Callable[[Env], Awaitable[Any]]
Ref = tuple[str, uuid.UUID]  # (GraphQL type name, id)


def _maybe(make: Callable[[], Shape]) -> Shape | None:
    """A shape, or None when the selection on that type is beyond the compiler (a plan
    that meets such an object at run time hands the request over)."""
    try:
        return make()
    except Unsupported:
        return None


class NodeShapes:
    """A selection on the Node interface, compiled for each type an id may name."""

    def __init__(self, doc: Doc, nodes: list[FieldNode], *, jobs_only: bool = False) -> None:
        self.shapes: dict[str, Shape | None] = {"job": job_shape(doc, nodes)}
        if not jobs_only:
            self.shapes["session"] = _maybe(lambda: session_shape(doc, nodes))
            self.shapes["asset"] = _maybe(lambda: asset_shape(doc, nodes))
            self.shapes["user"] = _maybe(lambda: user_shape(doc, nodes))
        self.fetch = {"job": self._jobs, "session": self._sessions,
                      "asset": self._assets, "user": self._users}  # fmt: skip

    async def resolve(self, refs: list[Ref], env: Env) -> list[Any]:
        """Each ref's object built, or None where it is missing or hidden (in order);
        one fetch per type, as the interpreted loaders batch them."""
        found: dict[Ref, tuple[Shape, Row] | None] = {}
        for group, fetch in self.fetch.items():
            wanted = [ref for ref in refs if _group(ref[0]) == group]
            if not wanted:
                continue
            shape = self.shapes.get(group)
            if shape is None:
                raise Fallback
            rows = await fetch(wanted, env, shape)
            await shape.load([r for r in rows.values() if r is not None], env)
            found.update({ref: None if row is None else (shape, row) for ref, row in rows.items()})
        return [None if (f := found[r]) is None else f[0].build(f[1], env) for r in refs]

    @staticmethod
    async def _jobs(refs: list[Ref], env: Env, shape: Shape) -> dict[Ref, Row | None]:
        kinds = sorted({KIND_OF_TYPE_NAME[t] for t, _ in refs})
        rows = await jobs_by_ids(env.conn, {uid for _, uid in refs}, kinds, sorted(shape.columns))
        out: dict[Ref, Row | None] = {}
        for ref in refs:
            row = rows.get(ref[1])
            kind = KIND_OF_TYPE_NAME[ref[0]].value
            out[ref] = row if row and row["kind"] == kind and can_see_job(env.viewer, row) else None
        return out

    @staticmethod
    async def _sessions(refs: list[Ref], env: Env, shape: Shape) -> dict[Ref, Row | None]:
        rows = await load_session_rows({uid for _, uid in refs}, env)
        return {
            ref: row if (row := rows.get(ref[1])) and can_see_session(env.viewer, row) else None
            for ref in refs
        }

    @staticmethod
    async def _assets(refs: list[Ref], env: Env, shape: Shape) -> dict[Ref, Row | None]:
        seen = await load_assets({uid for _, uid in refs}, env)
        return {ref: seen.get(ref[1]) for ref in refs}

    @staticmethod
    async def _users(refs: list[Ref], env: Env, shape: Shape) -> dict[Ref, Row | None]:
        visible = {uid for _, uid in refs if can_see_user(env.viewer, uid)}
        await load_users(visible, env)
        return {ref: env.users.get(ref[1]) if ref[1] in visible else None for ref in refs}


def _group(type_name: str) -> str:
    if type_name in KIND_OF_TYPE_NAME:
        return "job"
    return {"Session": "session", "Asset": "asset", "User": "user"}[type_name]


def _with_conn(run: Callable[[Env], Awaitable[Any]]) -> Step:
    async def step(env: Env) -> Any:
        async with env.ctx.db.acquire() as conn:
            env.conn = conn
            return await run(env)

    return step


def node_step(doc: Doc, nodes: list[FieldNode]) -> Step:
    args = doc.args("Query", "node", nodes[0])
    shapes = NodeShapes(doc, nodes)

    async def run(env: Env) -> Any:
        ref = from_global_id(args.values(env.variables)["id"])
        return (await shapes.resolve([ref], env))[0]

    return _with_conn(run)


def nodes_step(doc: Doc, nodes: list[FieldNode]) -> Step:
    args = doc.args("Query", "nodes", nodes[0])
    shapes = NodeShapes(doc, nodes)

    async def run(env: Env) -> Any:
        ids = args.values(env.variables)["ids"]
        if len(ids) > MAX_NODES:
            raise Fallback  # the interpreter's INVALID_ARGUMENT
        return await shapes.resolve([from_global_id(i) for i in ids], env)

    return _with_conn(run)


def job_step(doc: Doc, nodes: list[FieldNode]) -> Step:
    args = doc.args("Query", "job", nodes[0])
    shapes = NodeShapes(doc, nodes, jobs_only=True)  # the Job union

    async def run(env: Env) -> Any:
        kind, uid = job_id(args.values(env.variables)["id"])
        return (await shapes.resolve([(_type_name(kind), uid)], env))[0]

    return _with_conn(run)


def _type_name(kind: Kind) -> str:
    return next(t for t, k in KIND_OF_TYPE_NAME.items() if k is kind)


def session_step(doc: Doc, nodes: list[FieldNode]) -> Step:
    args = doc.args("Query", "session", nodes[0])
    shape = session_shape(doc, nodes)

    async def run(env: Env) -> Any:
        uid = session_id(args.values(env.variables)["id"])
        row = (await load_session_rows({uid}, env)).get(uid)
        if row is None or not can_see_session(env.viewer, row):
            return None
        await shape.load([row], env)
        return shape.build(row, env)

    return _with_conn(run)


def me_step(doc: Doc, nodes: list[FieldNode]) -> Step:
    shape = user_shape(doc, nodes)
    with_conn = _with_conn(lambda env: _me(shape, env))

    async def step(env: Env) -> Any:
        if env.viewer.user_id is None:
            return None  # as Query.me: no statement for an anonymous viewer
        return await with_conn(env)

    return step


async def _me(shape: Shape, env: Env) -> Any:
    uid = env.viewer.user_id
    assert uid is not None
    await load_users({uid}, env)
    row = env.users.get(uid)
    if row is None:
        return None
    await shape.load([row], env)
    return shape.build(row, env)
