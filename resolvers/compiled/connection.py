"""JobConnection selections (the feeds, Session.jobs): a page through db.feed's
job_page with the viewer's visibility, the count only when selected, cursors signed
only when selected, edges built by the job shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import FieldNode, get_named_type

from comfygraph.db.feed import Cursor, JobQuery, job_count, job_page
from comfygraph.db.kinds import OutputType as Kind
from comfygraph.resolvers.compiled.collect import Unsupported
from comfygraph.resolvers.compiled.doc import Doc
from comfygraph.resolvers.compiled.fields import Env, Row
from comfygraph.resolvers.compiled.jobs import job_shape
from comfygraph.resolvers.compiled.shape import Shape
from comfygraph.schema.pagination import CursorKind, page_size

_PAGE_INFO = frozenset({"__typename", "hasNextPage", "endCursor", "hasPreviousPage",
                        "startCursor"})  # fmt: skip


@dataclass
class Page:
    rows: list[Row]
    has_next: bool
    after: str | None
    count: int


@dataclass
class JobConnection:
    parts: list[tuple[str, str, Any]]  # (key, what, detail)
    edge_parts: list[tuple[str, str]]
    shape: Shape | None
    wants_count: bool

    async def fetch(self, env: Env, query: JobQuery, first: int | None, after: str | None) -> Page:
        """The page (page_size and the cursor checked as the interpreted feed checks
        them: their errors are GraphQLErrors, which hand the request over)."""
        size = page_size(first)
        position = None if after is None else env.ctx.keys.cursors.decode(CursorKind.JOBS, after)
        columns = sorted(self.shape.columns) if self.shape else []
        page = await job_page(
            env.conn, env.viewer, query, first=size,
            after=position and Cursor(*position), columns=columns,
        )  # fmt: skip
        count = await job_count(env.conn, env.viewer, query) if self.wants_count else 0
        return Page(page.rows, page.has_next, after, count)

    async def load(self, pages: list[Page], env: Env) -> None:
        if self.shape is not None:
            await self.shape.load([r for p in pages for r in p.rows], env)

    def render(self, page: Page, env: Env) -> dict[str, Any]:
        rows = page.rows
        codec = env.ctx.keys.cursors
        cursors: dict[int, str] = {}

        def cursor(i: int) -> str:
            if i not in cursors:  # signed only when asked for
                r = rows[i]
                cursors[i] = codec.encode(CursorKind.JOBS, r["created_at"], r["id"])
            return cursors[i]

        out: dict[str, Any] = {}
        for key, what, detail in self.parts:
            if what == "const":
                out[key] = detail
            elif what == "count":
                out[key] = page.count
            elif what == "pageInfo":
                out[key] = _page_info(detail, rows, page.has_next, page.after, cursor)
            else:
                out[key] = [self._edge(i, r, env, cursor) for i, r in enumerate(rows)]
        return out

    def _edge(self, i: int, row: Row, env: Env, cursor: Callable[[int], str]) -> dict[str, Any]:
        edge: dict[str, Any] = {}
        for key, what in self.edge_parts:
            if what == "node":
                assert self.shape is not None
                edge[key] = self.shape.build(row, env)
            elif what == "cursor":
                edge[key] = cursor(i)
            else:
                edge[key] = what
        return edge


def job_connection(
    doc: Doc, connection_type: str, nodes: list[FieldNode], kinds: frozenset[Kind]
) -> JobConnection:
    parts: list[tuple[str, str, Any]] = []
    shape: Shape | None = None
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
                if iname not in _PAGE_INFO:
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
                    edge_parts.append((ekey, edge_type.name))
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
    wants_count = any(w == "count" for _, w, _ in parts)
    return JobConnection(parts, edge_parts, shape, wants_count)


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
