"""Interpreted path (COMPILED_QUERIES off): an edge's cursor is signed only when it is
selected, or when it is the page's start/endCursor, once; the data is the same either way
and endCursor still pages on. Seen through the app's cursor codec's count of signatures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from comfygraph.schema.pagination import CursorCodec
from comfygraph.server.app import create_app
from comfygraph.server.graphql import GraphQLView
from comfygraph.server.settings import Settings
from tests.graphql.client import GraphQLClient
from tests.graphql.conftest import SECRET
from tests.graphql.world import World
from tests.servers import serve_in_thread

NODE = "node { ... on GenerationJob { id } }"
PLAIN = f"""{{ jobs(first: 20, filter: {{scope: ALL}}) {{
  edges {{ {NODE} }} pageInfo {{ hasNextPage }} }} }}"""
END = f"""query($after: String) {{ jobs(first: 20, filter: {{scope: ALL}}, after: $after) {{
  edges {{ {NODE} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
CURSORS = f"""{{ jobs(first: 20, filter: {{scope: ALL}}) {{ edges {{ cursor {NODE} }}
  pageInfo {{ hasNextPage endCursor startCursor }} }} }}"""
SESSIONS = "{ sessions(first: 5) { edges { node { id } } pageInfo { hasNextPage } } }"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, dsn: str) -> Settings:
    data = Path(tmp_path_factory.mktemp("data"))
    return Settings(database_url=dsn, data_dir=data, jwt_secret=SECRET, compiled_queries=False)


@pytest.fixture(scope="module")
def codec(settings: Settings, dsn: str) -> Iterator[tuple[str, CursorCodec]]:
    app = create_app(settings, dsn=dsn)
    view = next(
        r.endpoint for r in app.routes if isinstance(getattr(r, "endpoint", None), GraphQLView)
    )  # type: ignore[attr-defined]
    with serve_in_thread(app) as url:
        yield url, view.keys.cursors


@pytest.fixture(scope="module")
def base_url(codec: tuple[str, CursorCodec]) -> str:
    return codec[0]


def _signed_by(codec: CursorCodec, run: Any) -> tuple[Any, int]:
    before = codec.signed
    result = run()
    return result, codec.signed - before


def test_cursors_are_signed_only_when_selected(
    clients: dict[str, GraphQLClient], world: World, codec: tuple[str, CursorCodec]
) -> None:
    admin, signer = clients["admin"], codec[1]
    plain, signed = _signed_by(signer, lambda: admin.data(PLAIN))
    assert signed == 0 and len(plain["jobs"]["edges"]) == 20
    full, signed = _signed_by(signer, lambda: admin.data(CURSORS))
    assert signed == 20  # one per edge; startCursor and endCursor reuse the first and last
    edges = full["jobs"]["edges"]
    assert [e["node"] for e in edges] == [e["node"] for e in plain["jobs"]["edges"]]
    info = full["jobs"]["pageInfo"]
    assert (info["startCursor"], info["endCursor"]) == (edges[0]["cursor"], edges[-1]["cursor"])

    end, signed = _signed_by(signer, lambda: admin.data(END))
    assert signed == 1 and end["jobs"]["edges"] == plain["jobs"]["edges"]
    assert end["jobs"]["pageInfo"]["endCursor"] == edges[-1]["cursor"]
    following = admin.data(END, {"after": end["jobs"]["pageInfo"]["endCursor"]})
    seen = {e["node"]["id"] for e in edges}
    assert following["jobs"]["edges"] and not seen & {
        e["node"]["id"] for e in following["jobs"]["edges"]
    }
    _, signed = _signed_by(signer, lambda: admin.data(SESSIONS))
    assert signed == 0
