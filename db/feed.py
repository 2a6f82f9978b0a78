"""Keyset pages of jobs: the unified feed across the four tables, and per-table feeds.

The unified feed is a UNION ALL of per-table (and per-visibility-branch) keyset scans,
each ordered by (created_at, id) DESC and limited to the page size, merged and limited
again. Every branch is served by one of the feed indexes of migration 0002, so a page
costs the same at row 10 and at row 10 million.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from comfygraph.db.kinds import OutputType, unified_select_list
from comfygraph.db.visibility import Scope, Viewer, scope_branches

# A filter list longer than this is matched with = ANY() instead of one branch per value.
MAX_EXPANDED_VALUES = 8


@dataclass(frozen=True)
class JobQuery:
    scope: Scope = Scope.MINE
    output_types: frozenset[OutputType] = frozenset(OutputType)
    workflow_names: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    session_id: uuid.UUID | None = None
    batch_id: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: uuid.UUID


@dataclass
class Page:
    rows: list[asyncpg.Record]
    has_next: bool


@dataclass
class _Sql:
    args: list[Any] = field(default_factory=list)

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


def _branch_conditions(sql: _Sql, viewer: Viewer, q: JobQuery) -> list[list[str]]:
    """Each inner list is one UNION branch's ANDed conditions (without the keyset)."""
    visibility = scope_branches(viewer, q.scope)
    if not visibility:
        return []
    common = ["deleted_at IS NULL"]
    if q.session_id is not None:
        common.append(f"session_id = {sql.param(q.session_id)}")
    if q.batch_id is not None:
        common.append(f"batch_id = {sql.param(q.batch_id)}")
    if q.created_after is not None:
        common.append(f"created_at > {sql.param(q.created_after)}")
    if q.created_before is not None:
        common.append(f"created_at < {sql.param(q.created_before)}")

    # One branch per value of the most selective list filter keeps each branch an
    # ordered index range scan (PostgreSQL 15 cannot merge = ANY() in index order).
    expansions: list[list[str]] = [[]]
    lists = [("workflow_name", q.workflow_names), ("status", q.statuses)]
    expanded = False
    for column, values in lists:
        if values is None:
            continue
        if not values:
            return []
        if not expanded and len(values) <= MAX_EXPANDED_VALUES:
            expansions = [[f"{column} = {sql.param(v)}"] for v in dict.fromkeys(values)]
            expanded = True
        else:
            common.append(f"{column} = ANY({sql.param(list(values))}::text[])")

    viewer_param = sql.param(viewer.user_id) if "$viewer" in " ".join(visibility) else ""
    return [
        [*common, vis.replace("$viewer", f"{viewer_param}::uuid"), *extra]
        for vis in visibility
        for extra in expansions
    ]


def _keyset(sql: _Sql, after: Cursor | None) -> str:
    if after is None:
        return "true"
    return f"(created_at, id) < ({sql.param(after.created_at)}, {sql.param(after.id)}::uuid)"


async def job_page(
    conn: asyncpg.Connection,
    viewer: Viewer,
    query: JobQuery,
    *,
    first: int,
    after: Cursor | None = None,
    columns: Sequence[str] | None = None,
) -> Page:
    """One page of jobs, newest first; every row has a `kind` column naming its table,
    and `columns` (default: all) plus the key columns (db.kinds.KEY_COLUMNS)."""
    sql = _Sql()
    branches = _branch_conditions(sql, viewer, query)
    if not branches or not query.output_types or first <= 0:
        return Page([], False)
    keyset = _keyset(sql, after)
    limit = sql.param(first + 1)
    parts = [
        f"""(SELECT {unified_select_list(kind, columns)} FROM {kind.table}
             WHERE {" AND ".join(conds)} AND {keyset}
             ORDER BY created_at DESC, id DESC LIMIT {limit})"""
        for kind in sorted(query.output_types)
        for conds in branches
    ]
    rows = await conn.fetch(
        f"""SELECT * FROM ({" UNION ALL ".join(parts)}) feed
            ORDER BY created_at DESC, id DESC LIMIT {limit}""",
        *sql.args,
    )
    return Page(list(rows[:first]), len(rows) > first)


async def job_count(conn: asyncpg.Connection, viewer: Viewer, query: JobQuery) -> int:
    """How many jobs the feed holds (computed only when a client asks for totalCount)."""
    sql = _Sql()
    branches = _branch_conditions(sql, viewer, query)
    if not branches or not query.output_types:
        return 0
    parts = [
        f"SELECT count(*) AS n FROM {kind.table} WHERE {' AND '.join(conds)}"
        for kind in sorted(query.output_types)
        for conds in branches
    ]
    total = await conn.fetchval(
        f"SELECT coalesce(sum(n), 0) FROM ({' UNION ALL '.join(parts)}) c", *sql.args
    )
    return int(total)


async def jobs_by_ids(
    conn: asyncpg.Connection,
    ids: Iterable[uuid.UUID],
    kinds: Sequence[OutputType] | None = None,
    columns: Sequence[str] | None = None,
) -> dict[uuid.UUID, asyncpg.Record]:
    """Rows by id across tables in one statement (DataLoaders; visibility is the caller's),
    with `columns` (default: all) plus the key columns."""
    id_list = list(ids)
    if not id_list:
        return {}
    parts = [
        f"SELECT {unified_select_list(k, columns)} FROM {k.table} WHERE id = ANY($1::uuid[])"
        for k in (kinds or list(OutputType))
    ]
    rows = await conn.fetch(" UNION ALL ".join(parts), id_list)
    return {r["id"]: r for r in rows}


async def jobs_by_comfy_id(conn: asyncpg.Connection, comfy_job_id: str) -> list[asyncpg.Record]:
    """Live jobs (any table) that ComfyUI knows as `comfy_job_id`, newest first; each row
    has a `kind` column. Visibility is the caller's (db.visibility.can_see_job)."""
    parts = [
        f"""(SELECT {unified_select_list(k)} FROM {k.table}
             WHERE comfy_job_id = $1 AND deleted_at IS NULL)"""
        for k in OutputType
    ]
    rows = await conn.fetch(
        f"{' UNION ALL '.join(parts)} ORDER BY created_at DESC, id DESC LIMIT 20", comfy_job_id
    )
    return list(rows)


async def jobs_changed_since(
    conn: asyncpg.Connection, viewer: Viewer, query: JobQuery, *, seconds: float, limit: int
) -> list[asyncpg.Record]:
    """Jobs of this feed changed in the last `seconds` (by the server's clock), oldest
    change first, at most `limit`: what a subscriber may have missed while its events
    were lost. Rare (after a broadcast outage), so a scan of recent rows is acceptable."""
    sql = _Sql()
    branches = _branch_conditions(sql, viewer, query)
    if not branches or not query.output_types or limit <= 0:
        return []
    since = sql.param(float(seconds))
    cap = sql.param(limit)
    parts = [
        f"""(SELECT {unified_select_list(kind)} FROM {kind.table}
             WHERE {" AND ".join(conds)}
               AND updated_at >= now() - make_interval(secs => {since})
             ORDER BY updated_at DESC LIMIT {cap})"""
        for kind in sorted(query.output_types)
        for conds in branches
    ]
    rows = await conn.fetch(
        f"""SELECT * FROM (SELECT * FROM ({" UNION ALL ".join(parts)}) u
                            ORDER BY updated_at DESC LIMIT {cap}) feed
            ORDER BY updated_at, id""",
        *sql.args,
    )
    return list(rows)
