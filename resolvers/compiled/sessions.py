"""Session and Asset selections. Who sees a session or an asset is db.visibility's
can_see_session / can_see_asset, applied where the interpreted path's loaders apply
them (resolvers/loaders.py): to sessions and assets fetched by id. Assets listed
under a session, like the interpreted Session.assets, are those of a session the
viewer already sees; a session's jobs are a feed (scope ALL) through the job rules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import FieldNode

from comfygraph.db import assets as db_assets
from comfygraph.db import costs as db_costs
from comfygraph.db import sessions as db_sessions
from comfygraph.db.feed import JobQuery, jobs_by_ids
from comfygraph.db.kinds import OutputType as Kind
from comfygraph.db.visibility import Scope, can_see_asset, can_see_job, can_see_session
from comfygraph.domain.statuses import AssetStatus, AssetType
from comfygraph.resolvers.args import given
from comfygraph.resolvers.compiled.collect import Unsupported
from comfygraph.resolvers.compiled.connection import job_connection
from comfygraph.resolvers.compiled.doc import Doc
from comfygraph.resolvers.compiled.fields import Env, Fallback, Getter, Row
from comfygraph.resolvers.compiled.jobs import job_shape
from comfygraph.resolvers.compiled.session_fields import (
    ASSET_FIELDS,
    COST_LINE_FIELDS,
    SESSION_FIELDS,
)
from comfygraph.resolvers.compiled.shape import Load, Shape, builder, typename
from comfygraph.resolvers.compiled.users import owner

_FINAL_STATES = frozenset({AssetStatus.APPROVED.value, AssetStatus.COMPLETED.value})
SESSION_ROWS = "session rows"  # env slots shared by every selection of one request
SESSION_ASSETS = "session assets"
ASSETS = "visible assets"
COST_LINES = "cost lines"


async def load_session_rows(ids: Iterable[Any], env: Env) -> dict[Any, Row]:
    """Sessions by id (as stored; callers apply can_see_session)."""
    rows = env.slot(SESSION_ROWS)
    missing = {i for i in ids if i is not None and i not in rows}
    if missing:
        found = await db_sessions.sessions_by_ids(env.conn, missing)
        rows.update({i: found.get(i) for i in missing})
    return rows


async def load_assets(ids: Iterable[Any], env: Env) -> dict[Any, Row | None]:
    """Assets by id, None for those the viewer may not see (the assets loader's rule)."""
    seen = env.slot(ASSETS)
    missing = {i for i in ids if i is not None and i not in seen}
    if missing:
        rows = await db_assets.assets_by_ids(env.conn, missing)
        owners = await load_session_rows({r["session_id"] for r in rows.values()}, env)
        for i in missing:
            row = rows.get(i)
            visible = row and can_see_asset(env.viewer, row, owners.get(row["session_id"]))
            seen[i] = row if visible else None
    return seen


async def _load_session_assets(rows: list[Row], env: Env) -> None:
    grouped = env.slot(SESSION_ASSETS)
    missing = [r["id"] for r in rows if r["id"] not in grouped]
    if missing:
        grouped.update(await db_assets.session_assets(env.conn, missing))


def _assets_field(doc: Doc, nodes: list[FieldNode]) -> tuple[Getter, Load]:
    args = doc.args("Session", "assets", nodes[0])
    shape = asset_shape(doc, nodes)
    key = object()  # this field's filter, per request

    async def load(rows: list[Row], env: Env) -> None:
        values = args.values(env.variables)
        kind, status = given(values.get("type")), given(values.get("status"))
        env.slot(key)["filter"] = (kind and kind.value, status and status.value)
        grouped = env.slot(SESSION_ASSETS)
        await shape.load([a for r in rows for a in grouped[r["id"]]], env)

    def get(row: Row, env: Env) -> list[dict[str, Any]]:
        kind, status = env.slot(key)["filter"]
        return [
            shape.build(a, env)
            for a in env.slot(SESSION_ASSETS)[row["id"]]
            if (not kind or a["type"] == kind) and (not status or a["status"] == status)
        ]

    return get, load


def _mood_board(row: Row, env: Env) -> list[Row]:
    chosen = [a for a in env.slot(SESSION_ASSETS)[row["id"]] if a["user_selected"]]
    return sorted(chosen, key=lambda a: (a["selection_order"] is None, a["selection_order"] or 0))


def _mood_board_field(doc: Doc, nodes: list[FieldNode]) -> tuple[Getter, Load]:
    shape = asset_shape(doc, nodes)

    async def load(rows: list[Row], env: Env) -> None:
        await shape.load([a for r in rows for a in _mood_board(r, env)], env)

    return (lambda row, env: [shape.build(a, env) for a in _mood_board(row, env)]), load


def _final_video(row: Row, env: Env) -> Row | None:
    """As Session.finalVideo: the asset it names, else the last final video done."""
    if row["final_video_id"] is not None:
        return env.slot(ASSETS).get(row["final_video_id"])
    finals = [
        a
        for a in env.slot(SESSION_ASSETS)[row["id"]]
        if a["type"] == AssetType.FINAL_VIDEO.value and a["status"] in _FINAL_STATES
    ]
    return finals[-1] if finals else None


def _final_video_field(doc: Doc, nodes: list[FieldNode]) -> tuple[Getter, Load]:
    shape = asset_shape(doc, nodes)

    async def load(rows: list[Row], env: Env) -> None:
        await load_assets({r["final_video_id"] for r in rows}, env)
        finals = [a for a in (_final_video(r, env) for r in rows) if a is not None]
        await shape.load(finals, env)

    def get(row: Row, env: Env) -> dict[str, Any] | None:
        final = _final_video(row, env)
        return None if final is None else shape.build(final, env)

    return get, load


def _jobs_field(doc: Doc, nodes: list[FieldNode]) -> tuple[Getter, Load]:
    args = doc.args("Session", "jobs", nodes[0])
    connection = job_connection(doc, "JobConnection", nodes, frozenset(Kind))
    key = object()

    async def load(rows: list[Row], env: Env) -> None:
        values = args.values(env.variables)
        pages = env.slot(key)
        for r in rows:
            if r["id"] not in pages:
                query = JobQuery(scope=Scope.ALL, session_id=r["id"])  # Feeds.session_jobs
                pages[r["id"]] = await connection.fetch(
                    env, query, values.get("first"), given(values.get("after"))
                )
        await connection.load([pages[r["id"]] for r in rows], env)

    return (lambda row, env: connection.render(env.slot(key)[row["id"]], env)), load


def _cost_breakdown_field(doc: Doc, nodes: list[FieldNode]) -> tuple[Getter, Load]:
    getters: list[tuple[str, Getter]] = []
    for key, fnodes in doc.fields_of("CostLine", nodes).items():
        name = fnodes[0].name.value
        if name == "__typename":
            getters.append((key, typename("CostLine")))
        elif name in COST_LINE_FIELDS:
            getters.append((key, COST_LINE_FIELDS[name]))
        else:
            raise Unsupported(f"CostLine.{name}")
    build = builder(getters)

    async def load(rows: list[Row], env: Env) -> None:
        lines = env.slot(COST_LINES)
        missing = [r["id"] for r in rows if r["id"] not in lines]
        if missing:
            lines.update(await db_costs.cost_breakdowns(env.conn, missing))

    return (lambda row, env: [build(c, env) for c in env.slot(COST_LINES)[row["id"]]]), load


_READ_ASSETS = frozenset({"assets", "moodBoard", "finalVideo"})
_SESSION_NESTED = {
    "assets": _assets_field,
    "moodBoard": _mood_board_field,
    "finalVideo": _final_video_field,
    "jobs": _jobs_field,
    "owner": owner,
    "costBreakdown": _cost_breakdown_field,
}


def session_shape(doc: Doc, nodes: list[FieldNode]) -> Shape:
    getters: list[tuple[str, Getter]] = []
    loads: list[Load] = []
    for key, fnodes in doc.fields_of("Session", nodes).items():
        name = fnodes[0].name.value
        if name == "__typename":
            getters.append((key, typename("Session")))
        elif name in SESSION_FIELDS:
            getters.append((key, SESSION_FIELDS[name]))
        elif name in _SESSION_NESTED:
            get, load = _SESSION_NESTED[name](doc, fnodes)
            if name in _READ_ASSETS and _load_session_assets not in loads:
                loads.insert(0, _load_session_assets)  # what those fields' loads read
            getters.append((key, get))
            loads.append(load)
        else:
            raise Unsupported(f"Session.{name}")
    return Shape(builder(getters), loads=loads)


def _asset_session_field(doc: Doc, nodes: list[FieldNode]) -> tuple[Getter, Load]:
    shape = session_shape(doc, nodes)

    async def load(rows: list[Row], env: Env) -> None:
        ids = {r["session_id"] for r in rows}
        found = await load_session_rows(ids, env)
        await shape.load([found[i] for i in ids if found[i] is not None], env)

    def get(row: Row, env: Env) -> dict[str, Any]:
        session = env.slot(SESSION_ROWS).get(row["session_id"])
        if session is None or not can_see_session(env.viewer, session):
            raise Fallback  # the interpreter's assertion: an asset's session is visible
        return shape.build(session, env)

    return get, load


def _source_image_field(doc: Doc, nodes: list[FieldNode]) -> tuple[Getter, Load]:
    shape = asset_shape(doc, nodes)

    async def load(rows: list[Row], env: Env) -> None:
        seen = await load_assets({r["source_image_id"] for r in rows}, env)
        images = [seen[r["source_image_id"]] for r in rows if r["source_image_id"] is not None]
        await shape.load([i for i in images if i is not None], env)

    def get(row: Row, env: Env) -> dict[str, Any] | None:
        if row["source_image_id"] is None:
            return None
        image = env.slot(ASSETS).get(row["source_image_id"])
        return None if image is None else shape.build(image, env)

    return get, load


def _asset_job_field(doc: Doc, nodes: list[FieldNode]) -> tuple[Getter, Load]:
    shape = job_shape(doc, nodes)
    columns = sorted(shape.columns)
    key = object()

    async def load(rows: list[Row], env: Env) -> None:
        refs = {(r["job_output_type"], r["job_id"]) for r in rows if r["job_output_type"]}
        seen = env.slot(key)
        missing = {ref for ref in refs if ref not in seen}
        if missing:
            kinds = sorted({Kind(k) for k, _ in missing})
            found = await jobs_by_ids(env.conn, {uid for _, uid in missing}, kinds, columns)
            for kind, uid in missing:
                row = found.get(uid)
                visible = row and row["kind"] == kind and can_see_job(env.viewer, row)
                seen[kind, uid] = row if visible else None
        await shape.load([j for j in (seen[ref] for ref in refs) if j is not None], env)

    def get(row: Row, env: Env) -> dict[str, Any] | None:
        if row["job_output_type"] is None:
            return None
        job = env.slot(key).get((row["job_output_type"], row["job_id"]))
        return None if job is None else shape.build(job, env)

    return get, load


_ASSET_NESTED = {
    "session": _asset_session_field,
    "sourceImage": _source_image_field,
    "job": _asset_job_field,
}


def asset_shape(doc: Doc, nodes: list[FieldNode]) -> Shape:
    getters: list[tuple[str, Getter]] = []
    loads: list[Load] = []
    for key, fnodes in doc.fields_of("Asset", nodes).items():
        name = fnodes[0].name.value
        if name == "__typename":
            getters.append((key, typename("Asset")))
        elif name in ASSET_FIELDS:
            getters.append((key, ASSET_FIELDS[name]))
        elif name in _ASSET_NESTED:
            get, load = _ASSET_NESTED[name](doc, fnodes)
            getters.append((key, get))
            loads.append(load)
        else:
            raise Unsupported(f"Asset.{name}")
    return Shape(builder(getters), loads=loads)
