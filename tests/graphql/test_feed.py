"""The unified feed and the per-type feeds over real HTTP: every filter, every scope,
paged with cursors to the end: every visible row once, in order, nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from comfygraph.db.kinds import OutputType
from tests.graphql.client import GraphQLClient, gid, row_id
from tests.graphql.world import BASE, TYPE_NAMES, World, in_scope, newest_first

FEED = """
query Feed($first: Int, $after: String, $filter: JobFilter) {
  jobs(first: $first, after: $after, filter: $filter) {
    edges { cursor node { __typename ... on GenerationJob { id createdAt outputType } } }
    pageInfo { hasNextPage endCursor hasPreviousPage startCursor }
    totalCount
  }
}"""
VIEWERS = ["alice", "bob", "admin", "anonymous"]


def walk(client: GraphQLClient, query: str, field: str, size: int, **variables: Any) -> list:
    seen: list[uuid.UUID] = []
    after = None
    total = None
    for _ in range(500):
        conn = client.data(query, {"first": size, "after": after, **variables})[field]
        total = conn["totalCount"]
        for edge in conn["edges"]:
            seen.append(row_id(edge["node"]["id"]))
        info = conn["pageInfo"]
        if conn["edges"]:
            assert info["endCursor"] == conn["edges"][-1]["cursor"]
            assert info["startCursor"] == conn["edges"][0]["cursor"]
        assert info["hasPreviousPage"] is (after is not None)
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert total == len(seen), "totalCount must match what paging walks through"
    return seen


def expected(world: World, viewer: str, scope: str | None, keep: Callable = lambda k, r: True):
    uid = None if viewer == "anonymous" else world.uid(viewer)
    admin = viewer == "admin"
    scope = scope or ("PUBLIC" if uid is None else "MINE")
    return newest_first(
        [(k, r) for k, r in world.live_jobs() if in_scope(scope, uid, admin, r) and keep(k, r)]
    )


@pytest.mark.parametrize("viewer", VIEWERS)
@pytest.mark.parametrize("scope", [None, "MINE", "PUBLIC", "ALL"])
def test_every_scope_for_every_viewer(clients: dict, world: World, viewer: str, scope) -> None:
    variables = {"filter": {"scope": scope}} if scope else {}
    got = walk(clients[viewer], FEED, "jobs", 7, **variables)
    assert got == expected(world, viewer, scope)
    assert len(set(got)) == len(got)


@pytest.mark.parametrize("size", [1, 13, 100])
def test_page_sizes_walk_the_same_feed(clients: dict, world: World, size: int) -> None:
    got = walk(clients["admin"], FEED, "jobs", size, filter={"scope": "ALL"})
    assert got == expected(world, "admin", "ALL")


def _filters(world: World) -> list[tuple[str, dict, Callable]]:
    s1 = world.sessions["alice_1"]["id"]
    after, before = BASE + timedelta(seconds=2, microseconds=1), BASE + timedelta(seconds=6)
    return [
        ("outputTypes", {"outputTypes": ["IMAGE", "AUDIO"]},
         lambda k, r: k in (OutputType.IMAGE, OutputType.AUDIO)),
        ("workflowNames", {"workflowNames": ["img2img", "wan-i2v", "tts"]},
         lambda k, r: r["workflow_name"] in ("img2img", "wan-i2v", "tts")),
        ("statuses", {"statuses": ["PENDING", "COMPLETED"]},
         lambda k, r: r["status"] in ("pending", "completed")),
        ("sessionId", {"sessionId": gid("Session", s1)}, lambda k, r: r["session_id"] == s1),
        ("createdAfter", {"createdAfter": after.isoformat()}, lambda k, r: r["created_at"] > after),
        ("createdBefore", {"createdBefore": before.isoformat()},
         lambda k, r: r["created_at"] < before),
        ("empty list", {"statuses": []}, lambda k, r: False),
        ("combined", {"outputTypes": ["VIDEO", "IMAGE", "TEXT"], "statuses": ["COMPLETED",
         "FAILED", "PENDING"], "createdAfter": BASE.isoformat()},
         lambda k, r: k is not OutputType.AUDIO and r["status"] in ("completed", "failed",
                                                                    "pending")
         and r["created_at"] > BASE),
    ]  # fmt: skip


@pytest.mark.parametrize("index", range(8))
@pytest.mark.parametrize("viewer", ["alice", "admin"])
def test_each_filter(clients: dict, world: World, index: int, viewer: str) -> None:
    name, flt, keep = _filters(world)[index]
    want = expected(world, viewer, "ALL", keep)
    assert want or name == "empty list", f"the world should exercise {name}"
    got = walk(clients[viewer], FEED, "jobs", 5, filter={"scope": "ALL", **flt})
    assert got == want, name


TYPED = """
query Typed($first: Int, $after: String, $filter: JobFilter) {
  %s(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id __typename outputType } }
    pageInfo { hasNextPage endCursor hasPreviousPage startCursor }
    totalCount
  }
}"""


@pytest.mark.parametrize("kind", list(OutputType))
@pytest.mark.parametrize("viewer", ["bob", "anonymous"])
def test_per_type_feeds(clients: dict, world: World, kind: OutputType, viewer: str) -> None:
    field = f"{kind.value}Jobs"
    got = walk(clients[viewer], TYPED % field, field, 4, filter={"scope": "ALL"})
    assert got == expected(world, viewer, "ALL", lambda k, r: k is kind)
    # A per-type feed narrowed to other types by the filter is empty.
    others = [t.name for t in OutputType if t is not kind]
    assert walk(clients[viewer], TYPED % field, field, 4, filter={"outputTypes": others}) == []


def test_feed_rows_carry_their_columns(clients: dict, world: World) -> None:
    kind, row = world.private_job_of("alice")
    data = clients["alice"].data(
        """query($id: ID!) { job(id: $id) { __typename ... on GenerationJob {
             id outputType workflowName status progress parameters public createdAt
             comfyJobId costUsd queuePosition owner { id email role } outputs {
               kind url filename mimeType node width height } } } }""",
        {"id": gid(TYPE_NAMES[kind], row["id"])},
    )["job"]
    assert data["__typename"] == TYPE_NAMES[kind]
    assert data["workflowName"] == row["workflow_name"]
    assert data["status"] == row["status"].upper()
    assert data["parameters"] == row["parameters"]
    assert data["comfyJobId"] == row["comfy_job_id"]
    assert data["owner"]["email"] == world.users["alice"]["email"]
    assert data["outputs"][0] == {"kind": "IMAGE", "url": row["outputs"][0]["url"],
                                  "filename": row["outputs"][0]["filename"],
                                  "mimeType": "image/png", "node": "9", "width": 64,
                                  "height": 64}  # fmt: skip
    assert data["createdAt"] == row["created_at"].isoformat()
    assert (data["queuePosition"] is None) == (row["status"] != "pending")
