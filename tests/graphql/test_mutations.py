"""login, the job mutations that need only the database, the placeholders, and the
ALLOW_ANONYMOUS switch."""

from __future__ import annotations

import json
from collections.abc import Iterator

import asyncpg
import pytest
from websockets.sync.client import connect

from comfygraph.db.jobs import create_job, transition
from comfygraph.db.kinds import OutputType
from comfygraph.db.users import create_user
from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings
from tests.graphql.client import GraphQLClient, codes, gid
from tests.graphql.world import TYPE_NAMES, World
from tests.servers import serve_in_thread

IMAGE = OutputType.IMAGE
SET_PUBLIC = """mutation($id: ID!, $public: Boolean!) { setJobPublic(id: $id, public: $public) {
  job { ... on GenerationJob { id public } } userErrors { field message code } } }"""
CANCEL = """mutation($id: ID!) { cancelJob(id: $id) {
  job { ... on GenerationJob { id status completedAt } } userErrors { code } } }"""
DELETE = "mutation($id: ID!) { deleteJob(id: $id) { deletedId userErrors { code field } } }"
LOGIN = """mutation($e: String!, $p: String!) { login(email: $e, password: $p) {
  token user { email role } userErrors { field code message } } }"""
JOB = "query($id: ID!) { job(id: $id) { ... on GenerationJob { id status public } } }"


@pytest.fixture(scope="module")
async def jobs(pool: asyncpg.Pool, world: World) -> dict[str, str]:
    """Fresh jobs of Alice's in each state a mutation cares about."""
    made = {}
    async with pool.acquire() as conn:
        await create_user(conn, email="carol@example.com", password="s3cret-pass", rounds=4)
        for name in ("private", "public", "pending", "processing", "completed", "doomed"):
            row, _ = await create_job(conn, IMAGE, user_id=world.uid("alice"),
                                      workflow_name="img2img", parameters={},
                                      public=name == "public")  # fmt: skip
            if name in ("processing", "completed"):
                await transition(conn, IMAGE, row["id"], "processing")
            if name == "completed":
                await transition(conn, IMAGE, row["id"], "completed")
            made[name] = gid(TYPE_NAMES[IMAGE], row["id"])
    return made


def test_login(clients: dict, base_url: str, jobs: dict[str, str]) -> None:
    anon = clients["anonymous"]
    ok = anon.data(LOGIN, {"e": "CAROL@example.com", "p": "s3cret-pass"})["login"]
    assert ok["userErrors"] == [] and ok["user"] == {"email": "carol@example.com", "role": "USER"}
    me = GraphQLClient(base_url, ok["token"]).data("{ me { email } }")
    assert me == {"me": {"email": "carol@example.com"}}
    for email, password in (("carol@example.com", "wrong"), ("nobody@example.com", "x"),
                            ("carol@example.com", "x" * 100), ("x" * 1000, "y")):  # fmt: skip
        bad = anon.data(LOGIN, {"e": email, "p": password})["login"]
        assert bad["token"] is None and bad["user"] is None
        assert [e["code"] for e in bad["userErrors"]] == ["INVALID_CREDENTIALS"]


def test_set_job_public(clients: dict, jobs: dict[str, str]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    assert bob.data(JOB, {"id": jobs["private"]}) == {"job": None}
    done = alice.data(SET_PUBLIC, {"id": jobs["private"], "public": True})["setJobPublic"]
    assert done == {"job": {"id": jobs["private"], "public": True}, "userErrors": []}
    assert bob.data(JOB, {"id": jobs["private"]})["job"]["public"] is True
    alice.data(SET_PUBLIC, {"id": jobs["private"], "public": False})
    assert bob.data(JOB, {"id": jobs["private"]}) == {"job": None}


def test_who_may_change_a_job(clients: dict, jobs: dict[str, str]) -> None:
    bob = clients["bob"]
    # Visible but not his: FORBIDDEN. Invisible: NOT_FOUND, exactly like a ghost id.
    assert codes(bob.post(SET_PUBLIC, {"id": jobs["public"], "public": False})) == ["FORBIDDEN"]
    hidden = bob.data(SET_PUBLIC, {"id": jobs["private"], "public": True})["setJobPublic"]
    assert hidden["job"] is None and hidden["userErrors"][0]["code"] == "NOT_FOUND"
    bad = bob.data(SET_PUBLIC, {"id": "garbage", "public": True})["setJobPublic"]
    assert bad["userErrors"][0] == {
        "field": ["id"],
        "message": "malformed id",
        "code": "INVALID_ID",
    }
    anon = clients["anonymous"].post(SET_PUBLIC, {"id": jobs["public"], "public": False})
    assert codes(anon) == ["UNAUTHENTICATED"]
    # The admin may.
    admin = clients["admin"].data(SET_PUBLIC, {"id": jobs["public"], "public": True})
    assert admin["setJobPublic"]["userErrors"] == []


def test_cancel_job(clients: dict, jobs: dict[str, str]) -> None:
    alice = clients["alice"]
    for name in ("pending", "processing"):
        done = alice.data(CANCEL, {"id": jobs[name]})["cancelJob"]
        assert done["job"]["status"] == "CANCELLED" and done["job"]["completedAt"], name
        again = alice.data(CANCEL, {"id": jobs[name]})["cancelJob"]
        assert again["userErrors"] == [{"code": "NOT_CANCELLABLE"}]
    finished = alice.data(CANCEL, {"id": jobs["completed"]})["cancelJob"]
    assert finished == {"job": None, "userErrors": [{"code": "NOT_CANCELLABLE"}]}


def test_delete_job(clients: dict, jobs: dict[str, str]) -> None:
    alice = clients["alice"]
    assert alice.data(DELETE, {"id": jobs["doomed"]})["deleteJob"] == {
        "deletedId": jobs["doomed"], "userErrors": []}  # fmt: skip
    assert alice.data(JOB, {"id": jobs["doomed"]}) == {"job": None}
    again = alice.data(DELETE, {"id": jobs["doomed"]})["deleteJob"]
    assert again == {"deletedId": None, "userErrors": [{"code": "NOT_FOUND", "field": ["id"]}]}
    feed = alice.data("{ jobs(first: 100) { edges { node { ... on GenerationJob { id } } } } }")
    assert jobs["doomed"] not in {e["node"]["id"] for e in feed["jobs"]["edges"]}


def test_websocket_with_a_bad_token_is_refused(base_url: str) -> None:
    url = base_url.replace("http", "ws") + "/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"type": "connection_init",
                            "payload": {"Authorization": "Bearer nope"}}))  # fmt: skip
        with pytest.raises(Exception, match="4403"):
            ws.recv(timeout=10)


@pytest.fixture(scope="module")
def closed_url(settings: Settings, dsn: str) -> Iterator[str]:
    """The same database behind a server with ALLOW_ANONYMOUS off."""
    closed = settings.model_copy(update={"allow_anonymous": False})
    with serve_in_thread(create_app(closed, dsn=dsn)) as url:
        yield url


def test_anonymous_refused_when_not_allowed(closed_url: str, jobs: dict[str, str]) -> None:
    anon = GraphQLClient(closed_url)
    assert codes(anon.post("{ jobs { totalCount } }")) == ["UNAUTHENTICATED"]
    assert codes(anon.post("{ me { id } }")) == ["UNAUTHENTICATED"]
    # Signing in and introspection stay open.
    assert anon.data("{ __schema { queryType { name } } }")
    body = anon.data(LOGIN, {"e": "carol@example.com", "p": "s3cret-pass"})
    token = body["login"]["token"]
    assert GraphQLClient(closed_url, token).data("{ me { email } }")["me"]["email"] == (
        "carol@example.com"
    )


def test_payload_job_needs_no_fragment(clients: dict, jobs: dict[str, str]) -> None:
    """Payloads return the GenerationJob interface: common fields directly; fragments on
    a concrete type (as clients wrote them for the union) still apply."""
    alice = clients["alice"]
    query = """mutation($id: ID!) { setJobPublic(id: $id, public: false) {
      job { id status __typename ... on ImageJob { outputImageUrls } } userErrors { code } } }"""
    job = alice.data(query, {"id": jobs["private"]})["setJobPublic"]["job"]
    assert job == {"id": jobs["private"], "status": "PENDING", "__typename": "ImageJob",
                   "outputImageUrls": []}  # fmt: skip
