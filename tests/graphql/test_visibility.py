"""Alice never reaches Bob's private job, session or asset, by any path; an admin
does. What Alice may not see answers exactly as an id that does not exist."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.graphql.client import GraphQLClient, gid, row_id
from tests.graphql.world import TYPE_NAMES, World

NODE = "query($id: ID!) { node(id: $id) { id __typename } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
JOB = "query($id: ID!) { job(id: $id) { ... on GenerationJob { id } } }"
BY_COMFY = "query($c: String!) { jobByComfyId(comfyJobId: $c) { ... on GenerationJob { id } } }"
SESSION = """query($id: ID!) { session(id: $id) {
  id owner { email } assets { id job { ... on GenerationJob { id } } }
  jobs(first: 100) { edges { node { ... on GenerationJob { id public } } } totalCount }
} }"""
ALL_JOBS = """query($after: String, $scope: Scope) {
  jobs(first: 100, after: $after, filter: {scope: $scope}) {
    edges { node { ... on GenerationJob { id } } } pageInfo { hasNextPage endCursor } } }"""
SESSIONS = "{ sessions(first: 100) { edges { node { id } } totalCount } }"


def _bob_private(world: World) -> dict[str, Any]:
    kind, job = world.private_job_of("bob")
    return {
        "job": gid(TYPE_NAMES[kind], job["id"]),
        "comfy": job["comfy_job_id"],
        "session": gid("Session", world.sessions["bob_1"]["id"]),
        "asset": gid("Asset", world.assets["bob_img"]["id"]),
        "user": gid("User", world.uid("bob")),
        "kind": kind,
    }


def _every_job_id(client: GraphQLClient, scope: str) -> set[uuid.UUID]:
    seen, after = set(), None
    while True:
        conn = client.data(ALL_JOBS, {"after": after, "scope": scope})["jobs"]
        seen |= {row_id(e["node"]["id"]) for e in conn["edges"]}
        if not conn["pageInfo"]["hasNextPage"]:
            return seen
        after = conn["pageInfo"]["endCursor"]


def test_alice_cannot_reach_bobs_private_things(clients: dict, world: World) -> None:
    alice, bob = clients["alice"], world.uid("bob")
    ids = _bob_private(world)
    for name in ("job", "session", "asset", "user"):
        assert alice.data(NODE, {"id": ids[name]}) == {"node": None}, name
    assert alice.data(NODES, {"ids": [ids["job"], ids["session"], ids["asset"]]}) == {
        "nodes": [None, None, None]
    }
    assert alice.data(JOB, {"id": ids["job"]}) == {"job": None}
    assert alice.data(BY_COMFY, {"c": ids["comfy"]}) == {"jobByComfyId": None}
    assert alice.data(SESSION, {"id": ids["session"]}) == {"session": None}

    bob_private = {
        r["id"] for _k, r in world.live_jobs() if r["user_id"] == bob and not r["public"]
    }
    for scope in ("MINE", "PUBLIC", "ALL"):
        assert not _every_job_id(alice, scope) & bob_private, scope
    assert world.sessions["bob_1"]["id"] not in {
        row_id(e["node"]["id"]) for e in alice.data(SESSIONS)["sessions"]["edges"]
    }


def test_invisible_answers_exactly_like_nonexistent(clients: dict, world: World) -> None:
    alice, ids = clients["alice"], _bob_private(world)
    ghost = {
        "job": gid(TYPE_NAMES[ids["kind"]], uuid.uuid4()),
        "session": gid("Session", uuid.uuid4()),
        "asset": gid("Asset", uuid.uuid4()),
    }
    for name, query, var in (("job", JOB, "id"), ("session", SESSION, "id"),
                             ("asset", NODE, "id"), ("job", NODE, "id")):  # fmt: skip
        assert alice.post(query, {var: ids[name]}) == alice.post(query, {var: ghost[name]})
    assert alice.post(BY_COMFY, {"c": ids["comfy"]}) == alice.post(BY_COMFY, {"c": "no-such"})


def test_assets_and_session_jobs_stay_within_what_the_viewer_sees(
    clients: dict, world: World
) -> None:
    # Alice's own session: her assets, her jobs, the asset's job (hers and private).
    session = clients["alice"].data(
        SESSION, {"id": gid("Session", world.sessions["alice_1"]["id"])}
    )
    assets = {row_id(a["id"]): a for a in session["session"]["assets"]}
    img1 = world.assets["img1"]
    assert row_id(assets[img1["id"]]["job"]["id"]) == img1["job_id"]
    expected_jobs = {r["id"] for _k, r in world.live_jobs()
                     if r["session_id"] == world.sessions["alice_1"]["id"]}  # fmt: skip
    got = {row_id(e["node"]["id"]) for e in session["session"]["jobs"]["edges"]}
    assert got == expected_jobs and session["session"]["jobs"]["totalCount"] == len(got)

    # Bob's session holds Bob's asset pointing at Bob's private job: Alice sees none of it.
    ids = _bob_private(world)
    assert clients["alice"].data(NODE, {"id": ids["asset"]}) == {"node": None}


@pytest.mark.parametrize("viewer", ["admin", "bob"])
def test_owner_and_admin_see_everything_of_bobs(clients: dict, world: World, viewer: str) -> None:
    client, ids = clients[viewer], _bob_private(world)
    assert client.data(JOB, {"id": ids["job"]})["job"] == {"id": ids["job"]}
    assert client.data(BY_COMFY, {"c": ids["comfy"]})["jobByComfyId"] == {"id": ids["job"]}
    assert client.data(NODE, {"id": ids["user"]})["node"]["id"] == ids["user"]
    session = client.data(SESSION, {"id": ids["session"]})["session"]
    assert session["id"] == ids["session"]
    assert session["assets"][0]["id"] == ids["asset"]
    assert session["assets"][0]["job"] == {"id": ids["job"]}
    nodes = client.data(NODES, {"ids": [ids["job"], ids["session"], ids["asset"]]})["nodes"]
    assert [n["id"] for n in nodes] == [ids["job"], ids["session"], ids["asset"]]


def test_admin_sees_every_job_and_session(clients: dict, world: World) -> None:
    live = {r["id"] for _k, r in world.live_jobs()}
    assert _every_job_id(clients["admin"], "ALL") == live
    sessions = clients["admin"].data(SESSIONS)["sessions"]
    assert sessions["totalCount"] == len(world.sessions)


def test_deleted_jobs_are_nobodys(clients: dict, world: World) -> None:
    deleted = [(k, r) for k, r in world.jobs if r["deleted_at"] is not None]
    assert deleted
    for kind, row in deleted[:3]:
        assert clients["admin"].data(JOB, {"id": gid(TYPE_NAMES[kind], row["id"])}) == {"job": None}


def test_anonymous_sees_public_jobs_only_and_no_sessions(clients: dict, world: World) -> None:
    anon = clients["anonymous"]
    public = {r["id"] for _k, r in world.live_jobs() if r["public"]}
    assert _every_job_id(anon, "ALL") == public
    assert _every_job_id(anon, "MINE") == set()
    assert anon.data(SESSIONS)["sessions"] == {"edges": [], "totalCount": 0}
    assert anon.data("{ me { id } }") == {"me": None}
    ids = _bob_private(world)
    assert anon.data(SESSION, {"id": ids["session"]}) == {"session": None}


def test_session_fields(clients: dict, world: World) -> None:
    data = clients["alice"].data(
        """query($id: ID!) { session(id: $id) {
             status productCategory styleKeywords totalCost owner { email }
             images: assets(type: IMAGE) { id seed }
             approved: assets(status: APPROVED) { id }
             moodBoard { id } finalVideo { id }
             clips: assets(type: VIDEO_CLIP) { sourceImage { id } session { id } }
             costBreakdown { category provider apiCalls totalCost avgLatencyMs } } }""",
        {"id": gid("Session", world.sessions["alice_1"]["id"])},
    )["session"]
    a = {name: gid("Asset", row["id"]) for name, row in world.assets.items()}
    session_id = gid("Session", world.sessions["alice_1"]["id"])
    assert data["status"] == "CREATED" and data["productCategory"] == "FOOTWEAR"
    assert data["owner"]["email"] == world.users["alice"]["email"]
    assert [x["id"] for x in data["images"]] == [a["img1"], a["img2"]]
    assert data["images"][1]["seed"] is None  # 2**40 does not fit GraphQL's Int
    assert {x["id"] for x in data["approved"]} == {a["img1"], a["img2"]}
    assert [x["id"] for x in data["moodBoard"]] == [a["img2"], a["img1"]]
    assert data["finalVideo"] == {"id": a["final"]}
    assert data["clips"] == [{"sourceImage": {"id": a["img1"]}, "session": {"id": session_id}}]
    assert data["totalCost"] == pytest.approx(0.06)
    assert [c["category"] for c in data["costBreakdown"]] == ["image_generation", "llm"]
    assert data["costBreakdown"][0]["avgLatencyMs"] == 120


def test_me(clients: dict, world: World) -> None:
    me = clients["bob"].data("{ me { id email role } }")["me"]
    assert me == {"id": gid("User", world.uid("bob")), "email": world.users["bob"]["email"],
                  "role": "USER"}  # fmt: skip
    assert clients["admin"].data("{ me { role } }")["me"]["role"] == "ADMIN"
